"""lth_core.compaction on hand-described families: slicing is exact and the shrunk module computes what the
masked one does (outputs equal), for a Linear chain and a Conv+BatchNorm chain through a flatten."""

import pytest
import torch
from torch import nn

from lth_core.compaction import kept_index, shrink, slice_state
from lth_core.structure import Coupled, GroupFamily, group_masks


def _mask_model(model: nn.Module, families, keep) -> None:
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    masks = group_masks(families, keep, shapes)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name in masks and t.is_floating_point():
                t.mul_(masks[name].to(t.dtype))


def test_kept_index_blocks() -> None:
    assert kept_index(torch.tensor([True, False, True]), 2).tolist() == [0, 1, 4, 5]


def test_slice_state_cuts_both_dims_and_rejects_an_emptied_family() -> None:
    fams = [
        GroupFamily("a", "neuron", 3, (Coupled("w1", 0), Coupled("w2", 1))),
        GroupFamily("b", "neuron", 2, (Coupled("w2", 0),)),
    ]
    state = {"w1": torch.arange(12.0).view(3, 4), "w2": torch.arange(6.0).view(2, 3), "other": torch.ones(1)}
    keep = {"a": torch.tensor([True, False, True]), "b": torch.tensor([False, True])}
    out = slice_state(fams, keep, state)
    assert out["w1"].tolist() == [[0, 1, 2, 3], [8, 9, 10, 11]]
    assert out["w2"].tolist() == [[3, 5]]
    assert out["other"] is state["other"]
    with pytest.raises(ValueError, match="every group removed"):
        slice_state(fams, {"a": torch.zeros(3, dtype=torch.bool), "b": keep["b"]}, state)


def test_linear_chain_shrinks_to_the_masked_outputs() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))
    fams = [
        GroupFamily("0", "neuron", 8, (Coupled("0.weight", 0), Coupled("0.bias", 0), Coupled("2.weight", 1))),
        GroupFamily("2", "neuron", 6, (Coupled("2.weight", 0), Coupled("2.bias", 0), Coupled("4.weight", 1))),
    ]
    keep = {"0": torch.rand(8) > 0.5, "2": torch.rand(6) > 0.3}
    keep["0"][0] = keep["2"][0] = True
    _mask_model(model, fams, keep)
    x = torch.randn(7, 5)
    want = model(x)
    shrink(model, fams, keep)
    assert model[0].out_features == int(keep["0"].sum()) == model[2].in_features
    assert model[2].weight.shape == (int(keep["2"].sum()), int(keep["0"].sum()))
    torch.testing.assert_close(model(x), want, atol=1e-5, rtol=0)


def test_conv_bn_through_flatten_shrinks_to_the_masked_outputs() -> None:
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 3 * 3, 2))
    model[1].running_mean.normal_()
    model[1].running_var.uniform_(0.5, 2)
    model[1].bias.data.normal_()
    bn = [Coupled(f"1.{t}", 0) for t in ("weight", "bias", "running_mean", "running_var")]
    fams = [
        GroupFamily("0", "channel", 4, (Coupled("0.weight", 0), Coupled("0.bias", 0), *bn, Coupled("4.weight", 1, 9)))
    ]
    keep = {"0": torch.tensor([True, False, True, False])}
    model.eval()
    _mask_model(model, fams, keep)
    x = torch.randn(3, 2, 5, 5)
    want = model(x)
    shrink(model, fams, keep)
    assert model[0].out_channels == 2 and model[1].num_features == 2 and model[4].in_features == 18
    torch.testing.assert_close(model(x), want, atol=1e-5, rtol=0)
    model.train()
    model(x).sum().backward()  # trains: gradients reach the new, smaller Parameters
    assert model[0].weight.grad is not None and model[0].weight.grad.shape == (2, 2, 3, 3)
