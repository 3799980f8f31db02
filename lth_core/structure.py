"""Structured groups: which slices of which tensors form one neuron, channel or attention head.

A `GroupFamily` is `count` groups that share one layout: group i is, in every member tensor, the block of
`width` entries starting at `i * width` along the member's `dim`. An MLP layer's neurons are one family
(row i of W_l, entry i of b_l, column i of W_{l+1}); a conv layer's filters add the BatchNorm entries and
the next layer's input channels; a residual stage ties several convolutions' output channels into one
family; a Transformer layer's heads are blocks of `head_dim` rows of q/k/v and columns of the
out-projection. Removing group i means zeroing (or physically dropping) all of it at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
from torch import Tensor


@dataclass(frozen=True)
class Coupled:
    """One member tensor of a family: `width` consecutive entries along `dim` per group."""

    tensor: str
    dim: int
    width: int = 1


@dataclass(frozen=True)
class GroupFamily:
    name: str  # e.g. "fc1", "layer2.conv", "encoder.layers.0.self_attn"
    kind: str  # "neuron", "channel", "head", "ffn"
    count: int
    members: tuple[Coupled, ...]

    def check(self, shapes: Mapping[str, tuple[int, ...]]) -> None:
        """Raise ValueError when a member does not exist or its size along `dim` is not count * width."""
        for m in self.members:
            if m.tensor not in shapes:
                raise ValueError(f"group family {self.name!r}: no tensor {m.tensor!r}")
            size = shapes[m.tensor][m.dim]
            if size != self.count * m.width:
                raise ValueError(
                    f"group family {self.name!r}: {m.tensor} has {size} entries along dim {m.dim}, "
                    f"expected {self.count} groups x {m.width}"
                )

    def member_mask(self, member: Coupled, keep: Tensor, shape: tuple[int, ...]) -> Tensor:
        """Boolean mask of `shape` keeping the groups where `keep` (a [count] bool tensor) is True."""
        along = keep.repeat_interleave(member.width)
        view = [1] * len(shape)
        view[member.dim] = shape[member.dim]
        return along.view(view).expand(shape).clone()


def group_masks(
    families: list[GroupFamily], keep: Mapping[str, Tensor], shapes: Mapping[str, tuple[int, ...]]
) -> dict[str, Tensor]:
    """Element masks of every member tensor from per-family group keeps (a tensor in several families
    keeps an entry only where all of them keep it)."""
    out: dict[str, Tensor] = {}
    for fam in families:
        for m in fam.members:
            mask = fam.member_mask(m, keep[fam.name], shapes[m.tensor])
            out[m.tensor] = mask if m.tensor not in out else out[m.tensor] & mask
    return out


def group_norms(families: list[GroupFamily], weights: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The L2 norm of each group over all its members (a magnitude criterion for structured pruning)."""
    out = {}
    for fam in families:
        total = torch.zeros(fam.count, dtype=torch.float64)
        for m in fam.members:
            w = weights[m.tensor].detach().double().movedim(m.dim, 0)
            total += w.reshape(fam.count, -1).pow(2).sum(1)
        out[fam.name] = total.sqrt()
    return out
