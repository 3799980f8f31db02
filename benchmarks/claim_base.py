"""What a claim is: a statement from a paper, the runs that test it, and the function that judges their tables.

A claim declares its thresholds with itself (e.g. "matches dense" = within 1% of the dense mean or within the
dense trials' own spread, whichever is wider) so they are fixed before any result is seen. Its judge reads
run folders through the result contract (`benchmarks.run_folders.Run`) and returns a `Verdict`: *holds*,
*does not hold here* (the data speak against it), or *inconclusive* (too few trials, the effect inside the
noise, or a run that cannot show it). Every p-value is Welch's two-sided test over trials, Holm-corrected
across the densities a claim looks at.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np
import pandas as pd
from scipy import stats

from benchmarks.run_folders import Run
from benchmarks.significance import holm, welch
from lth_core.registry import Registry

HOLDS, FAILS, UNSURE = "holds", "does not hold here", "inconclusive"
ALPHA = 0.05
SCALES = ("quick", "paper")


@dataclass(frozen=True)
class Recipe:
    """One `benchmarks.run` invocation: its domain, preset and extra flags. A flag may name another need's
    run folder as `{need}` (e.g. `--ticket-from {source}`); that need runs first."""

    domain: str
    preset: str
    flags: tuple[str, ...] = ()

    def argv(self, folders: Mapping[str, str], out: str) -> list[str]:
        flags = [f.format(**folders) for f in self.flags]
        return ["--domain", self.domain, "--preset", self.preset, *flags, "--out", out]

    def refers_to(self) -> list[str]:
        import string

        return [name for f in self.flags for _, name, _, _ in string.Formatter().parse(f) if name]


@dataclass(frozen=True)
class Need:
    """A run a claim reads, under a name its judge uses, at each scale (None: not available at that scale)."""

    name: str
    quick: Recipe
    paper: Recipe | None = None

    def at(self, scale: str) -> Recipe | None:
        return self.quick if scale == "quick" else self.paper


@dataclass(frozen=True)
class Verdict:
    verdict: str  # HOLDS, FAILS or UNSURE
    effect: str  # the measured effect with its 95% confidence interval over trials
    test: str  # the test used
    p: float  # its (Holm-corrected) p-value where one was computed, else NaN
    where: str  # the density range where the claim holds ('' when nowhere)
    detail: str  # one or two sentences: why this verdict


@dataclass(frozen=True)
class Claim:
    name: str
    statement: str
    source: str  # paper and figure
    threshold: str  # the declared thresholds, in words
    needs: tuple[Need, ...]
    judge: Callable[[Mapping[str, Run]], Verdict]

    def domains(self) -> set[str]:
        return {n.quick.domain for n in self.needs}


CLAIMS: Registry[Claim] = Registry("claim")


def claim(
    name: str, statement: str, source: str, threshold: str, needs: tuple[Need, ...]
) -> Callable[[Callable[[Mapping[str, Run]], Verdict]], Callable[[Mapping[str, Run]], Verdict]]:
    """Register the decorated judge as claim `name`."""

    def deco(judge: Callable[[Mapping[str, Run]], Verdict]) -> Callable[[Mapping[str, Run]], Verdict]:
        CLAIMS.add(name, Claim(name, statement, source, threshold, needs, judge))
        return judge

    return deco


# ---- the statistics every judge shares ------------------------------------------------------------------


@dataclass(frozen=True)
class Diff:
    """Mean of a minus mean of b over trials, its 95% Welch interval and two-sided p (NaN when untestable)."""

    diff: float
    low: float
    high: float
    p: float
    n: tuple[int, int]

    def text(self, unit: str = "") -> str:
        if math.isnan(self.low):
            return f"{self.diff:+.4g}{unit} (n={self.n[0]}/{self.n[1]}, no interval)"
        return f"{self.diff:+.4g}{unit} [{self.low:+.4g}, {self.high:+.4g}] (n={self.n[0]}/{self.n[1]})"


def diff(a: list[float], b: list[float]) -> Diff:
    x = np.asarray([v for v in a if np.isfinite(v)], dtype=float)
    y = np.asarray([v for v in b if np.isfinite(v)], dtype=float)
    d = float(x.mean() - y.mean()) if len(x) and len(y) else math.nan
    test = welch(x, y)
    low = high = math.nan
    if test.tested and len(x) >= 2 and len(y) >= 2 and (np.ptp(x) > 0 or np.ptp(y) > 0):
        ci = stats.ttest_ind(x, y, equal_var=False).confidence_interval(0.95)
        low, high = float(ci.low), float(ci.high)
    return Diff(d, low, high, test.p, (len(x), len(y)))


@dataclass
class Table:
    """One run's ok rows of one task: scores (or another column) per kind and density, with the metric's sense."""

    run: Run
    value: str = "score"
    rows: pd.DataFrame = field(init=False)
    higher: bool = field(init=False)

    def __post_init__(self) -> None:
        ok = self.run.ok
        tasks = list(dict.fromkeys(ok["task"]))
        self.rows = ok[ok["task"] == tasks[0]] if tasks else ok
        self.higher = bool(self.rows["higher_is_better"].iloc[0]) if len(self.rows) else True

    def densities(self, kind: str) -> list[float]:
        """The densities `kind` was trained at, from dense to sparse."""
        return sorted(set(self.rows.loc[self.rows["kind"] == kind, "density"].round(4)), reverse=True)

    def values(self, kind: str, density: float | None = None, column: str | None = None) -> list[float]:
        r = self.rows[self.rows["kind"] == kind]
        if density is not None:
            r = r[(r["density"] - density).abs() < 5e-4]
        return [float(v) for v in r[column or self.value]]

    def mean(self, kind: str, density: float | None = None) -> float:
        v = self.values(kind, density)
        return float(np.mean(v)) if v else math.nan

    def better(self, d: Diff) -> float:
        """The difference turned so that positive is better in the metric's sense."""
        return d.diff if self.higher else -d.diff

    def oriented(self, a: list[float], b: list[float]) -> Diff:
        """diff(a, b) with the sign turned so that positive means a scores better."""
        d = diff(a, b)
        if self.higher:
            return d
        return Diff(-d.diff, -d.high, -d.low, d.p, d.n)

    def band(self, rel_tol: float = 0.01) -> tuple[float, float]:
        """(dense mean, tolerance): inside means within the larger of rel_tol x |dense| and the dense spread."""
        dense = self.values("dense")
        mean = float(np.mean(dense)) if dense else math.nan
        spread = float(np.std(dense, ddof=1)) if len(dense) > 1 else 0.0
        return mean, max(rel_tol * abs(mean), spread)

    def matches(self, kind: str, density: float, rel_tol: float = 0.01) -> bool:
        mean, tol = self.band(rel_tol)
        m = self.mean(kind, density)
        return m >= mean - tol if self.higher else m <= mean + tol


def corrected(diffs: list[Diff]) -> list[float]:
    """Holm-corrected p-values of a family of differences."""
    return holm([d.p for d in diffs])


def span(densities: list[float]) -> str:
    """'68%–12%' (or one density) for the densities where a claim holds."""
    if not densities:
        return ""
    hi, lo = max(densities), min(densities)
    return f"{hi:.1%}" if hi == lo else f"{hi:.1%}–{lo:.1%}"
