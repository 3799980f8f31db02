"""BatchNorm statistics recomputed for given weights: a point between two networks holds neither end's
activation statistics, so interpolating the running means and variances can misstate the point's error (Jordan
et al. 2022, REPAIR). Domain-free: the domain supplies the training batches and how its model eats one."""

from __future__ import annotations

from typing import Any, Callable, Iterable

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def batchnorms(model: nn.Module) -> list[_BatchNorm]:
    """The BatchNorm layers that keep running statistics (those without have nothing to recompute)."""
    return [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


def recompute(model: nn.Module, batches: Iterable[Any], forward: Callable[[nn.Module, Any], object]) -> int:
    """Replace every BatchNorm's running mean and variance by their plain average over `batches` (train-mode
    forward passes without gradients; momentum None = cumulative average), leaving the weights untouched and
    the model in the mode it was in. Returns how many layers were recomputed (0: the model has none)."""
    norms = batchnorms(model)
    if not norms:
        return 0
    momenta = [m.momentum for m in norms]
    was_training = model.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    seen = 0
    try:
        with torch.no_grad():
            for batch in batches:
                forward(model, batch)
                seen += 1
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.train(was_training)
    if seen == 0:
        raise ValueError("recomputing BatchNorm statistics needs at least one batch")
    return len(norms)
