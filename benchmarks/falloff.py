"""Where a curve stops matching the dense network: the number Frankle & Carbin quote per control.

Definition (one task of one run). Let D be the dense network's mean score over trials and
tol = rel_tol * |D|. The *matching band* is score >= D - tol for a higher-is-better metric (score <= D + tol
for lower-is-better). Walking the pruned densities from the highest down, a kind's *fall-off density* is
the first density whose mean over trials lies outside the band; it *matches down to* the density just
before it. A kind that never leaves the band "does not fall off" within the measured range. Noise can
make a curve re-enter the band later; this definition reports the first exit on purpose (the density
where the kind can no longer be trusted to match), and the Welch p-value against the dense trials there
says how sure that exit is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from benchmarks.significance import Test, welch
from lth_core.tables import kind_order

DEFINITION = (
    "walking from dense to sparse, a kind falls off at the first pruned density where its mean score leaves "
    "the band within {tol:.0%} of the dense mean (below it for ↑ metrics, above it for ↓), and matches "
    "dense down to the density before"
)


@dataclass(frozen=True)
class FallOff:
    kind: str
    threshold: float
    matches_down_to: float | None  # None: already outside the band at the first pruned density
    falls_off_at: float | None  # None: stays inside the band at every measured density
    mean_there: float
    std_there: float
    n_there: int
    vs_dense: Test
    lowest_measured: float


def band_edge(dense_mean: float, higher_is_better: bool, rel_tol: float) -> float:
    tol = rel_tol * abs(dense_mean)
    return dense_mean - tol if higher_is_better else dense_mean + tol


def falloffs(summary: pd.DataFrame, ok_rows: pd.DataFrame, rel_tol: float) -> list[FallOff]:
    """Fall-off of every non-dense kind of ONE task; `summary` from lth_core.tables.summarize, rows with status ok."""
    dense = summary[(summary["kind"] == "dense") & (summary["n"] > 0)]
    if dense.empty:
        return []
    higher = bool(dense["higher_is_better"].iloc[0])
    d_mean = float(dense["score_mean"].iloc[0])
    edge = band_edge(d_mean, higher, rel_tol)
    dense_scores = ok_rows.loc[ok_rows["kind"] == "dense", "score"].tolist()
    out = []
    for kind in [k for k in kind_order(summary["kind"]) if k != "dense"]:
        s = summary[(summary["kind"] == kind) & (summary["n"] > 0)].sort_values("density", ascending=False)
        if s.empty:
            continue
        matched, fell = None, None
        for r in s.itertuples():
            inside = r.score_mean >= edge if higher else r.score_mean <= edge
            if not inside:
                fell = r
                break
            matched = float(r.density)
        if fell is None:
            out.append(
                FallOff(
                    kind,
                    edge,
                    matched,
                    None,
                    math.nan,
                    math.nan,
                    0,
                    Test(math.nan, math.nan, "—"),
                    float(s["density"].min()),
                )
            )
            continue
        there = ok_rows[(ok_rows["kind"] == kind) & ((ok_rows["density"] - fell.density).abs() < 1e-9)]["score"]
        out.append(
            FallOff(
                kind,
                edge,
                matched,
                float(fell.density),
                float(fell.score_mean),
                float(fell.score_std) if pd.notna(fell.score_std) else math.nan,
                int(fell.n),
                welch(there.tolist(), dense_scores),
                float(s["density"].min()),
            )
        )
    return out
