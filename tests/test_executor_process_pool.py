"""The process executor's pool on real worker processes, small (lth_core/executor_process.py): every job trained
once with one adapter per worker and `--cpus-per-job` threads; a job whose worker is killed once is retried alone
and its row is a normal one; a job that kills every worker it gets is a failed row after 3 deaths; workers that die
before training anything stop the run after 3 pools (the CLI-level kill tests in tests/test_executors.py take
minutes)."""

from __future__ import annotations

import functools
import os

import pytest
from fault_adapter import FaultAdapter, FaultConfig, init_log, threads_log, train_log

from lth_core.config import RunOptions
from lth_core.executor_process import ProcessExecutor
from lth_core.job import Job

pytestmark = pytest.mark.slow  # real workers: ~20-90 s per test on 2 loaded cores (mutation tests run them)


def jobs(a: FaultAdapter, n: int = 3) -> list[Job]:
    w = a.initial_weights(0)
    return [Job(level=0, kind="dense", trial=t, seed=t, weights=w, mask=None, budget=6) for t in range(n)]


def executor(tmp_path, workers: int = 2, **faults) -> tuple[ProcessExecutor, FaultAdapter, str]:
    log = str(tmp_path / "train.log")
    cfg = FaultConfig(steps=6, eval_every=3, log=log, **faults)
    a = FaultAdapter(cfg)
    ex = ProcessExecutor(a, functools.partial(FaultAdapter, cfg), RunOptions(executor="process", workers=workers))
    return ex, a, log


def test_every_job_once_on_its_worker_with_one_adapter_each_and_its_threads(tmp_path):
    ex, a, log = executor(tmp_path)
    try:
        got = list(ex.run(jobs(a)))
    finally:
        ex.close()
    assert sorted(j.key for j, _ in got) == ["L00-dense-t0", "L00-dense-t1", "L00-dense-t2"]
    assert all(o.status == "ok" and o.wall_seconds > 0 for _, o in got) and ex.deaths == 0
    starts = train_log(log)
    assert sorted(k for k, _ in starts) == sorted(j.key for j, _ in got)
    pids = {pid for _, pid in starts}
    assert os.getpid() not in pids and len(pids) <= 2
    assert sorted(p for p, _ in init_log(log) if p in pids) == sorted(pids)  # one adapter per worker
    assert set(threads_log(log).values()) == {1}
    assert (ex._pool, ex._starts, ex._started) == (None, None, set())


def test_a_job_whose_worker_dies_once_is_retried_alone_and_the_others_are_not_lost(tmp_path):
    ex, a, log = executor(tmp_path, die_key="L00-dense-t1", die_times=1)
    try:
        got = list(ex.run(jobs(a)))
    finally:
        ex.close()
    assert sorted(j.key for j, _ in got) == ["L00-dense-t0", "L00-dense-t1", "L00-dense-t2"]
    assert all(o.status == "ok" for _, o in got) and ex.deaths == 1
    assert [k for k, _ in train_log(log)].count("L00-dense-t1") == 2


def test_a_job_that_kills_every_worker_is_a_failed_row_after_three_deaths(tmp_path):
    ex, a, log = executor(tmp_path, workers=1, die_key="L00-dense-t0", die_times=5)
    try:
        got = list(ex.run(jobs(a, 2)))
    finally:
        ex.close()
    rows = {j.key: o for j, o in got}
    assert sorted(rows) == ["L00-dense-t0", "L00-dense-t1"] and rows["L00-dense-t1"].status == "ok"
    assert (rows["L00-dense-t0"].status, rows["L00-dense-t0"].error) == (
        "failed",
        "worker died on all 3 attempts: its process was killed or crashed (exit without a result)",
    )
    assert ex.deaths == 3 and [k for k, _ in train_log(log)].count("L00-dense-t0") == 3


def test_workers_that_die_before_training_anything_stop_the_run(tmp_path):
    a = FaultAdapter(FaultConfig(steps=6))
    ex = ProcessExecutor(a, functools.partial(os._exit, 3), RunOptions(executor="process", workers=1))
    try:
        with pytest.raises(RuntimeError) as e:
            list(ex.run(jobs(a, 1)))
    finally:
        ex.close()
    assert str(e.value) == (
        "worker processes die before training anything (see their error above); try --executor local to see it directly"
    )
    assert ex.deaths == 3
