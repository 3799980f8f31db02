"""Training a structured job as the compacted model (`--compact`): its weights and mask cut to the kept groups,
the smaller model trained by the domain's own loop, its weights put back into the dense shapes afterwards.

The masked and the compacted training compute the same function: every removed group's readers are masked, and
the optimizers act elementwise. What the dense shapes get back at removed entries: zero in the masked tensors
(as a masked training leaves them), the job's starting values elsewhere (BatchNorm entries, biases of removed
groups, which no kept unit reads). The next level prunes from these, the store keeps them, so nothing downstream
sees a shape other than the model's.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping

import torch
from torch import Tensor, nn

from lth_core.adapter import Adapter
from lth_core.compaction import kept_index
from lth_core.job import Job, Outcome, StateDict
from lth_core.structure import GroupFamily


def _cuts(families: tuple[GroupFamily, ...], keep: Mapping[str, Tensor]) -> dict[str, dict[int, Tensor]]:
    """tensor -> {dim: kept index along it}."""
    out: dict[str, dict[int, Tensor]] = {}
    for fam in families:
        for m in fam.members:
            out.setdefault(m.tensor, {})[m.dim] = kept_index(keep[fam.name], m.width)
    return out


def slice_tensors(families: tuple[GroupFamily, ...], keep: Mapping[str, Tensor], tensors: StateDict) -> StateDict:
    """Every tensor of `tensors` that is a family member cut to the kept groups (absent members skipped)."""
    out = dict(tensors)
    for name, dims in _cuts(families, keep).items():
        if name in out:
            for dim, idx in dims.items():
                out[name] = out[name].index_select(dim, idx)
    return out


def expand_tensors(
    families: tuple[GroupFamily, ...], keep: Mapping[str, Tensor], small: StateDict, like: StateDict
) -> StateDict:
    """`small` (compacted shapes) back into the shapes of `like`: kept entries from `small`, the rest from `like`."""
    cuts = _cuts(families, keep)
    out = {}
    for name, t in small.items():
        if name not in cuts:
            out[name] = t
            continue
        full = like[name].detach().to(t.device, t.dtype, copy=True)
        idx = [cuts[name].get(d, torch.arange(full.shape[d])) for d in range(full.dim())]
        full[torch.meshgrid(*[i.to(t.device) for i in idx], indexing="ij")] = t
        out[name] = full
    return out


def compact_job(job: Job, families: tuple[GroupFamily, ...]) -> Job:
    """The job as the compacted model trains it: weights and mask cut to its keeps."""
    assert job.keep is not None
    mask = slice_tensors(families, job.keep, job.mask) if job.mask is not None else None
    return dataclasses.replace(job, weights=slice_tensors(families, job.keep, job.weights), mask=mask, keep=None)


def expand_outcome(out: Outcome, families: tuple[GroupFamily, ...], job: Job) -> Outcome:
    """The compacted training's weights in the dense shapes (masked entries zero, others from the job's start)."""
    assert job.keep is not None
    keep, mask = job.keep, job.mask or {}

    def grow(small: StateDict) -> StateDict:
        full = expand_tensors(families, keep, small, job.weights)
        return {k: v * mask[k].to(v.device, v.dtype) if k in mask else v for k, v in full.items()}

    if out.final_weights is not None:
        out.final_weights = grow(out.final_weights)
    out.captured = {step: grow(w) for step, w in out.captured.items()}
    out.extras = {**out.extras, "compacted": True}
    return out


def train_compacted(
    adapter: Adapter, model: nn.Module, job: Job, train: Callable[[nn.Module, Job], Outcome]
) -> Outcome:
    """`train(smaller model, cut job)` for a job with keeps (`model` holds the job's weights; it is cut in place)."""
    families = tuple(adapter.structure(model))
    assert job.keep is not None
    small = adapter.compact(model, job.keep)
    return expand_outcome(train(small, compact_job(job, families)), families, job)
