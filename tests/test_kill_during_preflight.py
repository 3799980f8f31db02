"""A kill -9 during the preflight leaves nothing behind: the run folder (and --out itself) is created only after
every check has passed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent
DRIVER = f"""import sys
sys.path[:0] = [{str(TESTS.parent)!r}, {str(TESTS)!r}]
from benchmarks.run import main
raise SystemExit(main(sys.argv[1:], table={{"toy": "slow_preflight_adapter:SlowAdapter"}}))
"""


def test_kill_9_during_validation_leaves_nothing(tmp_path):
    marker, out = tmp_path / "validating", tmp_path / "out" / "deeper"
    args = ["--domain", "toy", "--levels", "1", "--trials", "1", "--noprogress", "--out", str(out)]
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, *args, "--marker", str(marker), "--pause", "30"],
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the preflight never began"
            time.sleep(0.05)
        time.sleep(0.3)  # well inside the validation's pause
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["validating"]  # no --out, no run folder, no lock


def test_the_same_command_unkilled_runs_to_the_end(tmp_path):
    """The control of the test above: without the kill, this very command writes its run folder."""
    out = tmp_path / "out"
    args = ["--domain", "toy", "--levels", "1", "--trials", "1", "--noprogress", "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, *args, "--marker", str(tmp_path / "m"), "--pause", "0"],
        capture_output=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    (folder,) = out.iterdir()
    assert (folder / "run.json").is_file() and (folder / "results.csv").is_file()
