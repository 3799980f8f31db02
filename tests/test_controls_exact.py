"""Controls' exact contracts, each found unguarded by mutation testing: `random_mask` draws from its own seed only
(a run's controls are reproducible whatever else used torch's global generator), returns boolean masks at the
ticket's counts, and `inverted` ranks in the scores' own precision and refuses a run without a pruning step."""

from __future__ import annotations

import pytest
import torch

from lth_core.controls import CONTROLS, ControlInput
from lth_core.masks import Mask

REWIND = {"a": torch.randn(6, 8), "b": torch.randn(4, 6)}


def ticket() -> Mask:
    g = torch.Generator().manual_seed(0)
    return Mask({"a": torch.rand(6, 8, generator=g) < 0.3, "b": torch.rand(4, 6, generator=g) < 0.5})


def random_mask(seed: int, global_seed: int) -> Mask:
    torch.manual_seed(global_seed)  # the global generator must not matter
    return CONTROLS.get("random_mask")(ControlInput(ticket(), REWIND, lambda s: {}, seed))[1]


def test_random_mask_is_drawn_from_its_own_seed_only_as_booleans_at_the_tickets_counts():
    one, again, other = random_mask(7, 1), random_mask(7, 2), random_mask(8, 1)
    for n, m in ticket().tensors.items():
        assert one[n].dtype == torch.bool and one[n].shape == m.shape
        assert int(one[n].sum()) == int(m.sum())
        assert torch.equal(one[n], again[n])
    assert any(not torch.equal(one[n], other[n]) for n in one)


def test_inverted_without_the_tickets_pruning_step_says_why():
    with pytest.raises(RuntimeError) as e:
        CONTROLS.get("inverted")(ControlInput(ticket(), REWIND, lambda s: {}, 0, None))
    assert str(e.value) == "the inverted control needs the ticket's pruning step, and this run has none"


def test_inverted_ranks_float64_scores_in_float64():
    # 1 + 1e-12 and 1 are one float32 value: ranked in float32 the tie goes to the earlier position (entry 0)
    small = Mask({"w": torch.tensor([True, False])})
    pruned_from = Mask({"w": torch.tensor([True, True])})
    scores = {"w": torch.tensor([1.0 + 1e-12, 1.0], dtype=torch.float64)}
    _, mask = CONTROLS.get("inverted")(ControlInput(small, REWIND, lambda s: {}, 0, lambda: (pruned_from, scores)))
    assert mask["w"].tolist() == [False, True]
