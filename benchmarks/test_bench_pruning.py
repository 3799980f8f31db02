"""Speed of one pruning step and of building the controls on a model of ~10M parameters (ResNet-18)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lth_core.controls import CONTROLS, ControlInput
from lth_core.criteria import Criterion
from lth_core.masks import Mask
from lth_core.strategies import STRATEGIES, PruneStep


def resnet18_model() -> nn.Module:
    tv = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    return tv.models.resnet18(num_classes=10)


def resnet18_weights() -> dict[str, torch.Tensor]:
    """Every conv and linear weight of torchvision's ResNet-18 (11.2M parameters, 10 classes)."""
    model = resnet18_model()
    return {
        f"{name}.weight": m.weight.detach().clone()
        for name, m in model.named_modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    }


@pytest.fixture(scope="module")
def weights() -> dict[str, torch.Tensor]:
    return resnet18_weights()


@pytest.fixture(scope="module")
def structure() -> tuple[tuple, dict[str, torch.Tensor]]:
    """ResNet-18's group families (filters, residual streams) and its full state (BatchNorm scales)."""
    from domains.vision.structure import families

    model = resnet18_model()
    return tuple(families(model) or ()), {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize(  # the criteria score a model, not trained weights alone: test_bench_criteria.py
    "strategy", [n for n in STRATEGIES.names() if not issubclass(STRATEGIES.cls(n), Criterion)]
)
def test_pruning_step(benchmark, weights, structure, strategy):
    start = STRATEGIES.get("magnitude_layerwise")(
        PruneStep(  # a level-1 mask: the step timed is level 2
            weights=weights, mask=Mask.ones_like(weights), rates={n: 0.2 for n in weights}, global_names=frozenset()
        )
    )
    step = PruneStep(
        weights=weights,
        mask=start,
        rates={n: 0.2 for n in weights},
        global_names=frozenset(weights),
        seed=1,
        state=structure[1],
        families=structure[0],
    )
    mask = benchmark.pedantic(STRATEGIES.get(strategy), args=(step,), rounds=3, iterations=1)
    assert mask.num_kept < start.num_kept
    benchmark.extra_info.update(
        {"parameters": mask.num_total, "density_before": start.density, "density_after": mask.density}
    )


@pytest.mark.parametrize("control", CONTROLS.names())
def test_building_a_control(benchmark, weights, structure, control):
    structured = "structure" in CONTROLS.cls(control).needs  # a structured control gets a structured ticket
    mask = STRATEGIES.get("l1_structured" if structured else "magnitude_layerwise")(
        PruneStep(
            weights=weights,
            mask=Mask.ones_like(weights),
            rates={n: 0.8 for n in weights},
            global_names=frozenset(),
            families=structure[0],
        )
    )
    inp = ControlInput(
        ticket_mask=mask,
        rewind_weights=weights,
        fresh_weights=lambda seed: resnet18_weights(),
        seed=3,
        families=structure[0],
    )
    _, cmask = benchmark.pedantic(CONTROLS.get(control), args=(inp,), rounds=3, iterations=1)
    assert cmask.num_kept == mask.num_kept
    benchmark.extra_info.update({"parameters": mask.num_total, "density": mask.density})
