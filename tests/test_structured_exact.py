"""lth_core/structured.py pinned exactly on tiny hand examples: the families the runner asks for and the checks on
them, the keeps a mask has and the mask keeps write, which groups each strategy removes (norm scores by value,
global ranking with overrides and protection, seeded draws), and the structured costs measured once per mask."""

from __future__ import annotations

import pytest
import torch
from toy_adapter import ToyAdapter, ToyConfig

from domains.vision.adapter import VisionAdapter
from domains.vision.config import VisionConfig
from lth_core.adapter import Unsupported
from lth_core.controls import CONTROLS, ControlInput
from lth_core.errors import UsageError
from lth_core.masks import Mask
from lth_core.strategies import STRATEGIES, PruneStep
from lth_core.structure import Coupled, GroupFamily
from lth_core.structured import (
    StructuredCosts,
    bn_gammas,
    check_compact,
    current_keeps,
    families_for,
    family_rate,
    is_structured,
    job_keep,
    keeps_to_mask,
    prune_groups,
)

# a 2-4-3-2 MLP: family fc1 = row i of fc1.weight, fc1.bias[i], column i of fc2.weight; fc2 likewise
FAMS = (
    GroupFamily("fc1", "neuron", 4, (Coupled("fc1.weight", 0), Coupled("fc1.bias", 0), Coupled("fc2.weight", 1))),
    GroupFamily("fc2", "neuron", 3, (Coupled("fc2.weight", 0), Coupled("fc2.bias", 0), Coupled("fc3.weight", 1))),
)
SHAPES = {"fc1.weight": (4, 2), "fc2.weight": (3, 4), "fc3.weight": (2, 3)}


def full() -> Mask:
    return Mask({n: torch.ones(s, dtype=torch.bool) for n, s in SHAPES.items()})


def lenet() -> tuple[VisionAdapter, torch.nn.Module]:
    adapter = VisionAdapter(VisionConfig(dataset="digits", model="lenet_300_100"))
    return adapter, adapter.build(0)


# ---- the families the runner asks for -------------------------------------------------------------------------
def test_families_are_asked_for_only_where_a_part_needs_structure_and_are_the_adapters() -> None:
    adapter, model = lenet()
    assert families_for(adapter, model, [STRATEGIES.get("magnitude_global")]) is None
    assert families_for(adapter, model, [STRATEGIES.get("l1_structured")]) == tuple(adapter.structure(model))
    # a control alone (the strategy needs none) is enough
    parts = [STRATEGIES.get("magnitude_global"), CONTROLS.get("random_groups")]
    assert families_for(adapter, model, parts) == tuple(adapter.structure(model))


def test_families_are_checked_against_the_models_shapes_and_by_the_strategy() -> None:
    adapter, model = lenet()
    with pytest.raises(UsageError, match="^bn_slimming: the group family 'hidden.0' has no BatchNorm"):
        families_for(adapter, model, [STRATEGIES.get("bn_slimming")])

    class Wrong(VisionAdapter):
        def structure(self, model):
            return [GroupFamily("bad", "neuron", 7, (Coupled("hidden.0.weight", 0),))]

    with pytest.raises(ValueError, match="hidden.0.weight has 300 entries along dim 0, expected 7 groups x 1"):
        families_for(Wrong(adapter.config), model, [STRATEGIES.get("l1_structured")])


def test_compact_needs_a_structured_strategy_and_a_domain_that_compacts() -> None:
    adapter, _ = lenet()
    check_compact(adapter, STRATEGIES.get("l1_structured"), "l1_structured")  # no error
    msg = "^--compact trains structured tickets; --strategy 'magnitude_global' prunes no groups$"
    with pytest.raises(UsageError, match=msg):
        check_compact(adapter, STRATEGIES.get("magnitude_global"), "magnitude_global")
    with pytest.raises(Unsupported, match="^domain 'toy' cannot compact, which --compact needs"):
        check_compact(ToyAdapter(ToyConfig()), STRATEGIES.get("l1_structured"), "l1_structured")


# ---- keeps and masks ------------------------------------------------------------------------------------------
def test_keeps_to_mask_clears_removed_groups_in_every_member_and_intersects_the_mask() -> None:
    mask = full()
    mask.tensors["fc2.weight"][2, 3] = False  # an entry already cut in a kept group stays cut
    mask.tensors["extra"] = torch.tensor([True, False])  # a tensor outside every family: as it was
    before = {n: t.clone() for n, t in mask.tensors.items()}
    keep = {"fc1": torch.tensor([True, False, True, True]), "fc2": torch.tensor([False, True, True])}
    out = keeps_to_mask(FAMS, keep, mask)
    assert out["fc1.weight"].tolist() == [[True, True], [False, False], [True, True], [True, True]]
    assert out["fc2.weight"].tolist() == [[False] * 4, [True, False, True, True], [True, False, True, False]]
    assert out["fc3.weight"].tolist() == [[False, True, True]] * 2
    assert out["extra"].tolist() == [True, False]
    assert all(torch.equal(mask[n], before[n]) for n in before)  # the step's mask is not written to


def test_current_keeps_are_groups_every_masked_member_still_keeps() -> None:
    mask = full()
    mask.tensors["fc1.weight"][1] = False  # neuron 1 gone from its row
    mask.tensors["fc2.weight"][:, 3] = False  # neuron 3 gone from its readers' column
    mask.tensors["fc2.weight"][0, 0] = False  # one entry only: neuron 0 of fc1 and of fc2 stay
    keeps = current_keeps(FAMS, mask)
    assert keeps["fc1"].tolist() == [True, False, True, False] and keeps["fc1"].dtype == torch.bool
    assert keeps["fc2"].tolist() == [True, True, True]
    assert not is_structured(FAMS, mask)  # the single cut entry is no group's
    assert job_keep(FAMS, mask) is None and job_keep(None, full()) is None
    mask.tensors["fc2.weight"][0, 0] = True
    assert not is_structured(FAMS, mask)  # fc1's neuron 1 still read, neuron 3 still written
    mask.tensors["fc1.weight"][3] = False
    mask.tensors["fc2.weight"][:, 1] = False
    assert is_structured(FAMS, mask)
    got = job_keep(FAMS, mask)
    assert got is not None and {k: v.tolist() for k, v in got.items()} == {
        "fc1": [True, False, True, False],
        "fc2": [True, True, True],
    }


def test_family_rate_is_the_first_masked_members() -> None:
    only_readers = Mask({"fc2.weight": torch.ones(3, 4, dtype=torch.bool)})
    rates = {"fc1.weight": 0.9, "fc2.weight": 0.25}
    assert family_rate(FAMS[0], only_readers, rates) == 0.25  # fc1.weight unmasked: its reader fc2.weight's rate
    assert family_rate(FAMS[0], full(), rates) == 0.9
    assert family_rate(FAMS[0], Mask({"other": torch.ones(1, dtype=torch.bool)}), rates) == 0.0


# ---- which groups go ------------------------------------------------------------------------------------------
def _step(rates: dict[str, float], glob: frozenset[str], mask: Mask | None = None, **kw) -> PruneStep:
    fc1 = torch.tensor([[3.0, 0.0], [1.0, -1.0], [0.75, 0.75], [-0.125, 0.125]])
    fc2 = torch.tensor([[0.0, 2.0, 0.75, 0.125], [0.0, -2.0, 0.75, 0.125], [0.5, 0.5, 0.5, 0.125]])
    w = {"fc1.weight": fc1, "fc2.weight": fc2, "fc3.weight": torch.tensor([[1.0, 2.0, 0.25], [1.0, -2.0, 0.25]])}
    return PruneStep(w, mask or full(), rates, glob, families=FAMS, **kw)


def test_l1_and_l2_group_scores_are_the_per_entry_mean_and_rms_over_masked_members() -> None:
    mask = full()
    mask.tensors["fc2.weight"][0, 1] = False  # a masked entry counts as zero (and still as an entry)
    step = _step({n: 0.5 for n in SHAPES}, frozenset(), mask)
    l1 = STRATEGIES.get("l1_structured").group_scores(step)
    l2 = STRATEGIES.get("l2_structured").group_scores(step)
    # fc1 neuron i: its 2 row entries and its 3 column entries of fc2
    rows = [[3.0, 0.0, 0.0, 0.0, 0.5], [1.0, 1.0, 0.0, 2.0, 0.5], [0.75] * 4 + [0.5], [0.125] * 5]
    assert l1["fc1"].dtype == torch.float64
    assert torch.allclose(l1["fc1"], torch.tensor([sum(r) / 5 for r in rows], dtype=torch.float64))
    assert torch.allclose(l2["fc1"], torch.tensor([(sum(x * x for x in r) / 5) ** 0.5 for r in rows]).double())
    # fc2 neuron j: its 4 row entries (one masked in row 0) and its 2 column entries of fc3
    rows2 = [[0.0, 0.0, 0.75, 0.125, 1.0, 1.0], [0.0, 2.0, 0.75, 0.125, 2.0, 2.0], [0.5, 0.5, 0.5, 0.125, 0.25, 0.25]]
    assert torch.allclose(l1["fc2"], torch.tensor([sum(r) / 6 for r in rows2], dtype=torch.float64))
    assert torch.allclose(l2["fc2"], torch.tensor([(sum(x * x for x in r) / 6) ** 0.5 for r in rows2]).double())


def test_norm_scores_of_a_family_with_one_entry_per_group_are_that_entrys_magnitude() -> None:
    fam = (GroupFamily("f", "neuron", 3, (Coupled("w", 0),)),)
    w = {"w": torch.tensor([[-0.5], [2.0], [0.25]])}
    step = PruneStep(w, Mask.ones_like(w), {"w": 0.34}, frozenset(), families=fam)
    assert STRATEGIES.get("l1_structured").group_scores(step)["f"].tolist() == [0.5, 2.0, 0.25]
    assert STRATEGIES.get("l2_structured").group_scores(step)["f"].tolist() == [0.5, 2.0, 0.25]


def test_layerwise_removes_round_rate_times_remaining_lowest_first() -> None:
    # l1 fc1: .7 1.3 .7 .125 -> rate .5 of 4 removes n3 then n0 (tie 3.5 / 5 with n2: the earlier position)
    step = _step({"fc1.weight": 0.5, "fc2.weight": 0.34, "fc3.weight": 1.0}, frozenset())
    keeps = current_keeps(FAMS, STRATEGIES.get("l1_structured")(step))
    assert keeps["fc1"].tolist() == [False, True, True, False]
    # fc2 l1 (over masked members: fc2 rows, fc3 columns): .8125 1.1458 .3542; round(.34 * 3) = 1
    assert keeps["fc2"].tolist() == [True, True, False]


def test_global_ranks_groups_together_at_the_highest_rate_and_protects_each_familys_best() -> None:
    # l1: fc1 .7 1.3 .7 .125 | fc2 .8125 1.1458 .3542; protected: fc1 n1, fc2 n1; rate max(.3, .6) = .6
    # -> round(.6 * 7) = 4 of the 5 others: .125 (fc1 n3), .3542 (fc2 n2), .7 (fc1 n0), .7 (fc1 n2)
    step = _step({"fc1.weight": 0.3, "fc2.weight": 0.6, "fc3.weight": 0.0}, frozenset(SHAPES))
    keeps = current_keeps(FAMS, STRATEGIES.build("l1_structured", {"scope": "global"})(step))
    assert keeps["fc1"].tolist() == [False, True, False, False] and keeps["fc2"].tolist() == [True, True, False]
    # never more than the unprotected groups: rate 1 removes all but each family's best
    step = _step({n: 1.0 for n in SHAPES}, frozenset(SHAPES))
    keeps = current_keeps(FAMS, STRATEGIES.build("l1_structured", {"scope": "global"})(step))
    assert keeps["fc1"].tolist() == [False, True, False, False] and keeps["fc2"].tolist() == [False, True, False]


def test_global_leaves_a_family_with_an_override_to_its_own_rate() -> None:
    # fc1.weight is not ranked globally (an override): fc1 loses round(.25 * 4) = 1 by itself; fc2 alone is
    # "global": round(.5 * 3) = 2 wanted, 2 unprotected, so 2 go
    step = _step({"fc1.weight": 0.25, "fc2.weight": 0.5, "fc3.weight": 0.0}, frozenset({"fc2.weight"}))
    keeps = current_keeps(FAMS, prune_groups(step, STRATEGIES.get("l1_structured").group_scores(step), "global"))
    assert keeps["fc1"].tolist() == [True, True, True, False] and keeps["fc2"].tolist() == [False, True, False]


def test_global_counts_only_the_groups_still_kept() -> None:
    mask = keeps_to_mask(FAMS, {"fc1": torch.tensor([True, True, True, False]), "fc2": torch.ones(3).bool()}, full())
    # alive: fc1 n0 n1 n2 (n3 gone), fc2 all: 6 groups, round(.5 * 6) = 3 go
    step = _step({n: 0.5 for n in SHAPES}, frozenset(SHAPES), mask)
    out = STRATEGIES.build("l1_structured", {"scope": "global"})(step)
    keeps = current_keeps(FAMS, out)
    assert int(keeps["fc1"].sum()) + int(keeps["fc2"].sum()) == 6 - round(0.5 * 6)
    assert out.is_subset_of(mask) and not keeps["fc1"][3]


def test_bn_gammas_are_the_batchnorm_scales_beside_running_means() -> None:
    fam = GroupFamily(
        "c",
        "channel",
        2,
        (
            Coupled("conv.weight", 0),
            *(Coupled(f"bn.{t}", 0) for t in ("weight", "bias", "running_mean", "running_var")),
            Coupled("bn2.weight", 0),
            Coupled("bn2.running_mean", 0),
            Coupled("fc.weight", 1),
            Coupled("fc.running_mean", 1),  # along dim 1: a reader, not a BatchNorm's own entries
        ),
    )
    assert bn_gammas(fam) == ["bn.weight", "bn2.weight"]


def _bn_step(state_field: str) -> PruneStep:
    w = {"c1.weight": torch.ones(3, 1), "fc.weight": torch.ones(2, 3)}
    fam = GroupFamily(
        "c1",
        "channel",
        3,
        (
            Coupled("c1.weight", 0),
            *(Coupled(f"{b}.{t}", 0) for b in ("b1", "b2") for t in ("weight", "running_mean")),
            Coupled("fc.weight", 1),
        ),
    )
    state = {**w, "b1.weight": torch.tensor([1.0, -4.0, 0.5]), "b2.weight": torch.tensor([-3.0, 1.0, 0.25])}
    state |= {f"{b}.running_mean": torch.zeros(3) for b in ("b1", "b2")}
    return PruneStep(
        w,
        Mask.ones_like(w),
        {"c1.weight": 0.34, "fc.weight": 0.0},
        frozenset(w),
        families=(fam,),
        **{state_field: state},
    )


def test_bn_slimming_scores_the_mean_abs_gamma_of_tied_batchnorms_from_state_or_rewind() -> None:
    for field in ("state", "rewind"):
        step = _bn_step(field)
        scores = STRATEGIES.build("bn_slimming", {"scope": "layerwise"}).group_scores(step)
        assert scores["c1"].dtype == torch.float64 and scores["c1"].tolist() == [2.0, 2.5, 0.375]
        keeps = current_keeps(step.families, STRATEGIES.build("bn_slimming", {"scope": "layerwise"})(step))
        assert keeps["c1"].tolist() == [True, True, False]
    with pytest.raises(
        RuntimeError, match="^bn_slimming reads BatchNorm scales: the PruneStep carries no full state dict$"
    ):
        STRATEGIES.get("bn_slimming").group_scores(PruneStep({}, Mask({}), {}, frozenset(), families=()))


def test_random_structured_drops_the_lowest_of_its_seeded_float64_draws() -> None:
    for seed in (0, 5, 11):
        step = _step({"fc1.weight": 0.5, "fc2.weight": 0.34, "fc3.weight": 0.0}, frozenset(), seed=seed)
        g = torch.Generator().manual_seed(seed)
        draw = {f.name: torch.rand(f.count, generator=g, dtype=torch.float64) for f in FAMS}
        keeps = current_keeps(FAMS, STRATEGIES.get("random_structured")(step))
        assert keeps["fc1"].tolist() == (draw["fc1"] >= draw["fc1"].sort().values[2]).tolist()
        assert keeps["fc2"].tolist() == (draw["fc2"] > draw["fc2"].min()).tolist()


def test_a_step_without_families_is_refused() -> None:
    step = PruneStep({}, Mask({}), {}, frozenset())
    with pytest.raises(
        RuntimeError, match="^a structured strategy needs the model's group families; the PruneStep carries none$"
    ):
        STRATEGIES.get("l1_structured")(step)
    c = ControlInput(Mask({}), {}, lambda s: {}, 0)
    with pytest.raises(RuntimeError, match="^random_groups needs the model's group families; the runner gave none$"):
        CONTROLS.get("random_groups")(c)


def test_random_groups_draws_its_seeded_permutation_and_keeps_outside_tensors_as_the_ticket() -> None:
    ticket = keeps_to_mask(FAMS, {"fc1": torch.tensor([True, False, True, False]), "fc2": torch.ones(3).bool()}, full())
    ticket.tensors["fc2.weight"][1, 0] = False  # a cut entry inside a family: the control's mask is pure groups
    ticket.tensors["extra"] = torch.tensor([False, True, True])
    rewind = {"fc1.weight": torch.full((4, 2), 2.0)}
    for seed in (1, 4):
        weights, mask = CONTROLS.get("random_groups")(ControlInput(ticket, rewind, lambda s: {}, seed, families=FAMS))
        g = torch.Generator().manual_seed(seed)
        want = {}
        for name, k in (("fc1", 2), ("fc2", 3)):
            fam_count = 4 if name == "fc1" else 3
            w = torch.zeros(fam_count, dtype=torch.bool)
            w[torch.randperm(fam_count, generator=g)[:k]] = True
            want[name] = w
        assert weights is rewind
        assert {k: v.tolist() for k, v in current_keeps(FAMS, mask).items()} == {k: v.tolist() for k, v in want.items()}
        assert torch.equal(mask["fc2.weight"], keeps_to_mask(FAMS, want, full())["fc2.weight"])
        assert mask["extra"].tolist() == [False, True, True]


# ---- measured costs -------------------------------------------------------------------------------------------
class Counting(VisionAdapter):
    """The vision adapter with its cost measurement counted (StructuredCosts' caching is the claim)."""

    calls: list[dict[str, list[bool]]]

    def cost(self, model, keep):
        assert isinstance(model, torch.nn.Module)  # the model `build` gives
        self.calls.append({k: v.tolist() for k, v in keep.items()})
        return {"params": float(len(self.calls))}


def test_structured_costs_are_measured_once_per_distinct_mask_and_only_for_structured_masks() -> None:
    adapter = Counting(VisionConfig(dataset="digits", model="lenet_300_100"))
    adapter.calls = []
    model = adapter.build(0)
    fams = tuple(adapter.structure(model))
    dense = Mask({n: torch.ones_like(model.state_dict()[n], dtype=torch.bool) for n in adapter.prunable(model, False)})
    keep = {f.name: torch.arange(f.count) % 2 == 0 for f in fams}
    a = keeps_to_mask(fams, keep, dense)
    b = keeps_to_mask(fams, {**keep, fams[1].name: torch.arange(fams[1].count) < 3}, dense)
    costs = StructuredCosts(adapter, fams)
    assert costs.on
    costs.measure("j1", a, lambda: adapter.build(0))
    costs.measure("j2", a, lambda: adapter.build(0))
    costs.measure("j3", b, lambda: adapter.build(0))
    unstructured = Mask({n: t.clone() for n, t in dense.tensors.items()})
    unstructured.tensors["fc.weight"][0, 0] = False
    costs.measure("j4", unstructured, lambda: adapter.build(0))
    assert len(adapter.calls) == 2 and adapter.calls[0] == {k: v.tolist() for k, v in keep.items()}
    assert costs.columns("j1") == costs.columns("j2") == {"params": 1.0} and costs.columns("j3") == {"params": 2.0}
    assert costs.columns("j4") == {} and costs.columns("nothing") == {}
    costs.columns("j1")["params"] = -1.0  # a copy: the cache is not written through it
    assert costs.columns("j2") == {"params": 1.0}
    # off without families, or for a domain that cannot compact and measure
    off = StructuredCosts(adapter, None)
    off.measure("j1", a, lambda: adapter.build(0))
    assert not off.on and off.columns("j1") == {} and len(adapter.calls) == 2
    toy = StructuredCosts(ToyAdapter(ToyConfig()), fams)  # a domain that cannot measure: nothing asked of it
    toy.measure("j1", a, lambda: adapter.build(0))
    assert not toy.on and toy.columns("j1") == {}


def test_global_protects_the_best_group_of_every_ranked_family_not_only_the_first_two() -> None:
    fams = (
        GroupFamily("a", "neuron", 3, (Coupled("w1", 0), Coupled("w2", 1))),
        GroupFamily("b", "neuron", 2, (Coupled("w2", 0), Coupled("w3", 1))),
        GroupFamily("c", "neuron", 2, (Coupled("w3", 0), Coupled("w4", 1))),
    )
    w = {"w1": torch.tensor([[3.0], [2.0], [1.0]]), "w2": torch.full((2, 3), 0.5), "w3": torch.full((2, 2), 0.25)}
    w["w4"] = torch.tensor([[0.125, 0.0625]])
    step = PruneStep(w, Mask.ones_like(w), {n: 1.0 for n in w}, frozenset(w), families=fams)
    keeps = current_keeps(fams, STRATEGIES.build("l1_structured", {"scope": "global"})(step))
    assert {k: v.tolist() for k, v in keeps.items()} == {
        "a": [True, False, False],
        "b": [True, False],
        "c": [True, False],
    }


def test_a_bad_structured_scope_names_the_flag_and_the_choices() -> None:
    with pytest.raises(UsageError, match="^--l2-structured-scope 'both': choose from layerwise, global$"):
        STRATEGIES.build("l2_structured", {"scope": "both"})
