"""Optimizers and the learning-rate schedule (linear warm-up, then step decay at milestones).

The schedule is a pure function of the iteration, so a training rewound to iteration k resumes
the learning rate exactly where the dense run had it, with no scheduler state to carry.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Callable, Iterable

import torch

from domains.vision.config import VisionConfig
from lth_core.registry import Registry

Factory = Callable[[Iterable[torch.nn.Parameter], VisionConfig], torch.optim.Optimizer]
OPTIMIZERS: Registry[Factory] = Registry("optimizer")


# fused kernels (one kernel per step for all tensors, CPU and CUDA): ~2x faster steps for small models
FUSED = {"fused": True}


@OPTIMIZERS.register("sgd")
def sgd(params, c: VisionConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        params,
        lr=c.lr,
        momentum=c.momentum,
        nesterov=c.nesterov and c.momentum > 0,
        weight_decay=c.weight_decay,
        **FUSED,
    )


@OPTIMIZERS.register("adam")
def adam(params, c: VisionConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay, **FUSED)


@OPTIMIZERS.register("adamw")
def adamw(params, c: VisionConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay, **FUSED)


class Schedule:
    """lr(step) for the update that moves the weights from iteration `step` to `step + 1`."""

    def __init__(self, c: VisionConfig) -> None:
        self.lr = c.lr
        self.gamma = c.lr_gamma
        self.milestones = c.milestones()
        self.warmup = c.warmup_iterations()

    def __call__(self, step: int) -> float:
        lr = self.lr * self.gamma ** bisect_right(self.milestones, step)
        if step < self.warmup:
            lr *= (step + 1) / self.warmup
        return lr
