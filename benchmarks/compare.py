"""`python -m benchmarks.compare A B [C ...]`: are these runs' results the same, better or worse?

Each argument is a run folder or a folder of runs; the first is the baseline. Results are aligned cell by
cell on domain, task, kind and density (densities within --density-rtol of each other are the same cell);
per cell it shows each side's mean ± std over trials (n), the difference from the baseline and Welch's
t-test (two-sided, unequal variances) over the trials. A difference counts when it exceeds the tolerance
(the larger of --tolerance and --rel-tolerance x |baseline mean|) and p < --alpha; with fewer than two trials on a
side nothing is tested and the cell says so.
Cells or tasks only one side has, and tasks whose metrics differ, are listed, not compared.
`--fail-on-regression` exits 1 when a later side's ticket scores are worse than the baseline's beyond
tolerance and significance (direction from the metric's higher_is_better; p Holm-corrected over the checked
cells of each later run unless --correction none), when every trial of such a cell diverged or failed where
the baseline trained, or when nothing aligned to check; otherwise 0.
"""

from __future__ import annotations

import json
import math
import string
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, TextIO

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from benchmarks.cli import OneLineParser, fail
from benchmarks.cost import shown, side_by_side, totals
from benchmarks.run_folders import Run, load_sources
from benchmarks.significance import TEST, Test, fmt_p, holm, welch
from lth_core.config import opt
from lth_core.errors import UsageError
from lth_core.registry import Registry
from lth_core.tables import kind_order

PROG = "python -m benchmarks.compare"
VALUES = ("score", "final_score", "discovery_steps", "discovery_flops")
VALUE_HELP = {
    "score": "test metric at the early-stop step",
    "final_score": "test metric at the end of training",
    "discovery_steps": "training steps spent to find the ticket (lower is cheaper)",
    "discovery_flops": "training FLOPs spent to find the ticket (lower is cheaper)",
}
CELL = ["domain", "task", "kind", "density"]
FORMATS: Registry[Callable[["Comparison", TextIO], None]] = Registry("format")
CORRECTIONS: Registry[Callable[[list[float]], list[float]]] = Registry("correction")
CORRECTIONS.add("holm", holm)
CORRECTIONS.add("none", list)


@dataclass
class CompareConfig:
    """Compare runs cell by cell against the first (see the module docstring for the rules)."""

    runs: list[str] = opt(
        [],
        "run folders or folders of runs; the first is the baseline",
        positional=True,
        custom_args={"nargs": "+", "metavar": "RUN"},
    )
    format: str = opt(
        "table",
        "output: table (rich terminal table), md, csv (one row per cell and later side) or json",
        choices=FORMATS,
    )
    value: str = opt(
        "score",
        "which column to compare: score (test metric at early stop), final_score, discovery_steps or discovery_flops",
        choices=VALUES,
    )
    alpha: float = opt(0.05, "significance level of Welch's t-test")
    tolerance: float = opt(0.0, "differences up to this size (metric units) never count as better or worse")
    rel_tolerance: float = opt(
        0.0,
        "differences up to this fraction of |baseline mean| never count either (one "
        "setting for metrics of different scales, e.g. accuracy and return)",
    )
    fail_on_regression: bool = opt(
        False, "exit 1 when a later side is significantly worse than the first beyond --tolerance"
    )
    regression_kinds: str = opt("ticket", "comma list of kinds checked by --fail-on-regression (e.g. ticket,dense)")
    correction: str = opt(
        "holm",
        "multiple-comparison correction of the regression check over the checked cells of "
        "each later run: holm (Holm-Bonferroni) or none",
        choices=CORRECTIONS,
    )
    density_rtol: float = opt(0.01, "densities within this relative difference are the same cell")

    def kinds(self) -> list[str]:
        return [k.strip() for k in self.regression_kinds.split(",") if k.strip()]

    def validate(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise UsageError(f"--alpha {self.alpha} must be in (0, 1)")
        if not (self.tolerance >= 0.0 and math.isfinite(self.tolerance)):
            raise UsageError(f"--tolerance {self.tolerance} must be a finite number >= 0")
        if not 0.0 <= self.rel_tolerance < 1.0:
            raise UsageError(f"--rel-tolerance {self.rel_tolerance} must be in [0, 1)")
        if not 0.0 <= self.density_rtol < 0.5:
            raise UsageError(f"--density-rtol {self.density_rtol} must be in [0, 0.5)")
        if not self.kinds():
            raise UsageError("--regression-kinds is empty; give e.g. ticket or ticket,dense")

    def tolerance_at(self, baseline_mean: float) -> float:
        return (
            max(self.tolerance, self.rel_tolerance * abs(baseline_mean))
            if math.isfinite(baseline_mean)
            else self.tolerance
        )

    def tolerance_text(self) -> str:
        rel = f" or {self.rel_tolerance:.1%} of |A|" if self.rel_tolerance else ""
        return f"{self.tolerance:g}{rel}"


@dataclass
class Side:
    label: str  # A, B, C ... (A is the baseline)
    source: str
    runs: list[Run]

    def run_of(self, domain: str, task: str) -> Run | None:
        return next((r for r in self.runs if (domain, task) in r.tasks()), None)


@dataclass
class Comparison:
    config: CompareConfig
    sides: list[Side]
    stats: pd.DataFrame  # one row per side x cell: n, mean, std, values, run, own density
    diffs: pd.DataFrame  # one row per cell x later side: baseline and side stats, diff, p, verdict, regression
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> pd.DataFrame:
        return self.diffs[self.diffs["regression"]] if not self.diffs.empty else self.diffs

    def checked(self) -> pd.DataFrame:
        return self.diffs[self.diffs["kind"].isin(self.config.kinds())] if not self.diffs.empty else self.diffs


# ---- alignment ---------------------------------------------------------------------------------
def side_rows(side: Side, value: str) -> pd.DataFrame:
    """Rows of every run of a side (failed ones too); one run per task, or the cells would mix configs."""
    owners: dict[tuple[str, str], list[str]] = {}
    for run in side.runs:
        for key in run.tasks():
            owners.setdefault(key, []).append(run.name)
    clash = {k: v for k, v in owners.items() if len(v) > 1}
    if clash:
        (domain, task), names = next(iter(clash.items()))
        raise UsageError(
            f"{side.source!r} holds {len(names)} runs of {domain}/{task} ({', '.join(names)}); "
            "give the run folders themselves"
        )
    frames = [r.results.assign(run=r.name) for r in side.runs]
    lacking = [r.name for r in side.runs if value not in r.results.columns]
    if lacking:
        raise UsageError(f"run {lacking[0]} of {side.source!r} has no column {value!r} (made before it existed)")
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    cols = ["domain", "task", "metric", "higher_is_better", "kind", "density", "run", "status"]
    df = df[cols + [value]].rename(columns={value: "value"})
    return df.assign(side=side.label)


def density_cells(rows: pd.DataFrame, baseline: str, rtol: float) -> pd.Series:
    """Map each row's density to its cell's density: close densities of different sides share a cell."""
    cell: dict[tuple, float] = {}
    for (domain, task), g in rows.groupby(["domain", "task"], sort=False):
        items = sorted(set(zip(g["density"], g["side"])), key=lambda t: (-t[0], t[1]))
        clusters: list[dict] = []
        for d, s in items:
            c = clusters[-1] if clusters else None
            if c and abs(d - c["anchor"]) <= rtol * c["anchor"] and s not in c["members"]:
                c["members"][s] = d
            else:
                clusters.append({"anchor": d, "members": {s: d}})
        for c in clusters:
            rep = c["members"].get(baseline, c["anchor"])
            for s, d in c["members"].items():
                cell[(domain, task, s, d)] = rep
    return pd.Series(
        [cell[k] for k in zip(rows["domain"], rows["task"], rows["side"], rows["density"])],
        index=rows.index,
        dtype=float,
    )


def _pairs(cells: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(cells.index.get_level_values("domain"), cells.index.get_level_values("task")))


def _tasks(cells: pd.DataFrame) -> set[tuple[str, str]]:
    return set(_pairs(cells))


def _pct(d: float) -> str:
    return f"{d * 100:.3g}%"


def _config_differences(a: Run, b: Run) -> list[str]:
    def flat(meta: dict) -> dict[str, Any]:
        out = {"preset": meta.get("preset"), "git_commit": meta.get("git_commit")}
        out.update(
            pd.json_normalize(meta.get("identity", {}), sep=".").iloc[0].to_dict() if meta.get("identity") else {}
        )
        out.update({f"versions.{k}": v for k, v in (meta.get("versions") or {}).items()})
        return out

    fa, fb = flat(a.meta), flat(b.meta)
    return [f"{k} {fa.get(k)!r} → {fb.get(k)!r}" for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]


def verdict(diff: float, higher_is_better: bool, test: Test, alpha: float, tolerance: float) -> str:
    if not test.tested:
        return "untested"
    if test.p < alpha and abs(diff) > tolerance:
        return "better" if (diff > 0) == higher_is_better else "worse"
    return "same"


def align_tasks(rows: pd.DataFrame, sides: list[Side]) -> tuple[pd.Series, list[str]]:
    """Which rows are compared: tasks both sides have, with the same metric and direction."""
    base, notes = sides[0], []
    metric_of = {
        (s, d, t): (m, h)
        for s, d, t, m, h in rows[["side", "domain", "task", "metric", "higher_is_better"]]
        .drop_duplicates()
        .itertuples(index=False)
    }
    keep = pd.Series(True, index=rows.index)
    base_tasks = {(d, t) for s, d, t in metric_of if s == base.label}
    for side in sides[1:]:
        side_tasks = {(d, t) for s, d, t in metric_of if s == side.label}
        notes += [
            f"{side.label} has {d}/{t}, which {base.label} lacks: not compared"
            for d, t in sorted(side_tasks - base_tasks)
        ]
        notes += [
            f"{side.label} lacks {d}/{t}, which {base.label} has: not compared"
            for d, t in sorted(base_tasks - side_tasks)
        ]
        for d, t in sorted(base_tasks & side_tasks):
            (ma, ha), (mb, hb) = metric_of[(base.label, d, t)], metric_of[(side.label, d, t)]
            if (ma, ha) != (mb, hb):
                notes.append(
                    f"{d}/{t}: {base.label} reports {ma} ({'↑' if ha else '↓'}), {side.label} reports "
                    f"{mb} ({'↑' if hb else '↓'}): not compared"
                )
                keep &= ~((rows["side"] == side.label) & (rows["domain"] == d) & (rows["task"] == t))
                continue
            diffs = _config_differences(base.run_of(d, t), side.run_of(d, t))
            shown = "; ".join(diffs[:8]) + (f"; … and {len(diffs) - 8} more" if len(diffs) > 8 else "")
            notes.append(
                f"{side.label} vs {base.label} on {d}/{t}: "
                + (f"differs in {shown}" if diffs else "same config, commit and versions")
            )
    return keep, notes


def cell_stats(rows: pd.DataFrame) -> pd.DataFrame:
    """Per side and cell: the trained trials' values, n, mean, std, and how many trials failed."""
    keys = ["side", "domain", "task", "metric", "higher_is_better", "kind", "density"]
    rows = rows.assign(ok_value=rows["value"].where(rows["status"] == "ok"))
    stats = (
        rows.groupby(keys, sort=False)
        .agg(
            values=("ok_value", lambda v: [float(x) for x in v if pd.notna(x)]),
            run=("run", "first"),
            own_density=("own_density", "first"),
            failed=("status", lambda s: int((s != "ok").sum())),
        )
        .reset_index()
    )
    stats["n"] = stats["values"].map(len)
    stats["mean"] = stats["values"].map(lambda v: float(np.mean(v)) if v else math.nan)
    stats["std"] = stats["values"].map(lambda v: float(np.std(v, ddof=1)) if len(v) > 1 else math.nan)
    return stats


def unaligned_cells(a: pd.DataFrame, b: pd.DataFrame, label: str) -> list[str]:
    """Cells of tasks both sides have that only one side measured (other densities, other controls)."""
    notes = []
    only_a = a[[p in _tasks(b) for p in _pairs(a)]].index.difference(b.index)
    only_b = b[[p in _tasks(a) for p in _pairs(b)]].index.difference(a.index)
    for missing, says in ((only_a, f"{label} lacks"), (only_b, f"only {label} has")):
        cells = missing.to_frame(index=False)
        kinds = cells.groupby(["domain", "task", "density"], sort=False)["kind"].agg(lambda k: ", ".join(kind_order(k)))
        for (d, t, ks), g in kinds.reset_index().groupby(["domain", "task", "kind"], sort=False):
            dens = ", ".join(_pct(x) for x in sorted(g["density"], reverse=True))
            notes.append(f"{says} {d}/{t} at {dens} ({ks}): not compared")
    return notes


def cell_difference(ra: pd.Series, rb: pd.Series, key: tuple, side: str, cfg: CompareConfig) -> dict[str, Any]:
    test = welch(ra["values"], rb["values"])
    diff = rb["mean"] - ra["mean"]
    tol = cfg.tolerance_at(ra["mean"])
    v = verdict(diff, bool(ra["higher_is_better"]), test, cfg.alpha, tol)
    if rb["n"] == 0 and ra["n"] > 0:
        v = "failed"  # every trial of the later side diverged or failed where the baseline trained
    return {
        "domain": key[0],
        "task": key[1],
        "kind": key[2],
        "density": key[3],
        "metric": ra["metric"],
        "higher_is_better": bool(ra["higher_is_better"]),
        "value": cfg.value,
        "base": "A",
        "base_run": ra["run"],
        "base_n": ra["n"],
        "base_mean": ra["mean"],
        "base_std": ra["std"],
        "side": side,
        "run": rb["run"],
        "density_here": rb["own_density"],
        "n": rb["n"],
        "failed": rb["failed"],
        "mean": rb["mean"],
        "std": rb["std"],
        "diff": diff,
        "tolerance": tol,
        "t": test.t,
        "p": test.p,
        "untested_why": test.why,
        "verdict": v,
    }


def flag_regressions(diffs: pd.DataFrame, cfg: CompareConfig) -> pd.DataFrame:
    """A checked cell regresses when it is worse beyond tolerance at the corrected p, or failed outright.

    The family of the correction is every tested cell of the checked kinds of one later run: with many
    densities, an uncorrected 5% test per cell would fail CI on noise most of the time.
    """
    checked = diffs["kind"].isin(cfg.kinds())
    diffs["p_adj"] = math.nan
    for _, g in diffs[checked].groupby("side"):
        diffs.loc[g.index, "p_adj"] = CORRECTIONS.get(cfg.correction)(g["p"].tolist())
    gain = diffs["diff"].where(diffs["higher_is_better"], -diffs["diff"])
    worse = (gain < 0) & (diffs["diff"].abs() > diffs["tolerance"]) & (diffs["p_adj"] < cfg.alpha)
    diffs["regression"] = checked & (worse | (diffs["verdict"] == "failed"))
    return diffs


def compare(sources: list[list[Run]], cfg: CompareConfig) -> Comparison:
    if len(sources) > len(string.ascii_uppercase):
        raise UsageError(f"at most {len(string.ascii_uppercase)} runs or folders of runs at once")
    sides = [Side(label, src, runs) for label, src, runs in zip(string.ascii_uppercase, cfg.runs, sources)]
    rows = pd.concat([side_rows(s, cfg.value) for s in sides], ignore_index=True)
    keep, notes = align_tasks(rows, sides)
    rows = rows[keep].copy()
    rows["own_density"] = rows["density"]
    if not rows.empty:
        rows["density"] = density_cells(rows, "A", cfg.density_rtol)
    stats = cell_stats(rows)

    by_side = {s.label: stats[stats["side"] == s.label].set_index(CELL) for s in sides}
    diff_rows = []
    for side in sides[1:]:
        a, b = by_side["A"], by_side[side.label]
        notes += unaligned_cells(a, b, side.label)
        diff_rows += [
            cell_difference(a.loc[k], b.loc[k], k, side.label, cfg) for k in a.index.intersection(b.index, sort=False)
        ]
    diffs = pd.DataFrame(diff_rows)
    if not diffs.empty:
        diffs = flag_regressions(diffs, cfg)
        order = {k: i for i, k in enumerate(kind_order(diffs["kind"]))}
        diffs = diffs.sort_values(
            ["domain", "task", "side", "density", "kind"],
            ascending=[True, True, True, False, True],
            key=lambda s: s.map(order) if s.name == "kind" else s,
        ).reset_index(drop=True)
        untested = int((diffs["verdict"] == "untested").sum())
        if untested:
            notes.append(
                f"{untested} cell(s) untested (fewer than 2 trials on a side, or no spread): "
                "never counted as better or worse"
            )
    return Comparison(cfg, sides, stats, diffs, notes)


# ---- rendering ---------------------------------------------------------------------------------
def _stat_cell(n: int, mean: float, std: float) -> str:
    if n == 0 or pd.isna(mean):
        return "—"
    return f"{mean:.4g} ({n})" if n < 2 else f"{mean:.4g} ± {std:.2g} ({n})"


VERDICT_TEXT = {
    "better": "▲ better",
    "worse": "▼ worse",
    "same": "≈ same",
    "untested": "? untested",
    "failed": "✗ failed",
}


def task_tables(comp: Comparison) -> list[tuple[str, pd.DataFrame, list[bool]]]:
    """Per task: one row per cell (density, kind); per side its stats, per later side Δ, p and verdict."""
    out = []
    stats = comp.stats
    later = [s.label for s in comp.sides[1:]]
    for (domain, task), g in stats.groupby(["domain", "task"], sort=False):
        base_g = g[g["side"] == comp.sides[0].label]
        if base_g.empty:
            continue
        metric, higher = base_g["metric"].iloc[0], bool(base_g["higher_is_better"].iloc[0])
        title = (
            f"{domain} · {task} — {metric} ({'↑' if higher else '↓'}), {comp.config.value}: "
            f"{VALUE_HELP[comp.config.value]}"
        )
        cells = g[CELL].drop_duplicates()
        order = {k: i for i, k in enumerate(kind_order(cells["kind"]))}
        cells = cells.assign(o=cells["kind"].map(order)).sort_values(["density", "o"], ascending=[False, True])
        idx = g.set_index(["side"] + CELL)
        d = comp.diffs.set_index(["side"] + CELL) if not comp.diffs.empty else None
        rows, flags = [], []
        for _, c in cells.iterrows():
            key = (c["domain"], c["task"], c["kind"], c["density"])
            row = {"kind": c["kind"], "density": _pct(c["density"])}
            regression = False
            for s in comp.sides:
                k = (s.label, *key)
                if k in idx.index:
                    r = idx.loc[k]
                    cell = _stat_cell(r["n"], r["mean"], r["std"])
                    if r["failed"]:
                        cell += f" [{r['failed']} failed]"
                    if abs(r["own_density"] - c["density"]) > 1e-9:
                        cell += f" @{r['own_density'] * 100:.4g}%"
                else:
                    cell = "—"
                row[s.label] = cell
                if s.label in later:
                    if d is not None and k in d.index:
                        x = d.loc[k]
                        row[f"Δ {s.label}−A"] = f"{x['diff']:+.3g}"
                        p = fmt_p(Test(x["t"], x["p"], x["untested_why"]))
                        if comp.config.correction != "none" and pd.notna(x["p_adj"]):
                            p += f" ({comp.config.correction} {x['p_adj']:.2g})"
                        row[f"p {s.label}"] = p
                        row[f"{s.label} vs A"] = VERDICT_TEXT[x["verdict"]]
                        regression |= bool(x["regression"])
                    else:
                        row[f"Δ {s.label}−A"] = row[f"p {s.label}"] = row[f"{s.label} vs A"] = ""
            rows.append(row)
            flags.append(regression)
        out.append((title, pd.DataFrame(rows), flags))
    return out


def legend(comp: Comparison) -> list[str]:
    lines = []
    for s in comp.sides:
        runs = ", ".join(f"{r.name} [{'; '.join(f'{d}/{t}' for d, t in r.tasks())}]" for r in s.runs)
        lines.append(f"{s.label} = {s.source}: {runs}")
    cfg = comp.config
    lines.append(
        f"significance: {TEST}; α = {cfg.alpha}; a difference counts when |Δ| > {cfg.tolerance_text()} "
        f"and p < α; densities within {cfg.density_rtol:.0%} share a cell"
    )
    lines.append(
        f"regression: a {', '.join(cfg.kinds())} cell worse than A beyond the tolerance at the "
        + (
            "uncorrected p"
            if cfg.correction == "none"
            else f"{cfg.correction}-corrected p (over the tested {', '.join(cfg.kinds())} cells of each run)"
        )
        + ", or whose every trial failed; shown in red (table) or bold (md)"
    )
    return lines


def gate_message(comp: Comparison) -> tuple[int, str]:
    """Exit code and one line for --fail-on-regression."""
    kinds, cfg = ",".join(comp.config.kinds()), comp.config
    checked = comp.checked()
    if checked.empty:
        return (
            1,
            f"regression check: no {kinds} cells aligned between {comp.sides[0].label} and the later runs; "
            "nothing was checked",
        )
    reg = comp.regressions
    how = f"at α = {cfg.alpha}" + ("" if cfg.correction == "none" else f" ({cfg.correction}-corrected)")
    if reg.empty:
        untested = int((checked["verdict"] == "untested").sum())
        extra = f" ({untested} untested)" if untested else ""
        return (
            0,
            f"regression check passed: {len(checked)} {kinds} cells{extra}, none worse than A beyond tolerance "
            f"{cfg.tolerance_text()} {how}",
        )
    items = "; ".join(
        f"{r.side}: {r.domain}/{r.task} {r.kind} at {_pct(r.density)} {r.base_mean:.4g} → "
        + (
            f"all {r.failed} trials failed"
            if r.verdict == "failed"
            else f"{r.mean:.4g} (p={r.p:.2g}, adjusted {r.p_adj:.2g})"
        )
        for r in reg.itertuples()
    )
    return (
        1,
        f"REGRESSION: {len(reg)} {kinds} cell(s) failed or worse than A beyond tolerance {cfg.tolerance_text()} "
        f"{how}: {items}",
    )


def cost_views(comp: Comparison) -> list[tuple[str, pd.DataFrame]]:
    """Ticket score beside the cost of finding it, and each run's total (benchmarks/cost.py); none where no
    run has the cost columns."""
    runs = [r for s in comp.sides for r in s.runs]
    wide, tot = side_by_side(runs), totals(runs)
    if wide.empty:
        return []
    return [("Ticket score and discovery steps", wide), ("Total discovery cost", shown(tot))]


@FORMATS.register("table")
def render_table(comp: Comparison, out: TextIO) -> None:
    console = Console(file=out, width=None if out.isatty() else 200)
    for line in legend(comp):
        console.print(line, highlight=False, markup=False)
    for title, df, flags in task_tables(comp):
        table = Table(title=title, title_justify="left")
        for col in df.columns:
            table.add_column(col, justify="left" if col in ("kind", "density") or "vs" in col else "right")
        for (_, row), bad in zip(df.iterrows(), flags):
            table.add_row(*[str(v) for v in row], style="bold red" if bad else None)
        console.print(table)
    for n in comp.notes:
        console.print(f"• {n}", highlight=False, markup=False)
    for title, df in cost_views(comp):
        table = Table(title=title, title_justify="left")
        for col in df.columns:
            table.add_column(str(col))
        for _, row in df.iterrows():
            table.add_row(*[str(v) for v in row])
        console.print(table)


@FORMATS.register("md")
def render_md(comp: Comparison, out: TextIO) -> None:
    parts = ["# Comparison\n", *[f"- {line}" for line in legend(comp)], ""]
    for title, df, flags in task_tables(comp):
        if any(flags):
            df = df.assign(
                **{df.columns[0]: [f"**{k}** (regression)" if f else k for k, f in zip(df[df.columns[0]], flags)]}
            )
        parts += [f"## {title}\n", df.to_markdown(index=False, disable_numparse=True), ""]
    if comp.notes:
        parts += ["## Not compared and notes\n", *[f"- {n}" for n in comp.notes], ""]
    for title, df in cost_views(comp):
        parts += [f"## {title}\n", df.to_markdown(index=False, disable_numparse=True), ""]
    out.write("\n".join(parts) + "\n")


CSV_COLUMNS = [
    "domain",
    "task",
    "metric",
    "higher_is_better",
    "value",
    "kind",
    "density",
    "base",
    "base_run",
    "base_n",
    "base_mean",
    "base_std",
    "side",
    "run",
    "density_here",
    "n",
    "failed",
    "mean",
    "std",
    "diff",
    "tolerance",
    "t",
    "p",
    "p_adj",
    "untested_why",
    "verdict",
    "regression",
]


@FORMATS.register("csv")
def render_csv(comp: Comparison, out: TextIO) -> None:
    df = comp.diffs if not comp.diffs.empty else pd.DataFrame(columns=CSV_COLUMNS)
    df[CSV_COLUMNS].to_csv(out, index=False)
    for n in comp.notes:  # stdout stays a clean table
        print(f"note: {n}", file=sys.stderr)


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v.item() if hasattr(v, "item") else v


@FORMATS.register("json")
def render_json(comp: Comparison, out: TextIO) -> None:
    doc = {
        "test": TEST,
        "alpha": comp.config.alpha,
        "tolerance": comp.config.tolerance,
        "rel_tolerance": comp.config.rel_tolerance,
        "correction": comp.config.correction,
        "value": comp.config.value,
        "sides": [{"label": s.label, "source": s.source, "runs": [str(r.path) for r in s.runs]} for s in comp.sides],
        "cells": comp.stats.to_dict(orient="records"),
        "comparisons": comp.diffs.to_dict(orient="records") if not comp.diffs.empty else [],
        "notes": comp.notes,
    }
    json.dump(_clean(doc), out, indent=2, ensure_ascii=False)
    out.write("\n")


def parse(argv: list[str]) -> CompareConfig:
    parser = OneLineParser(prog=PROG, description=__doc__)
    parser.add_arguments(CompareConfig, dest="cfg")
    cfg = parser.parse_args(argv).cfg
    cfg.validate()
    return cfg


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        cfg = parse(argv)
        comp = compare(load_sources(cfg.runs), cfg)
        render = FORMATS.get(cfg.format)
    except UsageError as e:
        fail(str(e))
    render(comp, sys.stdout)
    if not cfg.fail_on_regression:
        return 0
    code, message = gate_message(comp)
    print(message, file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
