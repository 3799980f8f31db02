"""SparseLinear's edges (lth_core/sparse_kernels.py): a bias-free layer computed into a buffer of its own shape,
dead output neurons (the transposed pattern keeps the full shape), inputs of more than two dimensions, the dense
keys of its state dict with and without keep_vars, what a partial or wrong-shaped state dict loads, and a
pattern moved to another device."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lth_core.sparse_kernels import Pattern, SparseLinear, _t_contiguous

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _layer(out: int, inn: int, bias: bool, dead_last_row: bool = False, seed: int = 0):
    torch.manual_seed(seed)
    lin = nn.Linear(inn, out, bias=bias)
    mask = torch.rand(out, inn) < 0.4
    mask[0, 0] = True
    if dead_last_row:
        mask[-1] = False  # the last output neuron is dead: no kept weight in its row
        mask[-2] = False
    with torch.no_grad():
        lin.weight.mul_(mask)
    return lin, mask


@pytest.mark.parametrize("bias", [False, True])
def test_forward_and_backward_equal_the_masked_dense_layer_without_any_warning(bias):
    lin, mask = _layer(7, 5, bias, dead_last_row=True)
    sparse = SparseLinear(lin, mask)
    x = torch.randn(3, 5, requires_grad=True)
    xs = x.detach().clone().requires_grad_()
    gy = torch.randn(3, 7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. an out= buffer of the wrong shape, resized
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        y = sparse(xs)
        y.backward(gy)
    want = lin(x)
    want.backward(gy)
    assert y.shape == (3, 7)
    torch.testing.assert_close(y, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(xs.grad, x.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(sparse.values.grad, lin.weight.grad[mask], rtol=1e-5, atol=1e-6)
    if bias:
        torch.testing.assert_close(sparse.bias.grad, lin.bias.grad)


def test_inputs_with_leading_dimensions_keep_them():
    lin, mask = _layer(4, 6, True)
    sparse = SparseLinear(lin, mask)
    x = torch.randn(2, 3, 6)
    y = sparse(x)
    assert y.shape == (2, 3, 4)
    torch.testing.assert_close(y, lin(x), rtol=1e-5, atol=1e-6)


def test_the_transpose_is_contiguous_and_free_for_a_transposed_view():
    x = torch.randn(3, 5)
    t = _t_contiguous(x)
    assert t.is_contiguous() and t.shape == (5, 3) and t.equal(x.t())
    view = torch.randn(5, 3).t()
    assert _t_contiguous(view).data_ptr() == view.data_ptr()


def test_the_state_dict_speaks_the_dense_keys_detached_unless_keep_vars():
    lin, mask = _layer(4, 6, True)
    sparse = SparseLinear(lin, mask)
    state = sparse.state_dict()
    assert list(state) == ["weight", "bias"] and state["weight"].equal(lin.weight.detach())
    assert not state["bias"].requires_grad and state["bias"].equal(lin.bias.detach())
    kept = sparse.state_dict(keep_vars=True)
    assert kept["bias"] is sparse.bias
    assert list(SparseLinear(*_layer(4, 6, False)).state_dict()) == ["weight"]


def test_loading_a_partial_or_wrong_state_dict_loads_the_rest_and_names_the_problem():
    lin, mask = _layer(4, 6, True)
    sparse = SparseLinear(lin, mask)
    new_w, new_b = torch.randn(4, 6), torch.randn(4)
    result = sparse.load_state_dict({"bias": new_b}, strict=False)
    assert result.missing_keys == ["weight"] and sparse.bias.detach().equal(new_b)
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "weight"'):
        sparse.load_state_dict({"bias": new_b})
    other = torch.randn(4)
    with pytest.raises(RuntimeError, match=r"size mismatch for weight: \(4, 5\) in the checkpoint, \(4, 6\) here"):
        sparse.load_state_dict({"weight": torch.zeros(4, 5), "bias": other})
    assert sparse.bias.detach().equal(other)  # the bias was loaded beside the refused weight
    sparse.load_state_dict({"weight": new_w, "bias": new_b})
    assert sparse.dense_weight().equal(new_w * mask)


def test_a_pattern_moves_every_index_to_the_device():
    mask = torch.tensor([[True, False, True], [False, False, True]])
    p = Pattern(mask)
    assert p.to(torch.device("meta")) is p
    for name in ("flat", "crow", "col", "perm", "crow_t", "col_t"):
        assert getattr(p, name).device.type == "meta", name
    assert p.shape == (2, 3) and p.nnz == 3


def test_frozen_values_still_pass_the_input_gradient():
    lin, mask = _layer(5, 4, True)
    sparse = SparseLinear(lin, mask)
    sparse.values.requires_grad_(False)
    x = torch.randn(3, 4, requires_grad=True)
    xs = x.detach().clone().requires_grad_()
    gy = torch.randn(3, 5)
    sparse(xs).backward(gy)
    lin(x).backward(gy)
    torch.testing.assert_close(xs.grad, x.grad, rtol=1e-5, atol=1e-6)
    assert sparse.values.grad is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_a_cpu_state_dict_loads_into_a_layer_on_the_gpu():
    lin, mask = _layer(4, 6, True)
    sparse = SparseLinear(lin.cuda(), mask.cuda())
    new_w = torch.randn(4, 6)
    sparse.load_state_dict({"weight": new_w, "bias": torch.zeros(4)})
    assert sparse.dense_weight().cpu().equal(new_w * mask)


def test_only_masked_linear_layers_are_offered_a_kernel():
    """A masked convolution and an unmasked Linear are left alone: never offered, never swapped."""
    from lth_core.sparse_choice import KernelChoice
    from lth_core.sparse_kernels import swap_linears

    model = nn.Sequential(nn.Conv1d(2, 2, 1), nn.Flatten(), nn.Linear(6, 4), nn.Linear(4, 3))
    mask = {"0.weight": torch.ones(2, 2, 1, dtype=torch.bool), "2.weight": torch.rand(4, 6) < 0.5}
    offered: list[str] = []
    swap = swap_linears(model, mask, lambda key, layer, m: offered.append(key) or "csr")
    assert offered == ["2.weight"] and swap.kernels == {"2.weight": "csr"}
    assert type(model[0]) is nn.Conv1d and isinstance(model[2], SparseLinear) and type(model[3]) is nn.Linear
    assert list(swap.swapped) == ["2"]
    assert swap_linears(nn.Linear(3, 2), {"weight": torch.ones(2, 3)}, KernelChoice("always", 2)).kernels == {}
