"""Whether two sets of trial scores differ: Welch's t-test, with the cases it cannot decide named, not guessed."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from scipy import stats

TEST = "Welch's t-test (two-sided, unequal variances: scipy.stats.ttest_ind(equal_var=False)) over trials"


@dataclass(frozen=True)
class Test:
    """p is NaN when the test cannot be run; `why` then says why ('n<2', 'no spread')."""

    t: float
    p: float
    why: str = ""

    @property
    def tested(self) -> bool:
        return not math.isnan(self.p)

    def significant(self, alpha: float) -> bool:
        return self.tested and self.p < alpha


def welch(a: Iterable[float], b: Iterable[float]) -> Test:
    x = np.asarray([v for v in a if np.isfinite(v)], dtype=float)
    y = np.asarray([v for v in b if np.isfinite(v)], dtype=float)
    if len(x) < 2 or len(y) < 2:
        return Test(math.nan, math.nan, "n<2")
    if np.ptp(x) == 0 and np.ptp(y) == 0:
        # every trial identical on both sides: the t statistic is 0/0; equal constants are plainly the same
        return Test(0.0, 1.0) if x[0] == y[0] else Test(math.nan, math.nan, "no spread")
    with warnings.catch_warnings():  # one constant side triggers a harmless "precision loss" warning in scipy
        warnings.filterwarnings("ignore", message="Precision loss occurred", category=RuntimeWarning)
        res = stats.ttest_ind(x, y, equal_var=False)
    return Test(float(res.statistic), float(res.pvalue))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (NaN entries stay NaN and are not counted in the family)."""
    idx = [i for i, p in enumerate(pvalues) if not math.isnan(p)]
    order = sorted(idx, key=lambda i: pvalues[i])
    out, running = [math.nan] * len(pvalues), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * pvalues[i]))
        out[i] = running
    return out


def fmt_p(test: Test) -> str:
    if not test.tested:
        return test.why
    return f"{test.p:.2g}" if test.p >= 1e-3 else f"{test.p:.0e}"
