"""Plots of an instability analysis: the barrier against the step k the copies start from (one line per
density), and the metric along the path between the two copies (one panel per density, one line per k)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from lth_core.atomic import atomic_write  # noqa: E402


def _save(fig, path: Path) -> None:
    try:
        atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=110, bbox_inches="tight"))
    finally:
        plt.close(fig)


def barrier_plot(rows: pd.DataFrame, path: Path, metric: str, threshold: float) -> None:
    """Barrier vs k on a symmetric-log x axis (k = 0 is on it), one line per density; the threshold dashed."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for density, g in sorted(rows.groupby("density"), key=lambda t: -t[0]):
        g = g.sort_values("k")
        ax.plot(g["k"], g["barrier"], marker="o", label=f"{100 * density:.3g}% of weights")
    ax.axhline(threshold, color="grey", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    positive = rows["k"][rows["k"] > 0]
    ax.set_xscale("symlog", linthresh=float(positive.min()) if len(positive) else 1.0)  # log-x, and k = 0 on it
    ax.set_xlabel("k: step the two copies start from")
    ax.set_ylabel(f"error barrier ({metric}, its own units)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    _save(fig, path)


def paths_plot(paths: pd.DataFrame, path: Path, column: str) -> None:
    """`column` against alpha: one panel per density, one line per k."""
    densities = sorted(paths["density"].unique(), reverse=True)
    fig, axes = plt.subplots(1, len(densities), figsize=(4.5 * len(densities), 3.6), squeeze=False)
    for ax, density in zip(axes[0], densities):
        for k, g in paths[paths["density"] == density].groupby("k"):
            ax.plot(g["alpha"], g[column], marker=".", label=f"k={k}")
        ax.set_title(f"{100 * density:.3g}% of weights")
        ax.set_xlabel("alpha (0 = copy a, 1 = copy b)")
        ax.set_ylabel(column)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    _save(fig, path)
