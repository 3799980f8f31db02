"""Counting the FLOPs of a training step from one forward pass: multiply-accumulates per weight tensor of the
linear and convolution layers, scaled by the fraction of that tensor a mask keeps (a sparse-aware count, as
the pruning literature reports it; dense kernels do the same work on zeros). Training = forward + backward
~ 3 x forward (the backward computes the gradients of inputs and of weights), 2 FLOPs per MAC."""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor, nn


@torch.no_grad()
def weight_macs(model: nn.Module, example: Tensor) -> dict[str, float]:
    """Weight name -> multiply-accumulates of one forward pass of `example` (a batch of one) through it."""
    names = {id(m): n for n, m in model.named_modules()}
    out: dict[str, float] = {}

    def hook(module: nn.Module, inputs, output) -> None:
        w: Tensor = module.weight  # type: ignore[assignment]
        if isinstance(module, nn.Linear):
            macs = output.numel() * w.shape[1]
        else:  # convolutions: every output element sums in_channels/groups x kernel entries
            macs = output.numel() * w[0].numel()
        key = f"{names[id(module)]}.weight".lstrip(".")
        out[key] = out.get(key, 0.0) + float(macs)

    handles = [
        m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))
    ]
    try:
        model.eval()(example)
    finally:
        for h in handles:
            h.remove()
    return out


def train_step_flops(macs: Mapping[str, float], mask: Mapping[str, Tensor] | None, batch: int) -> float:
    """FLOPs of one training step of `batch` examples under `mask` (None = dense)."""
    total = 0.0
    for name, m in macs.items():
        kept = 1.0 if mask is None or name not in mask else float(mask[name].float().mean())
        total += m * kept
    return 3 * 2 * batch * total
