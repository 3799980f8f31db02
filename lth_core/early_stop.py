"""Early stopping as in Frankle & Carbin Figure 1: the step is chosen on validation, the test score read there.

The tracker's `observe` takes only the validation signal; the test metric is attached after the
choice, so no code path can select on test data.
"""

from __future__ import annotations

import math
from typing import Callable

from lth_core.job import EvalPoint


class EarlyStopTracker:
    def __init__(self, val_higher_is_better: bool) -> None:
        self.higher = val_higher_is_better
        self.curve: list[EvalPoint] = []
        self.best: EvalPoint | None = None

    def _better(self, a: float, b: float) -> bool:
        if math.isnan(a):
            return False
        if math.isnan(b):
            return True
        return a > b if self.higher else a < b

    def observe(self, step: int, val: float, test: Callable[[], float] | float | None = None, **extras: float) -> bool:
        """Record an evaluation point; returns True when it is the new best on validation."""
        t = test() if callable(test) else test
        point = EvalPoint(step=step, val=float(val), test=None if t is None else float(t), extras=dict(extras))
        self.curve.append(point)
        if self.best is None or self._better(point.val, self.best.val):
            self.best = point
            return True
        return False

    def set_best_test(self, value: float) -> None:
        """For loops that evaluate test only once, on the weights kept at the best validation point."""
        assert self.best is not None
        self.best.test = float(value)
