"""The ablations of Frankle et al. 2021: `layer_shuffle` moves the ticket's entries within each tensor and keeps
the rest; `inverted` keeps the lowest-ranked entries by rank (signed scores, zeros), at the ticket's counts."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from benchmarks.run import main
from lth_core.controls import CONTROLS, ControlInput
from lth_core.masks import Mask
from lth_core.strategies import STRATEGIES, PruneStep, Strategy, prune_lowest

REWIND = {"a": torch.randn(6, 8), "b": torch.randn(4, 6), "bias": torch.randn(4)}


def ticket() -> Mask:
    g = torch.Generator().manual_seed(0)
    return Mask({"a": torch.rand(6, 8, generator=g) < 0.3, "b": torch.rand(4, 6, generator=g) < 0.5})


def control_input(ranking=None, seed: int = 5) -> ControlInput:
    return ControlInput(ticket(), REWIND, lambda s: {}, seed, ranking)


def test_layer_shuffle_moves_entries_keeps_counts_and_the_weights():
    weights, mask = CONTROLS.get("layer_shuffle")(control_input())
    assert weights is REWIND  # the ticket's own rewind weights, untouched
    for n, m in ticket().tensors.items():
        assert int(mask[n].sum()) == int(m.sum()) and mask[n].shape == m.shape
        assert not torch.equal(mask[n], m)  # positions changed
    again = CONTROLS.get("layer_shuffle")(control_input())[1]
    other = CONTROLS.get("layer_shuffle")(control_input(seed=6))[1]
    assert all(torch.equal(again[n], mask[n]) for n in mask) and any(not torch.equal(other[n], mask[n]) for n in mask)


def test_inverted_is_a_rank_inversion_of_signed_scores_at_the_tickets_counts():
    full = Mask({n: torch.ones_like(m) for n, m in ticket().tensors.items()})
    g = torch.Generator().manual_seed(1)
    scores = {n: torch.randn(m.shape, generator=g).round(decimals=1) for n, m in ticket().tensors.items()}
    scores["a"].view(-1)[:5] = 0.0  # zeros, where a reciprocal would break
    weights, mask = CONTROLS.get("inverted")(control_input(lambda: (full, scores)))
    assert weights is REWIND
    for n, m in ticket().tensors.items():
        k = int(m.sum())
        assert int(mask[n].sum()) == k
        # exactly the k lowest: every kept score <= every dropped one
        assert scores[n][mask[n]].max() <= scores[n][~mask[n]].min()
        order = torch.argsort(scores[n].flatten(), stable=True)  # ties by position
        assert set(torch.nonzero(mask[n].flatten()).flatten().tolist()) == set(order[:k].tolist())


def test_inverted_keeps_only_entries_the_tickets_step_pruned_from():
    pruned_from = Mask({"a": torch.arange(48).view(6, 8) % 2 == 0, "b": torch.ones(4, 6, dtype=torch.bool)})
    scores = {"a": -torch.arange(48.0).view(6, 8), "b": torch.zeros(4, 6)}
    m = ticket()
    small = Mask({"a": m["a"] & pruned_from["a"], "b": m["b"]})
    _, mask = CONTROLS.get("inverted")(ControlInput(small, REWIND, lambda s: {}, 0, lambda: (pruned_from, scores)))
    assert not (mask["a"] & ~pruned_from["a"]).any() and int(mask["a"].sum()) == int(small["a"].sum())
    assert torch.equal(mask["b"].flatten(), torch.arange(24) < int(small["b"].sum()))  # all tied: by position


def test_inverted_of_a_real_criterion_is_the_complement_when_it_keeps_half():
    step = PruneStep(
        {n: REWIND[n] for n in ("a", "b")},
        Mask({n: torch.ones_like(REWIND[n], dtype=torch.bool) for n in ("a", "b")}),
        {"a": 0.5, "b": 0.5},
        frozenset(),
    )
    strategy = STRATEGIES.get("magnitude_layerwise")
    kept = strategy(step)
    _, inv = CONTROLS.get("inverted")(
        ControlInput(kept, REWIND, lambda s: {}, 0, lambda: (step.mask, strategy.scores(step)))
    )
    assert all(torch.equal(inv[n], ~kept[n]) for n in kept)


@STRATEGIES.register("scoreless_probe")
@dataclass(frozen=True)
class ScorelessProbe(Strategy):
    """Magnitude pruning that does not expose its ranking."""

    def __call__(self, step: PruneStep) -> Mask:
        return prune_lowest(step, {n: step.weights[n].abs() for n in step.mask})


def test_inverted_beside_a_strategy_without_scores_is_refused_up_front(tmp_path, capsys):
    table = {"toy": "toy_adapter:ToyAdapter"}
    with pytest.raises(SystemExit) as e:
        main(
            [
                "--domain",
                "toy",
                "--strategy",
                "scoreless_probe",
                "--controls",
                "inverted",
                "--out",
                str(tmp_path / "out"),
                "--noprogress",
            ],
            table,
        )
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1
    assert "the control 'inverted' inverts the strategy's scores; 'scoreless_probe' exposes none" in err
    assert not (tmp_path / "out").exists()
