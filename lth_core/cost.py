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

from lth_core.mask_hold import MaskHold
from lth_core.masks import Mask

Loss = Callable[[Tensor], Tensor]  # model output -> scalar loss
MakeOptimizer = Callable[[list[nn.Parameter]], torch.optim.Optimizer]


def count_macs(model: nn.Module, x: Tensor) -> int:
    """Multiply-accumulates of one forward on `x` as torch executes it (FlopCounterMode's FLOPs / 2)."""
    from torch.utils.flop_counter import FlopCounterMode  # here: it imports triton (~0.1 s of every start-up)

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
    reset: Callable[[], None] | None = None,
) -> float:
    """Median over interleaved pairs of (time of `slow`) / (time of `fast`), each sample `sample_s` or more;
    `reset` (untimed) runs before every sample (training steps restart from the same weights: steps repeated on
    one batch would drive gradients into denormal floats, which are slow, and time that instead)."""
    reset = reset or (lambda: None)
    reset()
    n_slow = _calibrate(slow, sample_s, device)
    reset()
    n_fast = _calibrate(fast, sample_s, device)
    ratios: list[float] = []
    end = time.perf_counter() + budget_s
    while len(ratios) < min_pairs or time.perf_counter() < end:
        times = {}
        for name, fn, n in (("slow", slow, n_slow), ("fast", fast, n_fast))[:: 1 if len(ratios) % 2 else -1]:
            reset()
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


class _Steps:
    """Training steps of two models that `reset` puts back to their starting weights and fresh optimizers."""

    def __init__(self, models: list[nn.Module], make_optimizer: MakeOptimizer) -> None:
        self.models, self.make = models, make_optimizer
        self.start = [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in models]
        self.optimizers: list[torch.optim.Optimizer] = []
        self.reset()

    def reset(self) -> None:
        for m, s in zip(self.models, self.start):
            m.load_state_dict(s)
        self.optimizers = [self.make(list(m.parameters())) for m in self.models]

    def step(self, i: int, x: Tensor, loss: Loss, hold: MaskHold | None) -> Callable[[], None]:
        def run() -> None:
            model, optimizer = self.models[i], self.optimizers[i]
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
    batch `batch`, a training step with `make_optimizer`'s optimizer). Both models train a few steps here;
    they are put back to the weights they came with. `budget_s` is shared by the three timings."""
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
        steps = _Steps([dense, small], make_optimizer)
        out["step_speedup"] = paired_speedup(
            steps.step(0, batch, loss, hold), steps.step(1, batch, loss, None), third, device, reset=steps.reset
        )
        steps.reset()  # the timed steps trained both models: back to the weights they came with
    finally:
        hold.release()
    return {k: round(v, 4) for k, v in out.items()}
