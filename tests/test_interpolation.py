"""The barrier along the line between two networks (lth_core/interpolation.py), on the toy domain's real training."""

from __future__ import annotations

import math

import pytest
import torch
from toy_adapter import ToyAdapter, ToyConfig

from lth_core.errors import UsageError
from lth_core.interpolation import PathMetric, alphas, barrier, barriers, evaluate_path, interpolate
from lth_core.job import Job

METRICS = [
    PathMetric("test", "accuracy", True),
    PathMetric("val", "val_loss", False),
    PathMetric("test", "loss", False),
]


def train(adapter: ToyAdapter, init: int, data_seed: int, start=None):
    weights = start if start is not None else adapter.initial_weights(init)
    job = Job(0, "dense", 0, init, weights, None, adapter.budget(), keep_final_weights=True, data_seed=data_seed)
    out = adapter.train(job)
    assert out.status == "ok" and out.final_weights is not None
    return out.final_weights


@pytest.fixture(scope="module")
def adapter():
    return ToyAdapter(ToyConfig(steps=200, lr=0.02))


def test_alphas_include_both_ends():
    a = alphas(30)
    assert len(a) == 30 and a[0] == 0.0 and a[-1] == 1.0 and all(x < y for x, y in zip(a, a[1:]))
    with pytest.raises(UsageError):
        alphas(1)


def test_barrier_directions_and_units():
    assert barrier([0.9, 0.5, 0.8], higher_is_better=True) == pytest.approx(0.85 - 0.5)
    assert barrier([1.0, 3.0, 2.0], higher_is_better=False) == pytest.approx(3.0 - 1.5)
    assert barrier([0.7, 0.7, 0.7], higher_is_better=True) == 0.0
    assert math.isnan(barrier([0.7, float("nan"), 0.7], higher_is_better=True))


def test_interpolation_mixes_floats_and_keeps_exact_ends():
    a = {"w": torch.tensor([0.0, 2.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([1.0, 4.0]), "n": torch.tensor(7)}
    mid = interpolate(a, b, 0.25)
    assert torch.equal(mid["w"], torch.tensor([0.25, 2.5])) and int(mid["n"]) == 3
    assert int(interpolate(a, b, 0.75)["n"]) == 7
    assert all(torch.equal(interpolate(a, b, 0.0)[k], a[k]) for k in a)
    assert all(torch.equal(interpolate(a, b, 1.0)[k], b[k]) for k in b)
    with pytest.raises(UsageError):
        interpolate(a, {"w": b["w"]}, 0.5)


def test_barrier_of_a_model_with_itself_is_zero(adapter):
    w = train(adapter, init=1, data_seed=5)
    found = barriers(evaluate_path(adapter.evaluate, w, w, alphas(7), ("val", "test")), METRICS)
    assert found["test_accuracy_barrier"] == 0.0
    assert found["val_loss_barrier"] == pytest.approx(0.0, abs=1e-6)


def test_same_data_seed_gives_identical_weights_and_zero_barrier(adapter):
    start = adapter.initial_weights(2)
    a, b = (train(adapter, 2, data_seed=9, start={k: v.clone() for k, v in start.items()}) for _ in range(2))
    assert all(torch.equal(a[k], b[k]) for k in a)
    found = barriers(evaluate_path(adapter.evaluate, a, b, alphas(5), ("val", "test")), METRICS)
    assert found["test_accuracy_barrier"] == 0.0 and found["test_loss_barrier"] == pytest.approx(0.0, abs=1e-6)


def test_ends_score_exactly_as_evaluate_of_the_trained_models(adapter):
    a, b = train(adapter, 3, data_seed=1), train(adapter, 3, data_seed=2)
    assert not all(torch.equal(a[k], b[k]) for k in a)  # different data order: different networks
    path = evaluate_path(adapter.evaluate, a, b, alphas(4), ("val", "test"))
    for row, w in ((path[0], a), (path[-1], b)):
        assert row["test_accuracy"] == adapter.evaluate(w, "test")["accuracy"]
        assert row["test_loss"] == adapter.evaluate(w, "test")["loss"]
        assert row["val_loss"] == adapter.evaluate(w, "val")["val_loss"]


def permuted(w: dict, seed: int) -> dict:
    """The same function with the hidden units of both hidden layers shuffled (the toy MLP's 0, 2, 4 layers)."""
    g = torch.Generator().manual_seed(seed)
    out = {k: v.clone() for k, v in w.items()}
    for layer, nxt in (("0", "2"), ("2", "4")):
        p = torch.randperm(out[f"{layer}.weight"].shape[0], generator=g)
        out[f"{layer}.weight"], out[f"{layer}.bias"] = out[f"{layer}.weight"][p], out[f"{layer}.bias"][p]
        out[f"{nxt}.weight"] = out[f"{nxt}.weight"][:, p]
    return out


def test_barrier_is_positive_between_two_initializations(adapter):
    """A hand-made pair from two initializations: b is a trained from the init with its hidden units permuted,
    so both ends compute one function (and score the same) while the midpoint mixes unrelated units."""
    a = train(adapter, 10, data_seed=1)
    b = permuted(a, seed=4)
    found = barriers(evaluate_path(adapter.evaluate, a, b, alphas(11), ("val", "test")), METRICS)
    assert found["test_accuracy_a"] == pytest.approx(found["test_accuracy_b"])
    assert found["test_accuracy_barrier"] > 0.1  # measured 0.215, ten times the 2% threshold
    assert found["val_loss_barrier"] > 0.1 and found["test_loss_barrier"] > 0.05
    other = train(adapter, 11, data_seed=2)  # and two networks trained from two seeds' inits
    assert barriers(evaluate_path(adapter.evaluate, a, other, alphas(11), ("test",)), METRICS)["test_loss_barrier"] > 0
