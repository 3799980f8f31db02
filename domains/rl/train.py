"""One job: SB3's algorithm built on the job's weights, its mask held, trained by SB3's own `learn()`."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm

from domains.rl.algos import AlgoSpec
from domains.rl.callback import TicketCallback, check_finite, state_copy
from domains.rl.envs import EnvInfo
from domains.rl.evaluation import TEST_SEED, VAL_SEED, EvalSplit
from domains.rl.policy import policy_name, target_mirrors
from lth_core.early_stop import EarlyStopTracker
from lth_core.hold import MaskHold
from lth_core.job import Job, Outcome
from lth_core.masks import Mask


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
    return setup.algo.cls(policy_name(setup.info.observation_space), env, seed=seed, device=setup.device,
                          policy_kwargs=dict(setup.policy_kwargs), verbose=0, **setup.algo_kwargs)


def mirror_violations(hold: MaskHold) -> dict[str, int]:
    """Pruned entries of the mirrors (DQN's target network) that are not exactly zero."""
    bad = {}
    for name, tensors in hold.mirrors.items():
        pruned = ~hold.mask[name].to(tensors[0].device)
        n = sum(int((t.detach()[pruned] != 0).sum()) for t in tensors)
        if n:
            bad[name] = n
    return bad


def train_job(setup: Setup, job: Job) -> Outcome:
    # Torch threads are the executor's (`--cpus-per-job`, 1 by default): small policies train fastest on one.
    model = build_algorithm(setup, job.seed)
    val = EvalSplit(setup.info, setup.eval_episodes, VAL_SEED, setup.max_episode_steps)
    test = EvalSplit(setup.info, setup.eval_episodes, TEST_SEED, setup.max_episode_steps)
    hold = None
    try:
        model.policy.load_state_dict(job.weights)
        if job.mask is not None:
            names = list(job.mask)
            mirrors = target_mirrors(model.policy, names) if setup.algo.target_network else None
            hold = MaskHold(model.policy, Mask(job.mask), mirrors=mirrors)
        tracker = EarlyStopTracker(val_higher_is_better=True)
        threshold = setup.info.reward_threshold
        reached: list[int] = []

        def evaluate(step: int) -> None:
            v = val.mean_return(model)
            if threshold is not None and not reached and v >= threshold:
                reached.append(step)
            if tracker.observe(step, v):  # selection on validation only; test read where it selects
                tracker.set_best_test(test.mean_return(model))

        start, budget = job.start_step, job.budget
        captured = {k: state_copy(model.policy) for k in job.capture_steps if k <= start}
        # No evaluation point at the start: an untrained deterministic policy can balance CartPole by
        # chance (returns of ~450 measured), and early stopping must choose among trained policies.
        callback = TicketCallback(start, budget, setup.eval_every, list(job.capture_steps), evaluate, hold,
                                  setup.algo.target_network, setup.progress)
        if budget > start:
            model.num_timesteps = start  # SB3 then trains to `budget` and its schedules resume at `start`
            try:
                model.learn(total_timesteps=budget - start, callback=callback, reset_num_timesteps=False)
            except ValueError:  # torch.distributions rejects NaN logits before anything else sees them
                check_finite(model.policy, model.num_timesteps)  # non-finite weights: Diverged
                raise  # anything else is a real error
        captured.update(callback.captured)
        end = model.num_timesteps
        check_finite(model.policy, end)
        if callback.last_eval != end:
            evaluate(end)
        last = tracker.curve[-1]
        if last.test is None:
            last.test = test.mean_return(model)
        if hold is not None:
            hold.assert_held()
            bad = mirror_violations(hold)
            if bad:
                raise AssertionError(f"pruned weights revived in the target network: {bad}")
        best = tracker.best
        assert best is not None and best.test is not None
        return Outcome(
            score=best.test, final_score=float(last.test), early_stop_step=best.step, val_at_stop=best.val,
            steps=end, curve=tracker.curve, captured=captured,
            final_weights=state_copy(model.policy) if job.keep_final_weights else None,
            extras={"reward_threshold": math.nan if threshold is None else float(threshold),
                    "threshold_step": reached[0] if reached else math.nan},
        )
    finally:
        if hold is not None:
            hold.release()
        val.close()
        test.close()
        model.get_env().close()
