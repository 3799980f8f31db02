"""Controls trained beside each ticket with the same budget: what a ticket must beat to be a winning one."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from lth_core.job import StateDict
from lth_core.masks import Mask
from lth_core.registry import Registry


@dataclass(frozen=True)
class ControlInput:
    ticket_mask: Mask
    rewind_weights: StateDict  # the ticket's own starting weights
    fresh_weights: Callable[[int], StateDict]  # a new init from the model's own initializer
    seed: int  # distinct per level, trial and control


Control = Callable[[ControlInput], tuple[StateDict, Mask]]
CONTROLS: Registry[Control] = Registry("control")


@CONTROLS.register("random_reinit")
def random_reinit(c: ControlInput) -> tuple[StateDict, Mask]:
    """The ticket's mask on a fresh initialization drawn with another seed (F&C: 'random reinit')."""
    return c.fresh_weights(c.seed), c.ticket_mask


@CONTROLS.register("random_mask")
def random_mask(c: ControlInput) -> tuple[StateDict, Mask]:
    """A random mask with the ticket's per-tensor counts on the ticket's own initialization."""
    g = torch.Generator().manual_seed(c.seed)
    out = {}
    for name, m in c.ticket_mask.tensors.items():
        flat = torch.zeros(m.numel(), dtype=torch.bool)
        flat[torch.randperm(m.numel(), generator=g)[: int(m.sum())]] = True
        out[name] = flat.view(m.shape)
    return c.rewind_weights, Mask(out)
