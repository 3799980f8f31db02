"""The mask holds inside stable-baselines3's own learn(): pruned weights are exactly zero in every forward pass
SB3 makes (rollouts, updates, evaluation) and at the end, for A2C (RMSprop), PPO and DQN (Adam), and DQN's
target network holds the Q-network's mask through its target updates."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("stable_baselines3")

import domains.rl.train as rl_train  # noqa: E402
from domains.rl.adapter import RLAdapter  # noqa: E402
from domains.rl.config import RLConfig  # noqa: E402
from lth_core.job import Job  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # as the executors train jobs: --cpus-per-job 1

TINY = {
    "a2c": dict(timesteps=1600),
    "ppo": dict(timesteps=1024, algo_kwargs="n_steps=64,batch_size=64,n_epochs=2"),
    "dqn": dict(
        timesteps=1500,
        algo_kwargs="learning_starts=200,target_update_interval=100,train_freq=4,gradient_steps=1,buffer_size=2000",
    ),
}


def random_mask(weights: dict[str, torch.Tensor], names, seed: int = 987_654) -> dict[str, torch.Tensor]:
    # not seed 0: build(0) draws the weights from torch's stream at seed 0, and a mask drawn from the same
    # stream would keep exactly the negative weights
    g = torch.Generator().manual_seed(seed)
    return {n: torch.rand(weights[n].shape, generator=g) < 0.5 for n in names}


def watch_forwards(monkeypatch, mask: dict[str, torch.Tensor]) -> dict[str, int]:
    """Check every forward pass of every policy module SB3 runs: pruned entries (and their target copies) are 0."""
    seen = {"checks": 0, "violations": 0}
    original = rl_train.build_algorithm

    def build(setup, seed):
        model = original(setup, seed)
        params = dict(model.policy.named_parameters())
        watched = {n: (params[n], m) for n, m in mask.items()}
        watched.update(
            {
                "q_net_target." + n[len("q_net.") :]: (params["q_net_target." + n[len("q_net.") :]], m)
                for n, m in mask.items()
                if n.startswith("q_net.")
            }
        )

        def check(module, args):
            if not hold_on[0]:
                return
            for p, m in watched.values():
                seen["checks"] += 1
                seen["violations"] += int((p.detach()[~m] != 0).sum())

        hold_on = [False]
        model.policy.register_forward_pre_hook(check)
        for child in model.policy.children():
            child.register_forward_pre_hook(check)
        original_learn = model.learn

        def learn(*a, **k):
            hold_on[0] = True  # the mask is applied right before learn(); check from there on
            return original_learn(*a, **k)

        model.learn = learn
        return model

    monkeypatch.setattr(rl_train, "build_algorithm", build)
    return seen


@pytest.mark.parametrize("algo", ["a2c", "ppo", "dqn"])
def test_pruned_weights_stay_zero_through_learn(algo, monkeypatch):
    cfg = RLConfig(
        env="CartPole-v1",
        algo=algo,
        net_arch="32,32",
        eval_every=800,
        eval_episodes=2,
        max_episode_steps=100,
        **TINY[algo],
    )
    adapter = RLAdapter(cfg)
    model = adapter.build(0)
    names = list(adapter.prunable(model, biases=True))
    start = adapter.initial_weights(0)
    mask = random_mask(start, names)
    seen = watch_forwards(monkeypatch, mask)
    out = adapter.train(
        Job(
            level=1,
            kind="ticket",
            trial=0,
            seed=3,
            weights=start,
            mask=mask,
            budget=adapter.budget(),
            keep_final_weights=True,
        )
    )
    assert out.status == "ok" and out.steps >= adapter.budget()
    assert seen["checks"] > 100 and seen["violations"] == 0
    final = out.final_weights
    for n, m in mask.items():
        assert torch.count_nonzero(final[n][~m]) == 0, n
        if m.any():
            assert not torch.equal(final[n][m], start[n][m]), f"{n} never trained"  # the test could fail
    if algo == "dqn":
        for n, m in mask.items():
            twin = "q_net_target." + n[len("q_net.") :]
            assert torch.count_nonzero(final[twin][~m]) == 0, twin
            if m.any():  # the target really was overwritten by target updates (to trained, masked weights)
                assert not torch.equal(final[twin][m], start[twin][m]), f"{twin} never updated"


def test_dqn_target_mirror_is_needed(monkeypatch):
    """Without the mirror, a target network loaded with dense weights would keep its pruned entries:
    the check above is sensitive to exactly what the mirror does."""
    cfg = RLConfig(
        env="CartPole-v1",
        algo="dqn",
        net_arch="16",
        eval_every=300,
        eval_episodes=1,
        max_episode_steps=50,
        timesteps=300,
        algo_kwargs="learning_starts=10000,buffer_size=500,target_update_interval=100000",
    )  # no copy
    adapter = RLAdapter(cfg)
    names = list(adapter.prunable(adapter.build(0), biases=False))
    start = adapter.initial_weights(0)
    mask = random_mask(start, names)
    monkeypatch.setattr(rl_train, "target_mirrors", lambda policy, names: {})
    out = adapter.train(
        Job(
            level=1,
            kind="ticket",
            trial=0,
            seed=0,
            weights=start,
            mask=mask,
            budget=adapter.budget(),
            keep_final_weights=True,
        )
    )
    twins = ["q_net_target." + n[len("q_net.") :] for n in names]
    assert any(torch.count_nonzero(out.final_weights[t][~mask[n]]) > 0 for t, n in zip(twins, names))
