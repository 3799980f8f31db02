"""Pruning's pieces by exact values: which entry goes on ties, which override wins, what a global step protects
and removes (mutation testing found these unpinned by tests/test_strategies.py, which checks counts)."""

from __future__ import annotations

import pytest
import torch

from lth_core.errors import UsageError
from lth_core.masks import Mask
from lth_core.strategies import (
    STRATEGIES,
    PruneStep,
    ScoringHook,
    Strategy,
    _n_remove,
    global_names,
    lowest,
    prune_global,
    prune_lowest,
    resolve_rates,
)


def test_the_last_matching_override_wins_by_group_or_name_pattern():
    groups = {"conv1.weight": "conv", "fc.weight": "linear", "out.weight": "output"}
    overrides = {"conv": 0.1, "*.weight": 0.3, "output": 0.0}
    assert resolve_rates(groups, 0.2, overrides) == {"conv1.weight": 0.3, "fc.weight": 0.3, "out.weight": 0.0}
    assert resolve_rates(groups, 0.2, {"Conv": 0.1, "fc.*": 0.5}) == {
        "conv1.weight": 0.2,
        "fc.weight": 0.5,
        "out.weight": 0.2,
    }
    assert global_names(groups, {"output": 0.0, "fc.w*": 0.1}) == frozenset({"conv1.weight"})


def test_the_count_removed_rounds_and_never_exceeds_what_remains():
    assert [_n_remove(10, r) for r in (0.0, 0.14, 0.15, 0.26, 1.0, 1.5)] == [0, 1, 2, 3, 10, 10]


def test_lowest_takes_ties_at_the_earlier_position():
    s = torch.tensor([3.0, 1.0, 2.0, 1.0, 1.0, 0.5])
    assert lowest(s, 0).tolist() == [False] * 6 and lowest(s, -1).tolist() == [False] * 6
    assert lowest(s, 1).tolist() == [False, False, False, False, False, True]
    assert lowest(s, 3).tolist() == [False, True, False, True, False, True]
    assert lowest(s, 6).tolist() == [True] * 6


def step(weights, keep=None, rate=0.5, global_=None, seed=0) -> PruneStep:
    mask = Mask(keep or {n: torch.ones_like(w, dtype=torch.bool) for n, w in weights.items()})
    return PruneStep(weights, mask, {n: rate for n in weights}, frozenset(global_ or weights), seed=seed)


def test_layerwise_removes_the_lowest_magnitudes_of_the_remaining_entries():
    w = {"a": torch.tensor([[-4.0, 1.0], [-2.0, 3.0]]), "b": torch.tensor([5.0, -1.0, 0.5, 2.0])}
    keep = {"a": torch.tensor([[True, False], [True, True]]), "b": torch.ones(4, dtype=torch.bool)}
    out = STRATEGIES.get("magnitude_layerwise")(step(w, keep, rate=0.5))
    assert out["a"].tolist() == [[True, False], [False, False]]  # 3 remain, round(1.5) = 2 go: -2 and 3, not 1 (pruned)
    assert out["b"].tolist() == [True, False, False, True]


def test_global_ranks_together_protects_each_tensors_best_and_prunes_others_layerwise():
    w = {"a": torch.tensor([0.1, 0.2, 0.3]), "b": torch.tensor([5.0, 6.0, 7.0]), "c": torch.tensor([1.0, 2.0])}
    s = step(w, rate=0.5, global_={"a", "b"})
    out = STRATEGIES.get("magnitude_global")(s)
    # a and b: 6 remain, 3 removed; a's best (0.3) is protected, so 0.1, 0.2 and then b's lowest 5.0 go
    assert out["a"].tolist() == [False, False, True] and out["b"].tolist() == [False, True, True]
    assert out["c"].tolist() == [False, True]
    bare = prune_global(s, {n: v.abs() for n, v in w.items()}, protect=False)
    assert bare["a"].tolist() == [False, False, False] and bare["b"].tolist() == [True, True, True]


def test_global_never_removes_more_than_the_unprotected_entries():
    w = {"a": torch.tensor([1.0]), "b": torch.tensor([2.0, 3.0])}
    out = prune_global(step(w, rate=0.99), {n: v for n, v in w.items()}, protect=True)
    assert out["a"].tolist() == [True] and out["b"].tolist() == [False, True]


def test_integer_scores_are_ranked_as_numbers():
    w = {"a": torch.tensor([3, 1, 2])}
    s = step({"a": torch.zeros(3)}, rate=0.34)
    assert prune_lowest(s, w)["a"].tolist() == [True, False, True]
    assert prune_global(s, w, protect=True)["a"].tolist() == [True, False, True]


def test_random_pruning_is_uniform_scores_from_the_seed():
    s = step({"a": torch.zeros(2, 3)}, seed=5)
    g = torch.Generator().manual_seed(5)
    assert torch.equal(STRATEGIES.get("random").scores(s)["a"], torch.rand((2, 3), generator=g))


def test_a_strategy_without_scores_says_so():
    class Plain(Strategy):
        pass

    with pytest.raises(UsageError, match=r"^strategy Plain does not expose ranking scores$"):
        Plain().scores(step({"a": torch.zeros(1)}))
    with pytest.raises(NotImplementedError):
        Plain()(step({"a": torch.zeros(1)}))
    assert Plain.sums_gradients is False


def test_float64_scores_are_ranked_in_float64():
    s = step({"a": torch.zeros(2)}, rate=0.5)
    scores = {"a": torch.tensor([1.0 + 1e-12, 1.0], dtype=torch.float64)}  # equal in float32
    assert prune_global(s, scores, protect=False)["a"].tolist() == [True, False]
    assert prune_lowest(s, scores)["a"].tolist() == [True, False]


def test_the_scoring_hook_builds_the_domains_model_with_the_weights_and_reads_its_seeded_loss():
    calls = []

    def build(seed):
        calls.append(seed)
        return torch.nn.Linear(2, 1)

    def loss(model, batches, seed):
        return model.weight.sum() * batches + seed

    hook = ScoringHook(build, loss, seed=5)
    w = {"weight": torch.tensor([[1.0, 2.0]]), "bias": torch.tensor([0.5])}
    model = hook.model(w)
    assert calls == [0] and torch.equal(model.weight.data, w["weight"]) and torch.equal(model.bias.data, w["bias"])
    assert float(hook(model, 3).detach()) == 3.0 * 3 + 5


def test_global_protects_the_best_of_every_ranked_tensor_not_only_the_first_two():
    w = {"a": torch.tensor([5.0, 6.0]), "b": torch.tensor([7.0, 8.0]), "c": torch.tensor([0.1, 0.2])}
    out = prune_global(step(w, rate=0.5), w, protect=True)  # 3 go: 0.1, 5 and 7; 6, 8 and 0.2 are protected
    assert [out[n].tolist() for n in "abc"] == [[False, True], [False, True], [False, True]]
