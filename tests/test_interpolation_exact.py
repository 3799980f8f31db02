"""Linear mode connectivity (lth_core/interpolation.py) exactly, on a tiny hand-made model: the alphas, the
interpolated tensors (floats mixed, integers from the nearer end, ends exact copies), the path's rows and
columns, and the error barrier in both directions."""

from __future__ import annotations

import math

import pytest
import torch

from lth_core.errors import UsageError
from lth_core.interpolation import PathMetric, alphas, barrier, barriers, column, evaluate_path, interpolate


def test_alphas_are_exactly_evenly_spaced_with_both_ends():
    assert alphas(2) == [0.0, 1.0]
    assert alphas(5) == [0.0, 0.25, 0.5, 0.75, 1.0]
    with pytest.raises(UsageError, match=r"^--alphas 1 must be >= 2 \(the two ends are always included\)$"):
        alphas(1)


def test_floats_are_mixed_integers_come_from_the_nearer_end_and_b_is_cast_to_as_dtype():
    a = {"w": torch.tensor([0.0, 2.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([1.0, 4.0], dtype=torch.float64), "n": torch.tensor(7)}
    mid = interpolate(a, b, 0.5)
    assert mid["w"].dtype == torch.float32 and mid["w"].tolist() == [0.5, 3.0]
    assert int(mid["n"]) == 7  # halfway: b's
    assert int(interpolate(a, b, 0.25)["n"]) == 3 and interpolate(a, b, 0.25)["w"].tolist() == [0.25, 2.5]
    assert int(interpolate(a, b, 0.75)["n"]) == 7
    assert interpolate(a, b, 0.5)["n"] is not b["n"]  # a copy, not the end's own tensor


def test_the_ends_are_exact_copies_of_the_networks_dtype_included():
    a = {"w": torch.tensor([1.0, -2.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([1.0 + 1e-12, 4.0], dtype=torch.float64), "n": torch.tensor(7)}
    for alpha, end in ((0.0, a), (1.0, b)):
        got = interpolate(a, b, alpha)
        assert set(got) == set(end)
        for k in end:
            assert got[k].dtype == end[k].dtype and torch.equal(got[k], end[k]) and got[k] is not end[k]
            assert got[k].data_ptr() != end[k].data_ptr()


def test_networks_of_other_names_or_shapes_are_refused():
    a = {"w": torch.zeros(2), "u": torch.zeros(1)}
    msg = r"^the two networks to interpolate differ in tensor names or shapes$"
    with pytest.raises(UsageError, match=msg):
        interpolate(a, {"w": torch.zeros(2), "x": torch.zeros(1)}, 0.5)  # same count, other names
    with pytest.raises(UsageError, match=msg):
        interpolate(a, {"w": torch.zeros(3), "u": torch.zeros(1)}, 0.0)  # same names, one shape differs
    with pytest.raises(UsageError, match=msg):
        interpolate(a, {"w": torch.zeros(2), "u": torch.zeros(1, 1)}, 0.5)


def test_the_barrier_of_a_path_exactly_in_both_directions():
    assert barrier([1.0, 0.25, 0.5], higher_is_better=True) == 0.5  # mean of ends 0.75, worst 0.25
    assert barrier([1.0, 3.0, 2.0], higher_is_better=False) == 1.5  # worst 3, mean of ends 1.5
    assert barrier([1.0, 0.5], higher_is_better=True) == 0.25  # two points: the ends alone
    assert barrier([2.0, 1.0], higher_is_better=False) == 0.5
    assert barrier([0.5, 0.75, 1.0], higher_is_better=True) == 0.25  # the worst is an end
    assert barrier([0.5, 0.75, 1.0], higher_is_better=False) == 0.25
    assert math.isnan(barrier([1.0, math.inf, 1.0], higher_is_better=False))
    assert math.isnan(barrier([1.0, 1.0, math.nan], higher_is_better=True))
    with pytest.raises(ValueError, match="^a path has at least its two ends$"):
        barrier([1.0], higher_is_better=True)


def test_columns_are_the_key_prefixed_by_its_split_once():
    assert column("val", "loss") == "val_loss" and column("val", "val_loss") == "val_loss"
    assert column("val", "value") == "val_value"  # 'val' alone is no prefix
    assert column("test", "val_loss") == "test_val_loss"
    assert PathMetric("test", "accuracy", True).column == "test_accuracy"


def tiny_evaluate(w, split):
    """A one-weight model whose loss (|w| - 1)^2 is 0 at both ends w = 1 and w = -1 and 1 halfway; 'val' also
    names its loss twice (a domain's 'val_loss' and 'loss', one number), and returns a tensor."""
    x = float(w["w"][0])
    loss = (abs(x) - 1.0) ** 2
    out = {"loss": torch.tensor(loss, dtype=torch.float64), "accuracy": 1.0 - loss}
    if split == "val":
        out = {"val_loss": loss, "loss": 99.0}
    return out


A, B = {"w": torch.tensor([1.0])}, {"w": torch.tensor([-1.0])}


def test_the_path_of_a_tiny_model_row_by_row_and_its_barriers():
    path = evaluate_path(tiny_evaluate, A, B, alphas(5), ("val", "test"))
    losses = [0.0, 0.25, 1.0, 0.25, 0.0]  # at w = 1, 0.5, 0, -0.5, -1
    assert path == [
        {"alpha": a, "val_loss": v, "test_loss": v, "test_accuracy": 1.0 - v} for a, v in zip(alphas(5), losses)
    ]
    assert all(type(v) is float for row in path for v in row.values())
    metrics = [
        PathMetric("test", "accuracy", True),
        PathMetric("val", "loss", False),
        PathMetric("val", "val_loss", False),  # the same column: counted once
        PathMetric("train", "loss", False),  # not on the path: left out
    ]
    assert barriers(path, metrics) == {
        "test_accuracy_barrier": 1.0,
        "test_accuracy_a": 1.0,
        "test_accuracy_b": 1.0,
        "val_loss_barrier": 1.0,
        "val_loss_a": 0.0,
        "val_loss_b": 0.0,
    }
    assert list(barriers(path, metrics)) == [
        "test_accuracy_barrier", "test_accuracy_a", "test_accuracy_b", "val_loss_barrier", "val_loss_a", "val_loss_b"
    ]  # fmt: skip


def test_the_ends_values_are_each_ends_own():
    path = evaluate_path(tiny_evaluate, {"w": torch.tensor([2.0])}, {"w": torch.tensor([-1.5])}, [0.0, 1.0], ("test",))
    assert barriers(path, [PathMetric("test", "loss", False)]) == {
        "test_loss_barrier": 0.375,  # max 1 - mean (1 + 0.25) / 2
        "test_loss_a": 1.0,
        "test_loss_b": 0.25,
    }


def test_every_point_goes_through_prepare_before_it_is_evaluated():
    seen = []

    def prepare(w):
        seen.append(float(w["w"][0]))
        return {"w": w["w"] * 0.5}

    path = evaluate_path(tiny_evaluate, A, B, [0.0, 0.5, 1.0], ("test",), prepare=prepare)
    assert seen == [1.0, 0.0, -1.0]
    assert [row["test_loss"] for row in path] == [0.25, 1.0, 0.25]  # evaluated at w = 0.5, 0, -0.5


def test_the_ends_are_exact_even_where_the_other_end_is_not_finite():
    a, b = {"w": torch.tensor([1.0, 2.0])}, {"w": torch.tensor([math.inf, math.nan])}
    assert interpolate(a, b, 0.0)["w"].tolist() == [1.0, 2.0]  # (1 - 0) a + 0 b would be nan
    assert torch.equal(interpolate(b, a, 1.0)["w"], a["w"])


def test_a_metric_not_on_the_path_or_named_twice_does_not_stop_the_others():
    path = evaluate_path(tiny_evaluate, A, B, alphas(3), ("test",))
    metrics = [PathMetric("val", "loss", False), PathMetric("test", "loss", False), PathMetric("test", "loss", False)]
    metrics.append(PathMetric("test", "accuracy", True))
    assert sorted(barriers(path, metrics)) == [
        "test_accuracy_a", "test_accuracy_b", "test_accuracy_barrier", "test_loss_a", "test_loss_b", "test_loss_barrier"
    ]  # fmt: skip


def test_a_path_of_one_point_has_no_barrier():
    with pytest.raises(ValueError, match="^a path has at least its two ends$"):
        barriers([{"alpha": 0.0, "test_loss": 1.0}], [PathMetric("test", "loss", False)])
