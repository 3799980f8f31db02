"""The seed papers' claims (Frankle & Carbin 2019; Frankle et al. 2019/2020; Morcos et al. 2019; Yu et al. 2020).

Quick scale runs on embedded data on a CPU with 3 trials where a claim is statistical (the presets' own 2
trials leave Welch's test almost no power); paper scale runs the paper presets (a GPU). Each judge reads
only the result contract. The thresholds are in each claim's `threshold` text, written before any run.
"""

from __future__ import annotations

import math
from functools import reduce
from math import gcd
from typing import Mapping

from benchmarks.claim_base import (
    ALPHA,
    FAILS,
    HOLDS,
    UNSURE,
    Diff,
    Need,
    Recipe,
    Table,
    Verdict,
    claim,
    corrected,
    diff,
    span,
)
from benchmarks.run_folders import Run

TRIALS = ("--trials", "3")
CONTROLS = ("random_reinit", "random_mask")
WELCH = "Welch's t-test over trials, Holm-corrected across densities"

IMP = Need("imp", Recipe("vision", "quick", TRIALS), Recipe("vision", "frankle2019-lenet"))
ONE_SHOT = Need(
    "one_shot",
    Recipe("vision", "quick", (*TRIALS, "--schedule", "one_shot", "--controls", "")),
    Recipe("vision", "frankle2019-lenet", ("--schedule", "one_shot", "--controls", "")),
)
# an SGD conv net at a high learning rate (Frankle et al.'s setting, on MNIST-1D): rewinding to 0 vs to 5%
SGD_CONV = ("--model", "cnn1d", "--optimizer", "sgd", "--lr", "0.1", "--momentum", "0.9", "--levels", "3")
REWIND_0 = Need(
    "rewind_0",
    Recipe("vision", "quick", (*TRIALS, *SGD_CONV, "--controls", "", "--rewind-step", "0")),
    Recipe("vision", "stabilizing-resnet20", ("--rewind-step", "0", "--controls", "")),
)
REWIND_K = Need(
    "rewind_k",
    Recipe("vision", "quick", (*TRIALS, *SGD_CONV, "--controls", "", "--rewind-step", "0.05")),
    Recipe("vision", "stabilizing-resnet20", ("--controls", "")),
)
# the ticket found with Adam (the quick preset) trained with SGD + momentum: transfer across optimizers
TRANSFER = Need(
    "transfer",
    Recipe(
        "vision",
        "quick",
        (*TRIALS, "--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9", "--ticket-from", "{imp}"),
    ),
    Recipe("vision", "morcos2019-transfer", ("--ticket-from", "{imp}")),
)
RL = Need("rl", Recipe("rl", "quick", TRIALS), Recipe("rl", "yu2020-classic"))
NLP = Need("nlp", Recipe("nlp", "quick"), Recipe("nlp", "yu2020-wmt14"))


def _too_few(t: Table, *kinds: str) -> str:
    """Why the trials cannot support a test, or ''."""
    for k in kinds:
        counts = [len(t.values(k, d)) for d in t.densities(k)]
        if not counts or min(counts) < 2:
            return f"fewer than 2 trials of {k} at some density"
    return ""


def _beats(
    t: Table, densities: list[float], kinds: tuple[str, ...]
) -> tuple[list[float], list[tuple[float, str, Diff, float]], tuple[float, str, Diff, float] | None]:
    """Densities where the ticket beats every one of `kinds` significantly (Holm over densities x kinds),
    the significantly-worse cells, and the weakest cell at the sparsest density it wins (else the sparsest
    density tested): (density, kind, ticket - kind, Holm p)."""
    cells = [(d, k, t.oriented(t.values("ticket", d), t.values(k, d))) for d in densities for k in kinds]
    ps = corrected([c[2] for c in cells])
    full = [(d, k, df, p) for (d, k, df), p in zip(cells, ps)]
    wins = {(d, k) for d, k, df, p in full if df.diff > 0 and p < ALPHA}
    worse = [c for c in full if c[2].diff < 0 and c[3] < ALPHA]
    good = [d for d in densities if all((d, k) in wins for k in kinds)]
    at = min(good) if good else (min(densities) if densities else None)
    here = [c for c in full if c[0] == at]
    return good, worse, max(here, key=lambda c: c[3]) if here else None


@claim(
    "fc2019-match",
    "Winning tickets match the dense network down to a density where random reinitialization has already fallen off.",
    "Frankle & Carbin 2019, Fig. 1 and 3",
    "matches dense = mean within the larger of 1% of the dense mean and the dense trials' std; the ticket must also "
    "beat random_reinit there (Welch, Holm over densities, p < 0.05)",
    (IMP,),
)
def fc2019_match(runs: Mapping[str, Run]) -> Verdict:
    t = Table(runs["imp"])
    if why := _too_few(t, "dense", "ticket", "random_reinit"):
        return Verdict(UNSURE, "", WELCH, math.nan, "", why)
    ds = t.densities("ticket")
    diffs = [t.oriented(t.values("ticket", d), t.values("random_reinit", d)) for d in ds]
    ps = corrected(diffs)
    off = [d for d in ds if not t.matches("random_reinit", d)]
    if not off:
        return Verdict(
            UNSURE, "", WELCH, math.nan, "", "random_reinit never leaves the dense band in the measured range"
        )
    hopeful = [j for j, d in enumerate(ds) if d in off and t.matches("ticket", d) and diffs[j].diff > 0]
    good = [ds[j] for j in hopeful if ps[j] < ALPHA]
    first = off[0]
    i = ds.index(min(good)) if good else min(hopeful, key=lambda j: ps[j]) if hopeful else ds.index(first)
    effect = f"ticket - random_reinit at {ds[i]:.1%}: {diffs[i].text()}"
    if good:
        return Verdict(HOLDS, effect, WELCH, ps[i], span(good), f"random_reinit leaves the band at {first:.1%}")
    if not t.matches("ticket", first):
        return Verdict(
            FAILS, effect, WELCH, ps[i], "", f"at {first:.1%}, where random_reinit falls off, so does the ticket"
        )
    return Verdict(
        UNSURE, effect, WELCH, ps[i], "", "the ticket matches where random_reinit falls off, not significantly"
    )


def _interval(t: Table) -> float:
    """The evaluation interval, read off the early-stop steps themselves (their greatest common divisor)."""
    steps = [int(s) for s in t.rows["early_stop_step"].dropna() if s > 0]
    return float(reduce(gcd, steps)) if steps else 0.0


@claim(
    "fc2019-early-stop",
    "At densities where they match dense, winning tickets reach their early-stop step at or before the dense network.",
    "Frankle & Carbin 2019, Fig. 1 (early-stop iteration)",
    "at or before = mean early-stop step at most the dense mean plus one evaluation interval at every matching "
    "density and never significantly later (Welch, Holm); inconclusive when dense stops within 5% of the budget",
    (IMP,),
)
def fc2019_early_stop(runs: Mapping[str, Run]) -> Verdict:
    t = Table(runs["imp"], value="early_stop_step")
    test = "Welch's t-test on early-stop steps over trials, Holm-corrected across densities"
    if why := _too_few(t, "dense", "ticket"):
        return Verdict(UNSURE, "", test, math.nan, "", why)
    budget = float(runs["imp"].meta.get("budget") or math.inf)
    dense = t.mean("dense")
    if dense >= 0.95 * budget:
        return Verdict(
            UNSURE, "", test, math.nan, "", f"dense stops at {dense:.0f} of {budget:.0f}: early stopping does not bite"
        )
    scores = Table(runs["imp"])
    ds = [d for d in t.densities("ticket") if scores.matches("ticket", d)]
    if not ds:
        return Verdict(UNSURE, "", test, math.nan, "", "the ticket matches dense at no pruned density")
    raw = [diff(t.values("ticket", d), t.values("dense")) for d in ds]  # steps: positive = later than dense
    ps = corrected(raw)
    step = _interval(t)
    later = [d for d, x, p in zip(ds, raw, ps) if x.diff > 0 and p < ALPHA]
    over = [d for d, x in zip(ds, raw) if x.diff > step]
    i = max(range(len(ds)), key=lambda j: raw[j].diff)
    effect = f"ticket - dense early-stop step, worst at {ds[i]:.1%}: {raw[i].text(' steps')}"
    if later:
        return Verdict(FAILS, effect, test, min(ps), "", f"significantly later than dense at {span(later)}")
    if over:
        return Verdict(
            UNSURE,
            effect,
            test,
            ps[i],
            "",
            f"later than dense by more than one interval ({step:.0f}) at {span(over)}, not significantly",
        )
    return Verdict(
        HOLDS, effect, test, ps[i], span(ds), f"within one evaluation interval ({step:.0f}) of dense or earlier"
    )


@claim(
    "fc2019-iterative",
    "Iterative pruning finds better tickets than one-shot pruning to the same density.",
    "Frankle & Carbin 2019, Fig. 4 (iterative vs one-shot)",
    "better = the iterative ticket's mean score significantly above the one-shot ticket's at one density or more "
    "(Welch, Holm over the common densities) and significantly below at none",
    (IMP, ONE_SHOT),
)
def fc2019_iterative(runs: Mapping[str, Run]) -> Verdict:
    it, one = Table(runs["imp"]), Table(runs["one_shot"])
    if why := _too_few(it, "ticket") or _too_few(one, "ticket"):
        return Verdict(UNSURE, "", WELCH, math.nan, "", why)
    ds = [d for d in it.densities("ticket") if d in one.densities("ticket")]
    if not ds:
        return Verdict(UNSURE, "", WELCH, math.nan, "", "no density both runs trained a ticket at")
    diffs = [it.oriented(it.values("ticket", d), one.values("ticket", d)) for d in ds]
    ps = corrected(diffs)
    better = [d for d, x, p in zip(ds, diffs, ps) if x.diff > 0 and p < ALPHA]
    worse = [d for d, x, p in zip(ds, diffs, ps) if x.diff < 0 and p < ALPHA]
    i = ds.index(min(better)) if better else len(ds) - 1
    effect = f"iterative - one-shot at {ds[i]:.1%}: {diffs[i].text()}"
    if worse:
        return Verdict(FAILS, effect, WELCH, min(ps), "", f"one-shot significantly better at {span(worse)}")
    if better:
        return Verdict(HOLDS, effect, WELCH, ps[i], span(better), "never significantly worse")
    return Verdict(UNSURE, effect, WELCH, min(ps), "", "no density with a significant difference")


@claim(
    "frankle2019-late-rewinding",
    "Where rewinding to step 0 fails to match dense, rewinding to an early step k > 0 matches.",
    "Frankle et al. 2019/2020 (Stabilizing the LTH; Linear Mode Connectivity), Fig. 2",
    "fails = the k=0 ticket outside the dense band (1% or the dense spread) and significantly below dense; "
    "matches = the k>0 ticket inside the band and significantly above the k=0 ticket (Welch, Holm)",
    (REWIND_0, REWIND_K),
)
def frankle2019_late_rewinding(runs: Mapping[str, Run]) -> Verdict:
    a, b = Table(runs["rewind_0"]), Table(runs["rewind_k"])
    if why := _too_few(a, "dense", "ticket") or _too_few(b, "ticket"):
        return Verdict(UNSURE, "", WELCH, math.nan, "", why)
    ds = [d for d in a.densities("ticket") if d in b.densities("ticket")]
    short = [d for d in ds if not a.matches("ticket", d)]  # where the k=0 ticket falls outside the dense band
    if not short:
        return Verdict(FAILS, "", WELCH, math.nan, "", "rewinding to 0 matches dense at every density: nothing to fix")
    below = [a.oriented(a.values("ticket", d), a.values("dense")) for d in short]
    below_ps = corrected(below)
    fails = [d for d, x, p in zip(short, below, below_ps) if x.diff < 0 and p < ALPHA]
    fix = [b.oriented(b.values("ticket", d), a.values("ticket", d)) for d in short]
    fix_ps = corrected(fix)
    matched = [d for d in short if b.matches("ticket", d)]
    good = [d for d, x, p in zip(short, fix, fix_ps) if d in fails and d in matched and x.diff > 0 and p < ALPHA]
    i = short.index(min(good)) if good else len(short) - 1
    effect = f"k>0 ticket - k=0 ticket at {short[i]:.1%}: {fix[i].text()}"
    where = f"k=0 outside the dense band at {span(short)}, significantly below dense at {span(fails) or 'none'}"
    if good:
        return Verdict(HOLDS, effect, WELCH, fix_ps[i], span(good), where)
    if not matched:
        return Verdict(
            FAILS, effect, WELCH, fix_ps[i], "", f"{where}; the k>0 ticket does not match dense there either"
        )
    return Verdict(UNSURE, effect, WELCH, fix_ps[i], "", f"{where}; k>0 matches at {span(matched)}, not significantly")


def _beats_controls(t: Table, densities: list[float], what: str) -> Verdict:
    if why := _too_few(t, "ticket", *CONTROLS):
        return Verdict(UNSURE, "", WELCH, math.nan, "", why)
    if not densities:
        return Verdict(UNSURE, "", WELCH, math.nan, "", "no pruned density measured")
    good, worse, shown = _beats(t, densities, CONTROLS)
    assert shown is not None
    effect = f"ticket - {shown[1]} at {shown[0]:.1%}: {shown[2].text()}"
    if worse:
        d, k, _, p = worse[0]
        return Verdict(FAILS, effect, WELCH, p, "", f"{k} significantly better than the ticket at {d:.1%}")
    if good:
        return Verdict(HOLDS, effect, WELCH, shown[3], span(good), f"beats both controls {what}")
    return Verdict(UNSURE, effect, WELCH, shown[3], "", f"not significantly better than both controls {what}")


@claim(
    "morcos2019-transfer",
    "A ticket found with one optimizer (or dataset), trained with another, beats the random controls there.",
    "Morcos et al. 2019 (One ticket to win them all), Fig. 3-5",
    "beats = the transferred ticket significantly above both random_reinit and random_mask at one density or more "
    "(Welch, Holm over densities x controls) and significantly below neither at any",
    (IMP, TRANSFER),
)
def morcos2019_transfer(runs: Mapping[str, Run]) -> Verdict:
    t = Table(runs["transfer"])
    return _beats_controls(t, t.densities("ticket"), "at some density")


@claim(
    "yu2020-rl",
    "A2C lottery tickets on classic control beat random tickets at low density.",
    "Yu et al. 2020 (Playing the lottery with rewards and multiple languages), Fig. 2",
    "low density = the sparser half of the measured densities; beats = significantly above both random_reinit and "
    "random_mask there at one density or more (Welch, Holm) and below neither",
    (RL,),
)
def yu2020_rl(runs: Mapping[str, Run]) -> Verdict:
    t = Table(runs["rl"])
    ds = t.densities("ticket")
    return _beats_controls(t, ds[len(ds) // 2 :], "in the sparser half of the densities")


@claim(
    "yu2020-nlp",
    "Transformer tickets stay near dense at about a third of the weights, while random tickets fall off faster.",
    "Yu et al. 2020 (Playing the lottery with rewards and multiple languages), Fig. 4",
    "about a third = the measured density in [20%, 40%] nearest 1/3; near dense = within the larger of 1% of the "
    "dense mean and the dense spread (above it counts); random tickets fall off faster = both controls outside "
    "the band there, or significantly below the ticket (Welch, Holm)",
    (NLP,),
)
def yu2020_nlp(runs: Mapping[str, Run]) -> Verdict:
    t = Table(runs["nlp"])
    if why := _too_few(t, "dense", "ticket"):
        return Verdict(UNSURE, "", WELCH, math.nan, "", why)
    near = [d for d in t.densities("ticket") if 0.2 <= d <= 0.4]
    if not near:
        return Verdict(UNSURE, "", WELCH, math.nan, "", "no measured density between 20% and 40%")
    d = min(near, key=lambda x: abs(x - 1 / 3))
    vs = [t.oriented(t.values("ticket", d), t.values(k, d)) for k in CONTROLS]
    ps = corrected(vs)
    effect = f"ticket - random_reinit at {d:.1%}: {vs[0].text()}"
    if not t.matches("ticket", d):
        return Verdict(FAILS, effect, WELCH, ps[0], "", f"the ticket is outside the dense band at {d:.1%}")
    faster = [not t.matches(k, d) or (x.diff > 0 and p < ALPHA) for k, x, p in zip(CONTROLS, vs, ps)]
    if all(faster):
        return Verdict(HOLDS, effect, WELCH, max(ps), f"{d:.1%}", "the ticket matches dense; both controls fall off")
    return Verdict(UNSURE, effect, WELCH, max(ps), "", "a control also stays near dense there")
