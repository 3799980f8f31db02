"""Domains are discovered, so a new domain is one folder: `domains/<name>/adapter.py` with an Adapter class
whose body sets `domain = "<name>"` (or an entry point in the group `lth_bench.domains`, NAME = "module:Class").

Discovery reads the adapter files' syntax and imports nothing: a user without fairseq or SB3 can still run
vision, and a domain whose library is missing is named in one line saying what to install.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from importlib import metadata
from pathlib import Path

from lth_core.errors import UsageError

ENTRY_POINTS = "lth_bench.domains"


def _declared(file: Path) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Adapter classes of one file: domain name -> (class name, declared packages), from literal class attributes."""
    out = {}
    for node in ast.parse(file.read_text(encoding="utf-8")).body:
        if not isinstance(node, ast.ClassDef) or not node.bases:
            continue
        attrs = {}
        for stmt in node.body:
            target = (
                stmt.targets[0]
                if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                else stmt.target
                if isinstance(stmt, ast.AnnAssign) and stmt.value is not None
                else None
            )
            if isinstance(target, ast.Name):
                try:
                    attrs[target.id] = ast.literal_eval(stmt.value)  # type: ignore[arg-type]
                except ValueError:
                    continue
        if isinstance(attrs.get("domain"), str):
            packages = attrs.get("packages", ())
            out[attrs["domain"]] = (node.name, tuple(packages) if isinstance(packages, (tuple, list)) else ())
    return out


def discover() -> dict[str, str]:
    """Domain name -> "module:AdapterClass" for every domain folder and every installed entry point."""
    table = {}
    for file in sorted(Path(__file__).resolve().parent.glob("*/adapter.py")):
        for name, (cls, _) in _declared(file).items():
            table[name] = f"{__name__}.{file.parent.name}.adapter:{cls}"
    for ep in metadata.entry_points(group=ENTRY_POINTS):
        table.setdefault(ep.name, ep.value)
    return table


DOMAINS: dict[str, str] = discover()


def domain_names(table: dict[str, str] = DOMAINS) -> list[str]:
    return sorted(table)


def install_hint(name: str, module: str) -> str:
    """How to install what a domain needs: the project's extra of that name, else the packages it declares."""
    try:
        extras = metadata.metadata("lth-bench").get_all("Provides-Extra") or []
    except metadata.PackageNotFoundError:
        extras = []
    if name in extras:
        return f"pip install -e '.[{name}]'"
    spec = importlib.util.find_spec(module)  # the adapter's file, read as text: importing it is what failed
    origin = Path(spec.origin) if spec and spec.origin else None
    packages = next((p for _, p in _declared(origin).values()), ()) if origin and origin.is_file() else ()
    return f"pip install {' '.join(packages)}" if packages else "pip install the packages it imports"


def load_adapter_class(name: str, table: dict[str, str] = DOMAINS):
    if name not in table:
        raise UsageError(f"unknown domain {name!r}; valid choices: {', '.join(domain_names(table))}, all")
    module, _, cls = table[name].partition(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and (e.name == module or module.startswith(e.name + ".")):
            raise
        raise UsageError(f"domain {name!r} needs {e.name!r}; install it with: {install_hint(name, module)}") from None
    return getattr(mod, cls)
