"""Every domain loop honours the protocol's early-bird stop: our vision loop, the batched stacked loop (per job),
SB3's `learn()` through the callback, and fairseq's Trainer loop. A watch of window 2 and epsilon 1 declares at
the second evaluation point, so each training must end there, with its weights of that point."""

from __future__ import annotations

import pytest
import torch

from lth_core.early_bird import EarlyBirdSpec, Target
from lth_core.job import Job


def spec(adapter) -> EarlyBirdSpec:
    names = tuple(adapter.prunable(adapter.build(0), False))
    return EarlyBirdSpec(
        "magnitude_layerwise", {}, names, frozenset(), (Target(1, {n: 0.5 for n in names}, 0),), window=2, epsilon=1.0
    )


def dense(adapter, budget: int, watched: bool, seed: int = 0) -> Job:
    return Job(
        level=0,
        kind="dense",
        trial=seed,
        seed=seed,
        weights=adapter.initial_weights(seed),
        mask=None,
        budget=budget,
        keep_final_weights=True,
        early_bird=spec(adapter) if watched else None,
    )


def assert_stopped_at(out, step: int) -> None:
    eb = out.early_bird
    assert eb is not None and eb.declared == {1: step} and out.steps == step and out.curve[-1].step == step
    assert all(torch.equal(eb.weights[1][k], v) for k, v in out.final_weights.items())


@pytest.fixture
def vision():
    from domains.vision.adapter import VisionAdapter
    from domains.vision.config import VisionConfig

    torch.set_num_threads(1)
    cfg = VisionConfig(
        dataset="mnist1d", model="mlp", iterations=60, eval_every=10, batch_size=32, mnist1d_samples=1500
    )
    return VisionAdapter(cfg)


def test_the_vision_loop_stops_at_the_declared_point(vision):
    out = vision.train(dense(vision, 60, watched=True))
    assert_stopped_at(out, 10)  # points 0, 10: declared at the second


def test_the_batched_loop_stops_each_watched_job_alone(vision):
    jobs = [dense(vision, 60, watched=True, seed=0), dense(vision, 60, watched=False, seed=1)]
    together = vision.train_batch(jobs)
    assert together is not None
    watched, plain = together
    assert_stopped_at(watched, 10)
    assert plain.early_bird is None and plain.steps == 60 and plain.curve[-1].step == 60
    alone = vision.train(dense(vision, 60, watched=True, seed=0))
    assert all(torch.allclose(alone.final_weights[k], watched.final_weights[k], atol=1e-5) for k in alone.final_weights)


def test_sb3_learn_stops_when_the_callback_says_so(one_torch_thread):
    from domains.rl.adapter import RLAdapter
    from domains.rl.config import RLConfig

    cfg = RLConfig(
        env="CartPole-v1",
        algo="a2c",
        net_arch="16",
        timesteps=2400,
        eval_every=400,
        eval_episodes=2,
        max_episode_steps=100,
    )
    rl = RLAdapter(cfg)
    out = rl.train(dense(rl, rl.budget(), watched=True))
    declared = out.early_bird.declared[1]
    assert 800 <= declared < 1200  # the second point (no point at the start), at the first env step past 800
    assert_stopped_at(out, declared)


def test_the_fairseq_loop_stops_at_the_declared_point(tmp_path):
    pytest.importorskip("fairseq")
    from test_nlp_train import tiny_config

    from domains.nlp.adapter import NLPAdapter

    torch.set_num_threads(1)
    nlp = NLPAdapter(tiny_config(tmp_path, max_updates=12, eval_every=3))
    out = nlp.train(dense(nlp, 12, watched=True))
    assert_stopped_at(out, 6)  # points 3, 6
