"""Environments: a registry of the ones the presets name, any other gymnasium id accepted, built as SB3 VecEnvs.

Two families make vectorised environments: `gym` (SB3's `make_vec_env`, every gymnasium id) and `atari`
(ale-py games through SB3's `make_atari_env` — its Atari wrappers: no-op reset, 4-frame skip with max-pool,
life loss as episode end during training, 84x84 grey, rewards clipped — then 4 stacked frames). ALE `-v5`
ids are made with `frameskip=1` (the wrapper skips) and sticky actions off, i.e. the `NoFrameskip-v4`
protocol the SB3 wrappers are written for and that the RL lottery-ticket papers used. Evaluation
returns are the unclipped game scores of whole games (SB3's Monitor sits below the wrappers).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import gymnasium as gym
from gymnasium import spaces
from stable_baselines3.common.env_util import make_atari_env, make_vec_env
from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first
from stable_baselines3.common.vec_env import VecEnv, VecFrameStack, VecTransposeImage

from lth_core.errors import UsageError
from lth_core.registry import Registry

try:  # registers the ALE/ namespace with gymnasium; ALE ids are refused with a clear line without it
    import ale_py

    gym.register_envs(ale_py)
    HAVE_ALE = True
except ImportError:  # pragma: no cover - depends on the user's install
    HAVE_ALE = False


@dataclass(frozen=True)
class EnvEntry:
    """What the registry knows beyond gymnasium: the family that builds it and the paper's MLP widths."""

    family: str  # a name in FAMILIES
    net_arch: str = ""  # hidden widths recommended for this env ('' = the policy's SB3 default)
    timesteps: int = 0  # env steps recommended for one training (0 = none; --timesteps must say)
    extra: str = ""  # the pip extra that provides it, for the error line when it is missing


ENVS: Registry[EnvEntry] = Registry("env")
# Widths: Yu et al. 2020 (128x3 for CartPole, 256x3 for Acrobot and LunarLander). Budgets: rl-baselines3-zoo's.
ENVS.add("CartPole-v1", EnvEntry("gym", net_arch="128,128,128", timesteps=100_000))
ENVS.add("Acrobot-v1", EnvEntry("gym", net_arch="256,256,256", timesteps=500_000))
ENVS.add("LunarLander-v3", EnvEntry("gym", net_arch="256,256,256", timesteps=1_000_000, extra="gymnasium[box2d]"))
ENVS.add("MountainCar-v0", EnvEntry("gym", net_arch="256,256,256", timesteps=1_000_000))
ENVS.add("ALE/Pong-v5", EnvEntry("atari", timesteps=10_000_000, extra="ale-py"))
ENVS.add("ALE/Breakout-v5", EnvEntry("atari", timesteps=10_000_000, extra="ale-py"))


MakeVec = Callable[["EnvInfo", int, int, int], VecEnv]  # (info, n_envs, seed, max_episode_steps) -> VecEnv
FAMILIES: Registry[MakeVec] = Registry("env family")


@dataclass(frozen=True)
class EnvInfo:
    """An environment as probed once: its id, family, spaces (as the policy sees them) and reward threshold."""

    env_id: str
    family: str
    net_arch: str
    timesteps: int
    observation_space: spaces.Space = field(compare=False)
    action_space: spaces.Space = field(compare=False)
    reward_threshold: float | None
    frame_stack: int = 1

    def make(self, n_envs: int, seed: int, max_episode_steps: int = 0) -> VecEnv:
        return FAMILIES.get(self.family)(self, n_envs, seed, max_episode_steps)


def _limit(max_episode_steps: int) -> dict[str, Any]:
    return {"max_episode_steps": max_episode_steps} if max_episode_steps > 0 else {}


@FAMILIES.register("gym")
def make_gym(info: EnvInfo, n_envs: int, seed: int, max_episode_steps: int = 0) -> VecEnv:
    """Any gymnasium env, `n_envs` copies in one process; copy i is seeded `seed + i`."""
    return make_vec_env(info.env_id, n_envs=n_envs, seed=seed, env_kwargs=_limit(max_episode_steps))


ATARI_KWARGS = {"frameskip": 1, "repeat_action_probability": 0.0}  # the wrapper does the skipping


@FAMILIES.register("atari")
def make_atari(info: EnvInfo, n_envs: int, seed: int, max_episode_steps: int = 0) -> VecEnv:
    """An ALE game under SB3's Atari wrappers with `frame_stack` stacked frames (Mnih et al. 2015)."""
    try:
        import cv2  # noqa: F401  (SB3's WarpFrame needs it, but only says so at the first frame)
    except ImportError:
        raise ImportError("SB3's Atari wrappers need OpenCV", name="opencv-python-headless") from None
    kwargs = {**ATARI_KWARGS, **_limit(max_episode_steps)}
    venv = make_atari_env(info.env_id, n_envs=n_envs, seed=seed, env_kwargs=kwargs)
    return VecFrameStack(venv, n_stack=info.frame_stack) if info.frame_stack > 1 else venv


def _family_of(spec: gym.envs.registration.EnvSpec) -> str:
    entry = spec.entry_point if isinstance(spec.entry_point, str) else getattr(spec.entry_point, "__module__", "")
    return "atari" if str(entry).startswith("ale_py") else "gym"


def _unknown(env_id: str, why: str) -> UsageError:
    close = difflib.get_close_matches(env_id, list(gym.registry), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return UsageError(
        f"unknown env {env_id!r}{hint}; valid choices: {', '.join(ENVS.names())}, "
        f"or any registered gymnasium id [{why}]"
    )


def probe(env_id: str, frame_stack: int = 4) -> EnvInfo:
    """Make the env once to learn its spaces; every failure a user can cause becomes one UsageError line."""
    if env_id.startswith("ALE/") and not HAVE_ALE:
        raise UsageError(f"env {env_id!r} needs ale-py, which is not installed; install it with: pip install ale-py")
    try:
        spec = gym.spec(env_id)
    except gym.error.Error as e:
        raise _unknown(env_id, str(e).split(". ")[0]) from None
    entry = ENVS.get(env_id) if env_id in ENVS else EnvEntry(_family_of(spec))
    info = EnvInfo(
        env_id,
        entry.family,
        entry.net_arch,
        entry.timesteps,
        spaces.Discrete(1),
        spaces.Discrete(1),
        spec.reward_threshold,
        frame_stack if entry.family == "atari" else 1,
    )
    try:
        venv = info.make(1, 0)
        venv.reset()
    except (gym.error.DependencyNotInstalled, ImportError) as e:
        need = getattr(e, "name", None) or entry.extra or "the package it names"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(
            f"env {env_id!r} needs a package that is not installed ({first}); install it with: pip install '{need}'"
        ) from None
    try:
        return replace(info, observation_space=policy_view(venv.observation_space), action_space=venv.action_space)
    finally:
        venv.close()


def policy_view(space: spaces.Space) -> spaces.Space:
    """The observation space as SB3's policy sees it: images channel-first (SB3 wraps VecTransposeImage)."""
    if is_image_space(space) and not is_image_space_channels_first(space):
        return VecTransposeImage.transpose_space(space)
    return space
