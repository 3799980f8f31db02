"""The Ray executor on a small local instance it starts itself, in one module (starting Ray takes ~20 s on a
loaded machine): jobs trained as tasks with `--cpus-per-job` threads, each paired with its own outcome; a
job asking for more than the cluster has refused in one line (and the instance this executor did not start
left running); errors raised in a task outside the training as failed rows, a stop raised as such, a worker
that dies on every attempt a failed row; and the instance shut down by the executor that started it."""

from __future__ import annotations

import functools
import os

import pytest
from fault_adapter import FaultAdapter, FaultConfig, threads_log, train_log

from lth_core.config import RunOptions
from lth_core.errors import UsageError
from lth_core.executor_ray import RayExecutor, _unreachable
from lth_core.executors import WorkerStartError
from lth_core.job import Job

pytestmark = pytest.mark.slow  # real workers: ~20-90 s per test on 2 loaded cores (mutation tests run them)

ray = pytest.importorskip("ray")


def jobs(a: FaultAdapter, n: int) -> list[Job]:
    w = a.initial_weights(0)
    return [Job(level=0, kind="dense", trial=t, seed=t, weights=w, mask=None, budget=6) for t in range(n)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A RayExecutor that started its own local instance (`--workers 0`: as many CPUs as this process may use,
    narrowed to one core here so that Ray's own count, the machine's, would differ), and the run's log."""
    if ray.is_initialized():
        pytest.skip("Ray is already initialised in this process")
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})
    try:
        log = str(tmp_path_factory.mktemp("ray") / "train.log")
        cfg = FaultConfig(steps=6, eval_every=3, log=log)
        a = FaultAdapter(cfg)
        factory, options = functools.partial(FaultAdapter, cfg), RunOptions(executor="ray")
        ex = RayExecutor(a, factory, options)
        assert (ex.adapter, ex.factory, ex.options, ex.ray) == (a, factory, options, ray)
        assert ex._started is True and ray.is_initialized() and ray.cluster_resources()["CPU"] == 1.0
        assert _unreachable("127.0.0.1:8265") is not None  # no dashboard
        yield ex, a, log
    finally:
        os.sched_setaffinity(0, cores)
    ex.close()
    assert not ray.is_initialized() and not ex._started
    ex.close()  # twice: nothing more to do


def test_jobs_run_as_tasks_with_cpus_per_job_threads_each_paired_with_its_outcome(cluster):
    ex, a, log = cluster
    js = jobs(a, 3)
    got = list(ex.run(js))
    assert sorted(j.key for j, _ in got) == [j.key for j in js] and all(o.status == "ok" for _, o in got)
    local = {j.key: FaultAdapter(FaultConfig(steps=6, eval_every=3)).train(j).score for j in js}
    assert {j.key: o.score for j, o in got} == local
    assert os.getpid() not in {pid for _, pid in train_log(log)} and set(threads_log(log).values()) == {1}
    assert ex.threads == 1 and len(ex._token) == 32 and int(ex._token, 16) >= 0


def test_a_job_asking_more_than_the_cluster_has_is_one_line_and_another_executors_instance_stays(cluster):
    ex, a, _ = cluster
    for flag, options, have in (
        ("--cpus-per-job 2", RunOptions(executor="ray", cpus_per_job=2.0), "1 CPUs"),
        ("--gpus-per-job 0.5", RunOptions(executor="ray", gpus_per_job=0.5), "0 GPUs"),
    ):
        with pytest.raises(UsageError) as e:
            RayExecutor(a, lambda: a, options)
        assert str(e.value) == (
            f"{flag} but the Ray cluster has {have}; ask for at most that, or join a larger cluster with --ray-address"
        )
        assert ray.is_initialized()  # not this executor's to shut down
    RayExecutor(a, lambda: a, RunOptions(executor="ray", cpus_per_job=1.0)).close()  # all there is: fine
    assert ray.is_initialized()


def raises(error: BaseException) -> None:
    raise error


def crash() -> None:
    os._exit(3)


def test_task_errors_are_failed_rows_a_stop_is_raised_and_a_dead_worker_is_a_failed_row(cluster):
    ex, _, _ = cluster
    row = ex._outcome(ray.remote(raises).remote(TypeError("cannot pickle")))
    assert (row.status, row.error) == ("failed", "TypeError: cannot pickle")
    for stop in (UsageError("--data: none"), WorkerStartError("no adapter")):
        with pytest.raises(type(stop), match=str(stop)):
            ex._outcome(ray.remote(raises).remote(stop))
    dead = ex._outcome(ray.remote(max_retries=0)(crash).remote())
    assert dead.status == "failed" and dead.error.startswith("worker died on all 3 attempts: WorkerCrashedError: ")
    assert "\n" not in dead.error


def test_a_factory_that_fails_in_the_worker_stops_the_run(cluster):
    ex, a, _ = cluster
    bad = RayExecutor(a, functools.partial(raises, UsageError("--data: no such folder")), RunOptions(executor="ray"))
    with pytest.raises(UsageError, match="--data: no such folder"):
        list(bad.run(jobs(a, 1)))
