"""Which policy tensors a mask covers, their groups, and that no preset empties a tensor by accident.

The accident to guard against (LIBRARY-NOTES): SB3 initialises the action head with gain 0.01, so one
global magnitude threshold over every layer removes the whole head and the policy always takes one action.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("stable_baselines3")

from domains.rl.adapter import RLAdapter  # noqa: E402
from domains.rl.config import RLConfig  # noqa: E402
from domains.rl.presets import PRESETS  # noqa: E402
from lth_core.config import ImpConfig, RunOptions  # noqa: E402
from lth_core.imp_runner import ImpRunner  # noqa: E402
from lth_core.masks import Mask  # noqa: E402
from lth_core.presets import apply  # noqa: E402
from lth_core.strategies import PruneStep  # noqa: E402

HEADS = {"action_head", "value_head", "q_head"}


def test_actor_critic_groups():
    a = RLAdapter(RLConfig(algo="a2c", net_arch="16,16"))
    groups = a.prunable(a.build(0), biases=False)
    assert groups == {
        "mlp_extractor.policy_net.0.weight": "pi",
        "mlp_extractor.policy_net.2.weight": "pi",
        "mlp_extractor.value_net.0.weight": "vf",
        "mlp_extractor.value_net.2.weight": "vf",
        "action_net.weight": "action_head",
        "value_net.weight": "value_head",
    }
    with_bias = a.prunable(a.build(0), biases=True)
    assert set(with_bias) - set(groups) == {n.replace(".weight", ".bias") for n in groups}


def test_dqn_groups_leave_the_target_network_to_the_mirror():
    a = RLAdapter(RLConfig(algo="dqn", net_arch="16,16"))
    groups = a.prunable(a.build(0), biases=True)
    assert not any(n.startswith("q_net_target.") for n in groups)
    assert groups["q_net.q_net.0.weight"] == "q" and groups["q_net.q_net.4.weight"] == "q_head"
    assert groups["q_net.q_net.4.bias"] == "q_head"


def test_cnn_policy_lists_the_shared_extractor_once():
    a = RLAdapter(RLConfig(env="ALE/Pong-v5", algo="a2c", net_arch=""))
    model = a.build(0)
    groups = a.prunable(model, biases=False)
    assert [g for g in groups.values()] == ["cnn", "cnn", "cnn", "features", "action_head", "value_head"]
    assert all(n.startswith(("features_extractor.", "action_net", "value_net")) for n in groups)
    ids = [id(model.get_parameter(n)) for n in groups]
    assert len(ids) == len(set(ids))
    assert a.task() == "ALE/Pong-v5/a2c-cnndefault"


def test_build_is_deterministic_in_the_seed_and_leaves_global_rng_alone():
    a = RLAdapter(RLConfig(net_arch="8"))
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    w0, w0b, w1 = a.initial_weights(0), a.initial_weights(0), a.initial_weights(1)
    assert torch.equal(torch.rand(1), before)
    assert all(torch.equal(w0[k], w0b[k]) for k in w0)
    assert any(not torch.equal(w0[k], w1[k]) for k in w0 if w0[k].abs().sum() > 0)


def lowest_mask(preset: str, **imp_changes) -> tuple[Mask, dict[str, str]]:
    """The lowest-density mask a preset's runner would make, pruning SB3's own initial weights (where the
    action head is already ~100x smaller than hidden weights) at every level."""
    p = PRESETS[preset]
    imp = apply(apply(ImpConfig(), p.imp), imp_changes)
    adapter = RLAdapter(apply(RLConfig(), p.domain))
    runner = ImpRunner(adapter, lambda: adapter, imp, RunOptions(out="unused-never-written"), preset=preset)
    weights = adapter.initial_weights(0)
    mask = runner.full_mask()
    for level in range(1, imp.levels + 1):
        mask = runner.strategy(
            PruneStep(
                weights={n: weights[n] for n in runner.groups},
                mask=mask,
                rates=runner.rates,
                global_names=runner.global_names,
                seed=level,
            )
        )
    return mask, runner.groups


def emptied(mask: Mask, groups: dict[str, str]) -> list[str]:
    """Tensors cut far below the network's overall density, and action heads with an action left unread."""
    bad = [
        n
        for n in mask.names()
        if mask.kept()[n] < min(mask[n].numel(), max(2.0, 0.25 * mask.density * mask[n].numel()))
    ]
    for n, g in groups.items():
        if g in HEADS and n.endswith(".weight") and mask[n].shape[0] > 1 and not mask[n].any(dim=1).all():
            bad.append(n)
    return bad


@pytest.mark.parametrize("preset", ["quick", "yu2020-classic"])
def test_no_tensor_emptied_at_the_lowest_density(preset):
    mask, groups = lowest_mask(preset)
    assert mask.density < 0.06
    assert emptied(mask, groups) == []


def test_the_check_catches_global_ranking_of_the_heads():
    """Without the head overrides, global ranking of the yu2020 preset removes the action head (the trap)."""
    mask, groups = lowest_mask("yu2020-classic", rate_overrides="*.bias=0.2")
    assert "action_net.weight" in emptied(mask, groups)
