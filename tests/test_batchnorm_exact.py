"""lth_core/batchnorm.py: which layers are recomputed (only those tracking running statistics), and what is left
as it was (each layer's momentum, the model's mode) also when the forward fails or there is no batch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lth_core.batchnorm import batchnorms, recompute


def net() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(3, 4), nn.BatchNorm1d(4, momentum=0.3), nn.BatchNorm1d(4, track_running_stats=False),
        nn.Linear(4, 4), nn.BatchNorm1d(4),
    )  # fmt: skip
    return model


def test_only_layers_tracking_running_statistics_are_recomputed() -> None:
    model = net()
    assert batchnorms(model) == [model[1], model[4]]
    batches = [torch.randn(6, 3) + i for i in range(3)]
    grad_on: list[bool] = []

    def forward(m: nn.Module, x: torch.Tensor) -> None:
        grad_on.append(torch.is_grad_enabled())
        m(x)

    model.train()
    assert recompute(model, batches, forward) == 2
    assert model.training and grad_on == [False] * 3  # the mode it was in; no gradients
    h = [model[0](x).detach() for x in batches]
    assert torch.allclose(model[1].running_mean, torch.stack([t.mean(0) for t in h]).mean(0), atol=1e-6)
    assert int(model[1].num_batches_tracked) == 3 and int(model[4].num_batches_tracked) == 3
    assert model[1].momentum == 0.3 and model[4].momentum == 0.1
    assert model[2].running_mean is None


def test_momentum_and_mode_are_restored_when_the_forward_fails_or_no_batch_comes() -> None:
    model = net().eval()

    def fails(m: nn.Module, x: torch.Tensor) -> None:
        assert m.training  # statistics come from train-mode passes
        raise KeyError("boom")

    with pytest.raises(KeyError):
        recompute(model, [torch.randn(2, 3)], fails)
    assert not model.training and model[1].momentum == 0.3 and model[4].momentum == 0.1
    with pytest.raises(ValueError, match="^recomputing BatchNorm statistics needs at least one batch$"):
        recompute(model, [], lambda m, x: m(x))
    assert not model.training and model[1].momentum == 0.3 and model[4].momentum == 0.1
