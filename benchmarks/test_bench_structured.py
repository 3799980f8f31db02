"""The structured speed-up benchmark: a compacted LeNet-300-100 (25% of its hidden neurons) trains a step >= 2x
faster than the masked dense one, paired in one process (benchmarks/structured_speed.py). pytest-benchmark
times the compacted step; `extra_info` carries the paired median ratio against the masked dense step."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmarks.structured_speed import lenet_pair, lenet_speedups


def test_compacted_lenet_step_vs_masked_dense(benchmark):
    _, _, small, _, xb, y = lenet_pair(128)
    opt = torch.optim.SGD(small.parameters(), lr=0.01)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(small(xb), y).backward()
        opt.step()

    benchmark.pedantic(step, rounds=50, iterations=5, warmup_rounds=5)
    cost = lenet_speedups(128)
    benchmark.extra_info.update(cost)
    assert cost["step_speedup"] >= 2.0, cost
