"""The level-speed benchmark of `python -m benchmarks.speed`, for regression tracking: LeNet-300-100 at batch 128
on generated MNIST-shaped data, one masked job alone (`local`) and a level's 4 jobs under the `batched`
executor. `extra_info` carries job-iterations/s, GFLOP/s as executed and the fraction of the fp32 matmul
ceiling measured beside it, so a saved run says how close to the machine it was, not only how long it took.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch

from benchmarks.fake_vision_files import write_mnist
from benchmarks.speed import jobs_for, matmul_gflops, step_flops
from domains.vision.adapter import VisionAdapter
from domains.vision.config import VisionConfig
from lth_core.config import RunOptions
from lth_core.executor_batched import BatchedExecutor
from lth_core.executors import available_cores

ITERATIONS, JOBS = 300, 4


@pytest.fixture(scope="module")
def adapter(tmp_path_factory) -> VisionAdapter:
    root = write_mnist(Path(tmp_path_factory.mktemp("mnist")), n_train=9000, n_test=2000)
    cfg = VisionConfig(
        dataset="mnist",
        model="lenet_300_100",
        data_dir=str(root),
        iterations=ITERATIONS,
        batch_size=128,
        optimizer="sgd",
        lr=0.1,
        eval_every=10**9,
        val_size=1000,
    )
    ad = VisionAdapter(cfg)
    ad.data()
    return ad


def _report(benchmark, adapter: VisionAdapter, job_iterations: int) -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(available_cores())  # the ceiling is the whole machine's, as in benchmarks.speed
    ceiling = matmul_gflops(2048, seconds=0.5)
    torch.set_num_threads(before)
    rate = job_iterations / benchmark.stats.stats.min
    flops = step_flops(adapter, 128)
    benchmark.extra_info.update(
        {
            "job_iterations_per_s": rate,
            "gflops": rate * flops / 1e9,
            "matmul_ceiling_gflops": ceiling,
            "fraction_of_ceiling": rate * flops / 1e9 / ceiling,
        }
    )


def test_one_masked_job(benchmark, adapter):
    job = jobs_for(adapter, 1)[0]
    out = benchmark.pedantic(adapter.train, args=(job,), rounds=3, iterations=1)
    assert out.status == "ok"
    _report(benchmark, adapter, ITERATIONS)


def test_a_level_under_the_batched_executor(benchmark, adapter):
    ex = BatchedExecutor(adapter, functools.partial(VisionAdapter, adapter.config), RunOptions(executor="batched"))
    results = benchmark.pedantic(lambda: list(ex.run(jobs_for(adapter, JOBS))), rounds=3, iterations=1)
    assert len(results) == JOBS and all(o.status == "ok" for _, o in results)
    _report(benchmark, adapter, ITERATIONS * JOBS)
