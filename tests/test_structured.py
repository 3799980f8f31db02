"""Structured strategies (lth_core/structured.py) on hand examples: which groups go, exact counts, nesting, never
emptying a family, the BatchNorm refusal; and a structured run end to end through the CLI."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from benchmarks.run import main
from lth_core.errors import UsageError
from lth_core.masks import Mask
from lth_core.strategies import STRATEGIES, PruneStep
from lth_core.structure import Coupled, GroupFamily
from lth_core.structured import current_keeps, is_structured

# a 2-4-3-2 MLP: family fc1 = row i of fc1.weight, fc1.bias[i], column i of fc2.weight; fc2 likewise
FAMS = (
    GroupFamily("fc1", "neuron", 4, (Coupled("fc1.weight", 0), Coupled("fc1.bias", 0), Coupled("fc2.weight", 1))),
    GroupFamily("fc2", "neuron", 3, (Coupled("fc2.weight", 0), Coupled("fc2.bias", 0), Coupled("fc3.weight", 1))),
)


def _mlp_step(rates: dict[str, float], seed: int = 0) -> PruneStep:
    fc1 = torch.tensor([[3.0, 0.0], [1.0, 1.0], [0.7, 0.7], [0.1, 0.1]])
    fc2 = torch.tensor([[0.0, 1.0, 0.7, 0.1]] * 3)  # column i belongs to neuron i of fc1
    w = {"fc1.weight": fc1, "fc2.weight": fc2, "fc3.weight": torch.ones(2, 3)}
    state = {**w, "fc1.bias": torch.zeros(4), "fc2.bias": torch.zeros(3), "fc3.bias": torch.zeros(2)}
    return PruneStep(w, Mask.ones_like(w), rates, frozenset(w), seed, state=state, families=FAMS)


def test_l1_and_l2_structured_rank_groups_by_their_norms_over_all_members() -> None:
    # entries of fc1's neurons: n0 (3,0 | 0,0,0): mean|w| .6, rms 1.34; n1 all 1; n2 all .7; n3 all .1
    step = _mlp_step({"fc1.weight": 0.5, "fc2.weight": 0.0, "fc3.weight": 0.9})
    l1 = STRATEGIES.get("l1_structured")(step)
    l2 = STRATEGIES.get("l2_structured")(step)
    assert current_keeps(FAMS, l1)["fc1"].tolist() == [False, True, True, False]
    assert current_keeps(FAMS, l2)["fc1"].tolist() == [True, True, False, False]
    assert l1["fc1.weight"][0].sum() == 0 and l1["fc2.weight"][:, 0].sum() == 0 and l1["fc2.weight"][:, 1].all()
    assert current_keeps(FAMS, l1)["fc2"].all()  # rate 0: untouched
    assert l1["fc3.weight"].all()  # the output layer is only a reader: its rate prunes no group
    assert is_structured(FAMS, l1) and is_structured(FAMS, l2)


def test_ties_go_by_position_and_a_family_always_keeps_one_group() -> None:
    w = {"fc1.weight": torch.ones(4, 2), "fc2.weight": torch.ones(3, 4), "fc3.weight": torch.ones(2, 3)}
    step = PruneStep(w, Mask.ones_like(w), {n: 0.99 for n in w}, frozenset(w), families=FAMS)
    keep = current_keeps(FAMS, STRATEGIES.get("l1_structured")(step))
    assert keep["fc1"].tolist() == [False, False, False, True] and keep["fc2"].tolist() == [False, False, True]


def _bn_fams(with_bn: bool = True) -> tuple[GroupFamily, ...]:
    def bn(layer: str, bnname: str) -> tuple[Coupled, ...]:
        return tuple(Coupled(f"{bnname}.{t}", 0) for t in ("weight", "bias", "running_mean", "running_var"))

    a = (Coupled("c1.weight", 0),) + (bn("c1", "b1") if with_bn else ()) + (Coupled("c2.weight", 1),)
    b = (Coupled("c2.weight", 0),) + bn("c2", "b2") + (Coupled("fc.weight", 1),)
    return (GroupFamily("c1", "channel", 4, a), GroupFamily("c2", "channel", 2, b))


def _bn_step(rates: dict[str, float], scope_names: frozenset[str] | None = None) -> PruneStep:
    w = {"c1.weight": torch.ones(4, 1, 1, 1), "c2.weight": torch.ones(2, 4, 1, 1), "fc.weight": torch.ones(3, 2)}
    state = dict(w)
    for bn, g in (("b1", [0.5, -2.0, 0.1, 1.0]), ("b2", [3.0, 2.5])):
        state |= {f"{bn}.weight": torch.tensor(g), f"{bn}.bias": torch.zeros(len(g))}
        state |= {f"{bn}.running_mean": torch.zeros(len(g)), f"{bn}.running_var": torch.ones(len(g))}
    return PruneStep(w, Mask.ones_like(w), rates, scope_names or frozenset(w), state=state, families=_bn_fams())


def test_bn_slimming_ranks_by_abs_gamma_layerwise_and_globally() -> None:
    step = _bn_step({"c1.weight": 0.5, "c2.weight": 0.5, "fc.weight": 0.0})
    layerwise = STRATEGIES.build("bn_slimming", {"scope": "layerwise"})(step)
    assert current_keeps(_bn_fams(), layerwise)["c1"].tolist() == [False, True, False, True]
    assert current_keeps(_bn_fams(), layerwise)["c2"].tolist() == [True, False]
    # global: |gamma| .5 2 .1 1 | 3 2.5, each family's best (2, 3) protected; remove round(.5 * 6) = 3 of the
    # rest: .1, .5, 1 -- c1 keeps one group, c2 both
    glob = STRATEGIES.build("bn_slimming", {"scope": "global"})(step)
    keeps = current_keeps(_bn_fams(), glob)
    assert keeps["c1"].tolist() == [False, True, False, False] and keeps["c2"].tolist() == [True, True]
    assert glob.num_kept == 1 + 2 * 1 + 3 * 2  # c1 rows, c2 (2 rows x 1 kept input), fc columns


def test_bn_slimming_refuses_a_family_without_batchnorm_and_a_bad_scope() -> None:
    with pytest.raises(UsageError, match="'c1' has no BatchNorm"):
        STRATEGIES.get("bn_slimming").check_structure(_bn_fams(with_bn=False))
    with pytest.raises(UsageError, match="--l1-structured-scope 'both'"):
        STRATEGIES.build("l1_structured", {"scope": "both"})


def test_random_structured_is_seeded_with_exact_counts() -> None:
    rates = {"fc1.weight": 0.5, "fc2.weight": 0.34, "fc3.weight": 0.0}
    draws = [current_keeps(FAMS, STRATEGIES.get("random_structured")(_mlp_step(rates, s))) for s in range(6)]
    assert all(int(d["fc1"].sum()) == 2 and int(d["fc2"].sum()) == 2 for d in draws)
    assert (
        draws[0]["fc1"].tolist()
        == current_keeps(FAMS, STRATEGIES.get("random_structured")(_mlp_step(rates, 0)))["fc1"].tolist()
    )
    assert len({tuple(d["fc1"].tolist()) for d in draws}) > 1


@pytest.mark.parametrize("name", ["l1_structured", "l2_structured", "random_structured"])
@pytest.mark.parametrize("scope", ["layerwise", "global"])
def test_masks_nest_level_to_level_with_exact_counts_and_never_empty_a_family(name: str, scope: str) -> None:
    torch.manual_seed(0)
    fams = (
        GroupFamily("a", "neuron", 30, (Coupled("w1", 0), Coupled("w2", 1))),
        GroupFamily("b", "neuron", 12, (Coupled("w2", 0), Coupled("w3", 1))),
    )
    w = {"w1": torch.randn(30, 5), "w2": torch.randn(12, 30), "w3": torch.randn(3, 12)}
    mask, strat = Mask.ones_like(w), STRATEGIES.build(name, {"scope": scope})
    for level in range(12):
        before = current_keeps(fams, mask)
        step = PruneStep(w, mask, {"w1": 0.3, "w2": 0.3, "w3": 0.0}, frozenset({"w1", "w2"}), level, families=fams)
        nxt = strat(step)
        after = current_keeps(fams, nxt)
        assert nxt.is_subset_of(mask) and is_structured(fams, nxt)
        assert all(after[f].sum() >= 1 and not (after[f] & ~before[f]).any() for f in after)
        if scope == "layerwise":
            for f in after:
                r = int(before[f].sum())
                assert int(after[f].sum()) == r - min(r - 1, round(0.3 * r))
        else:
            r = sum(int(before[f].sum()) for f in before)
            assert sum(int(after[f].sum()) for f in after) == r - min(round(0.3 * r), r - 2)
        mask = nxt
    assert all(int(k.sum()) == 1 for k in current_keeps(fams, mask).values())


@pytest.mark.parametrize("schedule", ["iterative", "one_shot", "at_init"])
def test_l1_structured_vision_run_end_to_end(tmp_path, schedule: str) -> None:
    args = ["--domain", "vision", "--dataset", "digits", "--model", "lenet_300_100", "--strategy", "l1_structured"]
    args += ["--schedule", schedule, "--levels", "2", "--rate", "0.5", "--trials", "1", "--iterations", "20"]
    args += ["--eval-every", "10", "--controls", "random_reinit", "--out", str(tmp_path), "--noprogress"]
    assert main(args) == 0
    (folder,) = list(tmp_path.iterdir())
    rows = pd.read_csv(folder / "results.csv")
    assert (rows.status == "ok").all() and len(rows) == 5
    masks = [Mask.load(folder / "state" / f"mask-L{lv:02d}-t0.pt") for lv in (1, 2)]
    from domains.vision.adapter import VisionAdapter
    from domains.vision.config import VisionConfig

    adapter = VisionAdapter(VisionConfig(dataset="digits", model="lenet_300_100"))
    fams = tuple(adapter.structure(adapter.build(0)))
    keeps = [current_keeps(fams, m) for m in masks]
    assert [int(k["hidden.0"].sum()) for k in keeps] == [150, 75] and [int(k["hidden.1"].sum()) for k in keeps] == [
        50,
        25,
    ]
    assert all(is_structured(fams, m) for m in masks) and masks[1].is_subset_of(masks[0])
    # measured cost columns on the structured rows: the compacted LeNet's parameters and MACs, exactly
    ticket = rows[(rows.kind == "ticket") & (rows.level == 2)].iloc[0]
    h1, h2, d = 75, 25, 64  # digits: 8x8 inputs
    assert ticket.params == d * h1 + h1 + h1 * h2 + h2 + h2 * 10 + 10
    assert ticket.macs == d * h1 + h1 * h2 + h2 * 10 and ticket.dense_macs == d * 300 + 300 * 100 + 100 * 10
    assert all(ticket[c] > 0 for c in ("forward_speedup_b1", "forward_speedup", "step_speedup"))
    assert rows[rows.kind == "random_reinit"].params.tolist() == rows[rows.kind == "ticket"].params.tolist()
    assert rows[rows.kind == "dense"].params.isna().all()


def test_compact_run_trains_structured_jobs_compacted_with_the_masked_runs_results(tmp_path) -> None:
    args = ["--domain", "vision", "--dataset", "digits", "--model", "lenet_300_100", "--strategy", "l1_structured"]
    args += ["--levels", "2", "--rate", "0.5", "--trials", "1", "--iterations", "30", "--eval-every", "10"]
    args += ["--controls", "random_reinit,random_mask,random_groups", "--noprogress", "--threads", "1"]
    runs = {}
    for name, extra in (("masked", []), ("compact", ["--compact"])):
        assert main([*args, *extra, "--out", str(tmp_path / name)]) == 0
        (folder,) = list((tmp_path / name).iterdir())
        runs[name] = pd.read_csv(folder / "results.csv").set_index(["level", "kind"]).sort_index()
    masked, compact = runs["masked"], runs["compact"]
    assert list(masked.index) == list(compact.index) and (compact.status == "ok").all()
    assert masked.density.equals(compact.density) and masked.kept.equals(compact.kept)
    torch.testing.assert_close(
        torch.tensor(compact.val_at_stop.values), torch.tensor(masked.val_at_stop.values), atol=1e-4, rtol=1e-4
    )
    was = compact["compacted"].fillna(False).astype(bool)
    assert was[(1, "ticket")] and was[(2, "random_reinit")] and not was[(1, "random_mask")] and not was[(0, "dense")]
    assert was[(2, "random_groups")] and compact.kept[(2, "random_groups")] == compact.kept[(2, "ticket")]
    with pytest.raises(SystemExit) as refused:
        main([*args, "--compact", "--strategy", "magnitude_layerwise", "--out", str(tmp_path / "x")])
    assert refused.value.code == 2
    assert not (tmp_path / "x").exists()


def test_random_groups_control_draws_random_groups_at_the_tickets_family_counts() -> None:
    from lth_core.controls import CONTROLS, ControlInput

    ticket = STRATEGIES.get("l1_structured")(_mlp_step({"fc1.weight": 0.5, "fc2.weight": 0.34, "fc3.weight": 0.0}))
    draws = []
    for seed in range(8):
        c = ControlInput(ticket, {"w": torch.ones(1)}, lambda s: {}, seed, families=FAMS)
        weights, mask = CONTROLS.get("random_groups")(c)
        assert weights == {"w": torch.ones(1)} and is_structured(FAMS, mask) and mask.num_kept == ticket.num_kept
        keeps = current_keeps(FAMS, mask)
        assert int(keeps["fc1"].sum()) == 2 and int(keeps["fc2"].sum()) == 2
        draws.append(tuple(keeps["fc1"].tolist()))
    assert len(set(draws)) > 1
