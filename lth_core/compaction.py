"""Compaction: from per-family group keeps, the physically smaller tensors and modules.

A structured mask zeroes whole groups (`lth_core.structure`); only dropping them makes a network cheaper.
`kept_index` says which entries along a member's `dim` survive; `slice_state` cuts every member tensor of
every family down to them (a tensor in two families, e.g. a conv weight whose rows are its own filters and
whose columns are the previous layer's channels, is cut along both dims); `shrink` does the same to a live
module tree in place, fixing the size attributes torch's standard layers keep (`in_features`,
`out_channels`, `num_features`, ...). A domain whose modules carry more (attention's `num_heads`) fixes
those in its own `Adapter.compact`.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor, nn

from lth_core.structure import GroupFamily

StateDict = Mapping[str, Tensor]

SIZE_ATTRS = {  # module type -> (attribute, tensor name, dim) kept equal to a parameter's size
    nn.Linear: (("out_features", "weight", 0), ("in_features", "weight", 1)),
    nn.Conv1d: (("out_channels", "weight", 0),),
    nn.Conv2d: (("out_channels", "weight", 0),),
    nn.modules.batchnorm._BatchNorm: (("num_features", "running_mean", 0),),
}


def kept_index(keep: Tensor, width: int) -> Tensor:
    """Indices along a member's dim of the entries of kept groups (`keep`: [count] bool, `width` per group)."""
    groups = torch.nonzero(keep.bool()).flatten()
    return (groups[:, None] * width + torch.arange(width)[None, :]).flatten()


def check_keeps(families: list[GroupFamily], keep: Mapping[str, Tensor]) -> None:
    """Raise ValueError when a keep is missing, has the wrong length, or empties its family."""
    for fam in families:
        if fam.name not in keep:
            raise ValueError(f"no keep for group family {fam.name!r}")
        k = keep[fam.name]
        if k.numel() != fam.count:
            raise ValueError(f"group family {fam.name!r}: keep has {k.numel()} entries, expected {fam.count}")
        if not bool(k.any()):
            raise ValueError(f"group family {fam.name!r}: every group removed (the network would be cut)")


def slice_state(families: list[GroupFamily], keep: Mapping[str, Tensor], state: StateDict) -> dict[str, Tensor]:
    """`state` with every family member cut to its kept groups; other tensors unchanged (not copied)."""
    check_keeps(families, keep)
    out = dict(state)
    for fam in families:
        for m in fam.members:
            out[m.tensor] = out[m.tensor].index_select(m.dim, kept_index(keep[fam.name], m.width))
    return out


def _set(module: nn.Module, path: str, value: Tensor) -> None:
    owner_name, _, leaf = path.rpartition(".")
    owner = module.get_submodule(owner_name) if owner_name else module
    old = getattr(owner, leaf)
    if isinstance(old, nn.Parameter):
        setattr(owner, leaf, nn.Parameter(value.detach().clone(), requires_grad=old.requires_grad))
    else:
        owner._buffers[leaf] = value.detach().clone()


def shrink(model: nn.Module, families: list[GroupFamily], keep: Mapping[str, Tensor]) -> nn.Module:
    """Cut `model`'s family members to their kept groups in place (new, smaller Parameters and buffers) and
    keep torch's layers' size attributes true; returns `model`. Optimizers built before must be rebuilt."""
    state = model.state_dict()
    small = slice_state(families, keep, state)
    for name in {m.tensor for fam in families for m in fam.members}:
        _set(model, name, small[name])
    for module in model.modules():
        for kind, attrs in SIZE_ATTRS.items():
            if isinstance(module, kind):
                for attr, tensor, dim in attrs:
                    t = getattr(module, tensor, None)
                    if t is not None:
                        setattr(module, attr, t.shape[dim])
        if isinstance(module, (nn.Conv1d, nn.Conv2d)):
            module.in_channels = module.weight.shape[1] * module.groups
    return model


def keep_for_shapes(model: nn.Module, families: list[GroupFamily], state: StateDict) -> dict[str, Tensor] | None:
    """A keep that gives `model` the shapes of `state` (a compacted model's weights), or None when the shapes
    already agree. It keeps the first groups of each family: which ones does not matter, since loading `state`
    overwrites every kept entry."""
    own = model.state_dict()
    if all(own[k].shape == v.shape for k, v in state.items() if k in own):
        return None
    keep = {}
    for fam in families:
        m = fam.members[0]
        keep[fam.name] = torch.arange(fam.count) < state[m.tensor].shape[m.dim] // m.width
    return keep
