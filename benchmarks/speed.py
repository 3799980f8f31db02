"""`python -m benchmarks.speed`: how close one IMP level's trainings come to this machine's arithmetic ceiling.

LeNet-300-100 at batch 128 (and F&C's 60) on MNIST-shaped data generated in torchvision's layout (so the
real loading path runs, anywhere, offline). For the `jobs` trainings of a level it reports job-iterations
per second (iterations of every job together, per second of wall time) under each executor: `local` with
`--cpus-per-job 1` (the default) and with every core, `process` (one 1-thread worker per core, already
started), and `batched` (the jobs stacked into batched matrix products: as the executor runs them, split
into one 1-thread stack per core on threads, and as one stack on every core); the GFLOP/s that
is, with FLOPs counted as executed (torch's FlopCounterMode over one real step), and that as a fraction of
the fp32 matmul ceiling measured in the same run (square `torch.matmul` on every core). Also the cost of
holding a mask: a masked against an unmasked job, same thread count; and a LeNet-300-100 step on CSR kernels
(`--sparse`) against masked dense per density, batch and thread count (benchmarks/sparse_speed.py). This
machine's speed drifts, so repeats are interleaved and min / median / max are shown.
"""

from __future__ import annotations

import functools
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import track
from rich.table import Table
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.cli import OneLineParser, fail
from benchmarks.fake_vision_files import write_mnist
from benchmarks.sparse_speed import table as sparse_table
from benchmarks.structured_speed import line as structured_line
from domains.vision.adapter import VisionAdapter
from domains.vision.config import VisionConfig
from lth_core.config import RunOptions, opt
from lth_core.errors import UsageError
from lth_core.executor_batched import BatchedExecutor
from lth_core.executor_process import ProcessExecutor
from lth_core.executors import available_cores
from lth_core.job import Job
from lth_core.masks import Mask

IMP_RUN = (
    "python -m benchmarks.speed imp-run [flags]: a whole 15-level IMP run, timed level by level (imp_run_speed.py)"
)
TRAIN_SIZE = 8000  # training examples of the generated MNIST-shaped files (and 1,000 held out for validation)


@dataclass
class SpeedConfig:
    """What to time."""

    iterations: int = opt(400, "training iterations per timed training")
    batch_size: int = opt(128, "minibatch size of the main measurement")
    small_batch: int = opt(60, "second batch size (F&C's), where batching matters most (0 = skip it)")
    jobs: int = opt(4, "trainings of one level (dense/ticket + 2 controls = 4 in the issue's level)")
    repeats: int = opt(3, "interleaved repeats of every measurement")
    ceiling_size: int = opt(2048, "square matmul size for the fp32 ceiling")
    sparse_samples: int = opt(
        7, "interleaved samples per cell of the sparse-kernel table (benchmarks/sparse_speed.py); 0 = skip it"
    )

    def validate(self) -> None:
        """Each count within what the generated data and this machine's memory allow: one line, before any work."""
        bounds = {
            "iterations": (1, 10**7),
            "batch_size": (1, TRAIN_SIZE),
            "small_batch": (0, TRAIN_SIZE),
            "jobs": (1, 256),
            "repeats": (1, 1000),
            "ceiling_size": (1, 16384),
            "sparse_samples": (0, 1000),
        }
        for name, (lo, hi) in bounds.items():
            v = getattr(self, name)
            if not lo <= v <= hi:
                raise UsageError(f"--{name.replace('_', '-')} {v} must be in [{lo}, {hi}]")


def matmul_gflops(n: int, seconds: float = 1.0) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)
    reps, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds:
        torch.matmul(a, b)
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def step_flops(adapter: VisionAdapter, batch: int) -> int:
    """FLOPs of one training step as executed (forward + backward, no input gradient for the first layer)."""
    model = adapter.build(0)
    data = adapter.data()
    x, y = data.train.x[:batch], data.train.y[:batch]
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    return counter.get_total_flops()


def jobs_for(adapter: VisionAdapter, n: int, masked: bool = True) -> list[Job]:
    """A level's worth of jobs: the same init, each its own 20%-density mask and data order."""
    init = adapter.initial_weights(0)
    groups = adapter.prunable(adapter.build(0), False)
    jobs = []
    for i in range(n):
        g = torch.Generator().manual_seed(i)
        mask = Mask({k: torch.rand(init[k].shape, generator=g) < 0.2 for k in groups}).to_state() if masked else None
        jobs.append(Job(level=1, kind="ticket", trial=i, seed=i, weights=init, mask=mask, budget=adapter.budget()))
    return jobs


def with_threads(n: int, fn: Callable[[], object]) -> float:
    """Seconds `fn` takes with n torch threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        t = time.perf_counter()
        fn()
        return time.perf_counter() - t
    finally:
        torch.set_num_threads(before)


def measure(cfg: SpeedConfig, data_dir: Path, batch: int, cores: int) -> tuple[dict[str, list[float]], int]:
    vc = VisionConfig(
        dataset="mnist",
        model="lenet_300_100",
        data_dir=str(data_dir),
        iterations=cfg.iterations,
        batch_size=batch,
        optimizer="sgd",
        lr=0.1,
        eval_every=10**9,
        val_size=1000,
    )
    adapter = VisionAdapter(vc)
    adapter.data()
    work = cfg.iterations * cfg.jobs
    pool = ProcessExecutor(adapter, functools.partial(VisionAdapter, vc), RunOptions(executor="process"))
    list(pool.run(jobs_for(adapter, pool.workers)))  # start the workers and load their data: not timed
    batched = BatchedExecutor(adapter, functools.partial(VisionAdapter, vc), RunOptions(executor="batched"))
    stacks = adapter.batch_stacks(cfg.jobs, cores)
    out: dict[str, list[float]] = {}

    def record(name: str, seconds: float, iterations: int = work) -> None:
        out.setdefault(name, []).append(iterations / seconds)

    try:
        for _ in track(range(cfg.repeats), description=f"batch {batch}", transient=True):
            record("local, 1 thread", with_threads(1, lambda: [adapter.train(j) for j in jobs_for(adapter, cfg.jobs)]))
            record(
                f"local, {cores} threads",
                with_threads(cores, lambda: [adapter.train(j) for j in jobs_for(adapter, cfg.jobs)]),
            )
            record(
                f"process, {pool.workers} x 1 thread",
                with_threads(1, lambda: list(pool.run(jobs_for(adapter, cfg.jobs)))),
            )
            record(
                f"batched, {stacks} stacks x 1 thread",
                with_threads(cores, lambda: list(batched.run(jobs_for(adapter, cfg.jobs)))),
            )
            record(
                f"batched, 1 stack x {cores} threads",
                with_threads(cores, lambda: adapter.train_batch(jobs_for(adapter, cfg.jobs))),
            )
            for masked in (False, True):  # the mask's cost, on one job alone, 1 thread
                job = jobs_for(adapter, 1, masked)[0]
                record(
                    "one job, masked" if masked else "one job, unmasked",
                    with_threads(1, lambda: adapter.train(job)),
                    cfg.iterations,
                )
    finally:
        pool.close()
    return out, step_flops(adapter, batch)


def spread(values: list[float]) -> str:
    v = sorted(values)
    return f"{v[0]:.0f} / {statistics.median(v):.0f} / {v[-1]:.0f}"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["imp-run"]:  # the whole-run figure: its own flags (benchmarks/imp_run_speed.py)
        from benchmarks.imp_run_speed import main as imp_run

        return imp_run(argv[1:])
    parser = OneLineParser(prog="python -m benchmarks.speed", description=__doc__, epilog=IMP_RUN)
    parser.add_arguments(SpeedConfig, dest="cfg")
    cfg: SpeedConfig = parser.parse_args(argv).cfg
    try:
        cfg.validate()
    except UsageError as e:
        fail(str(e))
    cores = available_cores()
    torch.set_num_threads(cores)
    console = Console()
    ceilings: list[float] = []
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        write_mnist(Path(tmp), n_train=TRAIN_SIZE + 1000, n_test=2000)
        for b in [cfg.batch_size] + ([cfg.small_batch] if cfg.small_batch else []):
            ceilings.append(matmul_gflops(cfg.ceiling_size))
            results[b] = measure(cfg, Path(tmp), b, cores)
            ceilings.append(matmul_gflops(cfg.ceiling_size))
    ceiling = statistics.median(ceilings)
    table = Table(
        title=f"LeNet-300-100, SGD, {cfg.jobs} jobs x {cfg.iterations} iterations; fp32 matmul ceiling "
        f"{ceiling:.0f} GFLOP/s on {cores} threads (median of {spread(ceilings)})"
    )
    for col in ("batch", "executor", "job-iterations/s (min / median / max)", "GFLOP/s", "% of ceiling"):
        table.add_column(col, justify="right")
    for b, (r, flops) in results.items():
        for name, values in r.items():
            if name.startswith("one job"):
                continue
            med = statistics.median(values)
            table.add_row(
                str(b), name, spread(values), f"{med * flops / 1e9:.1f}", f"{100 * med * flops / 1e9 / ceiling:.0f}%"
            )
        local = statistics.median(r["local, 1 thread"])
        fastest = max((k for k in r if not k.startswith("one job")), key=lambda k: statistics.median(r[k]))
        mask = [1 - m / u for m, u in zip(r["one job, masked"], r["one job, unmasked"])]
        table.add_row(str(b), "fastest", fastest, f"{statistics.median(r[fastest]) / local:.2f}x local", "")
        table.add_row(
            str(b),
            "mask held",
            f"{100 * statistics.median(mask):+.1f}% of step time",
            f"{spread(r['one job, masked'])} vs {spread(r['one job, unmasked'])} it/s",
            "",
        )
    console.print(table)
    console.print(
        "FLOPs per step as executed: " + ", ".join(f"batch {b}: {f / 1e6:.1f} MFLOP" for b, (_, f) in results.items())
    )
    for b in results:  # removing neurons, not masking them (benchmarks/structured_speed.py)
        console.print(structured_line(b))
    if cfg.sparse_samples:  # training on the mask's pattern, not masking (benchmarks/sparse_speed.py)
        sparse_table(threads=tuple(sorted({1, cores})), samples=cfg.sparse_samples, show=print)  # markdown, unwrapped
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
