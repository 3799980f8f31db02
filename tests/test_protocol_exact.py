"""The protocol and early-stop tracker by exact values: ties, NaN, extras, captures, messages and the Outcome's
fields (mutation testing found these unpinned by tests/test_protocol.py)."""

from __future__ import annotations

import math

import pytest
import torch

from lth_core.early_bird import EarlyBirdSpec, Target
from lth_core.early_stop import EarlyStopTracker
from lth_core.errors import Diverged
from lth_core.job import Job
from lth_core.protocol import EvalGrid, JobProtocol, Trainee


class Table(Trainee):
    """Validation and test read from tables by the current weight (the step the loop set)."""

    def __init__(self, val: dict[int, float], test: dict[int, float] | None = None) -> None:
        self.w, self.val, self.test_table = 0, val, test or {}
        self.reads: list[str] = []

    def validate(self):
        self.reads.append(f"val{self.w}")
        return self.val[self.w], {"w": float(self.w)}

    def test(self) -> float:
        self.reads.append(f"test{self.w}")
        return self.test_table.get(self.w, float(self.w))

    def weights(self):
        return {"w": torch.tensor(self.w)}

    def load_weights(self, weights) -> None:
        self.reads.append("load")
        self.w = int(weights["w"])


def job(start=0, budget=6, capture=(), keep=False) -> Job:
    return Job(
        level=0, kind="ticket", trial=0, seed=0, weights={}, mask=None, budget=budget, start_step=start,
        capture_steps=capture, keep_final_weights=keep,
    )  # fmt: skip


def test_ties_keep_the_first_point_and_nan_never_wins():
    for higher in (True, False):
        t = EarlyStopTracker(val_higher_is_better=higher)
        assert t.observe(0, math.nan) is True  # the first point is the best so far, even NaN
        assert t.observe(1, 2.0) is True  # anything beats NaN
        assert t.observe(2, 2.0) is False  # a tie is not better: the earlier step is kept
        assert t.observe(3, math.nan) is False
        assert t.best is not None and t.best.step == 1
    t = EarlyStopTracker(val_higher_is_better=True)
    assert [t.observe(s, v) for s, v in enumerate([1.0, 3.0, 2.0])] == [True, True, False]
    t = EarlyStopTracker(val_higher_is_better=False)
    assert [t.observe(s, v) for s, v in enumerate([1.0, 3.0, 0.5])] == [True, False, True]


def test_a_point_keeps_its_test_and_extras_as_floats():
    t = EarlyStopTracker(val_higher_is_better=True)
    t.observe(4, 1, test=lambda: 7, acc=2)
    t.observe(5, 0, test=3)
    t.observe(6, 0)
    a, b, c = t.curve
    assert (a.step, a.val, a.test, a.extras) == (4, 1.0, 7.0, {"acc": 2})
    assert type(a.val) is float and type(a.test) is float and type(b.test) is float
    assert (b.test, c.test) == (3.0, None)
    t.set_best_test(9)
    assert t.best is a and a.test == 9.0 and type(a.test) is float


def test_grid_of_a_zero_interval_evaluates_every_step():
    assert EvalGrid(0).points(0, 3) == [0, 1, 2, 3]
    assert EvalGrid(4, at_start=False).points(2, 3) == [3]
    assert EvalGrid(4, at_start=False).points(7, 3) == [7]
    assert EvalGrid(4, at_start=False).points(5, 5) == [5]  # a training of no steps is still evaluated once


def test_captures_before_the_start_are_dropped_and_reached_reports_evaluations():
    trainee = Table({k: 0.0 for k in range(7)})
    p = JobProtocol(job(start=2, capture=(4, 1, 4, 2)), trainee, EvalGrid(3, at_start=False), True)
    assert p.captures == [2, 4] and p.points == [3, 6]
    assert p.next_step == 2 and p.due(1) is False and p.due(2) is True
    assert p.reached(2) is False and list(p.captured) == [2] and p.next_step == 3
    trainee.w = 3
    assert p.reached(3) is True and p.next_step == 4 and p.last_eval == 3
    trainee.w = 5
    assert p.reached(5) is False and float(p.captured[4]["w"]) == 5.0 and p.next_step == 6
    trainee.w = 6
    assert p.reached(6) is True and p.next_step is None and p.due(99) is False
    assert p.stopped is False


def test_points_a_stride_skipped_are_evaluated_once_and_train_loss_joins_the_extras():
    trainee = Table({k: -float(k) for k in range(10)})
    p = JobProtocol(job(budget=9), trainee, EvalGrid(2), True)
    trainee.w = 5
    assert p.reached(5, train_loss=0.25, lr=0.1) is True  # points 0, 2, 4 passed: one evaluation at 5
    assert p.points == [6, 8, 9]
    point = p.tracker.curve[0]
    assert (point.step, point.extras) == (5, {"w": 5.0, "lr": 0.1, "train_loss": 0.25})
    trainee.w = 6
    p.reached(6)
    assert p.tracker.curve[1].extras == {"w": 6.0}


def test_divergence_messages_name_the_signal_and_step():
    trainee = Table({0: 1.0, 2: math.inf})
    p = JobProtocol(job(), trainee, EvalGrid(2), True)
    with pytest.raises(Diverged, match=r"^non-finite training loss before step 0$"):
        p.reached(0, train_loss=math.nan)
    p.reached(0, train_loss=None)
    trainee.w = 2
    with pytest.raises(Diverged, match=r"^non-finite validation signal inf at step 2$"):
        p.reached(2, train_loss=1.0)


def test_finish_reads_test_at_the_end_then_on_the_kept_weights_and_fills_the_outcome():
    trainee = Table({0: 1.0, 2: 5.0, 4: 3.0, 6: 2.0}, test={2: 50.0, 6: 60.0})
    p = JobProtocol(job(start=0, budget=6, keep=True), trainee, EvalGrid(2), True)
    for step in (0, 2, 4):
        trainee.w = step
        p.reached(step)
    trainee.w = 6
    out = p.finish(6, extras={"note": 1})
    assert trainee.reads == ["val0", "val2", "val4", "val6", "test6", "load", "test2"]
    assert (out.score, out.final_score, out.early_stop_step, out.val_at_stop, out.steps) == (50.0, 60.0, 2, 5.0, 6)
    assert out.extras == {"note": 1} and out.early_bird is None and out.status == "ok"
    assert float(out.final_weights["w"]) == 6.0 and [c.step for c in out.curve] == [0, 2, 4, 6]


def test_finish_where_the_best_is_the_last_point_loads_nothing():
    trainee = Table({1: 1.0, 3: 2.0})
    p = JobProtocol(job(start=1, budget=3, capture=(3,)), trainee, EvalGrid(5), True)
    trainee.w = 1
    p.reached(1)
    trainee.w = 3
    out = p.finish(3)  # the pending capture and the end point are taken at finish
    assert trainee.reads == ["val1", "val3", "test3"] and float(out.captured[3]["w"]) == 3.0
    assert (out.score, out.final_score, out.early_stop_step, out.steps, out.final_weights) == (3.0, 3.0, 3, 2, None)


def test_a_finish_at_an_evaluated_step_does_not_evaluate_again():
    trainee = Table({0: 1.0, 2: 0.0})
    p = JobProtocol(job(budget=2), trainee, EvalGrid(2), True)
    p.reached(0)
    trainee.w = 2
    p.reached(2)
    p.finish(2)
    assert trainee.reads == ["val0", "val2", "test2", "load", "test0"]


def test_with_a_test_curve_the_best_state_is_not_kept_and_no_weights_are_loaded():
    trainee = Table({0: 2.0, 2: 1.0}, test={0: 10.0, 2: 20.0})
    p = JobProtocol(job(budget=2), trainee, EvalGrid(2), True, test_curve=True)
    p.reached(0)
    trainee.w = 2
    out = p.finish(2)
    assert p.best_state is None and trainee.reads == ["val0", "test0", "val2", "test2"]
    assert (out.score, out.final_score, out.early_stop_step) == (10.0, 20.0, 0)


class Moving(Table):
    """Weights whose ranking flips between steps 0 and 2 and then stays: a mask that stabilizes from step 2."""

    def weights(self):
        a = torch.tensor([4.0, 3.0, 2.0, 1.0]) if self.w == 0 else torch.tensor([1.0, 2.0, 3.0, 4.0 + self.w])
        return {"w": torch.tensor(self.w), "a": a}


def watched(capture=()) -> Job:
    spec = EarlyBirdSpec("magnitude_layerwise", {}, ("a",), frozenset({"a"}), (Target(1, {"a": 0.5}, 0),), 2, 0.0)
    j = job(budget=8, capture=capture)
    j.early_bird = spec
    return j


def test_the_early_bird_watch_sees_every_evaluation_and_declares_once_the_captures_are_taken():
    for capture, declared in (((), 4), ((5,), 6)):
        trainee = Moving({k: 0.0 for k in range(9)})
        p = JobProtocol(watched(capture), trainee, EvalGrid(2), True)
        step = 0
        while not p.stopped and step <= 8:
            trainee.w = step
            p.reached(step)
            step += 1
        stop = trainee.w
        out = p.finish(stop)
        assert out.early_bird is p.watch.result and out.early_bird.declared == {1: declared} and stop == declared
        assert out.early_bird.steps == list(range(0, declared + 1, 2))
        assert out.early_bird.weights[1]["a"].tolist() == [1.0, 2.0, 3.0, 4.0 + declared]
        assert p.watch.initial is p.job.weights


def test_a_finish_before_any_evaluation_evaluates_there():
    trainee = Table({1: 3.0})
    trainee.w = 1
    out = JobProtocol(job(budget=1), trainee, EvalGrid(5, at_start=False), True).finish(1)
    assert (out.early_stop_step, out.val_at_stop, out.score) == (1, 3.0, 1.0)
