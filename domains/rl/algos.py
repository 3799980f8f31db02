"""Algorithms: SB3's A2C, PPO and DQN, each with the action spaces it can act on and defaults per env family.

Defaults follow the rl-baselines3-zoo tuned hyperparameters (CartPole for the `gym` family, Atari for
`atari`); `--learning-rate`, `--n-envs` and `--algo-kwargs` override them. Step-count hyperparameters
(DQN's `learning_starts`, `target_update_interval`) scale with `--budget-scale` like the budget itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from gymnasium import spaces
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm

from lth_core.registry import Registry

ON_POLICY_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)


@dataclass(frozen=True)
class AlgoSpec:
    cls: type[BaseAlgorithm]
    action_spaces: tuple[type[spaces.Space], ...]
    n_envs: Mapping[str, int]  # env family -> vectorised copies
    defaults: Mapping[str, Mapping[str, Any]]  # env family -> constructor kwargs
    scaled: tuple[str, ...] = ()  # kwargs counted in env steps, scaled with the budget
    target_network: bool = False  # holds copies of the prunable weights that the optimizer never steps

    def kwargs(self, family: str) -> dict[str, Any]:
        return dict(self.defaults.get(family, self.defaults["gym"]))

    def envs(self, family: str) -> int:
        return self.n_envs.get(family, self.n_envs["gym"])

    def acts_on(self, space: spaces.Space) -> bool:
        return isinstance(space, self.action_spaces)


ALGOS: Registry[AlgoSpec] = Registry("algo")

ALGOS.add(
    "a2c",
    AlgoSpec(
        A2C,
        ON_POLICY_SPACES,
        n_envs={"gym": 8, "atari": 16},
        defaults={"gym": {}, "atari": {"ent_coef": 0.01, "vf_coef": 0.25}},
    ),
)
ALGOS.add(
    "ppo",
    AlgoSpec(
        PPO,
        ON_POLICY_SPACES,
        n_envs={"gym": 8, "atari": 8},
        defaults={
            "gym": {
                "n_steps": 32,
                "batch_size": 256,
                "gae_lambda": 0.8,
                "gamma": 0.98,
                "n_epochs": 20,
                "learning_rate": 1e-3,
            },
            "atari": {
                "n_steps": 128,
                "n_epochs": 4,
                "batch_size": 256,
                "learning_rate": 2.5e-4,
                "clip_range": 0.1,
                "vf_coef": 0.5,
                "ent_coef": 0.01,
            },
        },
    ),
)
ALGOS.add(
    "dqn",
    AlgoSpec(
        DQN,
        (spaces.Discrete,),
        n_envs={"gym": 1, "atari": 1},
        defaults={
            "gym": {
                "learning_rate": 2.3e-3,
                "batch_size": 64,
                "buffer_size": 100_000,
                "learning_starts": 1000,
                "gamma": 0.99,
                "target_update_interval": 10,
                "train_freq": 256,
                "gradient_steps": 128,
                "exploration_fraction": 0.16,
                "exploration_final_eps": 0.04,
            },
            "atari": {
                "buffer_size": 100_000,
                "learning_rate": 1e-4,
                "batch_size": 32,
                "learning_starts": 100_000,
                "target_update_interval": 1000,
                "train_freq": 4,
                "gradient_steps": 1,
                "exploration_fraction": 0.1,
                "exploration_final_eps": 0.01,
            },
        },
        scaled=("learning_starts", "target_update_interval"),
        target_network=True,
    ),
)


def algos_for(space: spaces.Space) -> list[str]:
    return [n for n in ALGOS.names() if ALGOS.get(n).acts_on(space)]
