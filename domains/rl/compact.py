"""SB3 policies with neurons and channels physically removed.

`lth_core.compaction.shrink` cuts the tensors and fixes torch's own size attributes; SB3's modules carry more,
read later by `predict`, `evaluate_actions`, saving and rebuilding: `features_dim` (on the extractor and the
policy, and DQN's Q-networks), `MlpExtractor.latent_dim_pi` / `latent_dim_vf`, `net_arch` (and DQN's
`net_args`), the extractor's `features_dim` keyword. Those are recomputed from the cut layers. The policy's
optimizer held the old Parameters: it is rebuilt over the new ones (for DQN over the Q-network only, as SB3
builds it). DQN's target network is cut with the Q-network (its copies are members of the Q-network's families).
"""

from __future__ import annotations

from typing import Mapping

from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, NatureCNN
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from torch import Tensor, nn

from domains.rl.structure import policy_families
from lth_core.compaction import keep_for_shapes, shrink
from lth_core.job import StateDict


def _widths(seq: nn.Module) -> list[int]:
    return [m.out_features for m in seq.modules() if isinstance(m, nn.Linear)]


def _fix_extractor(extractor: BaseFeaturesExtractor) -> int:
    if isinstance(extractor, NatureCNN):
        extractor._features_dim = _widths(extractor.linear)[-1]
    return extractor.features_dim


def _fix_q_network(q: QNetwork) -> None:
    q.features_dim = _fix_extractor(q.features_extractor)
    q.net_arch = _widths(q.q_net)[:-1]  # the last Linear is the Q head (one output per action)


def fix_attributes(policy: BasePolicy) -> None:
    """Make SB3's own size bookkeeping agree with the (cut) layers."""
    if isinstance(policy, ActorCriticPolicy):
        extractors = (policy.features_extractor, policy.pi_features_extractor, policy.vf_features_extractor)
        for extractor in extractors:
            _fix_extractor(extractor)
        policy.features_dim = policy.features_extractor.features_dim
        mlp = policy.mlp_extractor
        pi, vf = _widths(mlp.policy_net), _widths(mlp.value_net)
        mlp.latent_dim_pi = pi[-1] if pi else policy.pi_features_extractor.features_dim
        mlp.latent_dim_vf = vf[-1] if vf else policy.vf_features_extractor.features_dim
        policy.net_arch = dict(pi=pi, vf=vf)
        extractor = policy.features_extractor
    elif isinstance(policy, DQNPolicy):
        _fix_q_network(policy.q_net)
        _fix_q_network(policy.q_net_target)
        policy.net_arch = policy.net_args["net_arch"] = list(policy.q_net.net_arch)
        extractor = policy.q_net.features_extractor
    else:
        raise TypeError(f"cannot compact a {type(policy).__name__}")
    if isinstance(extractor, NatureCNN):  # what SB3 passes when it rebuilds the policy (save / load)
        policy.features_extractor_kwargs = {**policy.features_extractor_kwargs, "features_dim": extractor.features_dim}


def _rebuild_optimizer(policy: BasePolicy) -> None:
    old = getattr(policy, "optimizer", None)
    if old is None:
        return
    params = policy.q_net.parameters() if isinstance(policy, DQNPolicy) else policy.parameters()
    policy.optimizer = policy.optimizer_class(params, lr=old.param_groups[0]["lr"], **policy.optimizer_kwargs)  # type: ignore[call-arg]


def compact_policy(policy: BasePolicy, keep: Mapping[str, Tensor]) -> BasePolicy:
    """Cut `policy` in place to the kept neurons / channels of `policy_families(policy)`; returns it."""
    families = policy_families(policy)
    shrink(policy, families, keep)
    fix_attributes(policy)
    _rebuild_optimizer(policy)
    return policy


def keep_for(policy: BasePolicy, state: StateDict) -> dict[str, Tensor] | None:
    """A keep that gives `policy` the shapes of `state` (a compacted policy's weights), or None when they agree."""
    return keep_for_shapes(policy, policy_families(policy), state)


def fit(policy: BasePolicy, state: StateDict) -> BasePolicy:
    """`policy` (freshly built) cut to the shapes of `state` where they are smaller, then loaded with it."""
    keep = keep_for(policy, state)
    if keep is not None:
        compact_policy(policy, keep)
    policy.load_state_dict(state)
    return policy
