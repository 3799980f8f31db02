"""Small contracts of the engine that mutation testing found unpinned by the fast subset (README, "Mutation
testing"): a foreign run folder can't be run in, random pruning is a function of its seed, and a damaged job
record's reason names what is wrong."""

from __future__ import annotations

import pytest
import torch

from lth_core.masks import Mask
from lth_core.store import RunStore, record_shape_error
from lth_core.strategies import STRATEGIES, PruneStep


def test_a_foreign_folder_is_read_only_and_cannot_be_opened_to_run_in(tmp_path):
    store = RunStore.foreign(tmp_path / "other")
    assert store.read_only is True
    with pytest.raises(RuntimeError, match="opened read-only"):
        store.open({"config_hash": "0" * 64})
    assert not (tmp_path / "other").exists()


def test_random_pruning_draws_from_its_seed_alone():
    w = {"a": torch.randn(8, 8), "b": torch.randn(16)}
    step = lambda seed: PruneStep(w, Mask.ones_like(w), {"a": 0.5, "b": 0.5}, frozenset(), seed=seed)  # noqa: E731
    random = STRATEGIES.get("random")
    first, again, other = random.scores(step(3)), random.scores(step(3)), random.scores(step(4))
    assert all(torch.equal(first[n], again[n]) for n in w) and not torch.equal(first["a"], other["a"])
    assert random(step(3)).kept() == {"a": 32, "b": 8}


@pytest.mark.parametrize(
    "rec,why",
    [
        ([], "a JSON list, not an object"),
        ({"curve": []}, "no row object"),
        ({"row": {"kind": "ticket", "level": "1", "trial": 0, "status": "ok"}}, "row.level is '1'"),
        ({"row": {"kind": "ticket", "level": True, "trial": 0, "status": "ok"}}, "row.level is True"),
        ({"row": {"kind": "ticket", "level": 1, "trial": 0, "status": "ok", "attempts": 0}}, "row.attempts is 0"),
        ({"row": {"kind": "ticket", "level": 1, "trial": 0, "status": "ok"}, "curve": {}}, "curve is not a list"),
        ({"row": {"kind": "ticket", "level": 1, "trial": 0, "status": "ok", "attempts": 2}, "curve": []}, None),
    ],
)
def test_a_damaged_records_reason_names_the_field(rec, why):
    assert record_shape_error(rec) == why
