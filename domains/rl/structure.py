"""Neurons and channels of SB3 policies as group families: each hidden Linear layer's neurons (row of W_l,
entry of b_l, column of every layer reading it), and for NatureCNN policies each convolution's output
channels and its feature layer's neurons (read by the first layer of every MLP chain on top of it).

DQN's target network is a lagged copy of the Q-network: a Q-network unit's family also holds the target's copy of
every member (removing the unit removes it from both; only the Q-network's tensors are prunable, the target holds
their mask as a mirror), so a compacted Q-network and its target keep one shape."""

from __future__ import annotations

from itertools import pairwise

from torch import nn

from lth_core.structure import Coupled, GroupFamily

TARGET = "q_net_target."
# (Sequential of hidden layers, the head reading its last one ('' = the chain's own last Linear), extractor)
CHAINS = (
    ("mlp_extractor.policy_net", "action_net", "features_extractor"),
    ("mlp_extractor.value_net", "value_net", "features_extractor"),
    ("q_net.q_net", "", "q_net.features_extractor"),
)


def _has(model: nn.Module, name: str) -> bool:
    try:
        model.get_submodule(name)
        return True
    except AttributeError:
        return False


def _layers(model: nn.Module, prefix: str, kind: type[nn.Module]) -> list[str]:
    return [f"{prefix}.{n}" for n, m in model.get_submodule(prefix).named_modules() if isinstance(m, kind)]


def _family(model: nn.Module, name: str, kind: str, readers: list[tuple[str, int]]) -> GroupFamily:
    """`name`'s output units, coupled with `readers` (layer, entries per unit along their dim 1)."""
    layer = model.get_submodule(name)
    count = layer.weight.shape[0]
    members = [Coupled(f"{name}.weight", 0)] + ([Coupled(f"{name}.bias", 0)] if layer.bias is not None else [])
    members += [Coupled(f"{r}.weight", 1, width) for r, width in readers]
    return GroupFamily(name, kind, count, tuple(members))


def policy_families(policy: nn.Module) -> list[GroupFamily]:
    out: list[GroupFamily] = []
    readers: dict[str, list[str]] = {}  # extractor -> first layer of each chain on top of it
    for prefix, head, extractor in CHAINS:
        if not _has(policy, prefix):
            continue
        chain = _layers(policy, prefix, nn.Linear) + ([head] if head else [])
        readers.setdefault(extractor, []).append(chain[0])
        out += [_family(policy, a, "neuron", [(b, 1)]) for a, b in pairwise(chain)]
    for extractor, firsts in readers.items():
        if not _has(policy, f"{extractor}.cnn"):
            continue
        convs, linear = _layers(policy, f"{extractor}.cnn", nn.Conv2d), f"{extractor}.linear.0"
        out += [_family(policy, a, "channel", [(b, 1)]) for a, b in pairwise(convs)]
        last = policy.get_submodule(convs[-1])
        per_channel = policy.get_submodule(linear).in_features // last.out_channels  # flattened C x H x W
        out += [
            _family(policy, convs[-1], "channel", [(linear, per_channel)]),
            _family(policy, linear, "neuron", [(r, 1) for r in firsts]),
        ]
    return [_with_target(policy, f) for f in out]


def _with_target(policy: nn.Module, fam: GroupFamily) -> GroupFamily:
    if not fam.name.startswith("q_net.") or not _has(policy, "q_net_target"):
        return fam
    twins = tuple(Coupled(TARGET + m.tensor[len("q_net.") :], m.dim, m.width) for m in fam.members)
    return GroupFamily(fam.name, fam.kind, fam.count, fam.members + twins)
