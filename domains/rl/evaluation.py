"""Fixed, separately seeded evaluation episodes: the RL counterpart of a validation split and a test split.

Each split is N copies of the env, copy i reset with seed `base + i` before every evaluation, each playing
one episode with the deterministic policy. Episodes are therefore the same for every job and every
evaluation point (a fixed split), disjoint between validation and test, and apart from the training
envs (seeded with the job's order seed, a small integer). Early stopping selects on validation only.
"""

from __future__ import annotations

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.policies import BasePolicy

from domains.rl.envs import EnvInfo
from lth_core.adapter import Metric
from lth_core.job import StateDict
from lth_core.protocol import Trainee

VAL_SEED = 1_000_000_007  # far from any job seed the runner derives (seed + 1000 * trial)
TEST_SEED = 2_000_000_011
METRIC = Metric(name="return", higher_is_better=True, val_name="val_return", val_higher_is_better=True)


def state_copy(module: torch.nn.Module) -> StateDict:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


class EvalSplit:
    """N seeded episodes of the deterministic policy; `mean_return` is the split's metric."""

    def __init__(self, info: EnvInfo, episodes: int, base_seed: int, max_episode_steps: int = 0) -> None:
        self.base_seed = base_seed
        self.episodes = episodes
        self.env = info.make(episodes, base_seed, max_episode_steps)

    def returns(self, model: BaseAlgorithm | BasePolicy) -> list[float]:
        """Returns of the split's episodes; `model` is an algorithm or a bare policy (both `predict`)."""
        self.env.seed(self.base_seed)  # the same N initial states at every evaluation
        rewards, _ = evaluate_policy(
            model, self.env, n_eval_episodes=self.episodes, deterministic=True, return_episode_rewards=True, warn=False
        )
        return [float(r) for r in rewards]

    def mean_return(self, model: BaseAlgorithm | BasePolicy) -> float:
        return float(np.mean(self.returns(model)))

    def close(self) -> None:
        self.env.close()


class RLTrainee(Trainee):
    """The protocol's view of an SB3 algorithm in training: mean return on the validation / test episodes."""

    def __init__(self, model: BaseAlgorithm, val: EvalSplit, test: EvalSplit) -> None:
        self.model, self.val, self.test_split = model, val, test

    def validate(self) -> tuple[float, dict[str, float]]:
        return self.val.mean_return(self.model), {}

    def test(self) -> float:
        return self.test_split.mean_return(self.model)

    def weights(self) -> StateDict:
        return state_copy(self.model.policy)

    def load_weights(self, weights: StateDict) -> None:
        self.model.policy.load_state_dict(weights)
