"""Plots in the style of Frankle & Carbin Figure 1: score and early-stop step against density.

Density on a log axis decreasing to the right; the ticket solid, controls dashed, the dense network a
dotted reference line; error bars are the standard deviation over trials.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

from lth_core.atomic import atomic_write  # noqa: E402
from lth_core.tables import kind_order  # noqa: E402


def _panel(ax, s: pd.DataFrame, column: str, ylabel: str) -> None:
    dense = s[s["kind"] == "dense"]
    for i, kind in enumerate(k for k in kind_order(s["kind"]) if k != "dense"):
        k = s[s["kind"] == kind].sort_values("density", ascending=False)
        k = pd.concat([dense, k]) if not dense.empty else k  # every curve starts at the dense point
        ax.errorbar(
            k["density"] * 100,
            k[f"{column}_mean"],
            yerr=k[f"{column}_std"].fillna(0),
            label=kind,
            linestyle="-" if kind == "ticket" else "--",
            marker="o" if kind == "ticket" else "s",
            markersize=3.5,
            capsize=2.5,
            linewidth=1.8 if kind == "ticket" else 1.2,
            color=f"C{i}",
        )
    if not dense.empty:
        ax.axhline(float(dense[f"{column}_mean"].iloc[0]), color="gray", linestyle=":", linewidth=1, label="dense")
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ticks = sorted(s["density"].unique() * 100, reverse=True)
    ax.set_xticks(ticks[:: max(1, len(ticks) // 8)])
    ax.set_xlabel("percent of weights remaining")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)


def figure1(summary: pd.DataFrame, path: Path) -> None:
    """One row of two panels per task: test score at early stop, and the early-stop step."""
    tasks = [(k, s) for k, s in summary[summary["n"] > 0].groupby(["domain", "task"], sort=False)]
    if not tasks:
        return
    fig, axes = plt.subplots(len(tasks), 2, figsize=(11, 4 * len(tasks)), squeeze=False)
    for row, ((domain, task), s) in zip(axes, tasks):
        metric, higher = s["metric"].iloc[0], bool(s["higher_is_better"].iloc[0])
        _panel(row[0], s, "score", f"{metric} ({'↑' if higher else '↓'}) at early stop")
        _panel(row[1], s, "early_stop_step", "early-stop step (validation)")
        row[0].set_title(f"{domain} · {task}")
        row[1].set_title("when validation was best")
        row[0].legend(fontsize=8)
    fig.tight_layout()
    atomic_write(Path(path), lambda p: fig.savefig(p, format="png", dpi=110))
    plt.close(fig)


def layer_densities(densities: pd.DataFrame, path: Path, title: str = "") -> None:
    """The ticket's density of each pruned tensor against the level (mean over trials, log scale): where a criterion
    collapses a layer at extreme sparsity, its curve drops to the floor (an emptied tensor is drawn at the floor)."""
    t = densities[densities["kind"] == "ticket"]
    if t.empty:
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    means = t.groupby(["tensor", "level"])["density"].mean().reset_index()
    positive = means.loc[means["density"] > 0, "density"]
    floor = 0.5 * float(positive.min()) if len(positive) else 1e-4
    for i, (tensor, g) in enumerate(means.groupby("tensor", sort=True)):
        ax.plot(g["level"], (g["density"] * 100).clip(lower=floor * 100), marker="o", label=tensor, color=f"C{i}")
        empty = g[g["density"] == 0]
        if not empty.empty:  # emptied in every trial's mean: a cross on the floor
            ax.scatter(empty["level"], [floor * 100] * len(empty), marker="x", s=80, color="black", zorder=3)
    if (means["density"] == 0).any():
        ax.set_title((title or "per-tensor density") + "  (x: tensor emptied)")
    ax.set_yscale("log")
    ax.set_xlabel("level")
    ax.set_ylabel("ticket density of the tensor (%)")
    if not (means["density"] == 0).any():
        ax.set_title(title or "per-tensor density")
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=120))
    plt.close(fig)
