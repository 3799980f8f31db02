"""Controls trained beside each ticket with the same budget: what a ticket must beat to be a winning one.

A control is one registered `Control` class; as a dataclass its `opt(...)` fields are its parameters (CLI flags
`--<name>-<field>`, see `lth_core.components.ComponentRegistry`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar, Mapping

import torch
from torch import Tensor

from lth_core.components import Component, ComponentRegistry
from lth_core.job import StateDict
from lth_core.masks import Mask
from lth_core.strategies import lowest
from lth_core.structure import GroupFamily


@dataclass(frozen=True)
class ControlInput:
    ticket_mask: Mask
    rewind_weights: StateDict  # the ticket's own starting weights
    fresh_weights: Callable[[int], StateDict]  # a new init from the model's own initializer
    seed: int  # distinct per level, trial and control
    # the ticket's pruning step again: (the mask it pruned from, the strategy's scores, lowest removed first);
    # None where the ticket was not drawn here (--ticket-from)
    ranking: Callable[[], tuple[Mask, Mapping[str, Tensor]]] | None = None
    families: tuple[GroupFamily, ...] | None = None  # the model's group families, for structured controls


class Control(Component):
    """ControlInput -> (starting weights, mask) of a job trained beside the ticket.

    `uses_scores`: it reads `ControlInput.ranking`, so the run's strategy must expose `scores` (checked up front).
    """

    uses_scores: ClassVar[bool] = False

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


@CONTROLS.register("layer_shuffle")
class LayerShuffle(Control):
    """The ticket's mask permuted at random within each tensor, on the ticket's own rewind weights (Frankle et al.
    2021's layerwise shuffle): keeps each tensor's density, destroys which entries. Equal in distribution to
    `random_mask` (a uniformly random mask with the ticket's per-tensor counts); a separate name and seed stream,
    so a run may carry both as two independent draws. (`random_reinit` is the paper's 'reinitialize' ablation.)"""

    def __call__(self, c: ControlInput) -> tuple[StateDict, Mask]:
        g = torch.Generator().manual_seed(c.seed)
        out = {}
        for name, m in c.ticket_mask.tensors.items():
            flat = m.flatten()
            out[name] = flat[torch.randperm(flat.numel(), generator=g)].view(m.shape)
        return c.rewind_weights, Mask(out)


@CONTROLS.register("inverted")
class Inverted(Control):
    """Keep the *lowest*-ranked entries of the ticket's criterion: a rank inversion of the strategy's scores (never
    a reciprocal, which breaks on signed scores and zeros), among the entries the ticket's step pruned from, at the
    ticket's per-tensor counts, ties by position, on the ticket's rewind weights."""

    uses_scores = True

    def __call__(self, c: ControlInput) -> tuple[StateDict, Mask]:
        if c.ranking is None:
            raise RuntimeError("the inverted control needs the ticket's pruning step, and this run has none")
        pruned_from, scores = c.ranking()
        out = {}
        for name, m in c.ticket_mask.tensors.items():
            cand = torch.nonzero(pruned_from[name].flatten()).flatten()
            ranked = scores[name].detach().cpu().flatten()[cand]
            flat = torch.zeros(m.numel(), dtype=torch.bool)
            flat[cand[lowest(ranked if ranked.is_floating_point() else ranked.float(), int(m.sum()))]] = True
            out[name] = flat.view(m.shape)
        return c.rewind_weights, Mask(out)
