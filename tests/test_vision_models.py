"""Every vision model: output shape, prunable tensors and their groups, seeded builds, input checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from domains.vision.adapter import VisionAdapter
from domains.vision.config import VisionConfig
from domains.vision.models import MODELS, create, prunable_groups
from lth_core.errors import UsageError

# model -> (example shape it is built for, expected prunable weight count, expected groups)
CASES = {
    "mlp": ((1, 40), 40 * 100 + 100 * 100 + 100 * 10, {"fc", "output"}),
    "lenet_300_100": ((1, 28, 28), 784 * 300 + 300 * 100 + 100 * 10, {"fc", "output"}),
    "cnn1d": ((1, 40), 1 * 25 * 5 + 25 * 25 * 3 * 2 + 125 * 10, {"conv", "output"}),
    "lenet5": ((1, 28, 28), 6 * 25 + 16 * 6 * 25 + 400 * 120 + 120 * 84 + 84 * 10, {"conv", "fc", "output"}),
    # Conv-2/4 weight counts as F&C Figure 2 gives them (4.3M, 2.4M)
    "conv2": (
        (3, 32, 32),
        3 * 64 * 9 + 64 * 64 * 9 + 16 * 16 * 64 * 256 + 256 * 256 + 256 * 10,
        {"conv", "fc", "output"},
    ),
    "conv4": ((3, 32, 32), 2_425_024, {"conv", "fc", "output"}),
    "conv6": ((3, 32, 32), 2_261_184, {"conv", "fc", "output"}),
    "vgg11": ((3, 32, 32), 9_222_848, {"conv", "output"}),
    "vgg16": ((3, 32, 32), 14_715_584, {"conv", "output"}),
    "vgg19": ((3, 32, 32), 20_024_000, {"conv", "output"}),  # F&C Figure 2: 20.0M
    "resnet20": ((3, 32, 32), 270_896, {"conv", "output"}),  # F&C: 274K with BatchNorm
    "resnet56": ((3, 32, 32), 851_504, {"conv", "output"}),
    "resnet18": ((3, 32, 32), 11_164_352, {"conv", "output"}),
}


def test_every_registered_model_has_a_case():
    assert set(CASES) == set(MODELS.names())


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_shape_and_prunable_tensors(name):
    shape, n_weights, groups = CASES[name]
    model = create(name, shape, 10)
    out = model(torch.randn(3, *shape))
    assert out.shape == (3, 10)
    pr = prunable_groups(model, biases=False)
    assert set(pr.values()) == groups
    assert sum(model.get_parameter(n).numel() for n in pr) == n_weights
    layers = {n: m for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))}
    assert set(pr) == {f"{n}.weight" for n in layers}  # every conv/linear weight, nothing else (no BatchNorm)
    last_linear = [n for n, m in layers.items() if isinstance(m, nn.Linear)][-1]
    assert [n for n, g in pr.items() if g == "output"] == [f"{last_linear}.weight"]
    assert model.get_parameter(f"{last_linear}.weight").shape[0] == 10
    with_bias = prunable_groups(model, biases=True)
    biases = {f"{n}.bias" for n, m in layers.items() if m.bias is not None}
    assert set(with_bias) == set(pr) | biases
    assert all(with_bias[f"{n.rsplit('.', 1)[0]}.weight"] == g for n, g in with_bias.items())


@pytest.mark.parametrize(
    "name,shape",
    [
        ("mlp", (1, 8, 8)),
        ("lenet_300_100", (3, 32, 32)),
        ("conv2", (1, 28, 28)),
        ("lenet5", (3, 32, 32)),
        ("vgg11", (1, 28, 28)),
        ("resnet20", (1, 28, 28)),
    ],
)
def test_models_adapt_to_other_input_shapes_and_class_counts(name, shape):
    model = create(name, shape, 100)
    assert model(torch.randn(2, *shape)).shape == (2, 100)


def test_incompatible_inputs_are_one_line_usage_errors():
    with pytest.raises(UsageError, match="takes images .* cnn1d, lenet_300_100, mlp"):
        create("conv2", (1, 40), 10)
    with pytest.raises(UsageError, match="takes 1-D signals"):
        create("cnn1d", (1, 28, 28), 10)
    with pytest.raises(UsageError, match="cannot take inputs of shape"):
        create("vgg19", (1, 8, 8), 10)
    with pytest.raises(UsageError, match="unknown model 'lenet'; valid choices: .*lenet_300_100"):
        create("lenet", (1, 28, 28), 10)
    cfg = VisionConfig(dataset="mnist1d", model="conv4")
    with pytest.raises(UsageError, match="model 'conv4' takes images"):
        cfg.validate()


def test_build_is_deterministic_in_seed_and_leaves_global_rng_alone():
    adapter = VisionAdapter(VisionConfig(dataset="digits", model="conv2"))
    state = torch.random.get_rng_state()
    a, b, c = (adapter.initial_weights(s) for s in (3, 3, 4))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["hidden.0.weight"], c["hidden.0.weight"])


def test_fc_convnets_use_glorot_normal_init():
    w = create("lenet_300_100", (1, 28, 28), 10).hidden[0].weight
    expected = (2.0 / (784 + 300)) ** 0.5
    assert abs(w.std().item() - expected) / expected < 0.02
    assert create("conv2", (3, 32, 32), 10).hidden[0].bias.abs().sum() == 0
