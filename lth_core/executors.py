"""Executors: how the independent jobs of one level are trained. Only the driver writes the run store."""
from __future__ import annotations

import time
import traceback
from abc import ABC, abstractmethod
from typing import Callable, Iterator

from lth_core.adapter import Adapter
from lth_core.config import RunOptions
from lth_core.errors import Diverged, UsageError
from lth_core.job import Job, Outcome
from lth_core.registry import Registry

AdapterFactory = Callable[[], Adapter]  # picklable: rebuilds the adapter inside a worker


def train_safely(adapter: Adapter, job: Job, attempts: int = 2) -> Outcome:
    """Train one job; a diverged training or a job that keeps failing becomes a row, not a crash."""
    error = ""
    start = time.perf_counter()
    for _ in range(max(1, attempts)):
        try:
            out = adapter.train(job)
            out.wall_seconds = time.perf_counter() - start
            return out
        except Diverged as e:
            out = Outcome.failed("diverged", str(e))
            out.wall_seconds = time.perf_counter() - start
            return out
        except (UsageError, KeyboardInterrupt):
            raise
        except Exception as e:  # recorded with its error; the rest of the run goes on
            error = f"{type(e).__name__}: {e} | {traceback.format_exc(limit=3).splitlines()[-1]}"
    out = Outcome.failed("failed", error)
    out.wall_seconds = time.perf_counter() - start
    return out


class Executor(ABC):
    def __init__(self, adapter: Adapter, factory: AdapterFactory, options: RunOptions) -> None:
        self.adapter = adapter
        self.factory = factory
        self.options = options

    @abstractmethod
    def run(self, jobs: list[Job]) -> Iterator[tuple[Job, Outcome]]:
        """Yield each job with its outcome as soon as it finishes (any order)."""

    def close(self) -> None:
        pass


EXECUTORS: Registry[type[Executor]] = Registry("executor")


@EXECUTORS.register("local")
class LocalExecutor(Executor):
    """One job after another in this process."""

    def run(self, jobs: list[Job]) -> Iterator[tuple[Job, Outcome]]:
        for job in jobs:
            yield job, train_safely(self.adapter, job)
