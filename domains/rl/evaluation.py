"""Fixed, separately seeded evaluation episodes: the RL counterpart of a validation split and a test split.

Each split is N copies of the env, copy i reset with seed `base + i` before every evaluation, each playing
one episode with the deterministic policy. Episodes are therefore the same for every job and every
evaluation point (a fixed split), disjoint between validation and test, and apart from the training
envs (seeded with the job's seed, a small integer). Early stopping selects on validation only.
"""
from __future__ import annotations

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.evaluation import evaluate_policy

from domains.rl.envs import EnvInfo

VAL_SEED = 1_000_000_007  # far from any job seed the runner derives (seed + 1000 * trial)
TEST_SEED = 2_000_000_011


class EvalSplit:
    """N seeded episodes of the deterministic policy; `mean_return` is the split's metric."""

    def __init__(self, info: EnvInfo, episodes: int, base_seed: int, max_episode_steps: int = 0) -> None:
        self.base_seed = base_seed
        self.episodes = episodes
        self.env = info.make(episodes, base_seed, max_episode_steps)

    def returns(self, model: BaseAlgorithm) -> list[float]:
        self.env.seed(self.base_seed)  # the same N initial states at every evaluation
        rewards, _ = evaluate_policy(model, self.env, n_eval_episodes=self.episodes, deterministic=True,
                                     return_episode_rewards=True, warn=False)
        return [float(r) for r in rewards]

    def mean_return(self, model: BaseAlgorithm) -> float:
        return float(np.mean(self.returns(model)))

    def close(self) -> None:
        self.env.close()
