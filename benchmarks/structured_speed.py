"""LeNet-300-100 at 25% of its hidden neurons: a compacted training step against the masked dense one.

The issue's claim: removing neurons (not masking them) makes a training step >= 2x faster on this CPU. Both
models run interleaved in one process at 1 thread (lth_core.cost: median of paired ratios), at the training
batch of F&C (60) and at 128; the masked dense step masks its gradients as our loop does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from domains.vision.adapter import VisionAdapter
from domains.vision.config import VisionConfig
from lth_core.cost import measure_cost
from lth_core.masks import Mask
from lth_core.structured import keeps_to_mask

KEEP = 0.25


def lenet_pair(batch: int):
    """(masked dense LeNet-300-100, its mask, the compacted one, an example, a batch, labels) on MNIST's shape."""
    adapter = VisionAdapter(VisionConfig(dataset="mnist", model="lenet_300_100", data_dir="unused"))
    model = adapter.build(0)
    fams = tuple(adapter.structure(model))
    keep = {f.name: torch.arange(f.count) < round(KEEP * f.count) for f in fams}
    prunable = adapter.prunable(model, False)
    full = Mask({n: torch.ones_like(t, dtype=torch.bool) for n, t in model.state_dict().items() if n in prunable})
    mask = keeps_to_mask(fams, keep, full).to_state()
    dense = adapter.build(0)
    small = adapter.compact(adapter.build(0), keep)
    g = torch.Generator().manual_seed(0)
    x1, xb = torch.randn(1, 1, 28, 28, generator=g), torch.randn(batch, 1, 28, 28, generator=g)
    y = torch.randint(10, (batch,), generator=g)
    return dense, mask, small, x1, xb, y


def lenet_speedups(batch: int, seconds: float = 3.0) -> dict[str, float]:
    """measure_cost's columns for LeNet-300-100 at 25% of its neurons, SGD, 1 thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        dense, mask, small, x1, xb, y = lenet_pair(batch)
        return measure_cost(
            dense,
            mask,
            small,
            x1,
            xb,
            lambda out: F.cross_entropy(out, y),
            lambda p: torch.optim.SGD(p, lr=0.01),
            budget_s=seconds,
        )
    finally:
        torch.set_num_threads(before)


def line(batch: int) -> str:
    c = lenet_speedups(batch)
    return (
        f"LeNet-300-100 at 25% of its hidden neurons, batch {batch}, 1 thread: compacted vs masked dense "
        f"step {c['step_speedup']:.2f}x, forward {c['forward_speedup']:.2f}x "
        f"(batch 1: {c['forward_speedup_b1']:.2f}x); "
        f"{c['params']:.0f} parameters, {c['macs']:.0f} vs {c['dense_macs']:.0f} MACs per example (paired medians)"
    )


if __name__ == "__main__":
    for b in (60, 128):
        print(line(b))
