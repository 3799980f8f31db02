"""The CSR training path of masked Linear layers (lth_core/sparse_kernels.py, sparse_choice.py): several optimizer
steps equal the masked dense path's within float tolerance, pruned entries stay exactly zero, optimizer state
covers the kept weights only, state dicts keep the dense keys and shapes, and the kernel choice is honoured."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lth_core import sparse_choice
from lth_core.sparse_choice import Calibration, KernelChoice, Key
from lth_core.sparse_kernels import SparseLinear, swap_linears

STEPS = 6
pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(40, 32), nn.Linear(32, 24), nn.Linear(24, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(F.relu(self.b(F.relu(self.a(x)))))


def _masked_net(density: float = 0.3, seed: int = 0) -> tuple[Net, dict[str, torch.Tensor]]:
    torch.manual_seed(seed)
    net = Net()
    g = torch.Generator().manual_seed(seed + 1)
    mask = {n: torch.rand(p.shape, generator=g) < density for n, p in net.named_parameters() if n.endswith("weight")}
    with torch.no_grad():
        for n, p in net.named_parameters():
            if n in mask:
                p.mul_(mask[n])
    return net, mask


OPTIMIZERS = {
    "sgd_momentum_wd": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=1e-3, fused=True),
    "sgd_nesterov": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda ps: torch.optim.Adam(ps, lr=1e-2, weight_decay=1e-3, fused=True),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=1e-2),
}


def _train(net: nn.Module, mask: dict[str, torch.Tensor] | None, make_opt, steps: int = STEPS) -> list[dict]:
    """`steps` optimizer steps on fixed batches; the state dict after each. `mask` given = the masked dense path."""
    opt = make_opt([p for p in net.parameters() if p.requires_grad])
    g = torch.Generator().manual_seed(7)
    states = []
    for _ in range(steps):
        x, y = torch.randn(16, 40, generator=g), torch.randint(5, (16,), generator=g)
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        if mask is not None:
            for n, p in net.named_parameters():
                if n in mask:
                    p.grad.mul_(mask[n])
        opt.step()
        states.append({k: v.clone() for k, v in net.state_dict().items()})
    return states


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_csr_steps_equal_the_masked_dense_steps_and_pruned_entries_stay_zero(optimizer) -> None:
    dense, mask = _masked_net()
    sparse = copy.deepcopy(dense)
    swap = swap_linears(sparse, mask, KernelChoice("always", 16))
    assert set(swap.kernels.values()) == {"csr"} and all(isinstance(m, SparseLinear) for m in (sparse.a, sparse.b))
    want = _train(dense, mask, OPTIMIZERS[optimizer])
    got = _train(sparse, None, OPTIMIZERS[optimizer])
    for step, (w, s) in enumerate(zip(want, got)):
        assert list(s) == list(w)  # the dense keys, in order, at every step
        for k in w:
            assert s[k].shape == w[k].shape
            torch.testing.assert_close(s[k], w[k], rtol=1e-5, atol=1e-6, msg=f"{k} at step {step}")
            assert not w[k].equal(want[0][k]) or step == 0 or k.endswith("bias")  # the weights did move
            if k in mask:
                assert (s[k][~mask[k]] == 0).all(), f"pruned entries of {k} moved at step {step}"
    swap.restore()
    assert type(sparse.a) is nn.Linear and type(sparse.c) is nn.Linear
    for k, v in sparse.state_dict().items():
        torch.testing.assert_close(v, want[-1][k], rtol=1e-5, atol=1e-6)
        if k in mask:
            assert (v[~mask[k]] == 0).all()


def test_optimizer_state_covers_the_kept_weights_only() -> None:
    net, mask = _masked_net(0.1)
    swap_linears(net, mask, KernelChoice("always", 16))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    F.cross_entropy(net(torch.randn(8, 40)), torch.randint(5, (8,))).backward()
    opt.step()
    for name in ("a", "b", "c"):
        layer = getattr(net, name)
        kept = int(mask[f"{name}.weight"].sum())
        assert layer.values.numel() == kept
        assert opt.state[layer.values]["exp_avg"].numel() == kept


def test_the_input_gradient_equals_the_dense_one() -> None:
    net, mask = _masked_net(0.25)
    lin = net.b
    sparse = SparseLinear(lin, mask["b.weight"])
    x = torch.randn(9, 32, requires_grad=True)
    xs = x.detach().clone().requires_grad_()
    gy = torch.randn(9, 24)
    lin(x).backward(gy)
    sparse(xs).backward(gy)
    torch.testing.assert_close(xs.grad, x.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(sparse.values.grad, lin.weight.grad[mask["b.weight"]], rtol=1e-5, atol=1e-6)


def test_load_state_dict_round_trips_and_refuses_a_wrong_shape() -> None:
    net, mask = _masked_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    swap_linears(net, mask, KernelChoice("always", 4))
    for k, v in net.state_dict().items():
        assert v.equal(before[k])
    with torch.no_grad():
        net.a.values.zero_()
    net.load_state_dict(before)
    assert net.state_dict()["a.weight"].equal(before["a.weight"])
    with pytest.raises(RuntimeError, match="size mismatch"):
        net.load_state_dict({**before, "a.weight": torch.zeros(3, 3)})
    with pytest.raises(RuntimeError, match="Unexpected"):
        net.load_state_dict({**before, "a.extra": torch.zeros(1)})


def test_never_keeps_every_layer_dense_and_a_tied_weight_stays_dense() -> None:
    net, mask = _masked_net()
    swap = swap_linears(net, mask, KernelChoice("never", 16))
    assert swap.kernels == {n: "dense" for n in mask} and not swap.swapped
    assert all(type(m) is nn.Linear for m in (net.a, net.b, net.c))
    tied, tmask = _masked_net()
    tied.d = nn.Linear(40, 32)
    tied.d.weight = tied.a.weight  # one Parameter in two layers
    swap = swap_linears(tied, tmask, KernelChoice("always", 16))
    assert swap.kernels["a.weight"] == "dense" and type(tied.a) is nn.Linear
    assert swap.kernels["b.weight"] == "csr"


def test_auto_follows_the_calibration_and_caches_it_per_key(monkeypatch) -> None:
    calls: list[Key] = []

    def fake(key: Key, reps: int = 0) -> Calibration:  # the decision rule is under test here, not the clock
        calls.append(key)
        ratio = 0.5 if key.inn == 40 else 2.0
        return Calibration("csr" if ratio < 1 else "dense", ratio, 1.0, ratio)

    monkeypatch.setattr(sparse_choice, "CACHE", {})
    monkeypatch.setattr(sparse_choice, "calibrate", fake)
    net, mask = _masked_net(0.3)
    choice = KernelChoice("auto", 16)
    swap = swap_linears(net, mask, choice)
    assert swap.kernels["a.weight"] == "csr" and swap.kernels["b.weight"] == "dense"
    assert choice.describe(swap.kernels).startswith("a.weight=csr(0.50),b.weight=dense(2.00)")
    assert len(calls) == 3
    shuffled = {n: m.flatten()[torch.randperm(m.numel())].view(m.shape) for n, m in mask.items()}
    swap_linears(_masked_net(0.3, seed=5)[0], shuffled, KernelChoice("auto", 16))  # other pattern, same densities
    assert len(calls) == 3
    swap_linears(_masked_net(0.3)[0], mask, KernelChoice("auto", 32))  # another batch: measured again
    assert len(calls) == 6 and all(k.batch == 32 for k in calls[3:])
    before = torch.get_num_threads()
    torch.set_num_threads(before + 1)
    try:
        swap_linears(_masked_net(0.3)[0], mask, KernelChoice("auto", 16))  # another thread count: measured again
    finally:
        torch.set_num_threads(before)
    assert len(calls) == 9 and all(k.threads == before + 1 for k in calls[6:])
    sparser = {n: m & (torch.rand(m.shape) < 0.5) for n, m in mask.items()}
    swap_linears(_masked_net(0.3)[0], sparser, KernelChoice("auto", 16))  # another density: measured again
    assert len(calls) == 12 and {k.density for k in calls[9:]}.isdisjoint({k.density for k in calls[:3]})
    assert {(k.out, k.inn) for k in calls[:3]} == {(32, 40), (24, 32), (5, 24)}
    # b's input is a's output: a CSR layer's transposed view; c's is b's, a dense layer's contiguous one
    assert [k.transposed_input for k in calls[:3]] == [False, True, False]


def test_the_calibration_measures_both_kernels() -> None:
    c = sparse_choice.calibrate(Key(64, 128, 0.05, 32, torch.get_num_threads(), "cpu", True), reps=3)
    assert c.kernel == ("csr" if c.ratio < 1 else "dense") and c.dense_s > 0 and c.csr_s > 0


def test_a_bad_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="sometimes"):
        KernelChoice("sometimes", 16)
