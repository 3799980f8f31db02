"""The engine knows no domain: lth_core imports no domain module, no domain library and nothing of benchmarks/."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = (
    "domains",
    "benchmarks",
    "torchvision",
    "stable_baselines3",
    "gymnasium",
    "fairseq",
    "sacrebleu",
    "sentencepiece",
    "ale_py",
    "mnist1d",
)
MODULES = sorted(f"lth_core.{p.stem}" for p in (ROOT / "lth_core").glob("*.py") if p.stem != "__init__")


def _forbidden(name: str) -> bool:
    return name.split(".")[0] in FORBIDDEN


def test_importing_every_engine_module_loads_no_domain_code():
    code = (
        "import importlib, json, sys\n"
        f"for m in {MODULES!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"lth_core.imp_runner", "lth_core.store", "lth_core.executor_ray"} <= set(loaded)
    assert [m for m in loaded if _forbidden(m)] == []


def test_no_engine_file_imports_domain_code_even_lazily():
    bad = []
    for file in sorted((ROOT / "lth_core").glob("*.py")):
        for node in ast.walk(ast.parse(file.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            bad += [f"{file.name}: {n}" for n in names if _forbidden(n)]
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__")
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                bad += [f"{file.name}: {node.args[0].value}"] if _forbidden(str(node.args[0].value)) else []
    assert bad == []


def test_the_scan_sees_what_it_forbids(tmp_path):
    """The checks above would catch an import: the same predicate flags these."""
    assert all(_forbidden(m) for m in ("domains.vision.adapter", "benchmarks.run", "fairseq.trainer", "gymnasium"))
    assert not any(_forbidden(m) for m in ("torch", "lth_core.domains_free", "numpy"))
