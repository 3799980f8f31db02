"""The standard tables of a run: results.csv (one row per job), densities.csv (one row per job and pruned tensor),
summary.csv and summary.md.

Level 0 is recorded as kind 'dense' at density 1.0: the reference every curve starts from.
'ticket − best control' compares the ticket's mean with the best control mean at each density, in the
metric's units; `advantage` has the sign flipped for lower-is-better metrics so that > 0 always means
the ticket did better.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from lth_core.atomic import atomic_write, atomic_write_text

if TYPE_CHECKING:
    from lth_core.store import RunStore

CONTRACT_COLUMNS = [
    "domain",
    "task",
    "kind",
    "level",
    "trial",
    "density",
    "metric",
    "score",
    "early_stop_step",
    "final_score",
    "higher_is_better",
    "seed",
    "wall_seconds",
    "config_hash",
    "status",
]
STATS = ["score", "early_stop_step", "final_score"]


def rows_frame(records: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame([r["row"] for r in records])
    if df.empty:
        return pd.DataFrame(columns=CONTRACT_COLUMNS)
    first = [c for c in CONTRACT_COLUMNS if c in df.columns]
    df = df[first + [c for c in df.columns if c not in first]]
    return df.sort_values(["level", "kind", "trial"], kind="stable").reset_index(drop=True)


DENSITY_COLUMNS = ["kind", "level", "trial", "tensor", "kept", "total", "density"]


def densities_frame(records: list[dict]) -> pd.DataFrame:
    """Per-tensor density of every job's mask (its record's `tensors`: name -> [kept, total])."""
    rows = [
        {
            "kind": r["row"]["kind"],
            "level": r["row"]["level"],
            "trial": r["row"]["trial"],
            "tensor": n,
            "kept": int(k),
            "total": int(t),
            "density": int(k) / int(t) if int(t) else 0.0,
        }
        for r in records
        for n, (k, t) in sorted(r.get("tensors", {}).items())
    ]
    if not rows:
        return pd.DataFrame(columns=DENSITY_COLUMNS)
    return pd.DataFrame(rows).sort_values(["level", "kind", "trial", "tensor"], kind="stable").reset_index(drop=True)


def collapse_lines(densities: pd.DataFrame) -> list[str]:
    """One line per (kind, level) whose mask empties a tensor in some trial: a layer collapse, which leaves a
    network that cannot pass its input through (the results of that row train a dead network)."""
    empty = densities[(densities["kept"] == 0) & (densities["total"] > 0)]
    out = []
    for (level, kind), g in empty.groupby(["level", "kind"], sort=True):
        tensors = ", ".join(sorted(set(g["tensor"])))
        trials = ", ".join(str(t) for t in sorted(set(g["trial"])))
        out.append(f"- level {level} {kind}: empties {tensors} (trial {trials})")
    return out


def kind_order(kinds) -> list[str]:
    fixed = ["dense", "ticket"]
    return [k for k in fixed if k in set(kinds)] + sorted(set(kinds) - set(fixed))


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std and n per task × kind × density (only rows that trained; failures counted apart)."""
    if results.empty:
        return pd.DataFrame()
    df = results.copy()
    df["density"] = df["density"].astype(float).round(6)
    keys = ["domain", "task", "metric", "higher_is_better", "kind", "level", "density"]
    ok = df[df["status"] == "ok"]
    agg = ok.groupby(keys, dropna=False)[STATS].agg(["mean", "std", "count"])
    agg.columns = [f"{a}_{b}" for a, b in agg.columns]
    agg = agg.rename(columns={"score_count": "n"}).drop(columns=["early_stop_step_count", "final_score_count"])
    bad = df.groupby(keys, dropna=False)["status"].agg(
        diverged=lambda s: int((s == "diverged").sum()), failed=lambda s: int((s == "failed").sum())
    )
    tries = df["attempts"].fillna(1) if "attempts" in df.columns else pd.Series(1, index=df.index)
    bad["retries"] = (tries.astype(int) - 1).groupby([df[k] for k in keys], dropna=False).sum().astype(int)
    out = bad.join(agg, how="left").reset_index()
    out["n"] = out["n"].fillna(0).astype(int)
    return out.sort_values(["domain", "task", "level", "kind"], ascending=[True, True, True, True]).reset_index(
        drop=True
    )


def gaps(summary: pd.DataFrame) -> pd.DataFrame:
    """Per task × density: ticket mean, best control (name and mean), their difference and the advantage."""
    rows = []
    for (domain, task, density), g in summary.groupby(["domain", "task", "density"], sort=False):
        t = g[g["kind"] == "ticket"]
        c = g[~g["kind"].isin(["ticket", "dense"])].dropna(subset=["score_mean"])
        if t.empty or c.empty:
            continue
        higher = bool(g["higher_is_better"].iloc[0])
        best = c.loc[c["score_mean"].idxmax() if higher else c["score_mean"].idxmin()]
        diff = float(t["score_mean"].iloc[0] - best["score_mean"])
        rows.append(
            {
                "domain": domain,
                "task": task,
                "level": int(g["level"].iloc[0]),
                "density": density,
                "ticket": float(t["score_mean"].iloc[0]),
                "best_control": best["kind"],
                "best_control_score": float(best["score_mean"]),
                "ticket_minus_best_control": diff,
                "advantage": diff if higher else -diff,
            }
        )
    return pd.DataFrame(rows)


def _cell(mean: float, std: float, n: int) -> str:
    if n == 0 or pd.isna(mean):
        return "—"
    return f"{mean:.4g} ± {0.0 if pd.isna(std) else std:.2g} ({n})"


def markdown(summary: pd.DataFrame, meta: dict | None = None, collapsed: list[str] | None = None) -> str:
    """One wide table per task: density rows, one column per kind, and the ticket − best control gap."""
    parts = []
    if meta:
        parts.append(f"# {meta.get('domain')} · {meta.get('task')} · config {meta.get('config_hash', '')[:12]}\n")
        parts.append(
            f"preset `{meta.get('preset') or '-'}`, commit `{meta.get('git_commit', '?')}`, "
            f"rewind step {meta.get('rewind_step')}, budget {meta.get('budget')}\n"
        )
        if meta.get("allow_mixed_execution"):
            parts.append(f"rows mix executions (--allow-mixed-execution): {meta.get('executions')}\n")
    if collapsed:
        parts.append(
            "**Layer collapse**: these masks empty a whole tensor (see densities.csv):\n\n"
            + "\n".join(collapsed)
            + "\n"
        )
    if summary.empty:
        return "\n".join(parts + ["(no finished jobs yet)\n"])
    g = gaps(summary)
    for (domain, task), s in summary.groupby(["domain", "task"], sort=False):
        metric, higher = s["metric"].iloc[0], bool(s["higher_is_better"].iloc[0])
        parts.append(f"## {domain} · {task} — {metric} ({'↑' if higher else '↓'}), test score at the early-stop step\n")
        s = s.assign(cell=[_cell(m, d, n) for m, d, n in zip(s["score_mean"], s["score_std"], s["n"])])
        wide = s.pivot_table(index=["level", "density"], columns="kind", values="cell", aggfunc="first")
        wide = wide[[k for k in kind_order(wide.columns)]].reset_index()
        wide["density"] = (wide["density"] * 100).map(lambda d: f"{d:.3g}%")
        gt = g[(g["domain"] == domain) & (g["task"] == task)] if not g.empty else g
        if not gt.empty:
            lookup = dict(zip(gt["level"], gt["ticket_minus_best_control"]))
            wide["ticket − best control"] = wide["level"].map(lambda lv: f"{lookup[lv]:+.4g}" if lv in lookup else "")
        wide = wide.fillna("—")
        parts.append(wide.to_markdown(index=False) + "\n")
        es = s.pivot_table(index="density", columns="kind", values="early_stop_step_mean", aggfunc="first")
        es = es[kind_order(es.columns)].sort_index(ascending=False)
        es.index = [f"{d * 100:.3g}%" for d in es.index]
        parts.append("Early-stop step (mean over trials):\n\n" + es.round(0).to_markdown() + "\n")
        failed = s[(s["diverged"] > 0) | (s["failed"] > 0)]
        if not failed.empty:
            parts.append(f"Diverged: {int(s['diverged'].sum())} rows, failed: {int(s['failed'].sum())} rows.\n")
        if "retries" in s.columns and s["retries"].sum() > 0:
            parts.append(f"Retried: {int(s['retries'].sum())} trainings of failed or diverged jobs (see --retries).\n")
    return "\n".join(parts)


def write_tables(store: "RunStore", plots: bool = True) -> pd.DataFrame:
    """Rebuild every derived file of a run folder from its job records."""
    records = store.records()
    results = rows_frame(records)
    atomic_write(store.path / "results.csv", lambda p: results.to_csv(p, index=False))
    densities = densities_frame(records)
    atomic_write(store.path / "densities.csv", lambda p: densities.to_csv(p, index=False))
    summary = summarize(results)
    atomic_write(store.path / "summary.csv", lambda p: summary.to_csv(p, index=False))
    atomic_write_text(store.path / "summary.md", markdown(summary, store.meta(), collapse_lines(densities)))
    if plots and not summary.empty:
        from lth_core.figures import figure1

        figure1(summary, store.path / "figure1.png")
        if not densities.empty:
            from lth_core.figures import layer_densities

            meta = store.meta()
            layer_densities(
                densities, store.path / "densities.png", f"{meta.get('task')} · {meta.get('imp', {}).get('strategy')}"
            )
    return summary
