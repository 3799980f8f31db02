"""MaskHold and GradSums by exact values: which entries are zeroed, counted and summed, and when hooks stop
(mutation testing found these unpinned by tests/test_hold.py, which checks only that a mask holds)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lth_core.job import Job
from lth_core.mask_hold import GradSums, MaskHold, unique_parameters
from lth_core.masks import Mask


def tied() -> nn.ModuleDict:
    emb, out = nn.Embedding(3, 2), nn.Linear(2, 3, bias=False)
    out.weight = emb.weight
    return nn.ModuleDict({"emb": emb, "out": out, "lin": nn.Linear(2, 2)})


def lin(dtype=torch.float32) -> nn.Linear:
    layer = nn.Linear(2, 2, bias=False).to(dtype)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    return layer


KEEP = torch.tensor([[True, False], [False, True]])


def test_unique_parameters_keeps_the_first_name_of_a_tied_tensor():
    model = tied()
    out = unique_parameters(model, ["out.weight", "emb.weight", "lin.weight"])
    assert list(out) == ["out.weight", "lin.weight"]
    assert out["out.weight"] is model["emb"].weight and out["lin.weight"] is model["lin"].weight


def test_absent_and_misshapen_masks_are_refused_naming_them():
    model = tied()
    m = torch.ones(3, 2, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"tied or absent in the model: \['out.weight'\]$"):
        MaskHold(model, Mask({"emb.weight": m, "out.weight": m}))
    with pytest.raises(ValueError, match=r"^mask lin.weight has shape \(3, 2\), parameter has \(2, 2\)$"):
        MaskHold(model, Mask({"lin.weight": m}))


def test_holding_zeroes_the_pruned_entries_counts_revivals_and_names_them():
    layer, mask = lin(), Mask({"weight": KEEP})
    hold = MaskHold(layer, mask)
    assert hold.model is layer and hold.mask is mask  # read by loops that hold it (domains/rl/policy.py)
    assert layer.weight.tolist() == [[1.0, 0.0], [0.0, 4.0]] and hold.violations() == {}
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[5.0, 6.0], [7.0, 0.0]]))
    assert hold.violations() == {"weight": 2}
    with pytest.raises(AssertionError, match=r"^pruned weights revived: \{'weight': 2\}$"):
        hold.assert_held()
    hold.reapply()
    assert layer.weight.tolist() == [[5.0, 0.0], [0.0, 0.0]]
    hold.assert_held()


def test_the_hook_masks_the_gradient_until_release():
    layer = lin()
    with MaskHold(layer, Mask({"weight": KEEP})) as hold:
        assert isinstance(hold, MaskHold)
        layer(torch.ones(1, 2)).sum().backward()
        assert layer.weight.grad.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert hold._handles == []
    layer.weight.grad = None
    layer(torch.ones(1, 2)).sum().backward()  # released at the end of the block: the gradient is the plain one
    assert layer.weight.grad.tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_without_hooks_the_loop_masks_gradients_in_place():
    layer, other = lin(), nn.Linear(2, 2)
    model = nn.ModuleDict({"a": layer, "b": other})
    hold = MaskHold(model, Mask({"a.weight": KEEP, "b.weight": KEEP}), hooks=False)
    layer(torch.ones(1, 2)).sum().backward()  # b has no gradient: skipped
    grad = layer.weight.grad
    assert grad.tolist() == [[1.0, 1.0], [1.0, 1.0]]
    hold.mask_grads()
    assert layer.weight.grad is grad and grad.tolist() == [[1.0, 0.0], [0.0, 1.0]] and other.weight.grad is None


def test_mirrors_are_zeroed_from_the_start_and_on_reapply():
    layer = lin()
    mirror = torch.full((2, 2), 9.0)
    hold = MaskHold(layer, Mask({"weight": KEEP}), mirrors={"weight": (mirror,)})
    assert mirror.tolist() == [[9.0, 0.0], [0.0, 9.0]]
    mirror.fill_(8.0)
    hold.reapply()
    assert mirror.tolist() == [[8.0, 0.0], [0.0, 8.0]]


@pytest.mark.parametrize("dtype,acc", [(torch.float32, torch.float32), (torch.float64, torch.float64)])
def test_grad_sums_add_g_times_w_of_every_backward_until_taken(dtype, acc):
    layer = lin(dtype)
    sums = GradSums(layer, ["weight"])
    x = torch.tensor([[1.0, 2.0]], dtype=dtype)
    layer(x).sum().backward()  # g = [[1, 2], [1, 2]] at w = [[1, 2], [3, 4]]
    with torch.no_grad():
        layer.weight.mul_(2)
    layer(x).sum().backward()  # the same g at w doubled: the sum is g * w * 3
    out = sums.take()
    assert out["weight"].dtype == acc and out["weight"].tolist() == [[3.0, 12.0], [9.0, 24.0]]
    assert sums._handles == []
    layer(x).sum().backward()
    assert sums.sums["weight"].tolist() == [[3.0, 12.0], [9.0, 24.0]]  # taken: no longer accumulating


def test_grad_sums_of_half_weights_are_kept_in_float32():
    layer = nn.Linear(2, 2, bias=False).half()
    assert GradSums(layer, ["weight"]).sums["weight"].dtype == torch.float32


def test_a_job_asks_for_grad_sums_or_for_none():
    base = dict(level=0, kind="dense", trial=0, seed=0, weights={}, mask=None, budget=1)
    layer = lin()
    assert GradSums.for_job(layer, Job(**base)) is None
    sums = GradSums.for_job(layer, Job(**base, grad_sums=("weight",)))
    assert sums is not None and list(sums.sums) == ["weight"]


def test_masks_and_sums_live_on_the_parameters_device():
    with torch.device("meta"):  # a device other than the CPU, on any machine
        layer = nn.Linear(2, 2, bias=False)
    hold = MaskHold(layer, Mask({"weight": KEEP}))
    assert hold._m["weight"].device.type == "meta" and hold._m["weight"].dtype == torch.float32
    assert GradSums(layer, ["weight"]).sums["weight"].device.type == "meta"
