"""Jobs and outcomes by exact values (lth_core/job.py): every default a runner relies on when it leaves a field
out, the training's own seed falling back on `seed`, the record key, and the failed outcome's row values."""

from __future__ import annotations

import math

import torch

from lth_core.job import EvalPoint, Job, Outcome


def job(**kw) -> Job:
    return Job(level=2, kind="ticket", trial=1, seed=7, weights={"w": torch.ones(1)}, mask=None, budget=60, **kw)


def test_a_job_left_at_its_defaults_is_a_plain_training_from_step_zero():
    j = job()
    assert (j.start_step, j.capture_steps, j.keep_final_weights, j.data_seed) == (0, (), False, None)
    assert (j.keep, j.early_bird, j.grad_sums) == (None, None, ())


def test_the_order_seed_is_the_seed_unless_a_data_seed_is_given():
    assert job().order_seed == 7
    assert job(data_seed=3).order_seed == 3
    assert job(data_seed=0).order_seed == 0  # 0 is a seed, not "unset"


def test_the_key_is_the_stores_record_name():
    assert job().key == "L02-ticket-t1"


def test_an_eval_point_and_an_outcome_left_at_their_defaults():
    p = EvalPoint(step=3, val=0.5)
    assert (p.test, p.extras) == (None, {})
    assert EvalPoint(step=3, val=0.5).extras is not p.extras  # each point its own dict
    o = Outcome(score=1.0, final_score=2.0, early_stop_step=3, val_at_stop=0.5, steps=4)
    assert (o.curve, o.final_weights, o.captured, o.extras) == ([], None, {}, {})
    assert (o.status, o.wall_seconds, o.error, o.early_bird, o.grad_sums) == ("ok", 0.0, "", None, None)
    o2 = Outcome(score=1.0, final_score=2.0, early_stop_step=3, val_at_stop=0.5, steps=4)
    assert o2.curve is not o.curve and o2.captured is not o.captured and o2.extras is not o.extras


def test_a_failed_outcome_is_nan_scores_no_steps_and_its_status_and_error():
    o = Outcome.failed("diverged", "loss is nan at step 5")
    assert all(math.isnan(x) for x in (o.score, o.final_score, o.val_at_stop))
    assert (o.early_stop_step, o.steps, o.status, o.error) == (-1, 0, "diverged", "loss is nan at step 5")
    assert (o.curve, o.final_weights, o.captured, o.wall_seconds) == ([], None, {}, 0.0)
