"""Pruning strategies: a `PruneStep` (trained weights, current mask, per-tensor rates, ...) -> next mask.

A strategy is one registered `Strategy` class; as a dataclass its `opt(...)` fields are its hyperparameters
(CLI flags `--<name>-<field>`, see `ComponentRegistry`). Every built-in strategy removes a fraction of what
*remains* in each tensor (or, globally, of what remains overall), so masks nest from level to level. Ties in
magnitude are broken by position, so results are deterministic. `rates[name]` is the fraction to remove from
that tensor this step (0 = untouched).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Callable, ClassVar, Mapping

import torch
from torch import Tensor, nn

from lth_core.components import Component, ComponentRegistry
from lth_core.errors import UsageError
from lth_core.masks import Mask
from lth_core.structure import GroupFamily


@dataclass(frozen=True)
class ScoringHook:
    """The domain's own training loss, for criteria that read gradients (SNIP, GraSP, SynFlow).

    Built by the runner from `adapter.build` and `adapter.training_loss` where the adapter offers it; a
    strategy that calls it declares `needs = frozenset({"training_loss"})`.
    """

    build: Callable[[int], nn.Module]  # a fresh model of the domain's architecture from a seed
    training_loss: Callable[[nn.Module, int, int], Tensor]  # (model, batches, seed) -> differentiable loss
    seed: int
    input_shape: tuple[int, ...] | None = None  # one example's shape, for data-free criteria (SynFlow)
    output: Callable[[nn.Module, Tensor], Tensor] | None = None  # the outputs they sum (None: model(x))

    def model(self, weights: Mapping[str, Tensor]) -> nn.Module:
        """The domain's model holding `weights` (a full state dict, e.g. the step's trained or rewind weights)."""
        model = self.build(0)
        model.load_state_dict(dict(weights))
        return model

    def __call__(self, model: nn.Module, batches: int) -> Tensor:
        """The training loss of `model` on `batches` batches of the domain's training data (seeded)."""
        return self.training_loss(model, batches, self.seed)


@dataclass(frozen=True)
class PruneStep:
    weights: Mapping[str, Tensor]  # trained weights of the tensors in the mask
    mask: Mask  # the mask they were trained under
    rates: Mapping[str, float]  # fraction of the remaining entries to remove, per tensor
    global_names: frozenset[str]  # tensors ranked together by global strategies (the rest layerwise)
    seed: int = 0  # for random strategies
    initial: Mapping[str, Tensor] | None = None  # the trial's initial weights (full state dict)
    rewind: Mapping[str, Tensor] | None = None  # its rewind weights (full state dict), once the dense run kept them
    score: ScoringHook | None = None  # the domain's training loss, where the adapter offers one
    state: Mapping[str, Tensor] | None = None  # the full state dict `weights` come from (scored as a model)
    families: tuple[GroupFamily, ...] | None = None  # the model's group families, for structured strategies
    grad_sums: Mapping[str, Tensor] | None = None  # sum_t g_t * w_t over the training of `weights` (movement)


class Strategy(Component):
    """PruneStep -> the next mask, nested in `step.mask`. `sums_gradients`: the step needs `grad_sums`, so the
    training its weights come from sums its gradients (`Job.grad_sums`), and a schedule that prunes before
    any training is refused."""

    sums_gradients: ClassVar[bool] = False

    def __call__(self, step: PruneStep) -> Mask:
        raise NotImplementedError

    def scores(self, step: PruneStep) -> dict[str, Tensor]:
        """Per-tensor ranking scores of `step`, lowest removed first (what the `inverted` control inverts)."""
        raise UsageError(f"strategy {type(self).__name__} does not expose ranking scores")


STRATEGIES = ComponentRegistry("strategy")


def _override(name: str, group: str, overrides: Mapping[str, float]) -> float | None:
    hit = None
    for key, val in overrides.items():
        if key == group or fnmatch.fnmatchcase(name, key):
            hit = val
    return hit


def resolve_rates(groups: Mapping[str, str], rate: float, overrides: Mapping[str, float]) -> dict[str, float]:
    """Per-tensor rate: an override keyed by the tensor's group or matching its name wins over `rate`."""
    out = {}
    for name, group in groups.items():
        hit = _override(name, group, overrides)
        out[name] = rate if hit is None else hit
    return out


def global_names(groups: Mapping[str, str], overrides: Mapping[str, float]) -> frozenset[str]:
    """Tensors a global strategy ranks together: those without an override (the rest are layerwise)."""
    return frozenset(n for n, g in groups.items() if _override(n, g, overrides) is None)


def _n_remove(remaining: int, rate: float) -> int:
    return min(remaining, int(round(rate * remaining)))


def lowest(scores: Tensor, n: int) -> Tensor:
    """Boolean mask of the `n` lowest entries of a 1-D tensor; ties go to the earlier position.

    A selection (kthvalue), not a sort: linear time, so a global step over ~10M weights stays cheap.
    """
    out = torch.zeros_like(scores, dtype=torch.bool)
    if n <= 0:
        return out
    threshold = torch.kthvalue(scores, n).values
    out = scores < threshold
    ties = torch.nonzero(scores == threshold).flatten()[: n - int(out.sum())]
    out[ties] = True
    return out


def _drop_lowest(scores: Tensor, keep: Tensor, n_remove: int) -> Tensor:
    """Clear the `n_remove` kept entries of lowest score (earlier position first on ties)."""
    flat_keep = keep.flatten().clone()
    idx = torch.nonzero(flat_keep, as_tuple=False).flatten()
    ranked = scores.flatten()[idx]
    flat_keep[idx[lowest(ranked if ranked.is_floating_point() else ranked.float(), n_remove)]] = False
    return flat_keep.view_as(keep)


def _layerwise(step: PruneStep, scores: Mapping[str, Tensor], names) -> dict[str, Tensor]:
    out = {}
    for n in names:
        keep = step.mask[n]
        out[n] = _drop_lowest(scores[n], keep, _n_remove(int(keep.sum()), step.rates[n]))
    return out


def prune_lowest(step: PruneStep, scores: Mapping[str, Tensor]) -> Mask:
    """Each tensor loses its lowest-scored remaining entries at its rate: any layerwise criterion is its scores."""
    return Mask(_layerwise(step, scores, step.mask.names()))


def prune_global(step: PruneStep, scores: Mapping[str, Tensor], protect: bool) -> Mask:
    """One ranking of `scores` across `step.global_names` (the other tensors layerwise at their rates).

    The count removed is round(rate * remaining) over the ranked tensors together, where rate is the base rate
    those tensors share. With `protect` no tensor is emptied: its highest-scored remaining entry survives and is
    counted (the removal moves to the next-lowest entry elsewhere); without it a tensor may collapse.
    """
    ranked = [n for n in step.mask.names() if n in step.global_names]
    others = [n for n in step.mask.names() if n not in step.global_names]
    out = _layerwise(step, scores, others)
    if ranked:
        rate = max(step.rates[n] for n in ranked)
        keep = torch.cat([step.mask[n].flatten() for n in ranked])
        flat = torch.cat([scores[n].detach().cpu().flatten() for n in ranked])
        flat = (flat if flat.is_floating_point() else flat.float()).clone()
        flat[~keep] = float("inf")  # already pruned: never chosen again
        sizes = [step.mask[n].numel() for n in ranked]
        if protect:
            offsets = torch.tensor([0] + sizes[:-1]).cumsum(0)
            for off, size in zip(offsets.tolist(), sizes):
                kept_here = torch.nonzero(keep[off : off + size]).flatten()
                if kept_here.numel():  # protect each tensor's highest survivor from global removal
                    flat[off + kept_here[torch.argmax(flat[off + kept_here])]] = float("inf")
        n_remove = min(_n_remove(int(keep.sum()), rate), int((flat < float("inf")).sum()))
        keep[lowest(flat, n_remove)] = False
        for part, n in zip(torch.split(keep, sizes), ranked):
            out[n] = part.view_as(step.mask[n])
    return Mask({n: out[n] for n in step.mask.names()})


@STRATEGIES.register("magnitude_layerwise")
class MagnitudeLayerwise(Strategy):
    """Remove the smallest-magnitude remaining weights of each tensor at that tensor's rate (F&C 2019)."""

    def __call__(self, step: PruneStep) -> Mask:
        return prune_lowest(step, self.scores(step))

    def scores(self, step: PruneStep) -> dict[str, Tensor]:
        return {n: step.weights[n].detach().abs().cpu() for n in step.mask}


@STRATEGIES.register("magnitude_global")
class MagnitudeGlobal(Strategy):
    """One magnitude threshold across `global_names` (Stabilizing the LTH; Yu et al.); others layerwise.

    The count removed is round(rate * remaining) over the ranked tensors together, where rate is the
    base rate those tensors share. No tensor is emptied: its largest remaining entry survives, and
    that survivor is counted (the removal moves to the next-smallest entry elsewhere).
    """

    def __call__(self, step: PruneStep) -> Mask:
        return prune_global(step, self.scores(step), protect=True)

    def scores(self, step: PruneStep) -> dict[str, Tensor]:
        return {n: step.weights[n].detach().abs().cpu() for n in step.mask}


@STRATEGIES.register("random")
class RandomPruning(Strategy):
    """Remove remaining entries uniformly at random, with the layerwise counts (a pruning baseline)."""

    def __call__(self, step: PruneStep) -> Mask:
        return prune_lowest(step, self.scores(step))

    def scores(self, step: PruneStep) -> dict[str, Tensor]:
        g = torch.Generator().manual_seed(step.seed)
        return {n: torch.rand(step.mask[n].shape, generator=g) for n in step.mask}
