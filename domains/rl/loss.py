"""The algorithm's own training loss of a policy, on rollouts collected with it (the scoring hook of
gradient-based pruning criteria): the loss SB3's A2C / PPO `train()` minimises, term for term, at the
weights that collected the data (PPO's ratio is then 1, so its clipping does not bind). DQN's loss needs a
replay buffer filled by an exploration schedule and a target network: not offered."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.type_aliases import RolloutBufferSamples
from torch import Tensor

from domains.rl.train import Setup, build_algorithm
from lth_core.adapter import Unsupported

Loss = Callable[[OnPolicyAlgorithm, RolloutBufferSamples], Tensor]


def _terms(algo: OnPolicyAlgorithm, data: RolloutBufferSamples, normalize: bool) -> tuple[Tensor, ...]:
    """(values, log_prob, entropy_loss, advantages) as both algorithms' `train()` compute them."""
    actions = data.actions.long().flatten() if isinstance(algo.action_space, spaces.Discrete) else data.actions
    values, log_prob, entropy = algo.policy.evaluate_actions(data.observations, actions)
    advantages = data.advantages
    if normalize:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    entropy_loss = -torch.mean(-log_prob) if entropy is None else -torch.mean(entropy)
    return values.flatten(), log_prob, entropy_loss, advantages


def a2c_loss(algo: OnPolicyAlgorithm, data: RolloutBufferSamples) -> Tensor:
    values, log_prob, entropy_loss, adv = _terms(algo, data, algo.normalize_advantage)  # type: ignore[attr-defined]
    policy_loss = -(adv * log_prob).mean()
    return policy_loss + algo.ent_coef * entropy_loss + algo.vf_coef * F.mse_loss(data.returns, values)


def ppo_loss(algo: OnPolicyAlgorithm, data: RolloutBufferSamples) -> Tensor:
    """One minibatch of the whole rollout (SB3 normalises advantages per minibatch)."""
    assert isinstance(algo, PPO)
    values, log_prob, entropy_loss, adv = _terms(algo, data, algo.normalize_advantage and len(data.advantages) > 1)
    clip = algo.clip_range(algo._current_progress_remaining)  # type: ignore[operator]
    ratio = torch.exp(log_prob - data.old_log_prob)
    policy_loss = -torch.min(adv * ratio, adv * torch.clamp(ratio, 1 - clip, 1 + clip)).mean()
    if algo.clip_range_vf is not None:
        clip_vf = algo.clip_range_vf(algo._current_progress_remaining)  # type: ignore[operator]
        values = data.old_values + torch.clamp(values - data.old_values, -clip_vf, clip_vf)
    return policy_loss + algo.ent_coef * entropy_loss + algo.vf_coef * F.mse_loss(data.returns, values)


LOSSES: dict[type, Loss] = {A2C: a2c_loss, PPO: ppo_loss}


@contextmanager
def global_rng_kept(device: torch.device) -> Iterator[None]:
    """SB3 seeds Python's, NumPy's and torch's global generators when it builds an algorithm: put them back."""
    py, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        try:
            yield
        finally:
            random.setstate(py)
            np.random.set_state(np_state)


def rollout_loss(setup: Setup, policy: torch.nn.Module, batches: int, seed: int) -> Tensor:
    """Mean over `batches` rollouts (n_steps x n_envs env steps each, training envs seeded with `seed`,
    actions sampled from `policy`) of the algorithm's loss on each; differentiable in `policy`'s Parameters."""
    loss_of = LOSSES.get(setup.algo.cls)
    if loss_of is None:
        raise Unsupported(f"domain 'rl' cannot compute a training loss for {setup.algo.cls.__name__}")
    device = next(policy.parameters()).device
    was_training = policy.training
    with global_rng_kept(device):
        algo = build_algorithm(replace(setup, device=str(device)), seed)
        try:
            assert isinstance(algo, OnPolicyAlgorithm)
            algo.policy = policy  # type: ignore[assignment]  # the rollouts and the loss use these Parameters
            _, callback = algo._setup_learn(batches * algo.n_steps * algo.n_envs)
            losses = []
            for _ in range(batches):
                algo.collect_rollouts(algo.env, callback, algo.rollout_buffer, algo.n_steps)
                policy.set_training_mode(True)  # type: ignore[operator]
                losses.append(loss_of(algo, next(algo.rollout_buffer.get(batch_size=None))))
            return torch.stack(losses).mean()
        finally:
            policy.train(was_training)
            algo.env.close()
