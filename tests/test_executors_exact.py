"""The executors' shared parts by exact behaviour, in process (lth_core/executors.py): the cores counted, the
threads a job trains with and who decides them, how many times a failing job is tried and the rows a diverged or
failing job becomes (status, error text, time), the adapter built in a worker, and `local` giving the threads back
(the executor-equality and fault tests that also pin these run whole CLI commands, too slow for mutation testing)."""

from __future__ import annotations

import math
import os
import time
import types

import pytest
import torch
from toy_adapter import ToyAdapter, ToyConfig

from lth_core.config import RunOptions
from lth_core.errors import Diverged, UsageError
from lth_core.executors import (
    EXECUTORS,
    WORKER_DEATH_RETRIES,
    LocalExecutor,
    WorkerStartError,
    available_cores,
    build_in_worker,
    job_threads,
    train_safely,
    worker_died,
)
from lth_core.job import Job, Outcome


class Scripted(ToyAdapter):
    """The toy domain whose n-th training does what `script[n]` says ('ok' trains; else raises that error),
    recording the torch threads each training started with."""

    def __init__(self, config: ToyConfig, script: list) -> None:
        super().__init__(config)
        self.script, self.threads_seen = list(script), []

    def train(self, job: Job) -> Outcome:
        self.threads_seen.append(torch.get_num_threads())
        what = self.script.pop(0) if self.script else "ok"
        if what == "ok":
            return super().train(job)
        if what == "slow":
            time.sleep(0.05)
            return super().train(job)
        raise what


def job(adapter: ToyAdapter, kind: str = "dense") -> Job:
    return Job(level=0, kind=kind, trial=0, seed=0, weights=adapter.initial_weights(0), mask=None, budget=10)


@pytest.fixture(autouse=True)
def keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def toy(script: list, threads: int = 0) -> Scripted:
    return Scripted(ToyConfig(steps=10, eval_every=5, threads=threads), script)


def test_available_cores_is_the_affinity_mask_and_falls_back_on_the_cpu_count(monkeypatch):
    assert available_cores() == len(os.sched_getaffinity(0))
    monkeypatch.delattr(os, "sched_getaffinity")
    monkeypatch.setattr(os, "cpu_count", lambda: 5)
    assert available_cores() == 5
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert available_cores() == 1


def test_job_threads_is_cpus_per_job_rounded_down_and_at_least_one():
    assert [job_threads(RunOptions(cpus_per_job=c)) for c in (0.5, 1.0, 2.0, 3.7)] == [1, 1, 2, 3]


def test_a_worker_death_row_names_the_attempts_and_why():
    o = worker_died(3, "killed")
    assert (o.status, o.error, o.steps) == ("failed", "worker died on all 3 attempts: killed", 0)
    assert WORKER_DEATH_RETRIES == 2


def test_a_factory_that_fails_names_itself_and_a_usage_error_stays_one():
    def broken():
        raise ValueError("no data at /x")

    with pytest.raises(WorkerStartError) as e:
        build_in_worker(broken)
    assert str(e.value) == "a worker could not build the adapter: ValueError: no data at /x"
    assert isinstance(e.value.__cause__, ValueError)
    bad = UsageError("--lr must be > 0")

    def usage():
        raise bad

    with pytest.raises(UsageError) as u:
        build_in_worker(usage)
    assert u.value is bad and not isinstance(u.value, WorkerStartError)
    a = toy([])
    assert build_in_worker(lambda: a) is a


def test_the_threads_given_are_set_and_the_domains_threads_win_over_them():
    a = toy([])
    torch.set_num_threads(1)
    assert train_safely(a, job(a), threads=2).status == "ok" and a.threads_seen == [2]
    b = toy([], threads=3)
    assert train_safely(b, job(b), threads=2).status == "ok" and b.threads_seen == [3]
    c = toy([], threads=3)
    train_safely(c, job(c))
    assert c.threads_seen == [3]
    torch.set_num_threads(1)
    d = toy([])
    train_safely(d, job(d))  # neither: the threads in force are left alone
    assert d.threads_seen == [1]


def test_an_adapter_whose_config_has_no_threads_trains_with_the_threads_given():
    """An adapter may bring a config of its own (not a DomainConfig): then the executor's threads decide."""
    a = toy([])
    fields = {k: v for k, v in vars(a.config).items() if k != "threads"}
    a.config = types.SimpleNamespace(**fields)  # type: ignore[assignment]
    torch.set_num_threads(1)
    assert train_safely(a, job(a), threads=2).status == "ok" and a.threads_seen == [2]


def test_a_training_that_fails_once_is_tried_again_and_its_row_is_the_second_trainings():
    a = toy([RuntimeError("flaky"), "ok"])
    reference = toy([])
    out = train_safely(a, job(a))
    assert (out.status, out.error) == ("ok", "")
    assert out.score == train_safely(reference, job(reference)).score
    assert len(a.threads_seen) == 2


def test_a_training_that_keeps_failing_is_a_failed_row_with_its_last_error_after_the_attempts():
    a = toy([RuntimeError("one"), RuntimeError("two"), RuntimeError("three")])
    out = train_safely(a, job(a))
    assert len(a.threads_seen) == 2 and len(a.script) == 1
    assert out.status == "failed" and math.isnan(out.score) and out.steps == 0
    assert out.error == "RuntimeError: two | RuntimeError: two"
    assert 0 < out.wall_seconds < 60
    b = toy([KeyError("k")] * 5)
    assert train_safely(b, job(b), attempts=3).error == "KeyError: 'k' | KeyError: 'k'" and len(b.script) == 2
    c = toy([KeyError("k")] * 5)
    assert train_safely(c, job(c), attempts=0).status == "failed" and len(c.script) == 4  # at least once


def test_a_diverged_training_is_a_diverged_row_at_once_not_retried():
    a = toy([Diverged("loss nan at step 3"), "ok"])
    out = train_safely(a, job(a))
    assert (out.status, out.error, len(a.script)) == ("diverged", "loss nan at step 3", 1)
    assert math.isnan(out.score) and 0 < out.wall_seconds < 60


@pytest.mark.parametrize("error", [UsageError("bad flag"), KeyboardInterrupt()])
def test_a_usage_error_or_an_interrupt_stops_the_run_at_once(error):
    a = toy([error, "ok"])
    with pytest.raises(type(error)):
        train_safely(a, job(a))
    assert len(a.script) == 1


def test_the_wall_time_is_the_whole_training_with_its_retries():
    a = toy([RuntimeError("x"), "slow"])
    out = train_safely(a, job(a))
    assert out.status == "ok" and 0.05 <= out.wall_seconds < 60


def test_local_trains_each_job_in_order_with_cpus_per_job_threads_and_gives_the_threads_back():
    torch.set_num_threads(1)
    a = toy([])
    jobs = [job(a, "dense"), job(a, "ticket")]
    factory = lambda: a  # noqa: E731
    ex = EXECUTORS.get("local")(a, factory, RunOptions(cpus_per_job=2))
    assert isinstance(ex, LocalExecutor) and (ex.adapter, ex.factory, ex.options.cpus_per_job) == (a, factory, 2)
    got = list(ex.run(jobs))
    assert [j for j, _ in got] == jobs and all(o.status == "ok" for _, o in got)
    assert a.threads_seen == [2, 2] and torch.get_num_threads() == 2
    ex.close()
    assert torch.get_num_threads() == 1
