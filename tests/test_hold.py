"""The mask holds under every optimizer a foreign loop might build after we hand it the model."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lth_core.mask_hold import MaskHold
from lth_core.masks import Mask

OPTIMIZERS = {
    "sgd_momentum": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
    "sgd_nesterov_wd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    "adam": lambda p: torch.optim.Adam(p, lr=0.01),
    "adam_wd_amsgrad": lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.01, amsgrad=True),
    "adamw": lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.5),
    "rmsprop": lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.99, eps=1e-5),
    "rmsprop_centered_momentum": lambda p: torch.optim.RMSprop(
        p, lr=0.01, momentum=0.9, centered=True, weight_decay=0.01
    ),
    "adagrad": lambda p: torch.optim.Adagrad(p, lr=0.1),
}


def net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3))


def random_mask(model, density, seed=0, names=None):
    g = torch.Generator().manual_seed(seed)
    names = names or [n for n, _ in model.named_parameters()]
    return Mask({n: torch.rand(model.get_parameter(n).shape, generator=g) < density for n in names})


def train(model, opt, steps=25, clip=0.5, forward_check=None):
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(16, 8, generator=g)
        if forward_check:
            forward_check()
        loss = model(x).pow(2).mean() + 0.1 * sum(p.pow(2).sum() for p in model.parameters())
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_pruned_weights_stay_exactly_zero_in_every_forward(name):
    model = net()
    mask = random_mask(model, 0.3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    hold = MaskHold(model, mask)
    opt = OPTIMIZERS[name](model.parameters())  # created by the "foreign loop" after the mask is applied

    def check():
        assert hold.violations() == {}

    train(model, opt, forward_check=check)
    hold.assert_held()
    kept_moved = any(((model.get_parameter(n) != before[n]) & mask[n]).any() for n in mask)
    assert kept_moved, "the kept weights must still train"
    assert list(model.state_dict()) == list(before)  # keys of the plain model


def test_hold_is_a_real_check():
    model = net()
    mask = random_mask(model, 0.3)
    hold = MaskHold(model, mask)
    hold.release()
    train(model, torch.optim.Adam(model.parameters(), lr=0.01))
    assert hold.violations(), "without the hook, Adam revives pruned weights: the check must see it"


def test_tied_weights_stay_tied_and_masked():
    emb = nn.Embedding(20, 8)
    out = nn.Linear(8, 20, bias=False)
    out.weight = emb.weight
    model = nn.ModuleDict({"emb": emb, "out": out})
    mask = random_mask(model, 0.5, names=["emb.weight"])
    hold = MaskHold(model, mask)
    opt = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.1)
    for i in range(20):
        tokens = torch.randint(0, 20, (4, 5), generator=torch.Generator().manual_seed(i))
        loss = nn.functional.cross_entropy(model["out"](model["emb"](tokens)).view(-1, 20), tokens.view(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert model["out"].weight is model["emb"].weight
    hold.assert_held()
    assert (model["out"].weight[~mask["emb.weight"]] == 0).all()


def test_mask_naming_a_tied_alias_twice_is_refused():
    emb = nn.Embedding(5, 4)
    out = nn.Linear(4, 5, bias=False)
    out.weight = emb.weight
    model = nn.ModuleDict({"emb": emb, "out": out})
    m = torch.ones(5, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match="tied or absent"):
        MaskHold(model, Mask({"emb.weight": m, "out.weight": m}))


def test_mirrors_are_zeroed_on_reapply():
    model, target = net(), net(1)
    mask = random_mask(model, 0.4)
    hold = MaskHold(model, mask, mirrors={n: [target.get_parameter(n)] for n in mask})
    with torch.no_grad():
        for n in mask:
            target.get_parameter(n).copy_(model.get_parameter(n) + 1)
    hold.reapply()
    assert all((target.get_parameter(n)[~mask[n]] == 0).all() for n in mask)


@settings(max_examples=25, deadline=None)
@given(
    density=st.floats(0.01, 0.99),
    seed=st.integers(0, 10_000),
    opt=st.sampled_from(sorted(OPTIMIZERS)),
    steps=st.integers(1, 12),
)
def test_property_any_mask_any_optimizer(density, seed, opt, steps):
    model = net(seed % 7)
    hold = MaskHold(model, random_mask(model, density, seed))
    train(model, OPTIMIZERS[opt](model.parameters()), steps=steps)
    hold.assert_held()
