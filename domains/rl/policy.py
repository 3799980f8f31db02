"""SB3 policies built from a seed, and which of their tensors a mask covers (with groups for rate overrides).

Groups: `cnn` (NatureCNN convolutions), `features` (its linear layer), `pi` / `vf` (hidden layers of the
actor / critic MLPs), `q` (hidden layers of DQN's Q-network), and the output heads `action_head`,
`value_head`, `q_head`. Heads get their own groups because SB3 initialises `action_net` orthogonally
with gain 0.01: its weights stay ~10x smaller than hidden weights after training, so one global
magnitude threshold over every layer removes the whole action head and the policy collapses to one
action (LIBRARY-NOTES, measured). The presets therefore give the heads a rate override, which takes
them out of the global ranking (the runner ranks globally only the tensors no override names) and
prunes them layerwise at their own, lower rate. DQN's target network mirrors the Q-network: it is not
prunable itself, it holds the Q-network's mask (see `target_mirrors`).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import torch
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.utils import ConstantSchedule
from torch import Tensor, nn

from domains.rl.algos import AlgoSpec
from lth_core.mask_hold import MaskHold
from lth_core.registry import Registry

ACTIVATIONS: Registry[type[nn.Module]] = Registry("activation")
ACTIVATIONS.add("tanh", nn.Tanh)
ACTIVATIONS.add("relu", nn.ReLU)

# (pattern on the module name, group); first match wins. Modules that match none are not prunable.
GROUP_RULES: tuple[tuple[str, str], ...] = (
    (r"^q_net_target\.", ""),  # DQN's target network: a mirror, never a prunable tensor of its own
    (r"features_extractor\.cnn\.", "cnn"),
    (r"features_extractor\.linear\.", "features"),
    (r"^mlp_extractor\.policy_net\.", "pi"),
    (r"^mlp_extractor\.value_net\.", "vf"),
    (r"^action_net$", "action_head"),
    (r"^value_net$", "value_head"),
    (r"^q_net\.q_net\.", "q"),
)
HEADS = ("action_head", "value_head", "q_head")


def policy_name(observation_space: spaces.Space) -> str:
    if isinstance(observation_space, spaces.Dict):
        return "MultiInputPolicy"
    return "CnnPolicy" if is_image_space(observation_space) else "MlpPolicy"


def parse_arch(text: str) -> list[int] | None:
    """'64,64' -> [64, 64]; '' -> None (the policy's SB3 default). Raises ValueError on anything else."""
    text = text.strip()
    if not text:
        return None
    widths = [int(w) for w in text.replace("x", ",").split(",") if w.strip()]
    if not widths or min(widths) < 1:
        raise ValueError(text)
    return widths


def policy_kwargs(net_arch: list[int] | None, activation: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if net_arch is not None:
        out["net_arch"] = list(net_arch)
    if activation:
        out["activation_fn"] = ACTIVATIONS.get(activation)
    return out


def make_policy(
    algo: AlgoSpec, observation_space: spaces.Space, action_space: spaces.Space, kwargs: Mapping[str, Any], seed: int
) -> BasePolicy:
    """The policy SB3's algorithm would build, from its own initializer, deterministic in `seed`.

    Built on the CPU from the spaces alone (no env, no replay buffer), without touching the global RNG.
    """
    cls = algo.cls.policy_aliases[policy_name(observation_space)]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return cls(observation_space, action_space, ConstantSchedule(1e-3), **kwargs)


def prunable_groups(policy: nn.Module, biases: bool) -> dict[str, str]:
    """Weight (and, if asked, bias) names of the Linear/Conv layers -> group; each Parameter once."""
    layers: list[tuple[str, str]] = []
    for name, module in policy.named_modules():  # named_modules yields a shared extractor once
        if not isinstance(module, (nn.Linear, nn.Conv2d)):
            continue
        group = next((g for pat, g in GROUP_RULES if re.search(pat, name)), None)
        if group is None:
            raise ValueError(f"no prunable group for policy layer {name!r}; add a rule to GROUP_RULES")
        if group:
            layers.append((name, group))
    q_layers = [n for n, g in layers if g == "q"]
    out: dict[str, str] = {}
    for name, group in layers:
        if group == "q" and name == q_layers[-1]:
            group = "q_head"
        out[f"{name}.weight"] = group
        if biases and policy.get_submodule(name).bias is not None:
            out[f"{name}.bias"] = group
    return out


def target_mirrors(policy: nn.Module, names: list[str]) -> dict[str, list[Tensor]]:
    """DQN: each masked Q-network tensor -> its target-network copy, which must hold the same mask."""
    params = dict(policy.named_parameters())
    out = {}
    for n in names:
        twin = "q_net_target." + n[len("q_net.") :] if n.startswith("q_net.") else None
        if twin in params:
            out[n] = [params[twin]]
    return out


def mirror_violations(hold: MaskHold) -> dict[str, int]:
    """Pruned entries of the mirrors (DQN's target network) that are not exactly zero."""
    bad = {}
    for name, tensors in hold.mirrors.items():
        pruned = ~hold.mask[name].to(tensors[0].device)
        n = sum(int((t.detach()[pruned] != 0).sum()) for t in tensors)
        if n:
            bad[name] = n
    return bad


def flow_output(policy: nn.Module, obs: Tensor) -> Tensor:
    """The heads SynFlow sums into R, on observations `obs` taken as already preprocessed (SB3's own
    preprocessing would cast them to float32): actor-critic policies (A2C, PPO) the action head's outputs (logits,
    or means for continuous actions) beside the value head's; DQN the online network's Q-values."""
    from stable_baselines3.common.policies import ActorCriticPolicy
    from stable_baselines3.dqn.policies import DQNPolicy

    if isinstance(policy, DQNPolicy):
        return policy.q_net.q_net(policy.q_net.features_extractor(obs))
    if not isinstance(policy, ActorCriticPolicy):
        raise TypeError(f"no SynFlow output for the policy {type(policy).__name__}")
    if policy.share_features_extractor:
        latent_pi, latent_vf = policy.mlp_extractor(policy.features_extractor(obs))
    else:
        latent_pi = policy.mlp_extractor.forward_actor(policy.pi_features_extractor(obs))
        latent_vf = policy.mlp_extractor.forward_critic(policy.vf_features_extractor(obs))
    return torch.cat([policy.action_net(latent_pi).flatten(1), policy.value_net(latent_vf).flatten(1)], dim=1)
