"""A run's start-up imports nothing it does not use: torch._dynamo (through torch.optim's wrappers) and triton
(through torch's FLOP counter) cost more than a second of every process; the run's files are still written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_vision_run_imports_neither_dynamo_nor_triton(tmp_path):
    code = (
        "import sys\n"
        "from benchmarks.run import main\n"
        "main(['--domain', 'vision', '--preset', 'quick', '--dataset', 'digits', '--levels', '0', '--trials', '1',\n"
        f"      '--iterations', '2', '--out', {str(tmp_path)!r}, '--progress', 'false'])\n"
        "print(sorted(m for m in ('torch._dynamo', 'triton', 'mnist1d') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip().splitlines()[-1] == "[]"
    (folder,) = tmp_path.iterdir()
    for name in ("results.csv", "summary.csv", "summary.md", "densities.csv", "figure1.png", "run.json"):
        assert (folder / name).is_file(), name
