"""Atari offline (ale-py ships the ROMs): SB3's Atari wrappers, 4 stacked frames, a CNN policy, a masked
ticket trained a few hundred env steps by DQN with its target network holding the mask."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("stable_baselines3")
pytest.importorskip("ale_py")
pytest.importorskip("cv2")

from domains.rl.adapter import RLAdapter  # noqa: E402
from domains.rl.config import RLConfig  # noqa: E402
from lth_core.job import Job  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # as the executors train jobs: --cpus-per-job 1


def test_atari_dqn_cnn_ticket_smoke():
    adapter = RLAdapter(
        RLConfig(
            env="ALE/Breakout-v5",
            algo="dqn",
            net_arch="",
            timesteps=240,
            eval_every=120,
            eval_episodes=1,
            max_episode_steps=200,
            algo_kwargs="buffer_size=500,learning_starts=60,target_update_interval=40",
        )
    )
    assert adapter.info.observation_space.shape == (4, 84, 84) and adapter.task() == "ALE/Breakout-v5/dqn-cnndefault"
    model = adapter.build(0)
    groups = adapter.prunable(model, biases=True)
    assert {g for g in groups.values()} == {"cnn", "features", "q_head"}
    start = adapter.initial_weights(0)
    g = torch.Generator().manual_seed(99)
    mask = {n: torch.rand(start[n].shape, generator=g) < 0.3 for n in groups}
    out = adapter.train(
        Job(
            level=1,
            kind="ticket",
            trial=0,
            seed=0,
            weights=start,
            mask=mask,
            budget=adapter.budget(),
            keep_final_weights=True,
        )
    )
    assert out.status == "ok" and out.steps == 240 and len(out.curve) == 2
    assert all(isinstance(p.val, float) for p in out.curve)
    for n, m in mask.items():
        twin = "q_net_target." + n[len("q_net.") :]
        assert torch.count_nonzero(out.final_weights[n][~m]) == 0
        assert torch.count_nonzero(out.final_weights[twin][~m]) == 0
    conv = "q_net.features_extractor.cnn.0.weight"
    assert not torch.equal(out.final_weights[conv][mask[conv]], start[conv][mask[conv]])  # it did learn
