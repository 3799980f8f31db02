"""RL compaction (`RLAdapter.compact`): the SB3 policy with neurons and channels removed computes what the
masked policy computes (action logits / means, values, Q-values, evaluate_actions) within 1e-5, SB3's own size
bookkeeping follows (predict, rebuilding from the constructor parameters), the weights save and reload with
`weights_only=True`, and SB3's `learn()` and the adapter's `train` / `evaluate` run on the smaller policy."""

from __future__ import annotations

import pytest
import torch
from gymnasium import spaces
from torch import nn

pytest.importorskip("stable_baselines3")

from domains.rl.adapter import RLAdapter  # noqa: E402
from domains.rl.algos import ALGOS  # noqa: E402
from domains.rl.compact import fit  # noqa: E402
from domains.rl.config import RLConfig  # noqa: E402
from domains.rl.policy import make_policy  # noqa: E402
from domains.rl.train import build_algorithm  # noqa: E402
from lth_core.job import Job  # noqa: E402
from lth_core.structure import group_masks  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TOL = 1e-5
ATARI = spaces.Box(0, 255, (4, 84, 84), dtype="uint8")


def tiny(algo: str = "a2c", **kw) -> RLAdapter:
    base = dict(env="CartPole-v1", algo=algo, net_arch="16,8", timesteps=640, eval_every=320, eval_episodes=2)
    return RLAdapter(RLConfig(**{**base, "max_episode_steps": 60, **kw}))


def random_keep(families, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    keep = {f.name: torch.rand(f.count, generator=gen) < 0.5 for f in families}
    for k in keep.values():
        k[0] = True  # no family emptied
        k[-1] = False  # and every family loses a group
    return keep


def masked(policy: nn.Module, families, keep) -> None:
    """Zero the removed groups in place (DQN's target network too: it holds the Q-network's mask)."""
    shapes = {k: tuple(v.shape) for k, v in policy.state_dict().items()}
    masks = group_masks(families, keep, shapes)
    state = policy.state_dict()
    with torch.no_grad():
        for name, m in masks.items():
            state[name].mul_(m)
            twin = name.replace("q_net.", "q_net_target.", 1)
            if name.startswith("q_net.") and twin in state:
                state[twin].mul_(m)


def outputs(policy: nn.Module, obs: torch.Tensor) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        if hasattr(policy, "q_net"):
            return {"q": policy.q_net(obs), "q_target": policy.q_net_target(obs)}
        dist = policy.get_distribution(obs).distribution
        out = {"value": policy.predict_values(obs)}
        if isinstance(dist, torch.distributions.Categorical):
            out["logits"] = dist.logits
            actions = torch.arange(len(obs)) % dist.logits.shape[1]
        else:
            out["mean"], out["std"] = dist.mean, dist.stddev
            actions = dist.mean + 0.3
        out["eval_value"], out["log_prob"], out["entropy"] = policy.evaluate_actions(obs, actions)
        return out


def cases() -> dict[str, tuple[nn.Module, torch.Tensor]]:
    gen = torch.Generator().manual_seed(3)
    box = spaces.Box(-1.0, 1.0, (5,))
    out = {}
    for algo in ("a2c", "ppo", "dqn"):
        out[f"{algo}-mlp"] = (tiny(algo).build(0), torch.randn(6, 4, generator=gen))
    out["ppo-gaussian"] = (
        make_policy(ALGOS.get("ppo"), box, spaces.Box(-1.0, 1.0, (2,)), {"net_arch": [12, 6]}, 0),
        torch.randn(6, 5, generator=gen),
    )
    atari = torch.randint(0, 256, (2, *ATARI.shape), generator=gen).float()
    for algo in ("a2c", "dqn"):
        out[f"{algo}-cnn"] = (make_policy(ALGOS.get(algo), ATARI, spaces.Discrete(4), {}, 0), atari)
    return out


@pytest.mark.parametrize("case", ["a2c-mlp", "ppo-mlp", "dqn-mlp", "ppo-gaussian", "a2c-cnn", "dqn-cnn"])
def test_compacted_policy_computes_what_the_masked_one_does(case):
    policy, obs = cases()[case]
    adapter = tiny()
    families = adapter.structure(policy)
    keep = random_keep(families, 0)
    before = {k: tuple(v.shape) for k, v in policy.state_dict().items()}
    masked(policy, families, keep)
    want = outputs(policy, obs)
    small = adapter.compact(policy, keep)
    after = {k: tuple(v.shape) for k, v in small.state_dict().items()}
    assert set(after) == set(before)
    for fam in families:  # every family is physically smaller, by exactly its removed groups
        m = fam.members[0]
        assert after[m.tensor][m.dim] == int(keep[fam.name].sum()) * m.width, fam.name
    assert sum(small.state_dict()[k].numel() for k in after) < sum(torch.Size(s).numel() for s in before.values())
    got = outputs(small, obs)
    for k, v in want.items():
        torch.testing.assert_close(got[k], v, atol=TOL, rtol=0, msg=k)
    actions, _ = small.predict(obs.numpy().astype(policy.observation_space.dtype), deterministic=True)
    assert actions.shape[0] == len(obs)
    # SB3's bookkeeping follows: its constructor parameters rebuild the smaller MLPs (NatureCNN hard-codes its
    # 32/64/64 channels: cut convolutions are rebuilt by `fit`, as `train` and `evaluate` do)
    rebuilt = type(small)(**small._get_constructor_parameters())
    if "cnn" in case:
        fit(rebuilt, small.state_dict())
    else:
        rebuilt.load_state_dict(small.state_dict())
    for k, v in outputs(rebuilt, obs).items():
        torch.testing.assert_close(v, got[k], atol=0, rtol=0, msg=k)
    # the optimizer steps the new Parameters (for DQN: the Q-network's, as SB3 builds it)
    stepped = small.q_net if hasattr(small, "q_net") else small
    assert {id(p) for g in small.optimizer.param_groups for p in g["params"]} == {id(p) for p in stepped.parameters()}


@pytest.mark.parametrize("algo", ["a2c", "dqn"])
def test_compacted_weights_save_reload_and_rebuild(algo, tmp_path):
    adapter = tiny(algo)
    policy = adapter.build(0)
    keep = random_keep(adapter.structure(policy), 1)
    small = adapter.compact(policy, keep)
    torch.save(small.state_dict(), tmp_path / "w.pt")
    state = torch.load(tmp_path / "w.pt", weights_only=True)
    rebuilt = adapter.compact(adapter.build(5), keep)  # rebuild = build + compact + load_state_dict
    rebuilt.load_state_dict(state)
    fitted = fit(adapter.build(7), state)  # or from the shapes alone, as train / evaluate do
    obs = torch.randn(4, 4)
    for other in (rebuilt, fitted):
        for k, v in outputs(other, obs).items():
            assert torch.equal(v, outputs(small, obs)[k]), k
    with pytest.raises(RuntimeError, match="size mismatch"):
        adapter.build(0).load_state_dict(state)  # the check can fail: a dense policy does not take them


@pytest.mark.parametrize("algo", ["a2c", "ppo", "dqn"])
def test_sb3_learns_on_the_compacted_policy(algo):
    extra = "learning_starts=64,train_freq=32,gradient_steps=4,target_update_interval=16" if algo == "dqn" else ""
    adapter = tiny(algo, algo_kwargs=extra or ("n_steps=16,batch_size=32,n_epochs=2" if algo == "ppo" else ""))
    model = build_algorithm(adapter.setup, 0)
    try:
        keep = random_keep(adapter.structure(model.policy), 2)
        adapter.compact(model.policy, keep)
        shapes = {k: v.shape for k, v in model.policy.state_dict().items()}
        start = {k: v.clone() for k, v in model.policy.state_dict().items()}
        model.learn(total_timesteps=400)
        end = model.policy.state_dict()
        assert {k: v.shape for k, v in end.items()} == shapes
        assert all(torch.isfinite(v).all() for v in end.values())
        moved = [k for k in start if not torch.equal(start[k], end[k])]
        trained = [k for k in start if not k.startswith("q_net_target.")]
        assert set(trained) <= set(moved)  # every Parameter was stepped
        if algo == "dqn":
            assert any(k.startswith("q_net_target.") for k in moved)  # target updates copy the smaller Q-net
    finally:
        model.get_env().close()


@pytest.mark.parametrize("algo", ["a2c", "dqn"])
def test_train_and_evaluate_take_compacted_weights_and_hold_a_mask(algo):
    """The adapter's own `train` (DQN: the target network mirrors the mask, on the smaller shapes too)."""
    extra = "learning_starts=64,train_freq=32,gradient_steps=4,target_update_interval=16" if algo == "dqn" else ""
    adapter = tiny(algo, algo_kwargs=extra)
    policy = adapter.build(0)
    small = adapter.compact(policy, random_keep(adapter.structure(policy), 3))
    weights = {k: v.detach().clone() for k, v in small.state_dict().items()}
    name = "q_net.q_net.0.weight" if algo == "dqn" else "mlp_extractor.policy_net.0.weight"
    mask = {n: torch.ones_like(small.get_parameter(n), dtype=torch.bool) for n in adapter.prunable(small, False)}
    mask[name][0, :2] = False  # an unstructured mask inside the compacted policy
    job = Job(0, "ticket", 0, 0, weights, mask, adapter.budget(), keep_final_weights=True)
    out = adapter.train(job)
    assert out.status == "ok" and out.steps >= adapter.budget()
    final = out.final_weights
    assert {k: v.shape for k, v in final.items()} == {k: v.shape for k, v in weights.items()}
    assert torch.count_nonzero(final[name][0, :2]) == 0 and not torch.equal(final[name], weights[name])
    assert adapter.evaluate(final, "test") == {"return": out.final_score}


def test_dqn_families_hold_the_target_networks_copy():
    """A Q-network unit is also a unit of its lagged copy: one family, so the two are cut to one shape."""
    policy = tiny("dqn").build(0)
    for fam in tiny().structure(policy):
        own = [m for m in fam.members if m.tensor.startswith("q_net.")]
        twins = [m for m in fam.members if m.tensor.startswith("q_net_target.")]
        assert [(m.tensor.replace("q_net_target.", "q_net.", 1), m.dim, m.width) for m in twins] == [
            (m.tensor, m.dim, m.width) for m in own
        ]
        assert own and fam.members[0].tensor.startswith("q_net.")  # the first member (its rate) is the prunable one
