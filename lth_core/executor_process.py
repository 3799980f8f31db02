"""`--executor process`: worker processes on this machine, sharing its cores.

Each worker rebuilds the adapter once from the picklable factory (not once per job). Every job trains with
`--cpus-per-job` torch threads (as under `local` and `ray`, so the numbers are the same), and by default
there are `cores // cpus-per-job` workers: the cores are split between them, none oversubscribed.
Workers only train and return outcomes; the driver alone writes the run store.

A worker that dies (kill -9, out-of-memory killer, segfault) breaks a `ProcessPoolExecutor` and every
job in flight with it. Jobs that had not started go back to the queue untouched; jobs that had started
are retried one at a time, so the job that kills its worker is told apart from the ones it took down
with it, and after `WORKER_DEATH_RETRIES` more deaths it is recorded as failed while the run goes on.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import threading
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.queues import SimpleQueue
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generator, Iterator

from lth_core.errors import UsageError
from lth_core.executors import (
    EXECUTORS,
    WORKER_DEATH_RETRIES,
    AdapterFactory,
    Executor,
    WorkerStartError,
    available_cores,
    build_in_worker,
    job_threads,
    train_safely,
    worker_died,
)
from lth_core.job import Job, Outcome

if TYPE_CHECKING:
    from lth_core.adapter import Adapter
    from lth_core.config import RunOptions

_WORKER: dict[str, Any] = {}  # inside a worker process only: its adapter and the queue it reports starts on


def _started_at(pid: int) -> str | None:
    """The start time of a live process (so a reused pid is not taken for it); None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None if not _exists(pid) else "?"  # no /proc (not Linux): fall back on the pid alone
    return None if fields[0] in "ZX" else fields[19]


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _exit_with_driver(driver: int) -> None:
    """A worker whose driver was killed -9 exits instead of lingering: the pool cannot tell it to, and its
    parent (the fork server) lives on while any worker holds the server's pipe, so it watches the driver."""
    born = _started_at(driver)
    if born is None:  # the driver died before this worker got going
        os._exit(1)

    def watch() -> None:
        while _started_at(driver) == born:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="driver-watch", daemon=True).start()


def _init_worker(factory: AdapterFactory, threads: int, driver: int, starts: SimpleQueue) -> None:
    _exit_with_driver(driver)
    import torch

    torch.set_num_threads(threads)
    _WORKER.update(starts=starts, threads=threads)
    try:
        _WORKER["adapter"] = build_in_worker(factory)
    except (UsageError, WorkerStartError) as e:  # sent back with the first job, to stop the run with it
        _WORKER["error"] = e
        return
    atexit.register(_WORKER["adapter"].close)


def _train_in_worker(job: Job) -> Outcome:
    _WORKER["starts"].put(job.key)
    if "error" in _WORKER:
        raise _WORKER["error"]
    return train_safely(_WORKER["adapter"], job, threads=_WORKER["threads"])


def _context() -> multiprocessing.context.BaseContext:
    """Never plain fork (torch's threads and locks do not survive it). A fork server that has imported torch
    once starts each worker in milliseconds, which matters when a pool is rebuilt after a worker died."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "lth_core.executor_process"])
    return ctx


def _outcome(future: Future) -> Outcome:
    """The future's outcome; an error raised outside the training itself (e.g. pickling) becomes a failed row."""
    try:
        return future.result()
    except (UsageError, WorkerStartError, KeyboardInterrupt):
        raise
    except Exception as e:
        return Outcome.failed("failed", f"{type(e).__name__}: {e}")


@EXECUTORS.register("process")
class ProcessExecutor(Executor):
    """Jobs on `--workers` processes (0 = cores // cpus-per-job), each job with `--cpus-per-job` torch threads."""

    def __init__(self, adapter: Adapter, factory: AdapterFactory, options: RunOptions) -> None:
        super().__init__(adapter, factory, options)
        if options.workers < 0:
            raise UsageError(f"--workers {options.workers} must be >= 0 (0 = one per core)")
        self.threads = job_threads(options)
        self.workers = options.workers or max(1, available_cores() // self.threads)
        self._pool: ProcessPoolExecutor | None = None
        self._starts: SimpleQueue | None = None
        self._started: set[str] = set()  # keys of jobs a worker of the current pool has started
        self.deaths = 0  # worker deaths seen in this run (for reports and tests)
        self._context = _context()

    # ---- the pool --------------------------------------------------------------------------
    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._starts = self._context.SimpleQueue()
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=self._context,
                initializer=_init_worker,
                initargs=(self.factory, self.threads, os.getpid(), self._starts),
            )
        return self._pool

    def _note_starts(self) -> None:
        """Move the keys workers reported on starting into `self._started` (drained often: a pipe fills up)."""
        try:
            while self._starts is not None and not self._starts.empty():
                self._started.add(self._starts.get())
        except (OSError, EOFError, ValueError):  # a worker killed mid-message: count nothing more
            pass

    def _discard_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._starts is not None:
            self._starts.close()
            self._starts = None
        self._started.clear()

    def close(self) -> None:
        self._discard_pool()

    # ---- running jobs ------------------------------------------------------------------------
    def run(self, jobs: list[Job]) -> Iterator[tuple[Job, Outcome]]:
        queue = deque(jobs)
        failed_starts = 0
        while queue:
            suspects = yield from self._in_parallel(queue)
            if suspects is None:  # the pool broke before any job started: the workers cannot start
                failed_starts += 1
                if failed_starts > WORKER_DEATH_RETRIES:
                    raise RuntimeError(
                        "worker processes die before training anything (see their error above); "
                        "try --executor local to see it directly"
                    )
                continue
            for job in suspects:
                yield job, self._alone(job)

    def _in_parallel(self, queue: deque[Job]) -> Generator[tuple[Job, Outcome], None, list[Job] | None]:
        """Train the queue in parallel, yielding as jobs finish. On a worker death, put back the jobs that
        had not started and return those that had (the suspects); None when no job started in that pool."""
        pool = self._ensure_pool()
        futures = {pool.submit(_train_in_worker, job): job for job in queue}
        queue.clear()
        broken: list[Job] = []
        for future in as_completed(futures):
            self._note_starts()
            if isinstance(future.exception(), BrokenProcessPool):
                broken.append(futures[future])
            else:
                yield futures[future], _outcome(future)
        if not broken:
            return []
        self.deaths += 1
        self._note_starts()
        started = set(self._started)
        self._discard_pool()
        suspects = [j for j in broken if j.key in started]
        queue.extend(j for j in broken if j.key not in started)
        return suspects if started else None

    def _alone(self, job: Job) -> Outcome:
        """Retry a job that was in flight when a worker died, with no other job beside it."""
        for _ in range(WORKER_DEATH_RETRIES):
            future = self._ensure_pool().submit(_train_in_worker, job)
            error = future.exception()
            self._note_starts()
            if not isinstance(error, BrokenProcessPool):
                return _outcome(future)
            self.deaths += 1
            self._discard_pool()
        return worker_died(1 + WORKER_DEATH_RETRIES, "its process was killed or crashed (exit without a result)")
