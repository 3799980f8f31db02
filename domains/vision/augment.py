"""Training augmentations as batched tensor ops, so no per-sample Python runs in the training loop."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from lth_core.registry import Registry

Augment = Callable[[Tensor, torch.Generator], Tensor]
AUGMENTS: Registry[Augment] = Registry("augmentation")


@AUGMENTS.register("none")
def no_augment(x: Tensor, g: torch.Generator) -> Tensor:
    return x


@AUGMENTS.register("crop_flip")
def crop_flip(x: Tensor, g: torch.Generator, pad: int = 4) -> Tensor:
    """Zero-pad by 4, take a random same-size crop and flip half the images horizontally (He et al. 2016).

    The CIFAR augmentation of the ResNet/VGG lottery-ticket papers. `x` is a (B, C, H, W) batch,
    already normalised, so zero padding is padding with the mean.
    """
    b, c, h, w = x.shape
    offsets = torch.randint(0, 2 * pad + 1, (2, b), generator=g).to(x.device)
    flips = (torch.rand(b, generator=g) < 0.5).to(x.device)
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = (offsets[0][:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = offsets[1][:, None] + torch.arange(w, device=x.device)
    cols = torch.where(flips[:, None], cols.flip(1), cols)[:, None, None, :]
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]
