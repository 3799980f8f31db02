"""Measured cost of a compacted model against the masked dense one: parameters, MACs, wall-clock, paired.

A mask never makes a network faster; only the smaller dense model does, and by less than its MACs promise
(small layers, small batches). So time is measured, never inferred: the two models run interleaved in one
process (dense, compact, compact, dense, ...), each timing sample is long enough for the clock (calls looped
to >= `sample_s`), and the speed-up is the median of the paired ratios, within a fixed time budget.
The masked dense training step holds its mask the way our loops do (gradients masked after backward).
"""

from __future__ import annotations

import statistics
import time
from typing import Callable, Mapping

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from lth_core.mask_hold import MaskHold
from lth_core.masks import Mask

Loss = Callable[[Tensor], Tensor]  # model output -> scalar loss
MakeOptimizer = Callable[[list[nn.Parameter]], torch.optim.Optimizer]


def count_macs(model: nn.Module, x: Tensor) -> int:
    """Multiply-accumulates of one forward on `x` as torch executes it (FlopCounterMode's FLOPs / 2)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops()) // 2


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _calibrate(fn: Callable[[], object], sample_s: float, device: torch.device) -> int:
    """Calls per timing sample so that one sample lasts about `sample_s`."""
    fn()
    _sync(device)
    t = time.perf_counter()
    fn()
    _sync(device)
    one = max(time.perf_counter() - t, 1e-7)
    return max(1, int(sample_s / one))


def paired_speedup(
    slow: Callable[[], object],
    fast: Callable[[], object],
    budget_s: float,
    device: torch.device,
    sample_s: float = 0.02,
    min_pairs: int = 5,
) -> float:
    """Median over interleaved pairs of (time of `slow`) / (time of `fast`), each sample `sample_s` or more."""
    n_slow, n_fast = _calibrate(slow, sample_s, device), _calibrate(fast, sample_s, device)
    ratios: list[float] = []
    end = time.perf_counter() + budget_s
    while len(ratios) < min_pairs or time.perf_counter() < end:
        times = {}
        for name, fn, n in (("slow", slow, n_slow), ("fast", fast, n_fast))[:: 1 if len(ratios) % 2 else -1]:
            _sync(device)
            t = time.perf_counter()
            for _ in range(n):
                fn()
            _sync(device)
            times[name] = (time.perf_counter() - t) / n
        ratios.append(times["slow"] / max(times["fast"], 1e-12))
        if len(ratios) >= 200:
            break
    return statistics.median(ratios)


def _step(model: nn.Module, x: Tensor, loss: Loss, optimizer: torch.optim.Optimizer, hold: MaskHold | None):
    def run() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss(model(x)).backward()
        if hold is not None:
            hold.mask_grads()
        optimizer.step()

    return run


def measure_cost(
    dense: nn.Module,
    mask: Mapping[str, Tensor],
    small: nn.Module,
    example: Tensor,
    batch: Tensor,
    loss: Loss,
    make_optimizer: MakeOptimizer,
    budget_s: float = 1.0,
) -> dict[str, float]:
    """Columns of a structured row: the compacted model's `params` and `macs` (one example) and its speed-ups over
    the masked dense model: `forward_speedup_b1` (batch 1), `forward_speedup` and `step_speedup` (the training
    batch `batch`, a training step with `make_optimizer`'s optimizer). Both models are trained a few steps here:
    pass copies. `budget_s` is shared by the three timings."""
    device = example.device
    hold = MaskHold(dense, Mask(dict(mask)), hooks=False)
    try:
        out = {"params": float(sum(p.numel() for p in small.parameters())), "macs": float(count_macs(small, example))}
        out["dense_macs"] = float(count_macs(dense, example))
        third = budget_s / 3
        with torch.no_grad():
            dense.eval(), small.eval()
            out["forward_speedup_b1"] = paired_speedup(lambda: dense(example), lambda: small(example), third, device)
            out["forward_speedup"] = paired_speedup(lambda: dense(batch), lambda: small(batch), third, device)
        dense.train(), small.train()
        dense_step = _step(dense, batch, loss, make_optimizer(list(dense.parameters())), hold)
        small_step = _step(small, batch, loss, make_optimizer(list(small.parameters())), None)
        out["step_speedup"] = paired_speedup(dense_step, small_step, third, device)
    finally:
        hold.release()
    return {k: round(v, 4) for k, v in out.items()}
