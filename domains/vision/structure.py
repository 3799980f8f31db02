"""The prunable groups of the vision models (`lth_core.structure`): neurons, filters, residual channels.

Written from the models' known layout (domains/vision/models.py) rather than traced: each model here is a
chain (every conv / linear layer feeds the next, in module order, through ReLU, pooling and flatten) or a
ResNet (a stem, blocks of conv1-bn1-conv2-bn2 with an identity or 1x1-conv shortcut, an FC head).

- chain layer l: row i of W_l, entry i of b_l, entry i of its BatchNorm (weight, bias, running mean and
  variance), and input i of layer l+1 (through a flatten: a block of H*W columns, channel-major);
- ResNet: every block's inner channel (conv1, bn1 -> conv2's input), and one family per residual stream:
  the channels a stage's residual adds tie together (stem or projection shortcut, every conv2 and its bn2,
  and every reader: the blocks' conv1, the next projection shortcut, the FC head).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

from torch import nn

from domains.vision.models import CNN1D, MLP, VGG, CifarResNet, ConvNet
from lth_core.structure import Coupled, GroupFamily

BN_TENSORS = ("weight", "bias", "running_mean", "running_var")
LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)


def _producers(keys: set[str], layer: str, bn: str | None) -> list[Coupled]:
    """The tensors that make output unit i of `layer` (and of the BatchNorm after it)."""
    out = [Coupled(f"{layer}.weight", 0)] + ([Coupled(f"{layer}.bias", 0)] if f"{layer}.bias" in keys else [])
    return out + ([Coupled(f"{bn}.{t}", 0) for t in BN_TENSORS] if bn else [])


def chain(model: nn.Module) -> list[GroupFamily]:
    """One family per layer but the last: its units, their BatchNorm entries and the next layer's inputs."""
    keys = set(model.state_dict())
    layers: list[tuple[str, nn.Module]] = []
    bns: dict[str, str] = {}  # layer -> the BatchNorm right after it
    for name, m in model.named_modules():
        if isinstance(m, LAYERS):
            layers.append((name, m))
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and layers:
            bns[layers[-1][0]] = name
    families = []
    for (name, layer), (nxt, reader) in pairwise(layers):
        count = layer.weight.shape[0]
        width = reader.in_features // count if isinstance(reader, nn.Linear) else 1  # flatten: H*W per channel
        kind = "neuron" if isinstance(layer, nn.Linear) else "channel"
        members = _producers(keys, name, bns.get(name)) + [Coupled(f"{nxt}.weight", 1, width)]
        families.append(GroupFamily(name, kind, count, tuple(members)))
    return families


def residual(model: nn.Module, stem: str, stem_bn: str, blocks: list[str], shortcut: str, fc: str) -> list[GroupFamily]:
    """Families of a ResNet whose blocks are `{block}.conv1/bn1/conv2/bn2` with a projection shortcut
    `{block}.{shortcut}.0/1` where the stream changes width (a new stream starts there)."""
    sd = model.state_dict()
    keys = set(sd)
    families: list[GroupFamily] = []
    producers, readers, width, stage = _producers(keys, stem, stem_bn), [], sd[f"{stem}.weight"].shape[0], 0

    def close() -> None:
        families.append(GroupFamily(f"stage{stage}", "channel", width, tuple(producers + readers)))

    for b in blocks:
        proj = f"{b}.{shortcut}.0"
        readers.append(Coupled(f"{b}.conv1.weight", 1))
        if f"{proj}.weight" in keys:
            readers.append(Coupled(f"{proj}.weight", 1))
            close()
            producers, readers = _producers(keys, proj, f"{b}.{shortcut}.1"), []
            width, stage = sd[f"{proj}.weight"].shape[0], stage + 1
        inner = _producers(keys, f"{b}.conv1", f"{b}.bn1") + [Coupled(f"{b}.conv2.weight", 1)]
        families.append(GroupFamily(f"{b}.conv1", "channel", sd[f"{b}.conv1.weight"].shape[0], tuple(inner)))
        producers += _producers(keys, f"{b}.conv2", f"{b}.bn2")
    readers.append(Coupled(f"{fc}.weight", 1))
    close()
    return families


def _cifar_resnet(model: nn.Module) -> list[GroupFamily]:
    return residual(model, "conv", "bn", [f"blocks.{i}" for i in range(len(model.blocks))], "shortcut", "fc")


def _torchvision_resnet(model: nn.Module) -> list[GroupFamily]:
    blocks = [f"layer{s}.{i}" for s in range(1, 5) for i in range(len(getattr(model, f"layer{s}")))]
    return residual(model, "conv1", "bn1", blocks, "downsample", "fc")


STRUCTURES: dict[type, Callable[[nn.Module], list[GroupFamily]]] = {
    MLP: chain,
    ConvNet: chain,
    VGG: chain,
    CNN1D: chain,
    CifarResNet: _cifar_resnet,
}


def families(model: nn.Module) -> list[GroupFamily] | None:
    """The model's group families; None for a model class whose layout is not described here."""
    make = STRUCTURES.get(type(model))
    if make is None:
        # ResNet-18 (torchvision's, CIFAR stem)
        from torchvision.models.resnet import BasicBlock, ResNet

        if type(model) is ResNet and all(
            isinstance(b, BasicBlock) for b in model.modules() if type(b).__name__.endswith("Block")
        ):
            make = _torchvision_resnet
    return make(model) if make is not None else None
