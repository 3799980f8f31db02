"""Executors: how the independent jobs of one level are trained. Only the driver writes the run store."""

from __future__ import annotations

import os
import time
import traceback
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Callable, Iterator

import torch

from lth_core.errors import Diverged, UsageError
from lth_core.job import Job, Outcome
from lth_core.registry import Registry

if TYPE_CHECKING:
    from lth_core.adapter import Adapter
    from lth_core.config import RunOptions

AdapterFactory = Callable[[], "Adapter"]  # picklable: rebuilds the adapter inside a worker
WORKER_DEATH_RETRIES = 2  # a job whose worker dies (killed, out of memory, segfault) runs at most 3 times


def available_cores() -> int:
    """Cores this process may use (its affinity mask, which containers and `taskset` narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class WorkerStartError(RuntimeError):
    """A worker could not build the adapter: every job would fail the same way, so the run stops with it."""


def build_in_worker(factory: AdapterFactory) -> Adapter:
    """The factory's adapter; a failure names itself (a UsageError stays one, for the one-line CLI error)."""
    try:
        return factory()
    except UsageError:
        raise
    except Exception as e:
        raise WorkerStartError(f"a worker could not build the adapter: {type(e).__name__}: {e}") from e


def job_threads(options: RunOptions) -> int:
    """Torch threads every job trains with, whichever executor runs it (`--cpus-per-job`).

    The thread count changes how float sums are split, so results differ in the last bits between 1 and 2
    threads; one number for every executor keeps the same command giving the same table.
    """
    return max(1, int(options.cpus_per_job))


def worker_died(attempts: int, detail: str) -> Outcome:
    """The row of a job whose worker process died on every attempt: failed, with why, and the run goes on."""
    return Outcome.failed("failed", f"worker died on all {attempts} attempts: {detail}")


def train_safely(adapter: Adapter, job: Job, attempts: int = 2, threads: int | None = None) -> Outcome:
    """Train one job (with `threads` torch threads if given, the domain config's `--threads` if set); a diverged
    training or a job that keeps failing becomes a row, not a crash."""
    threads = getattr(adapter.config, "threads", 0) or threads
    if threads is not None:
        torch.set_num_threads(threads)
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
    """One job after another in this process, each with `--cpus-per-job` torch threads."""

    def __init__(self, adapter: Adapter, factory: AdapterFactory, options: RunOptions) -> None:
        super().__init__(adapter, factory, options)
        self._threads_before = torch.get_num_threads()

    def run(self, jobs: list[Job]) -> Iterator[tuple[Job, Outcome]]:
        for job in jobs:
            yield job, train_safely(self.adapter, job, threads=job_threads(self.options))

    def close(self) -> None:
        torch.set_num_threads(self._threads_before)


# The parallel executors register themselves on import (Ray itself is imported only when chosen).
from lth_core import executor_batched, executor_process, executor_ray  # noqa: E402,F401
