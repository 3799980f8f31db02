"""What an RL training returns: rewind captures, early stopping on validation episodes only, the test score
read there, resumed schedules after a rewind, the reward-threshold step, divergence."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

pytest.importorskip("stable_baselines3")

from domains.rl.adapter import RLAdapter  # noqa: E402
from domains.rl.config import RLConfig  # noqa: E402
from domains.rl.evaluation import TEST_SEED, VAL_SEED, EvalSplit  # noqa: E402
from domains.rl.train import build_algorithm  # noqa: E402
from lth_core.errors import Diverged  # noqa: E402
from lth_core.job import Job  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # as the executors train jobs: --cpus-per-job 1


@pytest.fixture(scope="module")
def adapter() -> RLAdapter:
    return RLAdapter(
        RLConfig(
            env="CartPole-v1",
            algo="a2c",
            net_arch="16",
            timesteps=1200,
            eval_every=400,
            eval_episodes=3,
            max_episode_steps=120,
        )
    )


def test_dense_job_captures_and_selects_on_validation(adapter):
    start = adapter.initial_weights(0)
    out = adapter.train(
        Job(
            level=0,
            kind="dense",
            trial=0,
            seed=0,
            weights=start,
            mask=None,
            budget=adapter.budget(),
            capture_steps=(0, 300),
            keep_final_weights=True,
        )
    )
    assert set(out.captured) == {0, 300}
    assert all(torch.equal(out.captured[0][k], start[k]) for k in start)
    assert any(not torch.equal(out.captured[300][k], start[k]) for k in start)
    assert [p.step for p in out.curve] == [400, 800, 1200]  # no point at step 0: only trained policies compete
    best = max(out.curve, key=lambda p: p.val)  # first of the best on validation
    assert out.early_stop_step == best.step and out.val_at_stop == best.val and out.score == best.test
    assert out.final_score == out.curve[-1].test and out.steps >= adapter.budget()
    assert set(out.extras) == {"reward_threshold", "threshold_step"} and out.extras["reward_threshold"] == 475.0


def test_rewound_job_resumes_the_schedule(adapter):
    out = adapter.train(
        Job(
            level=1,
            kind="ticket",
            trial=0,
            seed=0,
            weights=adapter.initial_weights(0),
            mask=None,
            budget=adapter.budget(),
            start_step=500,
        )
    )
    steps = [p.step for p in out.curve]  # the first env-step count at or past 800 (8 envs from 500), then the end:
    assert steps == [804, 1220]  # the rollout (8 envs x 5 steps) that crosses the budget 1200 ends at 1220, and the
    # end is evaluated after SB3's last update, which follows that rollout
    assert out.steps == 1220 - 500  # env steps trained (the protocol counts from the rewind point)


def test_threshold_step_is_the_first_validation_point_reaching_it(adapter):
    low = replace(adapter.setup, info=replace(adapter.setup.info, reward_threshold=1.0))
    from domains.rl.train import train_job

    out = train_job(
        low,
        Job(
            level=0,
            kind="dense",
            trial=0,
            seed=0,
            weights=adapter.initial_weights(0),
            mask=None,
            budget=adapter.budget(),
        ),
    )
    assert out.extras["threshold_step"] == 400
    out = adapter.train(
        Job(level=0, kind="dense", trial=0, seed=0, weights=adapter.initial_weights(0), mask=None, budget=400)
    )
    assert math.isnan(out.extras["threshold_step"])  # 475 is not reached in 400 steps


def test_validation_and_test_episodes_are_fixed_and_distinct(adapter):
    model = build_algorithm(adapter.setup, 0)
    val = EvalSplit(adapter.info, 4, VAL_SEED, 120)
    test = EvalSplit(adapter.info, 4, TEST_SEED, 120)
    starts = []
    for split in (val, val, test):
        split.env.seed(split.base_seed)
        starts.append(split.env.reset())
    assert (starts[0] == starts[1]).all() and not (starts[0] == starts[2]).all()
    assert val.returns(model) == val.returns(model)
    for s in (val, test):
        s.close()
    model.get_env().close()


def test_non_finite_weights_are_a_diverged_training(adapter):
    weights = adapter.initial_weights(0)
    weights["action_net.weight"] = torch.full_like(weights["action_net.weight"], float("nan"))
    with pytest.raises(Diverged):
        adapter.train(Job(level=0, kind="dense", trial=0, seed=0, weights=weights, mask=None, budget=400))
