"""The batched executor's plan by exact behaviour, in process (lth_core/executor_batched.py): which jobs share a
pass (same start and budget), how a group is split into stacks and on how many threads each trains, every job
paired with its own outcome, the fallbacks one by one (a pass that can't be done or fails; a lone job), an
AssertionError of a pass failing the run, and the process's threads given back (the vision domain's batched tests
pin the numbers a pass gives; here the toy domain's outcomes are labelled with the job and the way it was trained,
since the claims are the executor's plan, and real trainings cost ~1 s each on a loaded machine, per mutant)."""

from __future__ import annotations

import os
import threading

import pytest
import torch
from toy_adapter import ToyAdapter, ToyConfig

from lth_core.config import RunOptions
from lth_core.executor_batched import BatchedExecutor
from lth_core.executors import EXECUTORS, available_cores
from lth_core.job import Job, Outcome


class Stacking(ToyAdapter):
    """The toy domain with a batched pass that trains its stack's jobs in turn (so each outcome is the job's own),
    recording each pass (its jobs, torch threads, thread name) and each training alone."""

    def __init__(self, stacks: int = 1, fail: BaseException | None = None, none_for: str = "") -> None:
        super().__init__(ToyConfig(steps=10, eval_every=5))
        self.stacks, self.fail, self.none_for = stacks, fail, none_for
        self.passes: list[tuple[list[str], int, str]] = []
        self.alone: list[tuple[str, int]] = []
        self.asked: list[tuple[int, int]] = []
        self.lock = threading.Lock()

    def batch_stacks(self, jobs: int, cores: int) -> int:
        self.asked.append((jobs, cores))
        return self.stacks

    def train(self, job: Job) -> Outcome:
        self.alone.append((job.key, torch.get_num_threads()))
        return labelled(job, "alone")

    def train_batch(self, jobs: list[Job]) -> list[Outcome] | None:
        with self.lock:
            self.passes.append(([j.key for j in jobs], torch.get_num_threads(), threading.current_thread().name))
        if self.fail is not None:
            raise self.fail
        if any(j.kind == self.none_for for j in jobs):
            return None
        return [labelled(j, "pass") for j in jobs]


def labelled(job: Job, how: str) -> Outcome:
    """The outcome of `job`, trained `how`: its score is its trial, its extras name it."""
    return Outcome(float(job.trial), float(job.trial), job.budget, 0.0, job.budget, extras={"job": job.key, "how": how})


def job(a: ToyAdapter, kind: str, start: int = 0, budget: int = 10, trial: int = 0) -> Job:
    return Job(
        level=1,
        kind=kind,
        trial=trial,
        seed=trial,
        weights=a.initial_weights(0),
        mask=None,
        budget=budget,
        start_step=start,
    )


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run(a: Stacking, jobs: list[Job], cpus: float = 1.0) -> list[tuple[Job, Outcome]]:
    ex = EXECUTORS.get("batched")(a, lambda: a, RunOptions(executor="batched", cpus_per_job=cpus))
    assert isinstance(ex, BatchedExecutor)
    return list(ex.run(jobs))


def test_jobs_of_one_schedule_share_a_pass_and_a_lone_job_trains_alone_with_cpus_per_job_threads():
    a = Stacking()
    jobs = [job(a, "ticket", start=2), job(a, "dense"), job(a, "random_mask", start=2), job(a, "late", budget=12)]
    got = run(a, jobs, cpus=2)
    assert [j.kind for j, _ in got] == ["dense", "late", "ticket", "random_mask"]  # by (start, budget)
    assert a.passes == [(["L01-ticket-t0", "L01-random_mask-t0"], available_cores(), "MainThread")]
    assert a.alone == [("L01-dense-t0", 2), ("L01-late-t0", 2)]
    for j, o in got:
        assert o.extras == {"job": j.key, "how": "pass" if j.start_step == 2 else "alone"}
    assert a.asked == [(2, available_cores())]
    assert torch.get_num_threads() == 1  # given back


def test_a_group_splits_into_stacks_on_named_threads_of_one_torch_thread_and_pairs_outcomes():
    a = Stacking(stacks=2)
    jobs = [job(a, "ticket", trial=t) for t in range(5)]
    got = run(a, jobs)
    assert [j for j, _ in got] == jobs
    assert [o.extras for _, o in got] == [{"job": j.key, "how": "pass"} for j in jobs]
    assert sorted(p[0] for p in a.passes) == [
        ["L01-ticket-t0", "L01-ticket-t2", "L01-ticket-t4"],
        ["L01-ticket-t1", "L01-ticket-t3"],
    ]
    assert {p[1] for p in a.passes} == {1} and all(p[2].startswith("stack") for p in a.passes)
    assert [o.score for _, o in got] == [0.0, 1.0, 2.0, 3.0, 4.0]  # each job's own outcome


@pytest.mark.parametrize("stacks,passes", [(10, 3), (0, 1), (-2, 1)])
def test_the_stacks_are_at_least_one_and_at_most_the_jobs(stacks, passes):
    a = Stacking(stacks=stacks)
    run(a, [job(a, "ticket", trial=t) for t in range(3)])
    assert len(a.passes) == passes and a.alone == []


@pytest.mark.parametrize("stacks", [1, 2])
def test_a_pass_that_fails_or_cannot_be_done_is_retried_job_by_job(stacks):
    for a in (Stacking(stacks, fail=RuntimeError("out of memory")), Stacking(stacks, none_for="random_mask")):
        jobs = [job(a, "ticket"), job(a, "random_mask")]
        got = run(a, jobs, cpus=2)
        assert [(j, o.extras["how"]) for j, o in got] == [(j, "alone") for j in jobs]
        assert a.alone == [("L01-ticket-t0", 2), ("L01-random_mask-t0", 2)]


def test_an_adapter_without_a_batched_pass_trains_one_by_one():
    class Plain(ToyAdapter):  # the default train_batch: None
        def train(self, job: Job) -> Outcome:
            return labelled(job, "alone")

    a = Plain(ToyConfig(steps=10, eval_every=5))
    jobs = [job(a, "ticket"), job(a, "random_mask")]
    got = run(a, jobs)  # type: ignore[arg-type]
    assert [(j, o.extras["how"]) for j, o in got] == [(j, "alone") for j in jobs]


@pytest.mark.parametrize("stacks", [1, 2])
def test_an_assertion_in_a_pass_fails_the_run_and_the_threads_come_back(stacks):
    a = Stacking(stacks, fail=AssertionError("stacked mask broken"))
    with pytest.raises(AssertionError, match="stacked mask broken"):
        run(a, [job(a, "ticket"), job(a, "random_mask")])
    assert a.alone == [] and torch.get_num_threads() == 1


def test_every_stack_of_a_group_trains_at_the_same_time_however_many():
    """More stacks than a default thread pool has threads (cpus + 4): each still gets its own thread."""
    n = min(32, (os.cpu_count() or 1) + 4) + 1
    side_by_side = threading.Barrier(n, timeout=20)

    class Together(Stacking):
        def train_batch(self, jobs):
            side_by_side.wait()  # all n passes at once, or the barrier breaks (and the pass fails)
            return super().train_batch(jobs)

    a = Together(stacks=n)
    got = run(a, [job(a, "ticket", trial=t) for t in range(n)])
    assert [o.extras["how"] for _, o in got] == ["pass"] * n and len(a.passes) == n
