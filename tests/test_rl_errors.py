"""Bad RL input is one UsageError line naming the bad value and the valid choices, before anything is written."""

from __future__ import annotations

import sys

import gymnasium as gym
import pytest

pytest.importorskip("stable_baselines3")

from benchmarks.run import main  # noqa: E402
from domains.rl.adapter import RLAdapter  # noqa: E402
from domains.rl.config import RLConfig  # noqa: E402
from lth_core.errors import UsageError  # noqa: E402


def _raise_dependency(**kwargs):
    raise gym.error.DependencyNotInstalled(
        "Box2D is not installed, you can install it by run `pip install swig` followed by "
        '`pip install "gymnasium[box2d]"`'
    )


if "LthTest/MissingModule-v0" not in gym.registry:
    gym.register("LthTest/MissingModule-v0", entry_point="lth_no_such_package_xyz.envs:Env")
    gym.register("LthTest/MissingDependency-v0", entry_point=_raise_dependency)


def usage_error(**fields) -> str:
    with pytest.raises(UsageError) as e:
        RLAdapter(RLConfig(**fields))
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_unknown_env_names_valid_choices():
    msg = usage_error(env="CartPol-v1")
    assert (
        "'CartPol-v1'" in msg and "CartPole-v1" in msg and "Acrobot-v1" in msg and "any registered gymnasium id" in msg
    )


def test_unknown_version_and_namespace():
    assert "CartPole-v9" in usage_error(env="CartPole-v9")
    assert "ALE/NoSuchGame-v5" in usage_error(env="ALE/NoSuchGame-v5")


def test_env_needing_a_missing_package():
    msg = usage_error(env="LthTest/MissingModule-v0")
    assert "needs a package that is not installed" in msg and "lth_no_such_package_xyz" in msg
    msg = usage_error(env="LthTest/MissingDependency-v0")
    assert "needs a package that is not installed" in msg and "Box2D" in msg


def test_algo_that_cannot_act_on_the_action_space():
    msg = usage_error(env="Pendulum-v1", algo="dqn")
    assert "--algo dqn cannot act on Pendulum-v1" in msg and "a2c, ppo" in msg


def test_unknown_algo_and_bad_values():
    assert "valid choices: a2c, dqn, ppo" in usage_error(algo="sac")
    assert "--net-arch" in usage_error(net_arch="64,abc")
    assert "--algo-kwargs" in usage_error(algo_kwargs="ent_coef")
    assert "no_such_kwarg" in usage_error(algo_kwargs="no_such_kwarg=1")
    assert "own flags" in usage_error(algo_kwargs="learning_rate=1")
    assert "tanh, relu" in usage_error(activation="gelu") or "relu, tanh" in usage_error(activation="gelu")
    assert "--timesteps 0" in usage_error(env="Pendulum-v1", timesteps=0)
    assert "--budget-scale" in usage_error(budget_scale=0.0)


@pytest.mark.parametrize(
    "flags", [["--env", "NoSuchEnv-v0"], ["--env", "Pendulum-v1", "--algo", "dqn"], ["--algo", "sac"]]
)
def test_cli_one_line_exit_2_nothing_written(flags, tmp_path, capsys):
    out = tmp_path / "results"
    with pytest.raises(SystemExit) as e:
        main(["--domain", "rl", "--preset", "quick", "--out", str(out), *flags])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert not out.exists()


def test_atari_without_opencv_names_the_package(monkeypatch):
    pytest.importorskip("ale_py")
    monkeypatch.setitem(sys.modules, "cv2", None)  # `import cv2` now fails as if it were not installed
    assert "pip install 'opencv-python-headless'" in usage_error(env="ALE/Pong-v5")
