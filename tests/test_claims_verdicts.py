"""Each claim's judge on made-up result tables: one where the claim holds and one where it does not.

The tables are written as a researcher would read them: per kind, a mean score per density, three trials
spread by ±`noise` around it. Every judge gets its runs through the result contract (`Run`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from benchmarks.claim_base import FAILS, HOLDS, UNSURE, Table
from benchmarks.claims import CLAIMS  # registers the seed claims
from benchmarks.run_folders import Run

DENSITIES = [0.64, 0.41, 0.26, 0.17, 0.11]
SPREAD = (-1.0, 0.0, 1.0)


def run(
    curves: dict[str, list[float]],
    noise: float = 0.002,
    dense: float = 0.90,
    es: dict[str, list[float]] | None = None,
    dense_es: float = 2000,
    budget: int = 3000,
    higher: bool = True,
) -> Run:
    """A run whose `kind` scores `curves[kind][i]` at DENSITIES[i] (mean over 3 trials, ±noise)."""
    rows = []
    for t, s in enumerate(SPREAD):
        rows.append(
            dict(kind="dense", density=1.0, trial=t, score=dense + s * noise, early_stop_step=dense_es + s * 100)
        )
        for kind, means in curves.items():
            for i, (d, m) in enumerate(zip(DENSITIES, means)):
                step = (es or {}).get(kind, [dense_es] * len(DENSITIES))[i] + s * 100
                rows.append(dict(kind=kind, density=d, trial=t, score=m + s * noise, early_stop_step=step))
    df = pd.DataFrame(rows).assign(
        domain="vision", task="toy/mlp", metric="acc", higher_is_better=higher, status="ok", final_score=0.0
    )
    return Run(path=Path("/nonexistent"), meta={"budget": budget}, results=df)


def verdict(name: str, **runs: Run) -> str:
    return CLAIMS.get(name).judge(runs).verdict


FLAT = [0.90] * 5
FALLING = [0.90, 0.88, 0.84, 0.80, 0.75]


def test_table_band_uses_the_larger_of_one_percent_and_the_dense_spread() -> None:
    t = Table(run({"ticket": FLAT}, noise=0.02))
    mean, tol = t.band(0.01)
    assert mean == pytest.approx(0.90) and tol == pytest.approx(0.02)  # std of (-0.02, 0, 0.02)
    assert t.matches("ticket", 0.64) and not Table(run({"ticket": [0.85] * 5})).matches("ticket", 0.64)


def test_fc2019_match() -> None:
    assert verdict("fc2019-match", imp=run({"ticket": FLAT, "random_reinit": FALLING})) == HOLDS
    assert verdict("fc2019-match", imp=run({"ticket": FALLING, "random_reinit": FALLING})) == FAILS
    # random_reinit never falls off: the range cannot show the claim
    assert verdict("fc2019-match", imp=run({"ticket": FLAT, "random_reinit": FLAT})) == UNSURE


def test_fc2019_early_stop() -> None:
    curves = {"ticket": FLAT}
    earlier = {"ticket": [1500.0] * 5}
    later = {"ticket": [2800.0] * 5}
    assert verdict("fc2019-early-stop", imp=run(curves, es=earlier)) == HOLDS
    assert verdict("fc2019-early-stop", imp=run(curves, es=later)) == FAILS
    # dense stops at the budget: early stopping does not bite, whatever the tickets do
    assert verdict("fc2019-early-stop", imp=run(curves, es=earlier, dense_es=2950)) == UNSURE


def test_fc2019_iterative() -> None:
    better = run({"ticket": FLAT})
    worse = run({"ticket": FALLING})
    assert verdict("fc2019-iterative", imp=better, one_shot=worse) == HOLDS
    assert verdict("fc2019-iterative", imp=worse, one_shot=better) == FAILS
    assert verdict("fc2019-iterative", imp=better, one_shot=better) == UNSURE


def test_frankle2019_late_rewinding() -> None:
    fails_at_0 = run({"ticket": FALLING})
    matches = run({"ticket": FLAT})
    assert verdict("frankle2019-late-rewinding", rewind_0=fails_at_0, rewind_k=matches) == HOLDS
    # rewinding to 0 already matches: nothing for late rewinding to fix here
    assert verdict("frankle2019-late-rewinding", rewind_0=matches, rewind_k=matches) == FAILS
    # late rewinding fails as well
    assert verdict("frankle2019-late-rewinding", rewind_0=fails_at_0, rewind_k=fails_at_0) == FAILS
    # k=0 a little below dense and noisy: outside the band, but not significantly below it
    noisy_0 = run({"ticket": [0.89, 0.88, 0.87, 0.86, 0.85]}, noise=0.03)
    assert verdict("frankle2019-late-rewinding", rewind_0=noisy_0, rewind_k=matches) == UNSURE


@pytest.mark.parametrize("name,need", [("morcos2019-transfer", "transfer"), ("yu2020-rl", "rl")])
def test_ticket_beats_both_controls(name: str, need: str) -> None:
    holds = run({"ticket": FLAT, "random_reinit": FALLING, "random_mask": FALLING})
    fails = run({"ticket": FALLING, "random_reinit": FLAT, "random_mask": FALLING})
    unsure = run({"ticket": FLAT, "random_reinit": FLAT, "random_mask": FALLING})  # beats one control only
    assert verdict(name, imp=holds, **{need: holds}) == HOLDS
    assert verdict(name, imp=holds, **{need: fails}) == FAILS
    assert verdict(name, imp=holds, **{need: unsure}) == UNSURE


def test_yu2020_rl_reads_the_sparse_half_only() -> None:
    # the ticket loses to random_reinit at the dense end but wins in the sparser half: still not a pass,
    # because a significant loss anywhere in the tested half would fail, and the dense half is not tested
    dense_end_loss = [0.86, 0.86, 0.90, 0.90, 0.90]
    r = run({"ticket": dense_end_loss, "random_reinit": [0.90, 0.90, 0.80, 0.78, 0.75], "random_mask": FALLING})
    assert verdict("yu2020-rl", rl=r) == HOLDS


def test_yu2020_nlp() -> None:
    at_third = [0.90, 0.90, 0.90, 0.85, 0.80]  # DENSITIES[2] = 26% is the density in [20%, 40%] nearest 1/3
    assert (
        verdict("yu2020-nlp", nlp=run({"ticket": at_third, "random_reinit": FALLING, "random_mask": FALLING})) == HOLDS
    )
    assert (
        verdict("yu2020-nlp", nlp=run({"ticket": FALLING, "random_reinit": FALLING, "random_mask": FALLING})) == FAILS
    )
    assert verdict("yu2020-nlp", nlp=run({"ticket": at_third, "random_reinit": FLAT, "random_mask": FALLING})) == UNSURE


def test_a_lower_is_better_metric_turns_every_comparison() -> None:
    # perplexity-like: the ticket stays at dense (10) while random_reinit rises: the claim holds
    r = run(
        {"ticket": [10.0] * 5, "random_reinit": [10.0, 10.5, 11.0, 12.0, 13.0]}, dense=10.0, noise=0.01, higher=False
    )
    assert verdict("fc2019-match", imp=r) == HOLDS
    flipped = run(
        {"ticket": [10.0, 10.5, 11.0, 12.0, 13.0], "random_reinit": [10.0] * 5}, dense=10.0, noise=0.01, higher=False
    )
    assert verdict("fc2019-match", imp=flipped) != HOLDS


def test_too_few_trials_is_inconclusive() -> None:
    r = run({"ticket": FLAT, "random_reinit": FALLING})
    one = Run(r.path, r.meta, r.results[r.results["trial"] == 0])
    assert verdict("fc2019-match", imp=one) == UNSURE
