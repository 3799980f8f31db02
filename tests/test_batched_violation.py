"""A stacked pass whose mask does not hold is reported, never hidden by a retrain one by one: the job whose pruned
weights revived is an error row naming it (the others of its pass are kept), and an AssertionError of a pass fails
the run."""

from __future__ import annotations

import pytest
from test_batched import _executor, level_jobs

import domains.vision.batched_training as vb
from domains.vision.adapter import VisionAdapter
from domains.vision.config import VisionConfig


def adapter() -> VisionAdapter:
    a = VisionAdapter(VisionConfig(dataset="digits", model="mlp", optimizer="adam", iterations=12, eval_every=4))
    a.alone = 0

    def train(job):  # counts retrains: there must be none
        a.alone += 1
        return VisionAdapter.train(a, job)

    a.train = train
    return a


def test_a_job_whose_stacked_mask_breaks_is_an_error_row_and_nothing_is_retrained(monkeypatch):
    held = vb.Stack.mask_grads

    def leaky(self):  # the stacked loop's mask broken for the pass's second job only
        held(self)
        for n, m in self.masks.items():
            self.params[n].grad[1] += 1.0 - m[1]

    monkeypatch.setattr(vb.Stack, "mask_grads", leaky)
    a = adapter()
    jobs = [j for j in level_jobs(a) if j.mask is not None]  # ticket, random_reinit, random_mask: one schedule
    for j in jobs:
        j.budget = 12
    results = list(_executor(a, monkeypatch, 1).run(jobs))  # one core: one pass holds the three jobs in order
    assert a.alone == 0
    assert [j.kind for j, _ in results] == ["ticket", "random_reinit", "random_mask"]
    (_, t), (_, bad), (_, r) = results
    assert t.status == r.status == "ok"
    total = sum(int((~m).sum()) for m in jobs[1].mask.values())
    assert bad.status == "failed"
    assert bad.error == f"mask violated: {total} pruned weights revived in a batched training"
    for job, out in ((jobs[0], t), (jobs[2], r)):  # the jobs whose masks held keep them
        w = out.final_weights if out.final_weights is not None else out.captured.get(job.budget)
        if w is not None:
            assert all(bool((w[n][~m] == 0).all()) for n, m in job.mask.items())


def test_an_assertion_in_a_pass_fails_the_run(monkeypatch):
    a = adapter()

    def broken(jobs):
        raise AssertionError("a stacked invariant")

    a.train_batch = broken
    jobs = [j for j in level_jobs(a) if j.mask is not None]
    with pytest.raises(AssertionError, match="a stacked invariant"):
        list(_executor(a, monkeypatch, 1).run(jobs))
    assert a.alone == 0
