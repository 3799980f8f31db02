"""The RL adapter: SB3 policies as the model, env steps as the budget, mean evaluation return as the metric.

How the mask meets SB3: `train` builds SB3's algorithm (its env, its optimizer — RMSprop for A2C, Adam for
PPO and DQN — its buffers), loads the job's weights into `model.policy` and holds the mask there with
`lth_core.mask_hold.MaskHold`: pruned entries zeroed in place, their gradients masked by hooks on the
Parameters, so SB3's own optimizer keeps them exactly zero through `learn()`. DQN's target network holds
the Q-network's mask as a mirror, re-zeroed after every rollout (target updates happen inside rollouts).

How heads are ranked: see `domains.rl.policy` — output heads have their own groups (`action_head`,
`value_head`, `q_head`) and the presets give them a rate override, which keeps them out of a global
magnitude ranking (SB3's action head is initialised 100x smaller than hidden layers and would be pruned
away whole) and prunes them layerwise at their own rate.

Metric: mean return of the deterministic policy over `eval_episodes` fixed, separately seeded episodes.
Validation episodes choose the early-stopping step; test episodes (other seeds) give the reported score
there and at the end. `threshold_step` (a result column) is the first evaluation step whose validation
return reached the env's `reward_threshold` (NaN when never, or when the env has none). The evaluation grid,
early stopping, captures and test reads are `lth_core.protocol`'s (see `domains.rl.train`).

Capabilities: `evaluate` (those episodes for any weights), `training_loss` (A2C's / PPO's own loss on
rollouts, `domains.rl.loss`), `structure` (neurons and channels, `domains.rl.structure`), `compact` (those
removed, `domains.rl.compact`; `train` and `evaluate` take a compacted policy's weights and cut the policy they
build to their shapes).
"""

from __future__ import annotations

from typing import ClassVar, Mapping

import torch
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from torch import Tensor, nn

from domains.rl.algos import ALGOS
from domains.rl.compact import compact_policy, fit
from domains.rl.config import RLConfig, parse_algo_kwargs
from domains.rl.envs import probe
from domains.rl.evaluation import METRIC, TEST_SEED, VAL_SEED, EvalSplit
from domains.rl.loss import rollout_loss
from domains.rl.policy import flow_output, make_policy, parse_arch, policy_kwargs, policy_name, prunable_groups
from domains.rl.presets import PRESETS
from domains.rl.structure import policy_families
from domains.rl.train import Setup, build_algorithm, train_job
from lth_core.adapter import SPLITS, Adapter, Metric
from lth_core.compact_jobs import train_compacted
from lth_core.errors import UsageError
from lth_core.job import Job, Outcome, StateDict
from lth_core.presets import Preset
from lth_core.structure import GroupFamily

_PREFLOWN: set[str] = set()  # setups tried in this process: a worker building its adapter tries once, not per job


def preflight(setup: Setup, config: RLConfig) -> None:
    """Build the algorithm on a throw-away env and train it one update: keyword arguments SB3 accepts by name but
    refuses by value (`ent_coef="x"`, `n_steps=0`) are one line here, not a failed row of every job."""
    key = repr(setup)
    if key in _PREFLOWN:
        return
    model = None
    try:
        with torch.random.fork_rng(devices=[]):
            model = build_algorithm(setup, seed=0)
            model.learn(total_timesteps=1)
    except UsageError:
        raise
    except Exception as e:  # whatever SB3 raises for a value it cannot use
        why = " ".join(str(e).split())[:300]
        raise UsageError(
            f"--algo {config.algo} cannot train with --algo-kwargs {config.algo_kwargs!r} "
            f"(--n-envs {setup.n_envs}, --learning-rate {config.learning_rate}): {type(e).__name__}: {why}"
        ) from None
    finally:
        if model is not None and model.get_env() is not None:
            model.get_env().close()
    _PREFLOWN.add(key)


class RLAdapter(Adapter):
    domain = "rl"
    packages = ("stable-baselines3", "gymnasium", "ale-py")
    Config = RLConfig
    presets: ClassVar[dict[str, Preset]] = PRESETS

    def __init__(self, config: RLConfig) -> None:
        super().__init__(config)
        config.validate()  # before anything is built or written: a bad env or algo is one UsageError line
        self.info = probe(config.env, config.frame_stack)
        self.algo = ALGOS.get(config.algo)
        arch_text = self.info.net_arch if config.net_arch.strip() == "env" else config.net_arch
        self.net_arch = parse_arch(arch_text)
        self.policy_kwargs = policy_kwargs(self.net_arch, config.activation)
        self.setup = self._setup()
        preflight(self.setup, config)

    def _setup(self) -> Setup:
        c, family = self.config, self.info.family
        kwargs = self.algo.kwargs(family)
        for k in self.algo.scaled:
            if k in kwargs:
                kwargs[k] = c.scaled(kwargs[k])
        kwargs.update(parse_algo_kwargs(c.algo_kwargs))
        if c.learning_rate > 0:
            kwargs["learning_rate"] = c.learning_rate
        cnn = policy_name(self.info.observation_space) == "CnnPolicy"
        return Setup(
            info=self.info,
            algo=self.algo,
            algo_kwargs=kwargs,
            policy_kwargs=self.policy_kwargs,
            n_envs=c.n_envs or self.algo.envs(family),
            eval_every=c.eval_cadence_for(self.budget()),
            eval_episodes=c.eval_size("eval_episodes"),
            max_episode_steps=c.max_episode_steps,
            device=c.torch_device(cnn),
            progress=c.job_progress,
        )

    def task(self) -> str:
        kind = policy_name(self.info.observation_space).removesuffix("Policy").lower()
        arch = "x".join(map(str, self.net_arch)) if self.net_arch else "default"
        return f"{self.config.env}/{self.config.algo}-{kind}{arch}"

    def metric(self) -> Metric:
        return METRIC

    def budget(self) -> int:
        return self.config.scaled(self.config.timesteps or self.info.timesteps)

    def build(self, seed: int) -> nn.Module:
        return make_policy(self.algo, self.info.observation_space, self.info.action_space, self.policy_kwargs, seed)

    def prunable(self, model: nn.Module, biases: bool) -> dict[str, str]:
        return prunable_groups(model, biases)

    def train(self, job: Job) -> Outcome:
        if job.keep is not None:  # --compact: the smaller policy, trained by SB3's learn() as ever
            model = fit(self.build(job.seed), job.weights)
            return train_compacted(self, model, job, lambda _small, j: train_job(self.setup, j))
        return train_job(self.setup, job)

    def evaluate(self, weights: StateDict, split: str) -> dict[str, float]:
        """Mean return of the deterministic policy with `weights` on the job's validation or test episodes."""
        if split not in SPLITS:
            raise UsageError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
        policy = fit(self.build(0), weights)
        s = self.setup
        episodes = EvalSplit(self.info, s.eval_episodes, VAL_SEED if split == "val" else TEST_SEED, s.max_episode_steps)
        try:
            value = episodes.mean_return(policy.to(s.device))
        finally:
            episodes.close()
        return {METRIC.val_name if split == "val" else METRIC.name: value}

    def training_loss(self, model: nn.Module, batches: int, seed: int) -> Tensor:
        return rollout_loss(self.setup, model, batches, seed)

    def input_shape(self) -> tuple[int, ...]:
        """The observation's shape (SynFlow scores the policy on an all-ones observation: see `flow_output`)."""
        space = self.info.observation_space
        if not isinstance(space, spaces.Box):
            raise self.unsupported(f"give one input shape for {type(space).__name__} observations (Box only)")
        return tuple(space.shape)

    def flow_output(self, model: nn.Module, x: Tensor) -> Tensor:
        """R = the sum of the policy head's and the value head's outputs (DQN: of the Q-values)."""
        return flow_output(model, x)

    def structure(self, model: nn.Module) -> list[GroupFamily]:
        return policy_families(model)

    def compact(self, model: nn.Module, keep: Mapping[str, Tensor]) -> nn.Module:
        assert isinstance(model, BasePolicy)
        return compact_policy(model, keep)
