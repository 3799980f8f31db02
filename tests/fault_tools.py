"""Helpers of the executor and fault-injection tests: runs of the fault adapter, table comparison, kill -9."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from fault_adapter import FaultAdapter, FaultConfig

from lth_core.config import ImpConfig, RunOptions
from lth_core.imp_runner import ImpRunner

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
QUICK = {"levels": 3, "trials": 2}  # the toy's quick preset: 2 dense + 3 levels x 2 trials x 3 kinds = 20 jobs
VOLATILE = [
    "wall_seconds",
    "scoring_s",
    "git_commit",
]  # the only columns allowed to differ between two runs of one command
TABLE = {"toy": "fault_adapter:FaultAdapter"}  # the domain table the CLI is given in these tests

DRIVER = f"""import sys
sys.path[:0] = [{str(ROOT)!r}, {str(TESTS)!r}]
from benchmarks.run import main

if __name__ == "__main__":  # worker processes re-import this file
    raise SystemExit(main(sys.argv[1:], table={TABLE!r}))
"""


def run_here(
    out: Path,
    executor: str = "local",
    imp: dict | None = None,
    workers: int = 2,
    preset: str = "",
    cpus_per_job: float = 1.0,
    **faults,
) -> Path:
    """One run of the fault adapter in this process; returns its run folder."""
    cfg = FaultConfig(**faults)
    options = RunOptions(out=str(out), executor=executor, workers=workers, cpus_per_job=cpus_per_job, progress=False)
    runner = ImpRunner(
        FaultAdapter(cfg), functools.partial(FaultAdapter, cfg), ImpConfig(**(imp or QUICK)), options, preset=preset
    )
    return runner.run()


def results(folder: Path) -> pd.DataFrame:
    # `execution` names the executor: these comparisons are across executors, on purpose
    return pd.read_csv(folder / "results.csv").drop(columns=[*VOLATILE, "execution"], errors="ignore")


def assert_same_run(a: Path, b: Path, skip_keys: frozenset[str] = frozenset()) -> None:
    """Same rows (but the volatile columns), same summary, same curves and same saved tensors."""
    ra, rb = results(a), results(b)
    keys = lambda df: df.level.map("L{:02d}".format) + "-" + df.kind + "-t" + df.trial.astype(str)  # noqa: E731
    ra, rb = ra[~keys(ra).isin(skip_keys)].reset_index(drop=True), rb[~keys(rb).isin(skip_keys)].reset_index(drop=True)
    pd.testing.assert_frame_equal(ra, rb, check_dtype=not skip_keys)  # a skipped error row changes a dtype
    if not skip_keys:
        pd.testing.assert_frame_equal(pd.read_csv(a / "summary.csv"), pd.read_csv(b / "summary.csv"))
    ja, jb = sorted(p.name for p in (a / "jobs").glob("*.json")), sorted(p.name for p in (b / "jobs").glob("*.json"))
    assert ja == jb
    for name in ja:
        if name[:-5] not in skip_keys:
            ca, cb = (json.loads((d / "jobs" / name).read_text())["curve"] for d in (a, b))
            assert ca == cb, name
    sa, sb = sorted(p.name for p in (a / "state").glob("*.pt")), sorted(p.name for p in (b / "state").glob("*.pt"))
    assert sa == sb
    for name in (n for n in sa if not n.startswith("scoring-")):  # seconds: volatile, like wall_seconds
        ta, tb = (torch.load(d / "state" / name, weights_only=True) for d in (a, b))
        assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta), name


def committed(folder: Path) -> set[str]:
    """Keys of the jobs whose record is written (the commit marker of a finished job)."""
    return {p.stem for p in (folder / "jobs").glob("*.json")} if (folder / "jobs").is_dir() else set()


def write_driver(where: Path) -> Path:
    path = where / "driver.py"
    path.write_text(DRIVER)
    return path


def cli_args(out: Path, log: Path, executor: str = "local", *extra: str) -> list[str]:
    return [
        "--domain",
        "toy",
        "--preset",
        "quick",
        "--out",
        str(out),
        "--executor",
        executor,
        "--workers",
        "2",
        "--log",
        str(log),
        "--noprogress",
        *extra,
    ]


def session_pids(sid: int) -> list[int]:
    """Live processes of a session (a driver started with start_new_session, its workers, its fork server)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def wait_session_gone(sid: int, timeout: float = 30.0) -> list[int]:
    """Wait for every process of a session to exit; returns those still alive at the timeout."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        left = session_pids(sid)
        if not left:
            return []
        time.sleep(0.2)
    return session_pids(sid)


class Driver:
    """The CLI in a subprocess of its own session, so that kill -9 hits the driver alone, as a user's would."""

    def __init__(self, driver: Path, args: list[str], stderr: Path) -> None:
        self.stderr = stderr
        with open(stderr, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(driver), *args],
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
                cwd=ROOT,
            )

    def wait(self, timeout: float | None = None) -> int:
        return self.proc.wait(timeout=timeout)

    def wait_for_lock(self, where: Path, timeout: float = 600) -> bool:
        """Wait until this driver holds a run folder (`where` or one inside it): its work begins there.
        False if it exited first."""
        end = time.monotonic() + timeout
        while time.monotonic() < end and self.proc.poll() is None:
            for owner in [where / ".lock.owner", *where.glob("*/.lock.owner")]:
                try:
                    if json.loads(owner.read_text())["pid"] == self.proc.pid:
                        return True
                except (OSError, ValueError, KeyError):
                    pass
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        """Leave nothing running behind a failed test."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def kill_after(self, delay: float, linger: float = 30.0) -> bool:
        """kill -9 after `delay` seconds unless it finished first; True when killed. Then waits up to `linger`
        seconds for its workers to exit, and fails if any is left."""
        try:
            self.proc.wait(timeout=delay)
            killed = False
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            killed = True
        left = wait_session_gone(self.proc.pid, linger)
        assert not left, f"processes of the killed driver still alive: {left}"
        return killed

    def error(self) -> str:
        return self.stderr.read_text()
