"""lth_core/compaction.py pinned exactly: kept indices of width blocks, the refusals of a bad keep, the new smaller
Parameters and buffers `shrink` installs (copied, requires_grad kept, layers' size attributes true, Conv1d and
grouped convolutions included), and the keep that gives a model a compacted state's shapes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lth_core.compaction import check_keeps, keep_for_shapes, kept_index, shrink
from lth_core.structure import Coupled, GroupFamily


def test_kept_index_is_each_kept_groups_block_of_width_entries() -> None:
    assert kept_index(torch.tensor([False, True, False, True]), 3).tolist() == [3, 4, 5, 9, 10, 11]
    assert kept_index(torch.tensor([1, 0, 1]), 1).tolist() == [0, 2]  # any 0/1 keep reads as booleans
    assert kept_index(torch.tensor([True, False]), 1).dtype == torch.int64


def test_check_keeps_names_what_is_wrong() -> None:
    fams = [GroupFamily("f", "neuron", 3, (Coupled("w", 0),))]
    check_keeps(fams, {"f": torch.tensor([False, False, True])})  # no error
    with pytest.raises(ValueError, match="^no keep for group family 'f'$"):
        check_keeps(fams, {})
    with pytest.raises(ValueError, match="^group family 'f': keep has 2 entries, expected 3$"):
        check_keeps(fams, {"f": torch.ones(2, dtype=torch.bool)})
    with pytest.raises(ValueError, match=r"^group family 'f': every group removed \(the network would be cut\)$"):
        check_keeps(fams, {"f": torch.zeros(3, dtype=torch.bool)})


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv1d(2, 4, 3)
        self.bn = nn.BatchNorm1d(4)
        self.c2 = nn.Conv2d(6, 6, 1, groups=3)
        self.fc = nn.Linear(6, 5)


def test_shrink_installs_new_copied_tensors_and_keeps_size_attributes_true() -> None:
    torch.manual_seed(0)
    model = Net()
    model.c1.bias.requires_grad_(False)  # a frozen Parameter stays frozen
    bn = tuple(Coupled(f"bn.{t}", 0) for t in ("weight", "bias", "running_mean", "running_var"))
    fams = [
        GroupFamily("c1", "channel", 4, (Coupled("c1.weight", 0), Coupled("c1.bias", 0), *bn)),
        GroupFamily("c2", "channel", 6, (Coupled("c2.weight", 0), Coupled("c2.bias", 0), Coupled("fc.weight", 1))),
    ]
    keep = {"c1": torch.tensor([True, False, True, True]), "c2": torch.tensor([False, True, True, False, True, False])}
    before = {k: v.clone() for k, v in model.state_dict().items()}
    old_w = model.c1.weight
    assert shrink(model, fams, keep) is model
    assert model.c1.out_channels == 3 and model.c1.weight.shape == (3, 2, 3) and model.c1.in_channels == 2
    assert model.bn.num_features == 3 and model.bn.running_var.shape == (3,)
    assert model.c2.out_channels == 3 and model.c2.in_channels == 6  # weight [3, 2, 1, 1] in 3 groups
    assert model.fc.in_features == 3 and model.fc.out_features == 5
    assert isinstance(model.c1.weight, nn.Parameter) and model.c1.weight.requires_grad
    assert isinstance(model.c1.bias, nn.Parameter) and not model.c1.bias.requires_grad
    assert "running_mean" in model.bn._buffers and not isinstance(model.bn.running_mean, nn.Parameter)
    assert torch.equal(model.c1.weight, before["c1.weight"][[0, 2, 3]])
    assert torch.equal(model.bn.running_mean, before["bn.running_mean"][[0, 2, 3]])
    assert torch.equal(model.fc.weight, before["fc.weight"][:, [1, 2, 4]])
    assert old_w.shape == (4, 2, 3)  # the old Parameter is replaced, not cut in place
    with torch.no_grad():
        model.c1.weight.zero_()
    assert bool(before["c1.weight"].abs().sum() > 0)  # the new tensors are copies
    assert {n for n, _ in model.named_parameters()} == {k for k in before if "running" not in k and "tracked" not in k}


def test_keep_for_shapes_keeps_the_first_groups_to_the_states_widths() -> None:
    model = nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 4))
    fams = [
        GroupFamily("h", "head", 3, (Coupled("0.weight", 0, 2), Coupled("0.bias", 0, 2), Coupled("2.weight", 1, 2)))
    ]
    assert keep_for_shapes(model, fams, model.state_dict()) is None  # shapes agree already
    small = {"0.weight": torch.zeros(4, 2), "0.bias": torch.zeros(4), "2.weight": torch.zeros(4, 4)}
    got = keep_for_shapes(model, fams, {**small, "extra": torch.zeros(9)})
    assert got is not None and got["h"].tolist() == [True, True, False]
    shrink(model, fams, got)
    assert all(model.state_dict()[k].shape == v.shape for k, v in small.items())
