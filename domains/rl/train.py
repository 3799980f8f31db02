"""One job: SB3's algorithm built on the job's weights, its mask held, trained by SB3's own `learn()` under the
engine's `JobProtocol` (evaluation points, early stopping, captures, best state, test reads: the protocol's)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm

from domains.rl.algos import AlgoSpec
from domains.rl.callback import TicketCallback, check_finite
from domains.rl.compact import fit
from domains.rl.envs import EnvInfo
from domains.rl.evaluation import METRIC, TEST_SEED, VAL_SEED, EvalSplit, RLTrainee
from domains.rl.policy import mirror_violations, policy_name, target_mirrors
from lth_core.job import Job, Outcome
from lth_core.mask_hold import GradSums, MaskHold
from lth_core.masks import Mask
from lth_core.protocol import EvalGrid, JobProtocol


@dataclass(frozen=True)
class Setup:
    """Everything a job needs that comes from the config, resolved once by the adapter."""

    info: EnvInfo
    algo: AlgoSpec
    algo_kwargs: dict[str, Any]
    policy_kwargs: dict[str, Any]
    n_envs: int
    eval_every: int
    eval_episodes: int
    max_episode_steps: int
    device: str
    progress: bool


def build_algorithm(setup: Setup, seed: int) -> BaseAlgorithm:
    env = setup.info.make(setup.n_envs, seed, setup.max_episode_steps)
    return setup.algo.cls(
        policy_name(setup.info.observation_space),
        env,
        seed=seed,
        device=setup.device,
        policy_kwargs=dict(setup.policy_kwargs),
        verbose=0,
        **setup.algo_kwargs,
    )


def train_job(setup: Setup, job: Job) -> Outcome:
    # Torch threads are the executor's (`--cpus-per-job`, 1 by default): small policies train fastest on one.
    model = build_algorithm(setup, job.order_seed)  # exploration and env resets: the job's order seed
    val = EvalSplit(setup.info, setup.eval_episodes, VAL_SEED, setup.max_episode_steps)
    test = EvalSplit(setup.info, setup.eval_episodes, TEST_SEED, setup.max_episode_steps)
    hold, sums = None, None
    try:
        fit(model.policy, job.weights)  # a compacted ticket's weights: the policy is cut to their shapes first
        sums = GradSums.for_job(model.policy, job)  # SB3's gradients before its norm clipping
        if job.mask is not None:
            mirrors = target_mirrors(model.policy, list(job.mask)) if setup.algo.target_network else None
            hold = MaskHold(model.policy, Mask(job.mask), mirrors=mirrors)
        # No evaluation point at the start: see EvalGrid (only trained policies compete for early stopping).
        protocol = JobProtocol(
            job,
            RLTrainee(model, val, test),
            EvalGrid(setup.eval_every, at_start=False),
            val_higher_is_better=METRIC.val_higher_is_better,
        )
        protocol.reached(job.start_step)  # captures at the start
        if job.budget > job.start_step:
            model.num_timesteps = job.start_step  # SB3 then trains to `budget` and its schedules resume there
            callback = TicketCallback(protocol, hold, setup.algo.target_network, setup.progress)
            try:
                model.learn(total_timesteps=job.budget - job.start_step, callback=callback, reset_num_timesteps=False)
            except ValueError:  # torch.distributions rejects NaN logits before anything else sees them
                check_finite(model.policy, model.num_timesteps)  # non-finite weights: Diverged
                raise  # anything else is a real error
        end = model.num_timesteps
        check_finite(model.policy, end)
        if hold is not None:
            hold.assert_held()
            if bad := mirror_violations(hold):
                raise AssertionError(f"pruned weights revived in the target network: {bad}")
        grad_sums = sums.take() if sums is not None else None
        out = protocol.finish(end)
        out.grad_sums = grad_sums
        threshold = setup.info.reward_threshold  # the first evaluation step whose validation return reached it
        reached = [p.step for p in out.curve if threshold is not None and p.val >= threshold]
        out.extras = {
            "reward_threshold": math.nan if threshold is None else float(threshold),
            "threshold_step": reached[0] if reached else math.nan,
        }
        return out
    finally:
        if hold is not None:
            hold.release()
        if sums is not None:
            sums.take()
        val.close()
        test.close()
        model.get_env().close()
