"""The vision loops' optimizer step without torch.optim's wrappers: the same weights bit for bit as
`optimizer.step()`, and no `import torch._dynamo` (the start-up cost it exists to avoid)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from domains.vision.config import VisionConfig
from domains.vision.optim import OPTIMIZERS, step_without_wrappers

ROOT = Path(__file__).resolve().parents[1]


def _trained(name: str, plain: bool, **cfg) -> list[torch.Tensor]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    opt = OPTIMIZERS.get(name)(list(model.parameters()), VisionConfig(optimizer=name, **cfg))
    g = torch.Generator().manual_seed(1)
    for step in range(6):
        for group in opt.param_groups:
            group["lr"] = cfg.get("lr", 1e-2) * (1 + step)  # the loops set the lr of every step
        x, y = torch.randn(8, 7, generator=g), torch.randint(3, (8,), generator=g)
        for p in model.parameters():
            p.grad = None
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step() if plain else step_without_wrappers(opt)
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize(
    "name, cfg",
    [
        ("sgd", {"lr": 0.1}),
        ("sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}),
        ("adam", {"lr": 1e-2, "weight_decay": 1e-3}),
        ("adamw", {"lr": 1e-2, "weight_decay": 1e-2}),
    ],
)
def test_the_same_weights_as_optimizer_step(name, cfg):
    for a, b in zip(_trained(name, True, **cfg), _trained(name, False, **cfg)):
        assert torch.equal(a, b)


def test_hooks_still_run():
    model = torch.nn.Linear(3, 2)
    opt = OPTIMIZERS.get("sgd")(list(model.parameters()), VisionConfig(optimizer="sgd", lr=0.1))
    seen = []
    opt.register_step_post_hook(lambda o, args, kwargs: seen.append(1))
    model(torch.ones(1, 3)).sum().backward()
    step_without_wrappers(opt)
    assert seen == [1]


def test_building_and_stepping_import_no_dynamo():
    code = (
        "import sys, torch\n"
        "from domains.vision.config import VisionConfig\n"
        "from domains.vision.optim import OPTIMIZERS, step_without_wrappers\n"
        "m = torch.nn.Linear(3, 2)\n"
        "for name in ('sgd', 'adam', 'adamw'):\n"
        "    opt = OPTIMIZERS.get(name)(list(m.parameters()), VisionConfig(optimizer=name))\n"
        "    m(torch.ones(1, 3)).sum().backward()\n"
        "    step_without_wrappers(opt)\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"
