"""Controls trained beside each ticket with the same budget: what a ticket must beat to be a winning one.

A control is one registered `Control` class; as a dataclass its `opt(...)` fields are its parameters (CLI flags
`--<name>-<field>`, see `lth_core.components.ComponentRegistry`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from lth_core.components import Component, ComponentRegistry
from lth_core.job import StateDict
from lth_core.masks import Mask


@dataclass(frozen=True)
class ControlInput:
    ticket_mask: Mask
    rewind_weights: StateDict  # the ticket's own starting weights
    fresh_weights: Callable[[int], StateDict]  # a new init from the model's own initializer
    seed: int  # distinct per level, trial and control


class Control(Component):
    """ControlInput -> (starting weights, mask) of a job trained beside the ticket."""

    def __call__(self, c: ControlInput) -> tuple[StateDict, Mask]:
        raise NotImplementedError


CONTROLS = ComponentRegistry("control")


@CONTROLS.register("random_reinit")
class RandomReinit(Control):
    """The ticket's mask on a fresh initialization drawn with another seed (F&C: 'random reinit')."""

    def __call__(self, c: ControlInput) -> tuple[StateDict, Mask]:
        return c.fresh_weights(c.seed), c.ticket_mask


@CONTROLS.register("random_mask")
class RandomMask(Control):
    """A random mask with the ticket's per-tensor counts on the ticket's own initialization."""

    def __call__(self, c: ControlInput) -> tuple[StateDict, Mask]:
        g = torch.Generator().manual_seed(c.seed)
        out = {}
        for name, m in c.ticket_mask.tensors.items():
            flat = torch.zeros(m.numel(), dtype=torch.bool)
            flat[torch.randperm(m.numel(), generator=g)[: int(m.sum())]] = True
            out[name] = flat.view(m.shape)
        return c.rewind_weights, Mask(out)
