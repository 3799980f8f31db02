"""What a watched training leaves in its run folder: the weights each level is pruned from
(`state/captured-L..-t..pt`), the mask-distance matrix of its evaluation points per level
(`early_bird/<job>-L..csv`: steps as row and column labels) and their heatmaps (You et al. 2020, Fig. 2 style:
`early_bird/<job>.png`, the declared point marked). Written before the job's record, which commits them."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from lth_core.atomic import atomic_write
from lth_core.early_bird import EarlyBirdResult
from lth_core.job import Job
from lth_core.store import RunStore


def write_matrix(path: Path, steps: list[int], dist: list[list[float]]) -> None:
    def write(p: Path) -> None:
        with open(p, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["step", *steps])
            for s, row in zip(steps, dist):
                w.writerow([s, *(f"{d:.6g}" for d in row)])

    atomic_write(path, write)


def read_matrix(path: Path) -> tuple[list[int], list[list[float]]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return [int(s) for s in rows[0][1:]], [[float(d) for d in r[1:]] for r in rows[1:]]


def save_early_bird(store: RunStore, job: Job, eb: EarlyBirdResult) -> None:
    for level, weights in sorted(eb.weights.items()):
        store.save_state(store.captured_name(level, job.trial), weights)
    for level, dist in sorted(eb.distances.items()):
        write_matrix(store.path / store.distances_name(job.key, level), eb.steps, dist)
    if eb.steps:
        plot(store.path / "early_bird" / f"{job.key}.png", job.key, eb)


def plot(path: Path, title: str, eb: EarlyBirdResult) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = sorted(eb.distances)
    cols = min(4, len(levels))
    rows = math.ceil(len(levels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    for ax in axes.flat[len(levels) :]:
        ax.axis("off")
    n = len(eb.steps)
    ticks = list(range(0, n, max(1, n // 6)))
    for ax, level in zip(axes.flat, levels):
        im = ax.imshow(eb.distances[level], cmap="viridis", vmin=0.0, origin="upper")
        at = eb.declared.get(level)
        ax.set_title(f"level {level}: " + (f"declared at {at}" if at is not None else "never declared"), fontsize=8)
        if at is not None:
            i = eb.steps.index(at)
            ax.axhline(i, color="red", linewidth=0.8)
            ax.axvline(i, color="red", linewidth=0.8)
        ax.set_xticks(ticks, [str(eb.steps[i]) for i in ticks], fontsize=6, rotation=45)
        ax.set_yticks(ticks, [str(eb.steps[i]) for i in ticks], fontsize=6)
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(f"{title}: normalized Hamming distance between the masks at evaluation steps", fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=110, format="png"))
    plt.close(fig)
