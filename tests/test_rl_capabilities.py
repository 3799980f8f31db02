"""The RL adapter's optional capabilities: `evaluate` is the job's own validation / test read, `training_loss`
is SB3's own A2C loss (same gradient as its `train()`) and reaches every prunable weight, `structure`'s groups
are whole neurons and channels (zeroing one cuts it off from the next layer)."""

from __future__ import annotations

import pytest
import torch
from gymnasium import spaces
from torch import nn

pytest.importorskip("stable_baselines3")

from domains.rl.adapter import RLAdapter  # noqa: E402
from domains.rl.algos import ALGOS  # noqa: E402
from domains.rl.config import RLConfig  # noqa: E402
from domains.rl.policy import make_policy  # noqa: E402
from domains.rl.train import build_algorithm  # noqa: E402
from lth_core.adapter import Unsupported  # noqa: E402
from lth_core.errors import UsageError  # noqa: E402
from lth_core.job import Job  # noqa: E402
from lth_core.structure import group_masks  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(algo: str = "a2c", **kw) -> RLAdapter:
    base = {
        "env": "CartPole-v1",
        "algo": algo,
        "net_arch": "16,8",
        "timesteps": 1220,
        "eval_every": 400,
        "eval_episodes": 3,
        "max_episode_steps": 120,
    }
    return RLAdapter(RLConfig(**{**base, **kw}))


def test_evaluate_is_the_jobs_own_validation_and_test_read():
    adapter = tiny()
    out = adapter.train(
        Job(
            level=0,
            kind="dense",
            trial=0,
            seed=0,
            weights=adapter.initial_weights(0),
            mask=None,
            budget=adapter.budget(),
            keep_final_weights=True,
        )
    )
    last = out.curve[-1]
    assert last.step == out.steps == 1240  # read after learn() on the final weights (8 envs x 5 steps a rollout)
    assert adapter.evaluate(out.final_weights, "val") == {"val_return": last.val}
    assert adapter.evaluate(out.final_weights, "test") == {"return": out.final_score}
    assert adapter.evaluate(adapter.initial_weights(0), "val")["val_return"] != last.val  # it reads the weights
    with pytest.raises(UsageError):
        adapter.evaluate(out.final_weights, "train")


def test_training_loss_is_a2cs_own_loss(monkeypatch):
    """Same gradient as SB3's A2C `train()` computes on the same rollout (captured before its clipping)."""
    adapter = tiny(n_envs=4, algo_kwargs="ent_coef=0.05,vf_coef=0.3")  # every term weighs in
    policy = adapter.build(0)
    loss = adapter.training_loss(policy, 1, 7)
    loss.backward()
    ours = {n: p.grad.clone() for n, p in policy.named_parameters()}
    before = torch.random.get_rng_state()
    assert torch.equal(adapter.training_loss(adapter.build(0), 1, 7).detach(), loss.detach())  # seeded
    assert torch.equal(torch.random.get_rng_state(), before)  # the global generators are left as they were

    model = build_algorithm(adapter.setup, 7)
    model.policy.load_state_dict(policy.state_dict())
    seen: dict[str, torch.Tensor] = {}

    def capture(params, *a, **k):
        seen.update({n: p.grad.clone() for n, p in model.policy.named_parameters()})
        return torch.zeros(())

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", capture)
    model.learn(total_timesteps=model.n_steps * model.n_envs)
    model.get_env().close()
    assert set(seen) == set(ours)
    for n, grad in ours.items():
        torch.testing.assert_close(grad, seen[n], rtol=1e-5, atol=1e-7, msg=n)


@pytest.mark.parametrize("algo", ["a2c", "ppo"])
def test_training_loss_reaches_every_prunable_weight(algo):
    adapter = tiny(algo, algo_kwargs="n_steps=32" if algo == "ppo" else "")
    policy = adapter.build(0)
    loss = adapter.training_loss(policy, 2, 0)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    for name in adapter.prunable(policy, biases=True):
        grad = policy.get_parameter(name).grad
        assert grad is not None and torch.count_nonzero(grad) > 0, name


def test_dqn_has_no_training_loss():
    adapter = tiny("dqn")
    with pytest.raises(Unsupported):
        adapter.training_loss(adapter.build(0), 1, 0)


def policies() -> dict[str, tuple[nn.Module, list]]:
    atari = spaces.Box(0, 255, (4, 84, 84), dtype="uint8")
    out = {}
    for algo in ("a2c", "dqn"):
        adapter = tiny(algo)
        policy = adapter.build(0)
        out[f"{algo}-mlp"] = (policy, adapter.structure(policy))
        cnn = make_policy(ALGOS.get(algo), atari, spaces.Discrete(4), {}, 0)
        out[f"{algo}-cnn"] = (cnn, adapter.structure(cnn))
    return out


def unit_input(layer: nn.Module, gen: torch.Generator) -> torch.Tensor:
    if isinstance(layer, nn.Linear):
        return torch.randn(3, layer.in_features, generator=gen)
    return torch.randn(3, layer.in_channels, 12, 12, generator=gen)


def test_families_cover_every_hidden_layer():
    found = {k: sorted(f.name for f in fams) for k, (_, fams) in policies().items()}
    assert found["a2c-mlp"] == [
        "mlp_extractor.policy_net.0",
        "mlp_extractor.policy_net.2",
        "mlp_extractor.value_net.0",
        "mlp_extractor.value_net.2",
    ]
    assert found["dqn-mlp"] == ["q_net.q_net.0", "q_net.q_net.2"]
    assert found["a2c-cnn"] == [f"features_extractor.cnn.{i}" for i in (0, 2, 4)] + ["features_extractor.linear.0"]
    assert found["dqn-cnn"] == [f"q_net.features_extractor.cnn.{i}" for i in (0, 2, 4)] + [
        "q_net.features_extractor.linear.0"
    ]
    linear = next(f for f in policies()["a2c-cnn"][1] if f.name == "features_extractor.linear.0")
    assert [m.tensor for m in linear.members][2:] == ["action_net.weight", "value_net.weight"]  # both heads read it


@pytest.mark.parametrize("kind", ["a2c-mlp", "dqn-mlp", "a2c-cnn", "dqn-cnn"])
def test_zeroing_a_group_cuts_the_unit_off(kind):
    policy, families = policies()[kind]
    params = dict(policy.named_parameters())
    shapes = {n: tuple(p.shape) for n, p in params.items()}
    gen = torch.Generator().manual_seed(0)
    for fam in families:
        fam.check(shapes)
        unit = fam.count // 2
        keep = torch.ones(fam.count, dtype=torch.bool)
        keep[unit] = False
        masks = group_masks([fam], {fam.name: keep}, shapes)
        layer = policy.get_submodule(fam.name)
        readers = [
            (policy.get_submodule(m.tensor.removesuffix(".weight")), m.width) for m in fam.members[1:] if m.dim == 1
        ]
        dense = {n: params[n].detach().clone() for n in masks}

        def depends(reader: nn.Module, width: int, unit: int = unit) -> bool:
            x = unit_input(reader, gen)
            y = x.clone()
            y[:, unit * width : (unit + 1) * width] += 1.0
            with torch.no_grad():
                return not torch.equal(reader(x), reader(y))

        assert all(depends(r, w) for r, w in readers), fam.name  # dense: the check can fail
        with torch.no_grad():
            for n, m in masks.items():
                params[n].mul_(m)
        with torch.no_grad():
            assert torch.count_nonzero(layer(unit_input(layer, gen))[:, unit]) == 0, fam.name  # no output
            others = layer(unit_input(layer, gen))[:, keep]
        assert torch.count_nonzero(others) > 0, fam.name  # only that unit
        assert readers and not any(depends(r, w) for r, w in readers), fam.name  # read by no one
        with torch.no_grad():
            for n, w in dense.items():
                params[n].copy_(w)
