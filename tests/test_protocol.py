"""The engine's protocol of one training: grid, early stopping in the metric's direction, test reads, captures."""

from __future__ import annotations

import math

import pytest
import torch

from lth_core.errors import Diverged
from lth_core.job import Job
from lth_core.protocol import EvalGrid, JobProtocol, Trainee


class Scripted(Trainee):
    """A 'training' whose weight is the step reached; validation and test are scripted functions of it."""

    def __init__(self, val, test) -> None:
        self.w = 0.0
        self.val, self.test_fn = val, test
        self.test_reads: list[float] = []

    def validate(self):
        return self.val(self.w), {"w": self.w}

    def test(self) -> float:
        self.test_reads.append(self.w)
        return self.test_fn(self.w)

    def weights(self):
        return {"w": torch.tensor(self.w)}

    def load_weights(self, weights) -> None:
        self.w = float(weights["w"])


def job(start=0, budget=10, capture=(), keep=False) -> Job:
    return Job(
        level=0,
        kind="dense",
        trial=0,
        seed=0,
        weights={},
        mask=None,
        budget=budget,
        start_step=start,
        capture_steps=capture,
        keep_final_weights=keep,
    )


def drive(protocol: JobProtocol, trainee: Scripted, start: int, budget: int, stride: int = 1):
    step = start
    while step < budget:
        protocol.reached(step)
        step = min(step + stride, budget)
        trainee.w = float(step)
    protocol.reached(budget)
    return protocol.finish(budget)


def test_grid_points():
    assert EvalGrid(3).points(0, 10) == [0, 3, 6, 9, 10]
    assert EvalGrid(3, at_start=False).points(0, 10) == [3, 6, 9, 10]
    assert EvalGrid(3).points(4, 10) == [4, 6, 9, 10]
    assert EvalGrid(5).points(10, 10) == [10]


@pytest.mark.parametrize("higher", [False, True])
def test_early_stop_follows_the_validation_direction_and_reads_test_there_and_at_the_end(higher):
    # validation is best at w=4 in the declared direction; the test metric is best elsewhere (never selected)
    val = (lambda w: -abs(w - 4)) if higher else (lambda w: abs(w - 4))
    trainee = Scripted(val, test=lambda w: 100 - abs(w - 8))
    protocol = JobProtocol(job(), trainee, EvalGrid(2), val_higher_is_better=higher)
    out = drive(protocol, trainee, 0, 10)
    assert out.early_stop_step == 4
    assert out.score == 100 - 4 and out.final_score == 100 - 2
    assert sorted(trainee.test_reads) == [4.0, 10.0]  # test read only where it is reported
    assert [p.step for p in out.curve] == [0, 2, 4, 6, 8, 10]


def test_captures_and_evaluations_at_the_first_step_at_or_past_a_point():
    trainee = Scripted(lambda w: -w, test=lambda w: w)
    protocol = JobProtocol(job(capture=(5,), budget=12), trainee, EvalGrid(4, at_start=False), False)
    out = drive(protocol, trainee, 0, 12, stride=3)  # the loop reaches 0, 3, 6, 9, 12
    assert float(out.captured[5]["w"]) == 6.0
    assert [p.step for p in out.curve] == [6, 9, 12]


def test_final_weights_are_the_end_weights_not_the_early_stop_ones():
    trainee = Scripted(lambda w: abs(w - 3), test=lambda w: w)
    out = drive(JobProtocol(job(keep=True), trainee, EvalGrid(1), False), trainee, 0, 10)
    assert out.early_stop_step == 3 and float(out.final_weights["w"]) == 10.0


def test_test_curve_reads_every_point_without_selecting_on_it():
    trainee = Scripted(lambda w: abs(w - 6), test=lambda w: -abs(w - 2))
    out = drive(JobProtocol(job(), trainee, EvalGrid(2), False, test_curve=True), trainee, 0, 10)
    assert out.early_stop_step == 6 and all(p.test is not None for p in out.curve)


@pytest.mark.parametrize("where", ["train", "val"])
def test_non_finite_signals_diverge(where):
    trainee = Scripted(lambda w: math.nan if where == "val" and w >= 4 else w, test=lambda w: w)
    protocol = JobProtocol(job(), trainee, EvalGrid(2), False)
    with pytest.raises(Diverged):
        for step in range(11):
            trainee.w = float(step)
            protocol.reached(step, train_loss=math.inf if where == "train" and step == 6 else 1.0)


def test_a_training_of_no_steps_is_evaluated_once():
    trainee = Scripted(lambda w: 1.0, test=lambda w: 7.0)
    out = JobProtocol(job(start=5, budget=5), trainee, EvalGrid(2, at_start=False), False).finish(5)
    assert out.score == 7.0 and out.steps == 0 and len(out.curve) == 1
