"""The kernel choice (lth_core/sparse_choice.py) on a fake clock: a Key's fields, the calibration's interleaved
timings (a warm-up each, then `reps` steps alternating which kernel goes first, the fastest of each kept), its
rule (CSR only where strictly faster), the data it times (a fixed generator, the global RNG untouched, the input
transposed where the previous layer is a CSR one), the SGD steps both kernels take, the cache, and the modes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lth_core import sparse_choice
from lth_core.sparse_choice import Calibration, KernelChoice, Key, calibrate, calibration
from lth_core.sparse_kernels import SparseLinear

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_a_key_holds_the_layers_shape_its_masks_density_and_where_it_runs():
    layer = nn.Linear(6, 4, bias=False)
    mask = torch.zeros(4, 6)
    mask.view(-1)[:8] = 2.0  # a float mask: read as booleans (8 kept of 24, not a sum of 16)
    key = Key.of(layer, mask, 16, True)
    assert key == Key(4, 6, 0.3333, 16, torch.get_num_threads(), "cpu", False, True)
    assert Key.of(nn.Linear(6, 4), mask, 2).bias is True and Key.of(nn.Linear(6, 4), mask, 2).transposed_input is False


class Clock:
    def __init__(self, dense: list[float], csr: list[float]) -> None:
        self.t, self.dense, self.csr, self.log = 0.0, list(dense), list(csr), []

    def __call__(self) -> float:
        return self.t

    def tick(self, name: str) -> None:
        self.log.append(name)
        self.t += (self.dense if name == "dense" else self.csr).pop(0)


@pytest.fixture
def timed(monkeypatch):
    """calibrate on a fake clock: each dense step takes the next of `clock.dense`, each CSR step of `clock.csr`;
    the layers and inputs it builds are kept."""
    seen: dict = {"sparse": []}

    def make(dense: list[float], csr: list[float]) -> Clock:
        clock = Clock(dense, csr)
        real_linear = F.linear

        class FakeF:
            @staticmethod
            def linear(x, w, b):
                clock.tick("dense")
                seen["dense_x"] = x
                return real_linear(x, w, b)

        class Spy(SparseLinear):
            def __init__(self, linear, mask) -> None:
                super().__init__(linear, mask)
                seen["sparse"].append(self)
                seen["linear"], seen["mask"] = linear, mask

            def forward(self, x):
                clock.tick("csr")
                seen["csr_x"] = x
                return super().forward(x)

        monkeypatch.setattr(sparse_choice, "F", FakeF)
        monkeypatch.setattr(sparse_choice, "SparseLinear", Spy)
        monkeypatch.setattr(sparse_choice.time, "perf_counter", clock)
        return clock

    return make, seen


KEY = Key(5, 7, 0.4, 3, 1, "cpu", True)


def test_the_calibration_keeps_the_fastest_step_of_each_timed_alternately(timed):
    make, seen = timed
    clock = make(dense=[9.0, 4.0, 2.0, 3.0, 5.0], csr=[9.0, 3.0, 1.0, 7.0, 6.0])
    c = calibrate(KEY, reps=4)
    assert c == Calibration("csr", 0.5, 2.0, 1.0)
    assert clock.log == ["dense", "csr"] + ["dense", "csr", "csr", "dense"] * 2  # warm-ups, then alternating


def test_csr_is_chosen_only_where_it_is_strictly_faster(timed):
    make, _ = timed
    make(dense=[1.0, 2.0, 2.0], csr=[1.0, 2.0, 2.0])
    assert calibrate(KEY, reps=2) == Calibration("dense", 1.0, 2.0, 2.0)
    make(dense=[1.0] + [2.0] * 11, csr=[1.0] + [3.0] * 11)
    assert calibrate(KEY) == Calibration("dense", 1.5, 2.0, 3.0)  # REPS = 11 timed steps of each


def _want(key: Key, steps: int):
    g = torch.Generator().manual_seed(0)
    mask = torch.rand(key.out, key.inn, generator=g) < key.density
    w = torch.randn(key.out, key.inn, generator=g) * mask
    x = torch.randn(key.batch, key.inn, generator=g)
    gy = torch.randn(key.batch, key.out, generator=g)
    grad = gy.t() @ x  # the weight gradient of y = x W^T + b does not depend on W: `steps` equal SGD steps
    return mask, x, w - steps * 1e-6 * grad * mask, steps * 1e-6 * grad * mask


@pytest.mark.parametrize("transposed", [False, True])
def test_the_calibration_times_sgd_steps_on_fixed_data_without_touching_the_global_rng(timed, transposed):
    make, seen = timed
    make(dense=[1.0] * 4, csr=[1.0] * 4)
    key = Key(5, 7, 0.4, 3, 1, "cpu", False, transposed)
    before = torch.random.get_rng_state()
    calibrate(key, reps=3)
    assert torch.random.get_rng_state().equal(before)
    mask, x, w, update = _want(key, steps=4)  # a warm-up and three timed steps each
    assert update.abs().max() > 1e-5  # what the steps moved: far above float32's rounding here
    assert seen["mask"].equal(mask) and seen["linear"].bias is None
    (sparse,) = seen["sparse"]
    torch.testing.assert_close(seen["linear"].weight.detach(), w, rtol=0, atol=1e-6)
    assert (seen["linear"].weight[~mask] == 0).all()  # the dense step's gradient was masked
    torch.testing.assert_close(sparse.values.detach(), w[mask], rtol=0, atol=1e-6)
    for name in ("dense_x", "csr_x"):
        got = seen[name]
        assert got.equal(x) and got.requires_grad and got.shape == (3, 7)
        assert got.t().is_contiguous() is transposed and got.is_contiguous() is not transposed


def test_a_gpu_calibration_synchronizes_and_a_cpu_one_does_not(monkeypatch):
    synced: list = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: synced.append(device))
    sparse_choice._sync(torch.device("cpu"))
    assert synced == []
    sparse_choice._sync(torch.device("cuda"))
    assert synced == [torch.device("cuda")]


def test_a_calibration_is_measured_once_per_key(monkeypatch):
    calls: list[Key] = []
    monkeypatch.setattr(sparse_choice, "CACHE", {})
    monkeypatch.setattr(sparse_choice, "calibrate", lambda key: calls.append(key) or Calibration("csr", 0.5, 2, 1))
    assert calibration(KEY) is calibration(KEY) and calls == [KEY]
    assert sparse_choice.CACHE == {KEY: Calibration("csr", 0.5, 2, 1)}


def test_never_and_always_measure_nothing_and_describe_kernels_alone(monkeypatch):
    monkeypatch.setattr(sparse_choice, "calibration", lambda key: pytest.fail("measured"))
    layer, mask = nn.Linear(3, 2), torch.ones(2, 3)
    for mode, kernel in (("never", "dense"), ("always", "csr")):
        choice = KernelChoice(mode, 4)
        assert choice("a.weight", layer, mask) == kernel and choice.calibrations == {}
        assert choice.describe({"a.weight": kernel, "b.weight": "dense"}) == f"a.weight={kernel},b.weight=dense"


def test_auto_takes_the_measured_kernel_and_feeds_it_forward(monkeypatch):
    keys: list[Key] = []
    ratios = iter([0.25, 3.0, 0.5])

    def fake(key: Key) -> Calibration:
        keys.append(key)
        r = next(ratios)
        return Calibration("csr" if r < 1 else "dense", r, 1.0, r)

    monkeypatch.setattr(sparse_choice, "calibration", fake)
    choice = KernelChoice("auto", 8)
    layer, mask = nn.Linear(3, 2), torch.ones(2, 3)
    assert [choice(n, layer, mask) for n in ("a", "b", "c")] == ["csr", "dense", "csr"]
    assert [k.transposed_input for k in keys] == [False, True, False] and {k.batch for k in keys} == {8}
    assert list(choice.calibrations) == ["a", "b", "c"] and choice.calibrations["b"].ratio == 3.0
    assert choice.describe({"a": "csr", "b": "dense", "z": "dense"}) == "a=csr(0.25),b=dense(3.00),z=dense"


def test_an_unknown_mode_names_the_modes():
    with pytest.raises(ValueError) as e:
        KernelChoice("sometimes", 16)
    assert str(e.value) == "sparse mode 'sometimes' is not one of never, auto, always"
