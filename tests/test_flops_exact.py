"""Sparse-aware FLOPs of a training step (lth_core/flops.py), by exact counts: the multiply-accumulates of each
Linear and convolution weight in one forward (grouped convolutions, a layer called twice, a bare root layer),
nothing for other layers, hooks removed; and 3 x 2 x batch x the MACs scaled by each mask's kept fraction."""

from __future__ import annotations

import torch
from torch import nn

from lth_core.flops import train_step_flops, weight_macs


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1, groups=2)  # 4 x 5 x 5 outputs, each 1 x 3 x 3 entries
        self.conv1 = nn.Conv1d(4, 3, 2)
        self.norm = nn.BatchNorm2d(4)
        self.fc = nn.Linear(12, 6)
        self.twice = nn.Linear(6, 6, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.conv(x))  # (1, 4, 5, 5)
        h = self.conv1(h.mean(3))  # (1, 3, 4)
        h = self.fc(h.flatten(1))
        return self.twice(self.twice(h))


def test_weight_macs_count_each_weights_multiply_accumulates_of_one_forward():
    net = Net().train()
    macs = weight_macs(net, torch.randn(1, 2, 5, 5))
    assert macs == {
        "conv.weight": 4 * 5 * 5 * (1 * 3 * 3),
        "conv1.weight": 3 * 4 * (4 * 2),
        "fc.weight": 6 * 12,
        "twice.weight": 2 * 6 * 6,  # called twice: both calls counted
    }
    assert all(type(v) is float for v in macs.values())
    assert not net.training  # counted in eval mode (BatchNorm's statistics untouched)
    assert all(not m._forward_hooks for m in net.modules())  # every hook removed
    assert weight_macs(nn.Linear(3, 2), torch.randn(1, 3)) == {"weight": 6.0}  # the root layer: no leading dot


def test_the_hooks_are_removed_when_the_forward_fails():
    net = nn.Sequential(nn.Linear(3, 2))
    try:
        weight_macs(net, torch.randn(1, 4))
    except RuntimeError:
        pass
    assert not net[0]._forward_hooks


def test_train_step_flops_scale_each_weight_by_its_masks_kept_fraction():
    macs = {"a.weight": 100.0, "b.weight": 10.0, "c.weight": 1.0}
    assert train_step_flops(macs, None, 4) == 3 * 2 * 4 * 111.0
    mask = {"a.weight": torch.tensor([True, False, False, False]), "b.weight": torch.tensor([[1, 1], [1, 0]])}
    assert train_step_flops(macs, mask, 2) == 3 * 2 * 2 * (25.0 + 7.5 + 1.0)  # c is unmasked: all of it
    assert train_step_flops({}, mask, 2) == 0.0
