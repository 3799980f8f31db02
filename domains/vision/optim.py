"""Optimizers and the learning-rate schedule (linear warm-up, then step decay at milestones).

The schedule is a pure function of the iteration, so a training rewound to iteration k resumes
the learning rate exactly where the dense run had it, with no scheduler state to carry.

`step_without_wrappers(optimizer)` is `optimizer.step()` without torch.optim's eager-mode wrappers: they
`import torch._dynamo` (~2 s of a process's start-up, as long again as `import torch`, for a guard that does
nothing outside torch.compile) and open a profiler range at every call (~0.1 ms: a tenth of a small model's
step). The update is the same kernel on the same arguments, so the weights are the same bit for bit. Under
torch.compile, or with optimizer hooks registered, it is `optimizer.step()` itself.
"""

from __future__ import annotations

import sys
from bisect import bisect_right
from typing import Callable, Iterable

import torch
from torch.optim import optimizer as torch_optimizer

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


def _innermost(fn: Callable) -> Callable:
    while hasattr(fn, "__wrapped__"):
        fn = fn.__wrapped__
    return fn


def _defer_dynamo(method: Callable) -> None:
    """A torch._disable_dynamo-wrapped method called as itself until torch._dynamo is imported (which any
    compile needs): the wrapper looks its guard up on the function first (`__dynamo_disable`), where this puts
    a pass-through that hands back to the wrapper, and its real guard, once torch._dynamo is there."""
    raw = _innermost(method)
    if "__dynamo_disable" in raw.__dict__ or raw is method:
        return

    def passthrough(*args, **kwargs):
        if "torch._dynamo" in sys.modules:
            raw.__dict__.pop("__dynamo_disable", None)
            return method(*args, **kwargs)
        return raw(*args, **kwargs)

    raw.__dict__["__dynamo_disable"] = passthrough


_defer_dynamo(torch.optim.Optimizer.add_param_group)  # called by every optimizer's constructor


def step_without_wrappers(optimizer: torch.optim.Optimizer) -> None:
    """`optimizer.step()`, the same update without the eager-mode wrappers (module docstring)."""
    hooks = (
        optimizer._optimizer_step_pre_hooks,
        optimizer._optimizer_step_post_hooks,
        torch_optimizer._global_optimizer_pre_hooks,
        torch_optimizer._global_optimizer_post_hooks,
    )
    if torch.compiler.is_compiling() or any(hooks):
        optimizer.step()
        return
    with torch.set_grad_enabled(bool(optimizer.defaults.get("differentiable", False))):
        _innermost(type(optimizer).step)(optimizer)


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
