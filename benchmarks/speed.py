"""`python -m benchmarks.speed`: how close one IMP level's trainings come to this machine's arithmetic ceiling.

LeNet-300-100 at batch 128 on MNIST-shaped data generated in torchvision's layout (so the real loading path
runs, anywhere, offline). Reports iterations/s of one masked job (`local`), per job of the `batched`
executor, the GFLOP/s those achieve with FLOPs counted as executed (torch's FlopCounterMode over one real
forward+backward), and that as a fraction of the fp32 matmul ceiling measured in the same run. Repeats
are interleaved, since this machine's speed drifts; min/median/max are shown.
"""
from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.cli import OneLineParser
from domains.vision.adapter import VisionAdapter
from domains.vision.config import VisionConfig
from domains.vision.fake_files import write_mnist
from lth_core.config import opt
from lth_core.job import Job
from lth_core.masks import Mask


@dataclass
class SpeedConfig:
    """What to time."""

    iterations: int = opt(400, "training iterations per timed training")
    batch_size: int = opt(128, "minibatch size of the main measurement")
    small_batch: int = opt(60, "second batch size (F&C's), where batching matters most")
    jobs: int = opt(4, "jobs of one level (dense/ticket + 2 controls = 4 in the issue's level)")
    repeats: int = opt(3, "interleaved repeats of every measurement")
    threads: int = opt(0, "torch threads (0 = every core)")
    ceiling_size: int = opt(2048, "square matmul size for the fp32 ceiling")


def matmul_gflops(n: int) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)
    reps, t = 0, time.perf_counter()
    while time.perf_counter() - t < 1.0:
        torch.matmul(a, b)
        reps += 1
    return 2 * n ** 3 * reps / (time.perf_counter() - t) / 1e9


def step_flops(adapter: VisionAdapter, batch: int) -> int:
    """FLOPs of one training step as executed (forward + backward, no input gradient for the first layer)."""
    model = adapter.build(0)
    data = adapter.data()
    x, y = data.train.x[:batch], data.train.y[:batch]
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    return counter.get_total_flops()


def jobs_for(adapter: VisionAdapter, n: int, masked: bool = True) -> list[Job]:
    init = adapter.initial_weights(0)
    groups = adapter.prunable(adapter.build(0), False)
    g = torch.Generator().manual_seed(0)
    mask = Mask({k: torch.rand(init[k].shape, generator=g) < 0.2 for k in groups}).to_state() if masked else None
    return [Job(level=1, kind="ticket", trial=i, seed=i, weights=init, mask=mask, budget=adapter.budget()) for i in range(n)]


def measure(cfg: SpeedConfig, data_dir: Path, batch: int) -> dict[str, list[float]]:
    vc = VisionConfig(dataset="mnist", model="lenet_300_100", data_dir=str(data_dir), iterations=cfg.iterations,
                      batch_size=batch, optimizer="sgd", lr=0.1, eval_every=10 ** 9, val_size=1000,
                      threads=cfg.threads)
    adapter = VisionAdapter(vc)
    adapter.data()
    out: dict[str, list[float]] = {"local": [], "local_unmasked": [], "batched": []}
    for _ in range(cfg.repeats):
        for name, masked in (("local", True), ("local_unmasked", False)):
            job = jobs_for(adapter, 1, masked)[0]
            t = time.perf_counter()
            adapter.train(job)
            out[name].append(cfg.iterations / (time.perf_counter() - t))
        t = time.perf_counter()
        adapter.train_batch(jobs_for(adapter, cfg.jobs))
        out["batched"].append(cfg.iterations * cfg.jobs / (time.perf_counter() - t))
    out["flops"] = [float(step_flops(adapter, batch))]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m benchmarks.speed", description=__doc__)
    parser.add_arguments(SpeedConfig, dest="cfg")
    cfg: SpeedConfig = parser.parse_args(argv).cfg
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        write_mnist(Path(tmp), n_train=8000 + 1000, n_test=2000)
        ceilings = []
        results = {}
        for b in (cfg.batch_size, cfg.small_batch):
            ceilings.append(matmul_gflops(cfg.ceiling_size))
            results[b] = measure(cfg, Path(tmp), b)
            ceilings.append(matmul_gflops(cfg.ceiling_size))
    ceiling = statistics.median(ceilings)
    table = Table(title=f"LeNet-300-100, SGD, {cfg.iterations} iterations, {torch.get_num_threads()} threads; "
                        f"fp32 matmul ceiling {ceiling:.0f} GFLOP/s (median of {len(ceilings)})")
    for col in ("batch", "executor", "it/s per job (min / median / max)", "GFLOP/s per job", "% of ceiling"):
        table.add_column(col, justify="right")
    for b, r in results.items():
        flops = r["flops"][0]
        for name in ("local_unmasked", "local", "batched"):
            v = sorted(r[name])
            med = statistics.median(v)
            table.add_row(str(b), name, f"{v[0]:.0f} / {med:.0f} / {v[-1]:.0f}", f"{med * flops / 1e9:.1f}",
                          f"{100 * med * flops / 1e9 / ceiling:.0f}%")
        mask_cost = 1 - statistics.median(r["local"]) / statistics.median(r["local_unmasked"])
        table.add_row(str(b), "mask overhead", f"{100 * mask_cost:+.1f}% of step time", "", "")
    console.print(table)
    console.print(f"FLOPs per step as executed: " + ", ".join(f"batch {b}: {r['flops'][0] / 1e6:.1f} MFLOP" for b, r in results.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
