"""`--executor ray`: jobs as Ray tasks on a cluster (`--ray-address auto|HOST:PORT`) or a local instance.

Each job is one task reserving `--cpus-per-job` CPUs (and training with as many torch threads, as under
`local` and `process`) and `--gpus-per-job` GPUs (fractions share a GPU; Ray sets CUDA_VISIBLE_DEVICES).
A Ray worker process rebuilds the adapter once per run from the factory and keeps it for the following jobs.
A worker that dies mid-job (node lost, kill -9, out of memory) is Ray's to retry (`max_retries`); after that
the job is recorded as failed with Ray's error and the run goes on. Tasks only return outcomes: the driver
alone writes the run store.
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any, Iterator

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

_ADAPTER: dict[str, Adapter] = {}  # inside a Ray worker only: run token -> the adapter built for that run


def _train_task(token: str, factory: AdapterFactory, threads: int, job: Job) -> Outcome:
    adapter = _ADAPTER.get(token)
    if adapter is None:
        for old in _ADAPTER.values():  # a worker that served an earlier run releases that run's adapter
            old.close()
        _ADAPTER.clear()
        adapter = _ADAPTER[token] = build_in_worker(factory)
    return train_safely(adapter, job, threads=threads)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError("--executor ray needs Ray; install it with: pip install -e '.[ray]'") from None
    return ray


def _driver_paths() -> str:
    """The driver's own import paths (not the interpreter's), so local workers import what the driver can."""
    prefixes = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})
    paths = [os.path.abspath(p or os.curdir) for p in sys.path]
    keep = [p for p in dict.fromkeys(paths) if os.path.isdir(p) and not p.startswith(prefixes)]
    return os.pathsep.join(keep + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])


def _unreachable(address: str) -> str | None:
    """Why nothing answers at HOST:PORT (Ray itself would retry for many minutes), or None."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:  # 'auto' and ray:// client addresses: Ray's to check
        return None
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        return e.strerror or type(e).__name__
    return None


def connect(options: RunOptions) -> bool:
    """Join the cluster at `--ray-address`, or start a light local instance; True when this call started Ray.

    If Ray is already initialised in this process (a notebook, a test session), that instance is used.
    """
    ray = _import_ray()
    if ray.is_initialized():
        return False
    if options.ray_address:
        try:
            why = _unreachable(options.ray_address)
            if why is not None:
                raise ConnectionError(f"nothing answers: {why}")
            ray.init(address=options.ray_address)
        except (ConnectionError, ValueError, RuntimeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UsageError(
                f"--ray-address {options.ray_address!r}: cannot join a Ray cluster there ({first}); start "
                "one with `ray start --head`, or pass --ray-address '' for a local instance"
            ) from None
    else:
        if options.workers < 0:
            raise UsageError(f"--workers {options.workers} must be >= 0 (0 = one per core)")
        ray.init(
            num_cpus=options.workers or available_cores(),
            include_dashboard=False,
            runtime_env={"env_vars": {"PYTHONPATH": _driver_paths()}},
        )
    return True


@EXECUTORS.register("ray")
class RayExecutor(Executor):
    """One Ray task per job, `--cpus-per-job`/`--gpus-per-job` reserved each; outcomes come back as they finish."""

    def __init__(self, adapter: Adapter, factory: AdapterFactory, options: RunOptions) -> None:
        super().__init__(adapter, factory, options)
        if options.cpus_per_job <= 0 or options.gpus_per_job < 0:
            raise UsageError(
                f"--cpus-per-job {options.cpus_per_job} must be > 0 and --gpus-per-job "
                f"{options.gpus_per_job} must be >= 0"
            )
        self.ray = _import_ray()
        self._started = connect(options)
        try:
            self._check_resources()
        except UsageError:
            self.close()
            raise
        self.threads = job_threads(options)
        self._token = uuid.uuid4().hex
        self._factory = self.ray.put(factory)
        self._task = self.ray.remote(_train_task).options(
            num_cpus=options.cpus_per_job,
            num_gpus=options.gpus_per_job,
            max_retries=WORKER_DEATH_RETRIES,
            retry_exceptions=False,
        )

    def _check_resources(self) -> None:
        """A job asking for more than the whole cluster has would wait forever: say so instead."""
        have = self.ray.cluster_resources()
        for flag, need, name in (
            ("--cpus-per-job", self.options.cpus_per_job, "CPU"),
            ("--gpus-per-job", self.options.gpus_per_job, "GPU"),
        ):
            if need > have.get(name, 0.0):
                raise UsageError(
                    f"{flag} {need:g} but the Ray cluster has {have.get(name, 0.0):g} {name}s; "
                    f"ask for at most that, or join a larger cluster with --ray-address"
                )

    def run(self, jobs: list[Job]) -> Iterator[tuple[Job, Outcome]]:
        limit = self.options.workers or len(jobs)  # --workers caps the jobs in flight; 0 = as many as fit
        waiting: deque[Job] = deque(jobs)
        in_flight: dict[Any, Job] = {}
        while waiting or in_flight:
            while waiting and len(in_flight) < limit:
                job = waiting.popleft()
                in_flight[self._task.remote(self._token, self._factory, self.threads, job)] = job
            done, _ = self.ray.wait(list(in_flight), num_returns=1)
            for ref in done:
                yield in_flight.pop(ref), self._outcome(ref)

    def _outcome(self, ref: Any) -> Outcome:
        exc = self.ray.exceptions
        try:
            return self.ray.get(ref)
        except exc.RayTaskError as e:  # raised by our own code in the task, outside train_safely's net
            if isinstance(e.cause, (UsageError, WorkerStartError, KeyboardInterrupt)):
                raise e.cause from None
            return Outcome.failed("failed", f"{type(e.cause).__name__}: {e.cause}")
        except exc.RayError as e:  # the worker or its node died on every attempt
            lines = str(e).strip().splitlines()
            return worker_died(1 + WORKER_DEATH_RETRIES, f"{type(e).__name__}: {lines[0] if lines else ''}")

    def close(self) -> None:
        if self._started and self.ray.is_initialized():
            self.ray.shutdown()
        self._started = False
