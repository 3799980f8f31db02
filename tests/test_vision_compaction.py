"""Vision compaction (VisionAdapter.compact): the physically smaller model computes what the structurally masked
one computes, where the mask is the engine's own (prunable weights only, as a structured strategy writes it: BN
entries and biases of removed groups stay), for an MLP, conv chains with and without BatchNorm and a ResNet with
residual stages; and a compacted model's state dict saves, reloads with weights_only=True and trains."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from domains.vision.adapter import VisionAdapter
from domains.vision.config import VisionConfig
from lth_core.masks import Mask
from lth_core.structured import keeps_to_mask

CASES = [("digits", "lenet_300_100"), ("cifar10", "conv2"), ("cifar10", "vgg11"), ("cifar10", "resnet20")]


def _adapter(dataset: str, model: str) -> VisionAdapter:
    return VisionAdapter(VisionConfig(dataset=dataset, model=model))


def _keeps(fams, seed: int, frac: float = 0.4) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for f in fams:
        k = torch.rand(f.count, generator=g) > frac
        k[torch.randint(f.count, (1,), generator=g)] = True
        out[f.name] = k
    return out


def _stir_batchnorm(model: nn.Module) -> None:
    """Non-trivial BN statistics and affine terms, so that a wrongly sliced BN entry shows."""
    g = torch.Generator().manual_seed(7)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g))
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(n, generator=g))
            m.bias.data.copy_(torch.randn(n, generator=g))


def _masked_and_compact(dataset: str, model_name: str, seed: int):
    adapter = _adapter(dataset, model_name)
    model = adapter.build(seed)
    _stir_batchnorm(model)
    fams = tuple(adapter.structure(model))
    keep = _keeps(fams, seed)
    prunable = adapter.prunable(model, biases=False)
    full = Mask({n: torch.ones_like(model.state_dict()[n], dtype=torch.bool) for n in prunable})
    mask = keeps_to_mask(fams, keep, full)
    masked = adapter.build(seed)
    masked.load_state_dict(model.state_dict())
    with torch.no_grad():
        for n, m in mask.tensors.items():
            masked.get_parameter(n).mul_(m)
    small = adapter.compact(model, keep)
    return adapter, masked, small, keep, mask


@pytest.mark.parametrize("dataset,model_name", CASES)
def test_compacted_model_gives_the_masked_models_outputs(dataset: str, model_name: str) -> None:
    adapter, masked, small, keep, mask = _masked_and_compact(dataset, model_name, seed=3)
    x = torch.randn(5, *adapter.input_shape())
    for train_mode in (False, True):  # eval: running statistics; train: batch statistics of the kept channels
        masked.train(train_mode), small.train(train_mode)
        torch.testing.assert_close(small(x), masked(x), atol=1e-5, rtol=1e-5)
    n_small = sum(p.numel() for p in small.parameters())
    n_dense = sum(p.numel() for p in masked.parameters())
    assert n_small < n_dense
    kept_weights = sum(int(small.get_parameter(n).numel()) for n in mask)
    assert kept_weights == mask.num_kept  # the compacted prunable tensors hold exactly the mask's kept entries


def test_resnet20_stage_channels_shrink_together() -> None:
    adapter, _, small, keep, _ = _masked_and_compact("cifar10", "resnet20", seed=1)
    stage0 = int(keep["stage0"].sum())
    assert small.conv.out_channels == stage0 == small.bn.num_features == small.blocks[2].conv2.out_channels
    assert small.blocks[0].conv1.in_channels == stage0 and small.blocks[3].shortcut[0].in_channels == stage0
    assert small.fc.in_features == int(keep["stage2"].sum())


@pytest.mark.parametrize("dataset,model_name", [("digits", "lenet_300_100"), ("cifar10", "resnet20")])
def test_compacted_state_saves_reloads_with_weights_only_and_trains(tmp_path, dataset: str, model_name: str) -> None:
    adapter, _, small, keep, _ = _masked_and_compact(dataset, model_name, seed=2)
    torch.save({"state": small.state_dict(), "keep": keep}, tmp_path / "small.pt")
    saved = torch.load(tmp_path / "small.pt", weights_only=True)
    rebuilt = adapter.compact(adapter.build(0), saved["keep"])
    rebuilt.load_state_dict(saved["state"])
    x, y = torch.randn(16, *adapter.input_shape()), torch.randint(0, 10, (16,))
    small.eval(), rebuilt.eval()
    torch.testing.assert_close(rebuilt(x), small(x), atol=0, rtol=0)
    rebuilt.train()
    opt = torch.optim.SGD(rebuilt.parameters(), lr=0.05)
    losses = []
    for _ in range(8):
        loss = F.cross_entropy(rebuilt(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]
