"""The RL domain's flags: environment, algorithm, policy network, budget in env steps, evaluation episodes."""

from __future__ import annotations

import ast
import inspect
import math
from dataclasses import dataclass
from typing import Any

import torch

from domains.rl.algos import ALGOS, algos_for
from domains.rl.envs import ENVS, probe
from domains.rl.policy import ACTIVATIONS, parse_arch
from lth_core.config import DomainConfig, opt
from lth_core.errors import UsageError


def split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets and quotes: 'a=1,b=(4,"step")' -> ['a=1', 'b=(4,"step")']."""
    parts, depth, quote, cur = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def parse_algo_kwargs(text: str) -> dict[str, Any]:
    """'ent_coef=0.01,train_freq=(4,"step")' -> {'ent_coef': 0.01, 'train_freq': (4, 'step')}."""
    out: dict[str, Any] = {}
    for item in split_top_level(text):
        key, sep, val = item.partition("=")
        try:
            if not sep or not key.strip().isidentifier():
                raise ValueError
            value = ast.literal_eval(val.strip())
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError
            out[key.strip()] = value
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise UsageError(
                f"--algo-kwargs item {item!r} must be NAME=PYTHON_LITERAL (numbers finite), e.g. 'ent_coef=0.01'"
            ) from None
    return out


MAX_ENVS = 1024

# Set by the adapter itself: passing them through --algo-kwargs would fight the config's own fields.
RESERVED_KWARGS = {
    "policy",
    "env",
    "seed",
    "device",
    "policy_kwargs",
    "verbose",
    "learning_rate",
    "tensorboard_log",
    "_init_setup_model",
}


@dataclass
class RLConfig(DomainConfig):
    """One environment learned by one SB3 algorithm; budgets and evaluation cadence count env steps."""

    env: str = opt(
        "CartPole-v1", f"gymnasium environment id: {', '.join(ENVS.names())}, or any registered gymnasium id"
    )
    algo: str = opt("a2c", f"stable-baselines3 algorithm: {', '.join(ALGOS.names())}")
    timesteps: int = opt(
        50_000,
        "env steps per training (summed over the vectorised envs), before --budget-scale; "
        "0 = the env's recommended budget",
    )
    budget_scale: float = opt(
        1.0,
        "multiply --timesteps, --eval-every and DQN's step-count hyperparameters by this (e.g. 0.001 for a smoke run); "
        "below 1 evaluation shrinks too (--eval-points, --eval-episodes), but an episode is always played whole "
        "(capping it would change the return measured): an Atari evaluation stays a game long (~900 steps), so at a "
        "small scale only fewer --eval-points keep it a small share (the Atari --smoke evaluates once, at the end)",
    )
    n_envs: int = opt(0, "vectorised training envs (0 = the algorithm's default for the env family)")
    net_arch: str = opt(
        "64,64",
        "hidden widths of the actor and critic MLPs (or DQN's Q-network), e.g. '64,64'; "
        "'' = SB3's default for the policy (none after a CNN); 'env' = the env's recommended widths (Yu et al. 2020)",
    )
    activation: str = opt(
        "",
        f"hidden activation: {', '.join(ACTIVATIONS.names())} ('' = the algorithm's SB3 default: "
        "tanh for a2c/ppo, relu for dqn)",
    )
    learning_rate: float = opt(0.0, "learning rate (0 = the algorithm's default for the env family)")
    algo_kwargs: str = opt("", "more SB3 constructor arguments as NAME=LITERAL pairs, e.g. 'ent_coef=0.01,n_steps=16'")
    eval_every: int = opt(
        5000,
        "env steps between evaluations (validation for early stopping; test where it selects), before --budget-scale",
        cadence=True,
    )
    eval_episodes: int = opt(
        10,
        "episodes per evaluation, on each of the validation and test episode sets (under --budget-scale < 1: "
        "x the scale, at least 1; episodes stay whole: an Atari game is played to its end)",
        eval_floor=1,
    )
    max_episode_steps: int = opt(
        0,
        "cap on an episode's steps of the underlying env (frames for Atari), for training "
        "and evaluation (0 = the env's own limit)",
    )
    frame_stack: int = opt(4, "stacked frames for Atari games")
    device: str = opt(
        "auto", "device: auto (cuda for CNN policies when available, else cpu), cpu, cuda, cuda:N", identity=False
    )
    job_progress: bool = opt(
        False, "a progress bar of env steps inside each training (long Atari jobs)", identity=False
    )

    def torch_device(self, cnn: bool) -> str:
        if self.device == "auto":
            return "cuda" if cnn and torch.cuda.is_available() else "cpu"
        return self.device

    def validate(self) -> None:
        spec = ALGOS.get(self.algo)
        for name in ("eval_every", "eval_episodes", "frame_stack"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} {getattr(self, name)} must be >= 1")
        for name in ("timesteps", "n_envs", "max_episode_steps"):
            if getattr(self, name) < 0:
                raise UsageError(f"--{name.replace('_', '-')} {getattr(self, name)} must be >= 0")
        if self.n_envs > MAX_ENVS:
            raise UsageError(f"--n-envs {self.n_envs} must be <= {MAX_ENVS} (each env is a live simulator in memory)")
        super().validate()  # --budget-scale, --threads
        if self.learning_rate < 0:
            raise UsageError(f"--learning-rate {self.learning_rate} must be >= 0 (0 = the algorithm's default)")
        if self.activation:
            ACTIVATIONS.get(self.activation)
        if self.net_arch.strip() != "env":
            try:
                parse_arch(self.net_arch)
            except ValueError:
                raise UsageError(
                    f"--net-arch {self.net_arch!r} must be comma-separated positive widths like "
                    "'64,64', '' (SB3's default) or 'env'"
                ) from None
        kwargs = parse_algo_kwargs(self.algo_kwargs)
        accepted = set(inspect.signature(spec.cls.__init__).parameters) - {"self"} - RESERVED_KWARGS
        own = sorted(set(kwargs) & RESERVED_KWARGS)
        if own:
            raise UsageError(
                f"--algo-kwargs {', '.join(own)}: set by this domain's own flags (--learning-rate, "
                "--net-arch, --activation, --device, --seed, --env), not here"
            )
        bad = sorted(set(kwargs) - accepted)
        if bad:
            raise UsageError(
                f"--algo-kwargs {', '.join(bad)} not accepted by {self.algo}; valid: {', '.join(sorted(accepted))}"
            )
        if self.device != "auto":
            try:
                torch.device(self.device)
            except RuntimeError:
                raise UsageError(f"--device {self.device!r}; valid choices: auto, cpu, cuda, cuda:N") from None
        info = probe(self.env, self.frame_stack)  # unknown id or missing package -> UsageError
        if not spec.acts_on(info.action_space):
            raise UsageError(
                f"--algo {self.algo} cannot act on {self.env}'s action space {info.action_space}; "
                f"algorithms that can: {', '.join(algos_for(info.action_space))}"
            )
        if self.timesteps == 0 and info.timesteps == 0:
            raise UsageError(
                f"--timesteps 0 asks for the env's recommended budget, but {self.env} has none; give --timesteps N"
            )

    def identity_extras(self) -> dict[str, Any]:
        """`--timesteps 0` is the env's recommended budget: hashed as that number, so both spellings are one run."""
        recommended = ENVS.get(self.env).timesteps if self.env in ENVS else 0
        return {**super().identity_extras(), "timesteps": self.timesteps or recommended}
