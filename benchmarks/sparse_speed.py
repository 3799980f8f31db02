"""LeNet-300-100 training steps on CSR kernels (`--sparse`) against masked dense, per density, batch and threads.

One step is what the vision loop does (domains/vision/train.py): gather the batch, forward, cross-entropy,
backward, mask the gradients (dense only), a fused optimizer step. Every layer has a uniform random mask at the
density (the worst case for dropping dead inputs / neurons, which CSR does for free anyway). The two paths run
interleaved in one process, `steps` steps per sample, the order alternating; each table cell is min / median /
max ms per step over the samples and the ratio is the median of the paired dense/sparse ratios. The sparse path
is `--sparse auto` (each layer's kernel by calibration, the calibration run before timing) and, for reference,
`always` (every layer on CSR). `python -m benchmarks.sparse_speed` prints the table; `benchmarks.speed` prints
it after its own tables.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from domains.vision import models
from domains.vision.config import VisionConfig
from domains.vision.optim import OPTIMIZERS
from lth_core.mask_hold import MaskHold
from lth_core.masks import Mask
from lth_core.sparse_choice import KernelChoice
from lth_core.sparse_kernels import swap_linears

DENSITIES = (0.5, 0.2, 0.1, 0.05, 0.02, 0.01)
SHAPE, CLASSES, POOL = (1, 28, 28), 10, 4096  # MNIST's shape; the examples batches are gathered from


@dataclass
class Trainer:
    """One LeNet-300-100 under the vision loop's step, on a mask of `density`, dense-masked or through `mode`."""

    density: float
    batch: int
    mode: str  # "never" (masked dense), "auto", "always"
    optimizer: str = "sgd"
    kernels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.model = models.create("lenet_300_100", SHAPE, CLASSES)
        g = torch.Generator().manual_seed(1)
        names = models.prunable_groups(self.model, False)
        mask = {n: torch.rand(p.shape, generator=g) < self.density for n, p in self.model.named_parameters()}
        mask = {n: m for n, m in mask.items() if n in names}
        self.hold = MaskHold(self.model, Mask(mask), hooks=False)
        choice = KernelChoice(self.mode, self.batch)
        swap = swap_linears(self.model, mask, choice)
        self.kernels = dict(swap.kernels)
        self.described = choice.describe(swap.kernels)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        cfg = VisionConfig(model="lenet_300_100", optimizer=self.optimizer, lr=0.01, momentum=0.9)
        self.opt = OPTIMIZERS.get(self.optimizer)(self.params, cfg)
        self.x = torch.randn(POOL, *SHAPE, generator=g)
        self.y = torch.randint(CLASSES, (POOL,), generator=g)
        self.order = torch.randperm(POOL, generator=g)
        self.at = 0

    def step(self) -> None:
        idx = self.order[self.at : self.at + self.batch]
        self.at = (self.at + self.batch) % (POOL - self.batch)
        loss = F.cross_entropy(self.model(self.x.index_select(0, idx)), self.y.index_select(0, idx))
        for p in self.params:
            p.grad = None
        loss.backward()
        if self.mode == "never":
            self.hold.mask_grads()
        self.opt.step()

    def seconds(self, steps: int) -> float:
        t = time.perf_counter()
        for _ in range(steps):
            self.step()
        return (time.perf_counter() - t) / steps


@dataclass
class Cell:
    """One (threads, batch, density): ms per step of each path over the samples, and the kernels auto chose."""

    dense: list[float]
    auto: list[float]
    always: list[float]
    kernels: str

    def ratio(self, other: list[float]) -> float:
        return statistics.median(d / s for d, s in zip(self.dense, other))


def measure_cell(density: float, batch: int, threads: int, samples: int, steps: int) -> Cell:
    """Interleaved samples of `steps` steps of masked dense, auto and always (the order rotating per sample)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        paths = {m: Trainer(density, batch, m) for m in ("never", "auto", "always")}
        for t in paths.values():
            t.seconds(3)  # warm-up (allocator, first kernel calls)
        times: dict[str, list[float]] = {m: [] for m in paths}
        names = list(paths)
        for i in range(samples):
            for m in names[i % 3 :] + names[: i % 3]:
                times[m].append(1e3 * paths[m].seconds(steps))
        return Cell(times["never"], times["auto"], times["always"], paths["auto"].described)
    finally:
        torch.set_num_threads(before)


def spread(values: list[float]) -> str:
    v = sorted(values)
    return f"{v[0]:.2f} / {statistics.median(v):.2f} / {v[-1]:.2f}"


HEADER = (
    "| threads | batch | density | masked dense ms | sparse (auto) ms | speed-up | always (CSR) ms | speed-up | "
    "auto's kernels (csr/dense time) |\n|---:|---:|---:|---:|---:|---:|---:|---:|:---|"
)


def row(threads: int, batch: int, density: float, c: Cell) -> str:
    return (
        f"| {threads} | {batch} | {100 * density:g}% | {spread(c.dense)} | {spread(c.auto)} | {c.ratio(c.auto):.2f}x | "
        f"{spread(c.always)} | {c.ratio(c.always):.2f}x | {c.kernels} |"
    )


def table(
    densities: tuple[float, ...] = DENSITIES,
    batches: tuple[int, ...] = (60, 128),
    threads: tuple[int, ...] = (1, 2),
    samples: int = 7,
    steps: int = 20,
    show=lambda line: None,
) -> tuple[list[tuple[int, int, float, Cell]], str]:
    """Every cell, and the markdown table of them; `show` gets each line as soon as it is measured."""
    show(HEADER)
    cells, lines = [], [HEADER]
    for th in threads:
        for b in batches:
            for d in densities:
                cells.append((th, b, d, measure_cell(d, b, th, samples, steps)))
                lines.append(row(*cells[-1]))
                show(lines[-1])
    return cells, "\n".join(lines)


if __name__ == "__main__":
    print(__doc__.splitlines()[0])
    table(show=lambda line: print(line, flush=True))
