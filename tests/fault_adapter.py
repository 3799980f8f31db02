"""The toy adapter with faults to inject, for the executor and fault-injection tests.

Every fault field is `identity=False`, so a faulty run has the same config hash (and run folder name) as a
clean run of the same toy config, and their tables can be compared row by row.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from toy_adapter import ToyAdapter, ToyConfig

from lth_core.config import opt
from lth_core.job import Job, Outcome


@dataclass
class FaultConfig(ToyConfig):
    """The toy config plus faults to inject; none of them is part of the run's identity."""

    log: str = opt(
        "",
        "append '<job key> <pid> <torch threads>' per training started, 'init <pid> <threads>' per adapter built",
        identity=False,
    )
    die_key: str = opt("", "the process training this job kills itself (SIGKILL) mid-training", identity=False)
    die_times: int = opt(0, "how many attempts of --die-key die (marker files beside --log count them)", identity=False)
    raise_key: str = opt("", "this job raises RuntimeError on every attempt", identity=False)
    nan_key: str = opt("", "this job's loss turns NaN at step 10 (a diverged training)", identity=False)
    sleep: float = opt(0.0, "seconds to sleep per training, to widen a kill window", identity=False)


class FaultAdapter(ToyAdapter):
    Config = FaultConfig
    presets = {"quick": ToyAdapter.presets["quick"]}

    def __init__(self, config: FaultConfig) -> None:
        super().__init__(config)
        self._doomed = False
        self._evals = 0
        self._append(f"init {os.getpid()} {torch.get_num_threads()}")

    def _append(self, line: str) -> None:
        if self.config.log:
            with open(self.config.log, "a") as f:
                f.write(line + "\n")

    def _should_die(self, job: Job) -> bool:
        if job.key != self.config.die_key or not self.config.log:
            return False
        for i in range(self.config.die_times):  # claim the i-th death exactly once, across processes
            try:
                os.close(os.open(f"{self.config.log}.death{i}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                return True
            except FileExistsError:
                continue
        return False

    def _eval(self, model, data):
        self._evals += 1
        if self._doomed and self._evals == 3:  # a few steps into training: kill -9 of this very process
            os.kill(os.getpid(), signal.SIGKILL)
        return super()._eval(model, data)

    def train(self, job: Job) -> Outcome:
        self._append(f"{job.key} {os.getpid()} {torch.get_num_threads()}")
        if job.key == self.config.raise_key:
            raise RuntimeError(f"injected failure in {job.key}")
        self._doomed, self._evals = self._should_die(job), 0
        if self.config.sleep:
            time.sleep(self.config.sleep)
        if job.key != self.config.nan_key:
            return super().train(job)
        clean = self.config.nan_at
        self.config.nan_at = 10  # the toy loop's own NaN injection, for this job only
        try:
            return super().train(job)
        finally:
            self.config.nan_at = clean


def _lines(path: str | Path) -> list[list[str]]:
    p = Path(path)
    return [line.split() for line in p.read_text().splitlines() if line.strip()] if p.exists() else []


def train_log(path: str | Path) -> list[tuple[str, int]]:
    """(job key, pid) per training started, in order."""
    return [(k, int(pid)) for k, pid, *_ in _lines(path) if k != "init"]


def threads_log(path: str | Path) -> dict[str, int]:
    """Job key -> torch threads it started training with (the last attempt's)."""
    return {k: int(rest[0]) for k, _, *rest in _lines(path) if k != "init" and rest}


def init_log(path: str | Path) -> list[tuple[int, int]]:
    """(pid, torch threads) per adapter built, in order."""
    return [(int(pid), int(threads)) for k, pid, *rest in _lines(path) if k == "init" for threads in rest]
