"""Pruning strategies: (trained weights, current mask, per-tensor rates) -> next mask, exact in counts.

Every strategy removes a fraction of what *remains* in each tensor (or, globally, of what remains
overall), so masks nest from level to level. Ties in magnitude are broken by position, so results are
deterministic. `rates[name]` is the fraction to remove from that tensor this step (0 = untouched).
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Callable, Mapping

import torch
from torch import Tensor

from lth_core.masks import Mask
from lth_core.registry import Registry


@dataclass(frozen=True)
class PruneStep:
    weights: Mapping[str, Tensor]  # trained weights of the tensors in the mask
    mask: Mask  # the mask they were trained under
    rates: Mapping[str, float]  # fraction of the remaining entries to remove, per tensor
    global_names: frozenset[str]  # tensors ranked together by global strategies (the rest layerwise)
    seed: int = 0  # for random strategies


Strategy = Callable[[PruneStep], Mask]
STRATEGIES: Registry[Strategy] = Registry("strategy")
SCHEDULES: Registry[str] = Registry("schedule")
SCHEDULES.add("iterative", "iterative")
SCHEDULES.add("one_shot", "one_shot")


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


def _drop_lowest(scores: Tensor, keep: Tensor, n_remove: int) -> Tensor:
    """Clear the `n_remove` kept entries of lowest score (stable: earlier position goes first on ties)."""
    flat_keep = keep.flatten().clone()
    if n_remove <= 0:
        return flat_keep.view_as(keep)
    idx = torch.nonzero(flat_keep, as_tuple=False).flatten()
    vals = scores.flatten()[idx].double()
    order = torch.sort(vals, stable=True).indices[:n_remove]
    flat_keep[idx[order]] = False
    return flat_keep.view_as(keep)


def _layerwise(step: PruneStep, scores: Mapping[str, Tensor], names) -> dict[str, Tensor]:
    out = {}
    for n in names:
        keep = step.mask[n]
        out[n] = _drop_lowest(scores[n], keep, _n_remove(int(keep.sum()), step.rates[n]))
    return out


@STRATEGIES.register("magnitude_layerwise")
def magnitude_layerwise(step: PruneStep) -> Mask:
    """Remove the smallest-magnitude remaining weights of each tensor at that tensor's rate (F&C 2019)."""
    scores = {n: step.weights[n].detach().abs().cpu() for n in step.mask}
    return Mask(_layerwise(step, scores, step.mask.names()))


@STRATEGIES.register("magnitude_global")
def magnitude_global(step: PruneStep) -> Mask:
    """One magnitude threshold across `global_names` (Stabilizing the LTH; Yu et al.); others layerwise.

    The count removed is round(rate * remaining) over the ranked tensors together, where rate is the
    base rate those tensors share. No tensor is emptied: its largest remaining entry survives, and
    that survivor is counted (the removal moves to the next-smallest entry elsewhere).
    """
    ranked = [n for n in step.mask.names() if n in step.global_names]
    others = [n for n in step.mask.names() if n not in step.global_names]
    out = _layerwise(step, {n: step.weights[n].detach().abs().cpu() for n in others}, others)
    if ranked:
        rate = max(step.rates[n] for n in ranked)
        remaining = sum(int(step.mask[n].sum()) for n in ranked)
        n_remove = _n_remove(remaining, rate)
        vals, owners, positions = [], [], []
        for i, n in enumerate(ranked):
            keep = step.mask[n].flatten()
            idx = torch.nonzero(keep, as_tuple=False).flatten()
            v = step.weights[n].detach().abs().cpu().flatten()[idx].double()
            if idx.numel():
                # protect each tensor's largest survivor from global removal
                v = v.clone()
                v[torch.argmax(v)] = float("inf")
            vals.append(v)
            owners.append(torch.full_like(idx, i))
            positions.append(idx)
        allv, allo, allp = torch.cat(vals), torch.cat(owners), torch.cat(positions)
        n_remove = min(n_remove, int(torch.isfinite(allv).sum()))
        order = torch.sort(allv, stable=True).indices[:n_remove]
        new = {n: step.mask[n].flatten().clone() for n in ranked}
        for i, n in enumerate(ranked):
            sel = allp[order][allo[order] == i]
            new[n][sel] = False
            out[n] = new[n].view_as(step.mask[n])
    return Mask({n: out[n] for n in step.mask.names()})


@STRATEGIES.register("random")
def random_pruning(step: PruneStep) -> Mask:
    """Remove remaining entries uniformly at random, with the layerwise counts (a pruning baseline)."""
    g = torch.Generator().manual_seed(step.seed)
    scores = {n: torch.rand(step.mask[n].shape, generator=g) for n in step.mask}
    return Mask(_layerwise(step, scores, step.mask.names()))
