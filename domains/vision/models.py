"""The classifiers of the lottery-ticket literature, each with the initializer its paper used.

Every model takes the dataset's example shape and class count, so one architecture runs on any
dataset whose inputs it can take (an MLP on anything, 2-D convnets on images, the 1-D CNN on
signals). Pruning groups: 'conv' (convolution weights), 'fc' (hidden linear layers) and 'output'
(the last linear layer), the names Frankle & Carbin give their per-layer pruning rates.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lth_core.errors import UsageError
from lth_core.registry import Registry

Shape = tuple[int, ...]


@dataclass(frozen=True)
class ModelSpec:
    make: Callable[[Shape, int], nn.Module]
    inputs: str  # "any" (flattened), "signal" (C, L) or "image" (C, H, W)
    help: str


MODELS: Registry[ModelSpec] = Registry("model")
INPUT_RANKS = {"signal": 2, "image": 3}


def register(name: str, inputs: str, help: str):
    def deco(make: Callable[[Shape, int], nn.Module]):
        MODELS.add(name, ModelSpec(make, inputs, help))
        return make

    return deco


def create(name: str, shape: Shape, classes: int) -> nn.Module:
    """Build `name` for inputs of `shape`; a UsageError when the architecture cannot take them."""
    spec = MODELS.get(name)
    rank = INPUT_RANKS.get(spec.inputs)
    if rank is not None and len(shape) != rank:
        kind = {2: "1-D signals (C, L)", 3: "images (C, H, W)"}[rank]
        raise UsageError(
            f"model {name!r} takes {kind}, the dataset gives examples of shape {tuple(shape)}; "
            f"models that take them: {', '.join(compatible_models(shape))}"
        )
    try:
        return spec.make(tuple(shape), classes)
    except (RuntimeError, ValueError) as e:  # a feature map shrank to nothing
        raise UsageError(
            f"model {name!r} cannot take inputs of shape {tuple(shape)} ({str(e).splitlines()[0]})"
        ) from None


def compatible_models(shape: Shape) -> list[str]:
    return [
        n for n in MODELS.names() if MODELS.get(n).inputs == "any" or INPUT_RANKS[MODELS.get(n).inputs] == len(shape)
    ]


# --- initializers -------------------------------------------------------------------------------


def _weighted(model: nn.Module):
    return [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]


def glorot_normal(model: nn.Module) -> None:
    """Gaussian Glorot weights, zero biases: Frankle & Carbin's LeNet and Conv-2/4/6."""
    for m in _weighted(model):
        nn.init.xavier_normal_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def kaiming_normal(model: nn.Module) -> None:
    """He-normal weights, zero biases, BatchNorm at (1, 0): the ResNet/VGG setting of OpenLTH."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.kaiming_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _flat_size(features: nn.Module, shape: Shape) -> int:
    """Output size of `features` for one example, traced on the meta device (shapes only, no arithmetic)."""
    meta = copy.deepcopy(features).to("meta").eval()
    with torch.no_grad():
        out = meta(torch.empty(1, *shape, device="meta"))
    if out.numel() == 0:
        raise RuntimeError("feature map is empty")
    return out.numel()


# --- fully connected ----------------------------------------------------------------------------


class MLP(nn.Module):
    def __init__(self, in_features: int, hidden: Sequence[int], classes: int) -> None:
        super().__init__()
        widths = [in_features, *hidden]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.fc = nn.Linear(widths[-1], classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for layer in self.hidden:
            x = F.relu(layer(x))
        return self.fc(x)


def _numel(shape: Shape) -> int:
    return int(torch.tensor(shape).prod())


@register("lenet_300_100", "any", "LeNet-300-100 (F&C 2019): FC 300, 100, Gaussian Glorot init")
def lenet_300_100(shape: Shape, classes: int) -> nn.Module:
    model = MLP(_numel(shape), (300, 100), classes)
    glorot_normal(model)
    return model


@register("mlp", "any", "MLP 100-100 (Greydanus 2020's MNIST-1D MLP), PyTorch's default init")
def mlp(shape: Shape, classes: int) -> nn.Module:
    return MLP(_numel(shape), (100, 100), classes)


# --- convolutional, no normalisation --------------------------------------------------------------


def plan_layers(
    channels: int, plan: Sequence[int | str], block: Callable[[int, int, bool], list[nn.Module]]
) -> tuple[list[nn.Module], int]:
    """A conv plan as the papers write it (widths, 'M' = 2x2 max-pool) -> layers and the last width;
    `block(in, out, first)` makes one convolution's modules."""
    layers: list[nn.Module] = []
    for spec in plan:
        if spec == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += block(channels, int(spec), not layers)
            channels = int(spec)
    return layers, channels


class ConvNet(nn.Module):
    """3x3 'same' convolutions with ReLU and 2x2 max-pools ('M'), then ReLU FC layers and the output."""

    def __init__(
        self,
        shape: Shape,
        plan: Sequence[int | str],
        fc: Sequence[int],
        classes: int,
        kernel: int = 3,
        padding: int = 1,
        first_padding: int | None = None,
    ) -> None:
        super().__init__()

        def block(cin: int, cout: int, first: bool) -> list[nn.Module]:
            pad = first_padding if first_padding is not None and first else padding
            return [nn.Conv2d(cin, cout, kernel, padding=pad), nn.ReLU()]

        layers, _ = plan_layers(shape[0], plan, block)
        self.features = nn.Sequential(*layers, nn.Flatten())
        widths = [_flat_size(self.features, shape), *fc]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.fc = nn.Linear(widths[-1], classes)
        glorot_normal(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        for layer in self.hidden:
            x = F.relu(layer(x))
        return self.fc(x)


CONV_PLANS = {
    "conv2": [64, 64, "M"],
    "conv4": [64, 64, "M", 128, 128, "M"],
    "conv6": [64, 64, "M", 128, 128, "M", 256, 256, "M"],
}
for _name, _plan in CONV_PLANS.items():
    register(_name, "image", f"{_name.capitalize()} (F&C 2019): conv {_plan}, FC 256, 256, Gaussian Glorot init")(
        lambda shape, classes, _plan=_plan: ConvNet(shape, _plan, (256, 256), classes)
    )


@register("lenet5", "image", "LeNet-5 (LeCun 1998): conv 6, pool, conv 16, pool, FC 120, 84; Glorot init")
def lenet5(shape: Shape, classes: int) -> nn.Module:
    # LeNet-5 was drawn for 32x32 inputs: smaller images (MNIST's 28x28) get 2 pixels of padding first
    return ConvNet(
        shape, [6, "M", 16, "M"], (120, 84), classes, kernel=5, padding=0, first_padding=2 if shape[1] < 32 else 0
    )


# --- CIFAR VGG (with BatchNorm) -------------------------------------------------------------------

VGG_PLANS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512],
}


class VGG(nn.Module):
    """The CIFAR VGG of the lottery-ticket papers: conv-BN-ReLU stacks, global average pool, one FC layer."""

    def __init__(self, shape: Shape, plan: Sequence[int | str], classes: int) -> None:
        super().__init__()
        layers, channels = plan_layers(
            shape[0],
            plan,
            lambda cin, cout, first: [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()],
        )
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        _flat_size(self.features, shape)
        self.fc = nn.Linear(channels, classes)
        kaiming_normal(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


for _name, _plan in VGG_PLANS.items():
    register(_name, "image", f"{_name.upper()} for CIFAR (BatchNorm, one FC layer), He-normal init")(
        lambda shape, classes, _plan=_plan: VGG(shape, _plan, classes)
    )


# --- CIFAR ResNets (He et al. 2016, 1x1-conv shortcuts as in OpenLTH) -----------------------------


class Block(nn.Module):
    def __init__(self, f_in: int, f_out: int, downsample: bool) -> None:
        super().__init__()
        stride = 2 if downsample else 1
        self.conv1 = nn.Conv2d(f_in, f_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(f_out)
        self.conv2 = nn.Conv2d(f_out, f_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(f_out)
        self.shortcut = nn.Sequential()
        if downsample or f_in != f_out:
            self.shortcut = nn.Sequential(nn.Conv2d(f_in, f_out, 1, stride=stride, bias=False), nn.BatchNorm2d(f_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-(6D+2) for 32x32 inputs: a 3x3 stem, three stages of D blocks (16, 32, 64 filters), GAP, FC."""

    def __init__(self, shape: Shape, depth: int, classes: int, width: int = 16) -> None:
        super().__init__()
        d = (depth - 2) // 6
        self.conv = nn.Conv2d(shape[0], width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        blocks, f_in = [], width
        for stage, f_out in enumerate((width, 2 * width, 4 * width)):
            for i in range(d):
                blocks.append(Block(f_in, f_out, downsample=stage > 0 and i == 0))
                f_in = f_out
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(f_in, classes)
        kaiming_normal(self)
        _flat_size(nn.Sequential(self.conv, self.blocks), shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.blocks(F.relu(self.bn(self.conv(x))))
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


for _depth in (20, 56):
    register(f"resnet{_depth}", "image", f"ResNet-{_depth} for CIFAR (He et al. 2016), He-normal init")(
        lambda shape, classes, _depth=_depth: CifarResNet(shape, _depth, classes)
    )


@register("resnet18", "image", "torchvision's ResNet-18 with a CIFAR stem (3x3 stride-1 conv, no max-pool)")
def resnet18(shape: Shape, classes: int) -> nn.Module:
    from torchvision.models import resnet18 as tv_resnet18

    model = tv_resnet18(weights=None, num_classes=classes)
    model.conv1 = nn.Conv2d(shape[0], 64, 3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")  # torchvision's own rule
    model.maxpool = nn.Identity()
    _flat_size(nn.Sequential(model.conv1, model.layer1, model.layer2, model.layer3, model.layer4), shape)
    return model


# --- 1-D CNN for MNIST-1D (Greydanus 2020) --------------------------------------------------------


class CNN1D(nn.Module):
    """Three strided 1-D convolutions of 25 channels and a linear read-out (the MNIST-1D paper's CNN)."""

    def __init__(self, shape: Shape, classes: int, channels: int = 25) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(shape[0], channels, 5, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        self.fc = nn.Linear(_flat_size(self.features, shape), classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


register("cnn1d", "signal", "small 1-D CNN (MNIST-1D paper): 3 strided conv1d of 25 channels, linear out")(
    lambda shape, classes: CNN1D(shape, classes)
)


# --- pruning groups -----------------------------------------------------------------------------


def prunable_groups(model: nn.Module, biases: bool) -> dict[str, str]:
    """Weights (and optionally biases) of every conv and linear layer -> 'conv' | 'fc' | 'output'.

    BatchNorm parameters are never pruned. The output layer is the last linear layer in module order.
    """
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]
    last_linear = [n for n, m in layers if isinstance(m, nn.Linear)][-1]
    out: dict[str, str] = {}
    seen: set[int] = set()
    for name, module in layers:
        group = "output" if name == last_linear else ("fc" if isinstance(module, nn.Linear) else "conv")
        for pname in ("weight", "bias") if biases else ("weight",):
            p = getattr(module, pname, None)
            if p is None or id(p) in seen:
                continue
            seen.add(id(p))
            out[f"{name}.{pname}"] = group
    return out
