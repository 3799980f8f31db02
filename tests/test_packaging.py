"""Every third-party module the engine and the CLI import is a declared core dependency: `pip install -e '.[vision]'`
must be enough for the main job (an undeclared `tabulate`, pulled in only by the dev extras, once broke it).
Imports inside functions (Ray, torchvision, ...) belong to the extras and are not checked here."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
DIST = {"simple_parsing": "simple-parsing"}  # import name -> distribution name, where they differ
OPTIONAL_OF_PANDAS = {"tabulate"}  # imported by pandas itself, for DataFrame.to_markdown


def core_dependencies() -> set[str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower() for d in deps}


def third_party_imports(folder: str) -> set[str]:
    names: set[str] = set()
    for path in (ROOT / folder).rglob("*.py"):
        if path.name.startswith(("test_", "conftest")):
            continue
        for node in ast.parse(path.read_text()).body:  # module level: imports inside functions are for extras
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    own = {"lth_core", "domains", "benchmarks"}
    return {n for n in names if n not in own and n not in sys.stdlib_module_names and n != "__future__"}


def test_engine_and_cli_imports_are_core_dependencies():
    declared = core_dependencies()
    used = third_party_imports("lth_core") | third_party_imports("benchmarks") - {"pytest"}
    used |= OPTIONAL_OF_PANDAS
    missing = sorted(n for n in used if DIST.get(n, n).lower() not in declared)
    assert not missing, f"imported but not in [project] dependencies: {missing}"
