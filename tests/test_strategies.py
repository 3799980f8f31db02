"""Exact counts and nesting of every pruning strategy and of the controls."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lth_core.controls import CONTROLS, ControlInput
from lth_core.masks import Mask
from lth_core.strategies import STRATEGIES, PruneStep, global_names, resolve_rates

SHAPES = {"a.weight": (30, 20), "b.weight": (20, 10), "out.weight": (10, 3)}
GROUPS = {"a.weight": "fc", "b.weight": "fc", "out.weight": "output"}


def weights(seed=0, shapes=SHAPES):
    g = torch.Generator().manual_seed(seed)
    return {n: torch.randn(s, generator=g) for n, s in shapes.items()}


def step(w, mask, rate=0.2, overrides=None, strategy="magnitude_layerwise", seed=0):
    overrides = overrides or {}
    return STRATEGIES.get(strategy)(
        PruneStep(
            weights=w,
            mask=mask,
            rates=resolve_rates(GROUPS, rate, overrides),
            global_names=global_names(GROUPS, overrides),
            seed=seed,
        )
    )


def test_layerwise_counts_are_exact_with_overrides():
    w = weights()
    mask = Mask.ones_like(w)
    new = step(w, mask, 0.2, {"output": 0.1})
    assert new.kept() == {"a.weight": 480, "b.weight": 160, "out.weight": 27}
    # the smallest magnitudes went first
    a = w["a.weight"].abs()
    assert a[~new["a.weight"]].max() <= a[new["a.weight"]].min()


def test_global_counts_are_exact_and_use_one_threshold():
    w = weights()
    mask = Mask.ones_like(w)
    new = step(w, mask, 0.5, {"output": 0.0}, strategy="magnitude_global")
    kept = new.kept()
    assert kept["out.weight"] == 30  # rate 0 = never pruned
    assert kept["a.weight"] + kept["b.weight"] == 800 - 400
    pruned = torch.cat([w[n].abs()[~new[n]] for n in ("a.weight", "b.weight")])
    survived = torch.cat([w[n].abs()[new[n]] for n in ("a.weight", "b.weight")])
    assert pruned.max() <= survived.min()


def test_global_never_empties_a_tensor():
    w = weights()
    w["b.weight"] = w["b.weight"] * 1e-6  # every entry below every other tensor's
    new = step(w, Mask.ones_like(w), 0.5, {"output": 0.0}, strategy="magnitude_global")
    assert new.kept()["b.weight"] >= 1
    assert new.kept()["a.weight"] + new.kept()["b.weight"] == 400


def test_random_strategy_has_layerwise_counts():
    w = weights()
    new = step(w, Mask.ones_like(w), 0.2, {"output": 0.1}, strategy="random", seed=3)
    assert new.kept() == {"a.weight": 480, "b.weight": 160, "out.weight": 27}


def test_one_shot_rates_reach_the_iterative_density():
    # one-shot at level L uses rate 1 - (1 - p)^L on the dense weights: same counts as L iterative steps
    w = weights()
    mask = Mask.ones_like(w)
    iterative = mask
    for level in range(1, 5):
        iterative = step(w, iterative, 0.2)
        one_shot = step(w, mask, 1 - 0.8**level)
        assert abs(one_shot.density - iterative.density) < 0.01


@settings(max_examples=30, deadline=None)
@given(
    rate=st.floats(0.05, 0.95),
    levels=st.integers(1, 6),
    seed=st.integers(0, 999),
    strategy=st.sampled_from(["magnitude_layerwise", "magnitude_global", "random"]),
)
def test_property_masks_nest_and_counts_follow_the_rate(rate, levels, seed, strategy):
    mask = Mask.ones_like(weights())
    for level in range(levels):
        w = weights(seed + level)
        remaining = mask.num_kept
        new = step(w, mask, rate, strategy=strategy, seed=seed)
        assert new.is_subset_of(mask)
        if strategy != "magnitude_global":
            assert new.kept() == {n: k - min(k, round(rate * k)) for n, k in mask.kept().items()}
        else:
            assert remaining - new.num_kept == min(round(rate * remaining), remaining - len(mask))
        assert all(v >= 1 for v in new.kept().values()) or strategy != "magnitude_global"
        mask = new


def control_input(seed=5):
    w = weights()
    ticket = step(w, Mask.ones_like(w), 0.6)
    return ControlInput(ticket_mask=ticket, rewind_weights=w, fresh_weights=lambda s: weights(1000 + s), seed=seed)


def test_random_mask_keeps_per_tensor_counts_and_differs():
    c = control_input()
    w, m = CONTROLS.get("random_mask")(c)
    assert w is c.rewind_weights
    assert m.kept() == c.ticket_mask.kept()
    assert any((m[n] != c.ticket_mask[n]).any() for n in m)


def test_random_reinit_keeps_the_mask_on_new_weights():
    c = control_input()
    w, m = CONTROLS.get("random_reinit")(c)
    assert m is c.ticket_mask
    assert all(not torch.equal(w[n], c.rewind_weights[n]) for n in w)


def test_masks_round_trip_as_plain_tensors(tmp_path):
    m = step(weights(), Mask.ones_like(weights()), 0.3)
    m.save(tmp_path / "m.pt")
    back = Mask.load(tmp_path / "m.pt")
    assert back.kept() == m.kept() and all(torch.equal(back[n], m[n]) for n in m)
    assert abs(back.density - m.num_kept / m.num_total) < 1e-12


def test_components_with_fields_get_flags_and_refuse_unknown_parameters():
    from dataclasses import dataclass

    import pytest

    from lth_core.components import flag
    from lth_core.config import opt
    from lth_core.errors import UsageError
    from lth_core.strategies import Strategy

    @dataclass(frozen=True)
    class Scaled(Strategy):
        scale: float = opt(1.0, "a scale")

    from lth_core.components import ComponentRegistry

    reg, other = type(STRATEGIES)("strategy"), type(CONTROLS)("control")
    try:
        reg.register("scaled_test")(Scaled)
        assert reg.get("scaled_test") == Scaled() and reg.build("scaled_test", {"scale": 2.0}).scale == 2.0
        assert [n for n, _ in reg.parameterized()] == ["scaled_test"]
        assert flag("scaled_test", "scale") == "--scaled-test-scale"
        with pytest.raises(UsageError, match="has no parameter 'scal'"):
            reg.build("scaled_test", {"scal": 2.0})
        with pytest.raises(ValueError, match="already owns flags"):  # flags are namespaced by the name alone
            other.register("scaled_test")(Scaled)
    finally:  # leave the CLI's registries as they were
        ComponentRegistry.all[:] = [r for r in ComponentRegistry.all if r not in (reg, other)]
        ComponentRegistry._namespaces.pop("scaled_test", None)
