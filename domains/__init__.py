"""Domain adapters, imported lazily by name so a user without fairseq or SB3 can still run vision."""
from __future__ import annotations

import importlib

from lth_core.errors import UsageError

# name -> "module:AdapterClass". One line per domain; the runner and CLI never branch on the name.
DOMAINS: dict[str, str] = {
    "vision": "domains.vision.adapter:VisionAdapter",
    "rl": "domains.rl.adapter:RLAdapter",
    "nlp": "domains.nlp.adapter:NLPAdapter",
}


def domain_names(table: dict[str, str] = DOMAINS) -> list[str]:
    return sorted(table)


def load_adapter_class(name: str, table: dict[str, str] = DOMAINS):
    if name not in table:
        raise UsageError(f"unknown domain {name!r}; valid choices: {', '.join(domain_names(table))}, all")
    module, _, cls = table[name].partition(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and (e.name == module or module.startswith(e.name + ".")):
            raise
        raise UsageError(f"domain {name!r} needs {e.name!r}; install it with: pip install -e '.[{name}]'") from None
    return getattr(mod, cls)
