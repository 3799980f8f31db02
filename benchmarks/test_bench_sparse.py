"""The sparse-kernel table of `python -m benchmarks.speed` (benchmarks/sparse_speed.py), for regression tracking: a
LeNet-300-100 training step under `--sparse auto` per density at batch 60 and 128, one thread. `extra_info`
carries the paired medians of masked dense, auto and always (ms per step), their speed-ups and auto's kernels,
so a saved run says how much the sparse path gained over masked dense, not only how long it took.
"""

from __future__ import annotations

import statistics

import pytest

from benchmarks.sparse_speed import DENSITIES, Trainer, measure_cell

STEPS = 10


@pytest.mark.parametrize("batch", [60, 128])
@pytest.mark.parametrize("density", DENSITIES)
def test_sparse_step(benchmark, batch: int, density: float) -> None:
    cell = measure_cell(density, batch, threads=1, samples=5, steps=STEPS)
    trainer = Trainer(density, batch, "auto")
    trainer.seconds(3)
    benchmark.pedantic(trainer.seconds, args=(STEPS,), rounds=5, iterations=1)
    benchmark.extra_info.update(
        {
            "density": density,
            "batch": batch,
            "threads": 1,
            "dense_ms": statistics.median(cell.dense),
            "auto_ms": statistics.median(cell.auto),
            "always_ms": statistics.median(cell.always),
            "speedup_auto": cell.ratio(cell.auto),
            "speedup_always": cell.ratio(cell.always),
            "kernels": cell.kernels,
        }
    )
