"""Linear mode connectivity (Frankle, Dziugaite, Roy & Carbin 2020): the straight line between two trained
networks and the error barrier along it. Domain-free: the metrics come from the adapter's `evaluate`.

Every floating tensor of the state dict is interpolated, parameters and buffers alike, so BatchNorm's running
statistics are the same mix of the two ends as the weights (`bn = "interpolate"`; the paper's choice for its
interpolations too). Integer buffers (BatchNorm's step counter) come from the nearer end. At alpha 0 and 1
the path holds exact copies of the ends, so the ends score exactly as the trained networks do.
`evaluate_path(..., prepare=f)` passes every point through `f` first (`bn = "recompute"`: the statistics
recomputed on training batches, the ends included, so they score as the trained networks after that recompute).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from lth_core.errors import UsageError
from lth_core.job import StateDict

Evaluate = Callable[[StateDict, str], dict[str, float]]


def alphas(n: int) -> list[float]:
    """`n` evenly spaced points on [0, 1], both ends included."""
    if n < 2:
        raise UsageError(f"--alphas {n} must be >= 2 (the two ends are always included)")
    return [i / (n - 1) for i in range(n)]


def interpolate(a: StateDict, b: StateDict, alpha: float) -> StateDict:
    """(1 - alpha) a + alpha b for every floating tensor; integer tensors from the nearer end; exact ends."""
    if set(a) != set(b) or any(a[k].shape != b[k].shape for k in a):
        raise UsageError("the two networks to interpolate differ in tensor names or shapes")
    if alpha == 0.0 or alpha == 1.0:
        return {k: v.clone() for k, v in (a if alpha == 0.0 else b).items()}
    out = {}
    for k, va in a.items():
        vb = b[k]
        if torch.is_floating_point(va):
            out[k] = torch.lerp(va, vb.to(va.dtype), alpha)
        else:
            out[k] = (va if alpha < 0.5 else vb).clone()
    return out


def barrier(path: list[float], higher_is_better: bool) -> float:
    """The error barrier in the metric's own units: the worst point of the path against the mean of its ends.

    Error = shortfall for a higher-is-better metric: mean(ends) - min(path); for a lower-is-better one (a
    loss, perplexity): max(path) - mean(ends). 0 for a flat path; NaN where a point is not finite."""
    if len(path) < 2:
        raise ValueError("a path has at least its two ends")
    if not all(math.isfinite(v) for v in path):
        return math.nan
    ends = (path[0] + path[-1]) / 2
    return ends - min(path) if higher_is_better else max(path) - ends


@dataclass(frozen=True)
class PathMetric:
    """One number read along the path: the split, the key in `evaluate`'s dict, and its direction."""

    split: str
    key: str
    higher_is_better: bool

    @property
    def column(self) -> str:
        return column(self.split, self.key)


def column(split: str, key: str) -> str:
    """The name of `evaluate(w, split)[key]` in a path row: 'val_loss' for ('val', 'loss') or ('val', 'val_loss')."""
    return key if key.startswith(f"{split}_") else f"{split}_{key}"


def evaluate_path(
    evaluate: Evaluate,
    a: StateDict,
    b: StateDict,
    points: list[float],
    splits: tuple[str, ...],
    prepare: Callable[[StateDict], StateDict] | None = None,
) -> list[dict[str, float]]:
    """Per alpha: `evaluate` of the interpolated weights (through `prepare` where given) on each split, named
    by `column` (where two keys of a split share a name, e.g. a domain's 'val_loss' and 'loss' on 'val', which
    are one number, the first is kept)."""
    rows = []
    for alpha in points:
        w = interpolate(a, b, alpha)
        if prepare is not None:
            w = prepare(w)
        row = {"alpha": alpha}
        for split in splits:
            for k, v in evaluate(w, split).items():
                row.setdefault(column(split, k), float(v))
        rows.append(row)
    return rows


def barriers(path: list[dict[str, float]], metrics: list[PathMetric]) -> dict[str, float]:
    """For each metric the path has: its barrier and its value at both ends (`<column>_barrier`, `_a`, `_b`);
    a metric named twice (same column) counts once."""
    out: dict[str, float] = {}
    for m in metrics:
        if m.column not in path[0] or f"{m.column}_barrier" in out:
            continue
        values = [row[m.column] for row in path]
        out[f"{m.column}_barrier"] = barrier(values, m.higher_is_better)
        out[f"{m.column}_a"], out[f"{m.column}_b"] = values[0], values[-1]
    return out
