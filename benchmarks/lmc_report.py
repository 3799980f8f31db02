"""The instability section of `benchmarks.report`: for each analysis folder among (or under) the sources
(benchmarks.instability's, read through its contract only: run.json, instability.csv, paths.csv), the barrier
against k per density as a table and a plot, and the metric along each path. Plots are redrawn from the CSVs
(lth_core.lmc_figures), so the page never depends on PNG files in the folder."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from benchmarks.run_folders import is_analysis
from lth_core.errors import UsageError
from lth_core.interpolation import column
from lth_core.lmc_figures import barrier_plot, paths_plot
from lth_core.store import RunStore


def find_analyses(sources: list[str]) -> list[Path]:
    """Analysis folders that have written their outputs: each source itself, or every one below it."""
    out: list[Path] = []
    for s in sources:
        path = Path(s)
        if not path.is_dir():
            continue  # load_sources reports it
        folders = [path] if (path / "run.json").is_file() else sorted({p.parent for p in path.rglob("run.json")})
        out += [f for f in folders if is_analysis(f) and (f / "instability.csv").is_file()]
    return list(dict.fromkeys(out))


def _png(draw: Callable[[Path], None]) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plot.png"
        draw(path)
        return path.read_bytes()


def barrier_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per k, one column per density: the barrier, '(stable)' where it is at or below the threshold."""
    cell = rows.apply(lambda r: f"{r['barrier']:.4g}" + (" (stable)" if r["stable"] else ""), axis=1)
    grid = rows.assign(cell=cell).pivot_table(index="k", columns="density", values="cell", aggfunc="first")
    grid = grid[sorted(grid.columns, reverse=True)]
    grid.columns = [f"{100 * d:.3g}% of weights" for d in grid.columns]
    return grid.reset_index()


def ends_table(rows: pd.DataFrame) -> pd.DataFrame:
    cols = ["k", "level", "density", "score_a", "score_b", "trained_score_a", "trained_score_b", "barrier"]
    return rows[[c for c in cols if c in rows]].sort_values(["level", "k"])


def analysis_context(folder: Path, table: Callable[[pd.DataFrame], dict], png: Callable[[bytes, str], dict]) -> dict:
    """What the template shows of one analysis folder (`table` and `png` are the report's own helpers)."""
    meta = RunStore.foreign(folder).meta()
    try:
        rows = pd.read_csv(folder / "instability.csv")
        paths = pd.read_csv(folder / "paths.csv") if (folder / "paths.csv").is_file() else pd.DataFrame()
    except Exception as e:
        raise UsageError(f"{folder}: instability.csv or paths.csv is not a readable table ({type(e).__name__})")
    analysis: dict[str, Any] = meta.get("analysis") or {}
    metric = (meta.get("metric") or {}).get("name", "metric")
    ok = rows[rows["status"] == "ok"]
    threshold = float(analysis.get("threshold", 0.02))
    main = column("test", metric)
    facts = {
        "analysis folder": folder,
        "named analysis": meta.get("lmc_preset") or "—",
        "domain preset": meta.get("preset") or "—",
        "BatchNorm statistics": analysis.get("bn", "interpolate"),
        "threshold": f"{threshold:g} ({metric}, its own units)",
        "points per path": analysis.get("alphas"),
        "tickets from run": (meta.get("identity") or {}).get("run") or "— (dense only)",
        "config hash": meta.get("config_hash"),
        "git commit": meta.get("git_commit"),
        "finished": meta.get("finished", "not finished"),
    }
    return {
        "name": folder.name,
        "title": f"{meta.get('domain')} · {meta.get('task')}",
        "metric": metric,
        "barriers": table(barrier_table(ok)) if not ok.empty else None,
        "ends": table(ends_table(ok)) if not ok.empty else None,
        "barrier_plot": png(_png(lambda p: barrier_plot(ok, p, metric, threshold)), "barrier vs k")
        if not ok.empty
        else None,
        "paths_plot": png(_png(lambda p: paths_plot(paths, p, main)), f"{main} along the path")
        if not paths.empty and main in paths
        else None,
        "failed": int((rows["status"] != "ok").sum()),
        "facts": table(pd.DataFrame({"key": list(facts), "value": [str(v) for v in facts.values()]})),
    }
