"""The protocol of one job's training, written once: the evaluation grid, early stopping on validation in
the metric's own direction, rewind captures, the best state, test read only where reported, non-finite ->
`Diverged`, and the `Outcome`.

A domain's loop keeps control of its training (its own loop, a library's training call through a
callback or a trainer object, a stacked loop of several jobs) and calls this object at each step it reaches;
everything it needs from the domain goes through a `Trainee`: validate, test, and get/set the weights.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from lth_core.early_bird import EarlyBirdWatch
from lth_core.early_stop import EarlyStopTracker
from lth_core.errors import Diverged
from lth_core.job import Job, Outcome, StateDict


@dataclass(frozen=True)
class EvalGrid:
    """Where a training evaluates: every `every` steps after its start, at its end, and (`at_start`) at its
    start. RL's grid leaves the start out: an untrained deterministic policy can balance CartPole by chance,
    and early stopping must choose among trained policies."""

    every: int
    at_start: bool = True

    def points(self, start: int, budget: int) -> list[int]:
        every = max(1, self.every)
        pts = set(range((start // every + 1) * every, budget, every))
        if budget > start:
            pts.add(budget)
        if self.at_start or budget <= start:
            pts.add(start)
        return sorted(pts)


class Trainee(ABC):
    """What the protocol asks of a domain's training in progress: the primitives, nothing of the protocol."""

    @abstractmethod
    def validate(self) -> tuple[float, dict[str, float]]:
        """(the validation signal early stopping selects on, other validation numbers to keep on the curve)."""

    @abstractmethod
    def test(self) -> float:
        """The reported metric of the current weights on the test split."""

    @abstractmethod
    def weights(self) -> StateDict:
        """A detached CPU copy of the current state dict."""

    @abstractmethod
    def load_weights(self, weights: StateDict) -> None:
        """Put these weights in place (used after training, to test the weights kept at the early-stop step)."""


class JobProtocol:
    """One job's training as the engine defines it. Call `reached(step)` whenever the loop is at a step (every
    step, or the first step at or past each point for loops that move in strides), then `finish(step)`.

    `test_curve`: also read the test metric at every evaluation (a curve for plots; nothing selects on it).
    A job with `early_bird` is watched at each evaluation (lth_core/early_bird.py); once `stopped`, the loop
    stops where it is and calls `finish` there.
    """

    def __init__(
        self, job: Job, trainee: Trainee, grid: EvalGrid, val_higher_is_better: bool, test_curve: bool = False
    ) -> None:
        self.job, self.trainee, self.test_curve = job, trainee, test_curve
        self.tracker = EarlyStopTracker(val_higher_is_better=val_higher_is_better)
        self.points = grid.points(job.start_step, job.budget)
        self.captures = sorted(k for k in set(job.capture_steps) if k >= job.start_step)
        self.captured: dict[int, StateDict] = {}
        self.best_state: StateDict | None = None
        self.last_eval = -1
        self.watch = EarlyBirdWatch(job.early_bird, job.weights) if job.early_bird is not None else None

    @property
    def stopped(self) -> bool:
        """Stop now: every early-bird target is declared (and the rewind captures are taken)."""
        return self.watch is not None and self.watch.done and not self.captures

    @property
    def next_step(self) -> int | None:
        """The next step at which `reached` does something (None when nothing is left before `finish`)."""
        pending = self.points[:1] + self.captures[:1]
        return min(pending) if pending else None

    def due(self, step: int) -> bool:
        nxt = self.next_step
        return nxt is not None and step >= nxt

    def reached(self, step: int, train_loss: float | None = None, **extras: float) -> bool:
        """Capture and evaluate as due at `step`; `train_loss` (mean since the last evaluation, None where
        nothing trained since) is checked for finiteness. Returns True when an evaluation ran."""
        while self.captures and step >= self.captures[0]:
            self.captured[self.captures.pop(0)] = self.trainee.weights()
        if not (self.points and step >= self.points[0]):
            return False
        while self.points and step >= self.points[0]:
            self.points.pop(0)
        self.evaluate(step, train_loss, **extras)
        return True

    def evaluate(self, step: int, train_loss: float | None = None, **extras: float) -> None:
        if train_loss is not None and not math.isfinite(train_loss):
            raise Diverged(f"non-finite training loss before step {step}")
        val, more = self.trainee.validate()
        if not math.isfinite(val):
            raise Diverged(f"non-finite validation signal {val} at step {step}")
        point_extras = {**more, **extras}
        if train_loss is not None:
            point_extras["train_loss"] = train_loss
        test = self.trainee.test() if self.test_curve else None
        if self.tracker.observe(step, val, test=test, **point_extras) and not self.test_curve:
            self.best_state = self.trainee.weights()
        if self.watch is not None:
            self.watch.observe(step, self.trainee.weights(), may_declare=not self.captures)
        self.last_eval = step

    def finish(self, step: int, extras: dict[str, Any] | None = None) -> Outcome:
        """The end of training at `step`: evaluate there if not yet done, read test at the end and on the
        weights kept at the early-stop step (the final weights are copied first, for the next level)."""
        if self.captures:
            self.reached(step)
        if self.last_eval != step:
            self.evaluate(step)
        final_weights = self.trainee.weights() if self.job.keep_final_weights else None
        best, last = self.tracker.best, self.tracker.curve[-1]
        assert best is not None
        if not self.test_curve:
            last.test = self.trainee.test()
            if best is not last:
                assert self.best_state is not None
                self.trainee.load_weights(self.best_state)
                best.test = self.trainee.test()
        assert best.test is not None and last.test is not None
        return Outcome(
            score=best.test,
            final_score=last.test,
            early_stop_step=best.step,
            val_at_stop=best.val,
            steps=step - self.job.start_step,
            curve=self.tracker.curve,
            final_weights=final_weights,
            captured=self.captured,
            extras=dict(extras or {}),
            early_bird=self.watch.result if self.watch is not None else None,
        )
