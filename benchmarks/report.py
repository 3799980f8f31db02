"""`python -m benchmarks.report RUN ... [--out FILE]`: one self-contained HTML page for one or many runs.

Per run: the Frankle & Carbin Figure-1 pair (lth_core.figures), the summary tables, where each kind falls
off (benchmarks.falloff defines it), the config, package versions and commit. With several runs, an overview
across domains heads the page. Instability analyses among the sources (benchmarks.instability's folders) get
a section of their own: the barrier against k per density and the metric along the paths. Plots are embedded
as base64 PNG and there is no script or external link, so the file opens anywhere without a network. The page
is rendered by jinja2 with autoescaping (templates/report.html.j2): every string read from a run folder is text
on the page, never markup. The folders read are never written: the default output is report.html in the current
folder, and an --out inside a run folder given is refused.
"""

from __future__ import annotations

import base64
import io
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import jinja2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

from benchmarks.cli import OneLineParser, fail  # noqa: E402
from benchmarks.cost import cost_png, shown, totals  # noqa: E402
from benchmarks.falloff import DEFINITION, FallOff, falloffs  # noqa: E402
from benchmarks.lmc_report import analysis_context, find_analyses  # noqa: E402
from benchmarks.run_folders import Run, load_sources  # noqa: E402
from benchmarks.significance import TEST, fmt_p, welch  # noqa: E402
from lth_core.atomic import atomic_write_text  # noqa: E402
from lth_core.config import opt  # noqa: E402
from lth_core.errors import UsageError  # noqa: E402
from lth_core.figures import figure1  # noqa: E402
from lth_core.tables import gaps, kind_order  # noqa: E402

PROG = "python -m benchmarks.report"


@dataclass
class ReportConfig:
    """Write one HTML page for the given runs (see the module docstring)."""

    runs: list[str] = opt(
        [], "run folders or folders of runs", positional=True, custom_args={"nargs": "+", "metavar": "RUN"}
    )
    out: str = opt("report.html", "HTML file to write (not inside a RUN folder: those are only read)")
    falloff_tolerance: float = opt(
        0.02, "a kind matches the dense network while its mean is within this fraction of |dense mean|"
    )
    alpha: float = opt(0.05, "significance level shown beside ticket-vs-control differences")
    claims: str = opt("", "a folder written by benchmarks.claims (its claims.csv): the verdicts head the page")

    def validate(self) -> None:
        if not 0.0 <= self.falloff_tolerance < 1.0:
            raise UsageError(f"--falloff-tolerance {self.falloff_tolerance} must be in [0, 1)")
        if not 0.0 < self.alpha < 1.0:
            raise UsageError(f"--alpha {self.alpha} must be in (0, 1)")

    def output(self, runs: list[Run], analyses: list[Path] = []) -> Path:
        out = Path(self.out or "report.html")
        if out.is_dir():
            raise UsageError(f"--out {self.out!r} is a folder; give a file name such as {out / 'report.html'}")
        if out.parent.exists() and not out.parent.is_dir():
            raise UsageError(f"--out {self.out!r}: {out.parent} is a file, not a folder")
        inside = [f for f in [*(r.path for r in runs), *analyses] if out.resolve().is_relative_to(f)]
        if inside:
            raise UsageError(
                f"--out {self.out!r} lies inside the run folder {inside[0]}, which report only reads; "
                "give a file outside it"
            )
        return out


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;
  padding:0 1em;color:#222}
h1{border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #aaa}h3{margin-top:1.5em}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}
img{max-width:100%;height:auto;border:1px solid #ddd}
.scroll{max-width:100%;overflow-x:auto}h1,h2,h3,h4,p,summary{overflow-wrap:anywhere}.note{color:#555;font-size:.9em}.bad{color:#a00}
details{margin:.5em 0}summary{cursor:pointer;font-weight:600}code{background:#f4f4f4;padding:0 .2em}
"""


# ---- pieces ------------------------------------------------------------------------------------
def _pct(d: float | None) -> str:
    return "—" if d is None or (isinstance(d, float) and math.isnan(d)) else f"{d * 100:.3g}%"


def _cell(mean: float, std: float, n: int) -> str:
    if n == 0 or pd.isna(mean):
        return "—"
    return f"{mean:.4g} ({n})" if n < 2 or pd.isna(std) else f"{mean:.4g} ± {std:.2g} ({n})"


def png(data: bytes, alt: str) -> dict:
    return {"alt": alt, "data": base64.b64encode(data).decode()}


def figure1_png(summary: pd.DataFrame) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "figure1.png"
        figure1(summary, path)
        return path.read_bytes()


def _text(v: object) -> object:
    """A cell as the page shows it; a link (dict) stays one, for the template to build."""
    if isinstance(v, dict):
        return v
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def table(df: pd.DataFrame) -> dict:
    """Columns and rows of text for the template, which escapes every cell."""
    rows = [[_text(v) for v in row] for row in df.itertuples(index=False)]
    return {"columns": [str(c) for c in df.columns], "rows": rows}


def kv_table(items: dict) -> dict:
    return table(pd.DataFrame({"key": list(items), "value": [str(v) for v in items.values()]}))


def score_table(summary: pd.DataFrame, ok: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Density rows, a column per kind, and the ticket − best control gap with its Welch p-value."""
    s = summary[summary["n"] > 0].assign(
        cell=lambda x: [_cell(m, d, n) for m, d, n in zip(x["score_mean"], x["score_std"], x["n"])]
    )
    wide = s.pivot_table(index=["level", "density"], columns="kind", values="cell", aggfunc="first")
    wide = wide[kind_order(wide.columns)].reset_index()
    wide.columns.name = None
    g = gaps(summary)
    gap_col, p_col = [], []
    for lv, d in zip(wide["level"], wide["density"]):
        row = g[g["level"] == lv] if not g.empty else g
        if row.empty:
            gap_col.append("")
            p_col.append("")
            continue
        r = row.iloc[0]
        test = welch(
            ok.loc[(ok["level"] == lv) & (ok["kind"] == "ticket"), "score"],
            ok.loc[(ok["level"] == lv) & (ok["kind"] == r["best_control"]), "score"],
        )
        star = " *" if test.significant(alpha) else ""
        gap_col.append(f"{r['ticket_minus_best_control']:+.4g} (vs {r['best_control']})")
        p_col.append(fmt_p(test) + star)
    wide["ticket − best control"] = gap_col
    wide["p (Welch)"] = p_col
    wide["density"] = wide["density"].map(_pct)
    return wide.fillna("—")


def early_stop_table(summary: pd.DataFrame) -> pd.DataFrame:
    s = summary[summary["n"] > 0].assign(
        cell=lambda x: [_cell(m, d, n) for m, d, n in zip(x["early_stop_step_mean"], x["early_stop_step_std"], x["n"])]
    )
    wide = s.pivot_table(index=["level", "density"], columns="kind", values="cell", aggfunc="first")
    wide = wide[kind_order(wide.columns)].reset_index()
    wide.columns.name = None
    wide["density"] = wide["density"].map(_pct)
    return wide.fillna("—")


def falloff_table(fo: list[FallOff], alpha: float) -> pd.DataFrame:
    rows = []
    for f in fo:
        if f.falls_off_at is None:
            rows.append(
                {
                    "kind": f.kind,
                    "matches dense down to": _pct(f.matches_down_to),
                    "falls off at": "does not fall off",
                    "mean there": "—",
                    "p vs dense there": "—",
                    "note": f"inside the band at every measured density (lowest {_pct(f.lowest_measured)})",
                }
            )
            continue
        p = fmt_p(f.vs_dense) + (" *" if f.vs_dense.significant(alpha) else "")
        rows.append(
            {
                "kind": f.kind,
                "matches dense down to": _pct(f.matches_down_to)
                if f.matches_down_to is not None
                else "never (outside at the first pruned density)",
                "falls off at": _pct(f.falls_off_at),
                "mean there": _cell(f.mean_there, f.std_there, f.n_there),
                "p vs dense there": p,
                "note": "",
            }
        )
    return pd.DataFrame(rows)


# ---- sections ----------------------------------------------------------------------------------
@dataclass
class TaskView:
    run: Run
    domain: str
    task: str
    summary: pd.DataFrame
    ok: pd.DataFrame
    fo: list[FallOff]

    @property
    def anchor(self) -> str:
        return f"{self.run.name}-{self.task}".replace("/", "-").replace(" ", "-")

    @property
    def higher(self) -> bool:
        return bool(self.summary["higher_is_better"].iloc[0])


def task_views(runs: list[Run], rel_tol: float) -> list[TaskView]:
    views = []
    for run in runs:
        if run.summary.empty:  # no job finished yet
            continue
        for (domain, task), s in run.summary.groupby(["domain", "task"], sort=False):
            ok = run.ok[(run.ok["domain"] == domain) & (run.ok["task"] == task)]
            views.append(TaskView(run, domain, task, s, ok, falloffs(s, ok, rel_tol)))
    return sorted(views, key=lambda v: v.domain)  # stable: the given order within a domain


def overview(views: list[TaskView]) -> dict:
    rows = []
    for v in views:
        s = v.summary[v.summary["n"] > 0]
        dense = s[s["kind"] == "dense"]
        pruned = s[s["kind"] != "dense"]
        row = {
            "domain": v.domain,
            "task": {"href": v.anchor, "text": str(v.task)},
            "run": v.run.name,
            "metric": f"{v.summary['metric'].iloc[0]} ({'↑' if v.higher else '↓'})",
            "dense": _cell(dense["score_mean"].iloc[0], dense["score_std"].iloc[0], dense["n"].iloc[0])
            if not dense.empty
            else "—",
        }
        if not pruned.empty:
            low = pruned["density"].min()
            at = s[(s["density"] - low).abs() < 1e-9]
            row["lowest density"] = _pct(low)
            for kind in kind_order(at["kind"]):
                r = at[at["kind"] == kind].iloc[0]
                row[f"{kind} there"] = _cell(r["score_mean"], r["score_std"], r["n"])
        for f in v.fo:
            row[f"{f.kind} falls off at"] = "—" if f.falls_off_at is None else _pct(f.falls_off_at)
        rows.append(row)
    return table(pd.DataFrame(rows).fillna("—"))


def spaced_ticks(values: list[float], slots: int = 8) -> list[float]:
    """Densities (in %) to label on one log axis: from the largest down, each at least 1/`slots` of the axis's
    log span from the last one kept, so no two labels share a place however close two densities are."""
    ticks = sorted({v for v in values if v > 0}, reverse=True)
    if len(ticks) < 2:
        return ticks
    gap = (math.log10(ticks[0]) - math.log10(ticks[-1])) / slots
    kept = [ticks[0]]
    for v in ticks[1:]:
        if math.log10(kept[-1]) - math.log10(v) >= gap:
            kept.append(v)
    return kept


def advantage_figure(views: list[TaskView]) -> plt.Figure | None:
    """Ticket minus best control, as a fraction of |dense mean|, one axis per task (each its own density ticks)."""
    series = []
    for v in views:
        g = gaps(v.summary)
        dense = v.summary[(v.summary["kind"] == "dense") & (v.summary["n"] > 0)]
        if g.empty or dense.empty or dense["score_mean"].iloc[0] == 0:
            continue
        scale = abs(float(dense["score_mean"].iloc[0]))
        series.append((v, g.sort_values("density", ascending=False), scale))
    if not series:
        return None
    fig, axes = plt.subplots(len(series), 1, figsize=(8, 0.9 + 2.4 * len(series)), squeeze=False, sharey=True)
    for ax, (v, g, scale) in zip(axes[:, 0], series):
        x = list(g["density"] * 100)
        ax.plot(x, g["advantage"] / scale * 100, marker="o")
        ax.set_title(f"{v.domain} · {v.task} ({v.run.name})", fontsize=9, loc="left")
        ax.axhline(0, color="gray", linewidth=1, linestyle=":")
        ax.set_xscale("log")
        if len(set(x)) > 1:
            ax.set_xlim(max(x) * 1.15, min(x) / 1.15)  # decreasing to the right, as figure1
        else:
            ax.invert_xaxis()
        ax.xaxis.set_major_formatter(FuncFormatter(lambda t, _: f"{t:.3g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(spaced_ticks(x))
        ax.grid(True, which="both", alpha=0.3)
    axes[-1, 0].set_xlabel("percent of weights remaining")
    fig.supylabel("ticket advantage over best control\n(% of |dense mean|; > 0 = ticket better)", fontsize=9)
    fig.tight_layout()
    return fig


def advantage_png(views: list[TaskView]) -> bytes | None:
    fig = advantage_figure(views)
    if fig is None:
        return None
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def run_facts(run: Run) -> tuple[dict, list[tuple[str, dict]]]:
    m = run.meta
    facts = {
        "run folder": run.path,
        "config hash": m.get("config_hash"),
        "preset": m.get("preset") or "—",
        "git commit": m.get("git_commit"),
        "budget (steps)": m.get("budget"),
        "rewind step": m.get("rewind_step"),
        "seed": m.get("seed"),
        "architecture hash": m.get("architecture_hash"),
        "ticket from": _ticket_from(m.get("ticket_from")),
        "created": m.get("created"),
        "finished": m.get("finished", "not finished"),
        "files recovered from corruption": "; ".join(map(str, m.get("recovered") or [])) or "none",
    }
    details = [
        (title, kv_table(m[key]))
        for title, key in (
            ("IMP config", "imp"),
            ("domain config", "domain_config"),
            ("package versions", "versions"),
            ("prunable tensors (group)", "prunable"),
            ("rates per tensor", "rates"),
        )
        if isinstance(m.get(key), dict) and m[key]
    ]
    return kv_table(facts), details


def _ticket_from(t: object) -> str:
    return str(t.get("path", "—")) if isinstance(t, dict) else "—"


def task_context(v: TaskView, cfg: ReportConfig) -> dict:
    s = v.summary
    bad = s[(s["diverged"] > 0) | (s["failed"] > 0)]
    facts, details = run_facts(v.run)
    return {
        "domain": str(v.domain),
        "task": str(v.task),
        "run": v.run.name,
        "anchor": v.anchor,
        "higher": v.higher,
        "metric": s["metric"].iloc[0],
        "figure": png(figure1_png(s), f"Figure 1 of {v.task}"),
        "scores": table(score_table(s, v.ok, cfg.alpha)),
        "early_stop": table(early_stop_table(s)),
        "falloff": table(falloff_table(v.fo, cfg.alpha)) if v.fo else None,
        "band_edge": f"{v.fo[0].threshold:.4g}" if v.fo else "",
        "bad": (
            f"{int(bad['diverged'].sum())} diverged and {int(bad['failed'].sum())} failed jobs are left out "
            "of the means (see results.csv, column error)."
        )
        if not bad.empty
        else "",
        "facts": facts,
        "config": details,
    }


TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


CLAIM_COLUMNS = ["claim", "verdict", "effect", "p", "holds_at", "detail", "source"]


def claims_table(folder: str) -> dict | None:
    """The verdict table of a benchmarks.claims folder (read only), or None when no folder is given."""
    if not folder:
        return None
    csv = Path(folder) / "claims.csv"
    try:
        df = pd.read_csv(csv, keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise UsageError(f"--claims {folder!r}: {csv} is not a readable claims table ({type(e).__name__})") from None
    missing = [c for c in CLAIM_COLUMNS if c not in df.columns]
    if missing:
        raise UsageError(f"--claims {folder!r}: {csv} lacks the columns {missing}")
    p = pd.to_numeric(df["p"], errors="coerce")
    df["p"] = ["" if math.isnan(v) else (f"{v:.2g}" if v >= 1e-3 else f"{v:.0e}") for v in p]
    return table(df[CLAIM_COLUMNS])


def build_html(runs: list[Run], cfg: ReportConfig, analyses: list[Path] = []) -> str:
    views = task_views(runs, cfg.falloff_tolerance) if runs else []
    if not views and not analyses:
        raise UsageError("the runs given have no finished jobs yet; nothing to report")
    adv = advantage_png(views) if views else None
    schedules = {str(r.meta.get("imp", {}).get("schedule")) for r in runs}
    cost_fig = cost_png(runs) if len(schedules) > 1 else None  # e.g. an IMP run beside an early-bird run
    return TEMPLATES.get_template("report.html.j2").render(
        css=CSS,
        n_runs=len(runs),
        generated=time.strftime("%Y-%m-%d %H:%M:%S"),
        commits=sorted({str(r.meta.get("git_commit")) for r in runs}),
        overview=overview(views) if views else None,
        claims=claims_table(cfg.claims),
        definition=DEFINITION.format(tol=cfg.falloff_tolerance),
        test=TEST,
        alpha=cfg.alpha,
        advantage=png(adv, "ticket advantage across tasks") if adv is not None else None,
        cost={"figure": png(cost_fig, "score against discovery cost"), "totals": table(shown(totals(runs)))}
        if cost_fig is not None
        else None,
        domains=list(dict.fromkeys(str(v.domain) for v in views)),
        views=[task_context(v, cfg) for v in views],
        instability=[analysis_context(f, table, png) for f in analyses],
    )


def write_report(cfg: ReportConfig) -> Path:
    runs = [r for side in load_sources(cfg.runs) for r in side]
    analyses = find_analyses(cfg.runs)
    out = cfg.output(runs, analyses)
    page = build_html(runs, cfg, analyses)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, page)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = OneLineParser(prog=PROG, description=__doc__)
    parser.add_arguments(ReportConfig, dest="cfg")
    try:
        cfg = parser.parse_args(argv).cfg
        cfg.validate()
        out = write_report(cfg)
    except UsageError as e:
        fail(str(e))
    print(f"report: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
