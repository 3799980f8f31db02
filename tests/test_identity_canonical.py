"""The run identity is canonical: spellings of one question are one run folder; different questions never mix."""

from __future__ import annotations

import pytest
from toy_adapter import ToyConfig

from lth_core.config import ImpConfig, config_hash
from lth_core.errors import UsageError
from lth_core.imp_runner import run_identity


def h(**imp) -> str:
    return config_hash(run_identity("toy", ImpConfig(**imp), ToyConfig()))


@pytest.mark.parametrize(
    "a,b", [("0", "00"), ("5", "+5"), ("5", " 5 "), ("0.0", "0.00"), ("0.05", "5e-2"), ("0.05", "0.050")]
)
def test_spellings_of_one_rewind_step_are_one_run(a, b):
    assert h(rewind_step=a) == h(rewind_step=b)


@pytest.mark.parametrize("a,b", [("0", "0.0"), ("1", "0.1"), ("5", "0.5")])
def test_a_step_and_a_fraction_are_different_runs(a, b):
    assert h(rewind_step=a) != h(rewind_step=b)


def test_controls_in_another_order_are_one_run():
    assert h(controls="random_mask,random_reinit") == h(controls="random_reinit, random_mask") == h()
    assert h(controls="random_mask") != h()


def test_a_control_named_twice_is_refused():
    with pytest.raises(UsageError, match="names a control twice"):
        ImpConfig(controls="random_mask,random_mask").validate()


def test_defaults_resolved_at_run_time_are_hashed_resolved():
    pytest.importorskip("stable_baselines3")
    from domains.rl.config import RLConfig
    from domains.vision.config import VisionConfig

    def rl(**kw):
        return config_hash(run_identity("rl", ImpConfig(), RLConfig(**kw)))

    def vis(**kw):
        return config_hash(run_identity("vision", ImpConfig(), VisionConfig(**kw)))

    assert rl(timesteps=0) == rl(timesteps=100_000) != rl(timesteps=50_000)  # CartPole-v1 recommends 100k
    assert vis(dataset="mnist", val_size=0) == vis(dataset="mnist", val_size=5000) != vis(dataset="mnist", val_size=1)
