"""Score against the cost of finding the ticket, run beside run (an IMP run and an early-bird run, say): per
task and density the ticket's mean score and mean `discovery_steps` / `discovery_flops` (lth_core/ticket_cost.py),
and per run the total: the steps spent to find all its tickets (the largest discovery cost of a trial's
tickets: IMP's deepest level, early bird's dense training up to its stop). Used by benchmarks.compare and
benchmarks.report; runs made before the cost columns existed are left out."""

from __future__ import annotations

import io

import pandas as pd

from benchmarks.run_folders import Run

COST = ["discovery_steps", "discovery_flops"]


def _schedule(run: Run) -> str:
    return str(run.meta.get("imp", {}).get("schedule", "?"))


def cost_rows(runs: list[Run]) -> pd.DataFrame:
    """One row per run x task x density of its tickets: schedule, n, score mean, discovery steps / FLOPs mean,
    and the fraction of the budget at which early-bird tickets were declared (mean of eb_step / budget)."""
    out = []
    for run in runs:
        ok = run.ok
        if "discovery_steps" not in ok.columns:
            continue
        t = ok[ok["kind"] == "ticket"].copy()
        budget = float(run.meta.get("budget") or float("nan"))
        t["eb_fraction"] = t["eb_step"] / budget if "eb_step" in t.columns else float("nan")
        for c in COST:
            t[c] = pd.to_numeric(t[c], errors="coerce") if c in t.columns else float("nan")
        for (domain, task, density), g in t.groupby(["domain", "task", t["density"].round(6)], sort=False):
            out.append(
                {
                    "domain": domain,
                    "task": task,
                    "run": run.name,
                    "schedule": _schedule(run),
                    "density": density,
                    "n": len(g),
                    "score": g["score"].mean(),
                    "score_std": g["score"].std(),
                    "discovery_steps": g["discovery_steps"].mean(),
                    "discovery_flops": g["discovery_flops"].mean(),
                    "eb_fraction": g["eb_fraction"].mean(),
                }
            )
    return pd.DataFrame(out)


def totals(runs: list[Run]) -> pd.DataFrame:
    """Per run and task: the mean over trials of the steps (FLOPs) spent to find every ticket of the trial."""
    out = []
    for run in runs:
        ok = run.ok
        if "discovery_steps" not in ok.columns:
            continue
        t = ok[ok["kind"] == "ticket"]
        for (domain, task), g in t.groupby(["domain", "task"], sort=False):
            per_trial = g.groupby("trial")[[c for c in COST if c in g.columns]].max()
            out.append(
                {
                    "domain": domain,
                    "task": task,
                    "run": run.name,
                    "schedule": _schedule(run),
                    "trials": len(per_trial),
                    "total discovery steps": per_trial["discovery_steps"].mean(),
                    "total discovery FLOPs": per_trial.get("discovery_flops", pd.Series(dtype=float)).mean(),
                    "budget": run.meta.get("budget"),
                }
            )
    return pd.DataFrame(out)


def shown(df: pd.DataFrame) -> pd.DataFrame:
    """For a table on a page: numbers rounded, empty cells as '—'."""
    return df.round(1).astype(object).where(df.notna(), "—")


def side_by_side(runs: list[Run]) -> pd.DataFrame:
    """Density rows; per run 'score' and 'steps' columns (mean over trials), for the md and table outputs."""
    rows = cost_rows(runs)
    if rows.empty:
        return rows
    rows = rows.assign(label=rows["run"] + " " + rows["schedule"])
    cells = rows.assign(
        score=[f"{m:.4g} ± {0 if pd.isna(s) else s:.2g} ({n})" for m, s, n in zip(rows.score, rows.score_std, rows.n)],
        steps=[f"{v:.4g}" for v in rows.discovery_steps],
    )
    wide = cells.pivot_table(
        index=["domain", "task", "density"], columns="label", values=["score", "steps"], aggfunc="first"
    )
    wide.columns = [f"{label} {what}" for what, label in wide.columns]
    wide = wide[sorted(wide.columns)].reset_index().sort_values(["domain", "task", "density"], ascending=False)
    wide["density"] = (wide["density"] * 100).map(lambda d: f"{d:.3g}%")
    return wide.fillna("—")


def cost_png(runs: list[Run]) -> bytes | None:
    """Ticket score against discovery steps, one line per run and task (points = densities)."""
    rows = cost_rows(runs)
    if rows.empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for (run, task, schedule), g in rows.groupby(["run", "task", "schedule"], sort=False):
        g = g.sort_values("density", ascending=False)
        ax.errorbar(
            g["discovery_steps"],
            g["score"],
            yerr=g["score_std"].fillna(0),
            marker="o",
            capsize=2,
            label=f"{task} · {schedule} ({run})",
        )
        for x, y, d in zip(g["discovery_steps"], g["score"], g["density"]):
            ax.annotate(f"{d * 100:.2g}%", (x, y), fontsize=6, xytext=(2, 2), textcoords="offset points")
    ax.set_xlabel("training steps spent to find the ticket (discovery_steps)")
    ax.set_ylabel("ticket score (test, at early stop)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
