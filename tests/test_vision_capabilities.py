"""The vision adapter's optional capabilities: evaluate arbitrary weights, a training loss for scoring, and
the group families of every model (neurons, filters with their BatchNorm entries, residual channels)."""

import pytest
import torch
import torch.nn.functional as F

from domains.vision import models
from domains.vision.adapter import VisionAdapter
from domains.vision.config import VisionConfig
from domains.vision.train import Batches
from lth_core.adapter import Unsupported
from lth_core.errors import UsageError
from lth_core.job import Job

SMALL = VisionConfig(dataset="digits", model="mlp", optimizer="adam", iterations=30, eval_every=10, batch_size=32)


@pytest.fixture(scope="module")
def adapter():
    torch.set_num_threads(1)
    return VisionAdapter(SMALL)


def test_the_adapter_offers_every_optional_capability(adapter):
    assert adapter.capabilities() == {
        "evaluate",
        "training_loss",
        "input_shape",
        "structure",
        "compact",
        "cost",
        "recompute_norm_stats",
        "step_flops",
    }


@pytest.mark.parametrize("batched", [False, True])
def test_evaluate_reproduces_a_trained_jobs_recorded_final_values(adapter, batched):
    jobs = [
        Job(
            level=0,
            kind="dense",
            trial=i,
            seed=i,
            weights=adapter.initial_weights(i),
            mask=None,
            budget=30,
            keep_final_weights=True,
        )
        for i in range(2)
    ]
    outs = adapter.train_batch(jobs) if batched else [adapter.train(j) for j in jobs]
    m = adapter.metric()
    for out in outs:
        val, test = adapter.evaluate(out.final_weights, "val"), adapter.evaluate(out.final_weights, "test")
        assert {m.val_name, "loss", "val_acc"} <= set(val) and {m.name, "loss"} <= set(test)
        last = out.curve[-1]
        if batched:  # the stacked forward's arithmetic: float rounding
            assert val[m.val_name] == pytest.approx(last.val, rel=1e-5)
        else:
            assert val[m.val_name] == last.val and val["val_acc"] == last.extras["val_acc"]
        assert val["loss"] == val[m.val_name]
        assert test[m.name] == out.final_score
        assert test["loss"] > 0


def test_evaluate_refuses_an_unknown_split(adapter):
    with pytest.raises(UsageError, match="split"):
        adapter.evaluate(adapter.initial_weights(0), "train")


def test_training_loss_is_the_cross_entropy_of_the_seeds_batches_and_differentiable(adapter):
    model = adapter.build(0)
    loss = adapter.training_loss(model, batches=3, seed=5)
    data, order = adapter.data(), Batches(len(adapter.data().train), SMALL.batch_size, 5)
    want = torch.stack([F.cross_entropy(model(data.train.x[order(s)]), data.train.y[order(s)]) for s in range(3)])
    assert loss.item() == pytest.approx(want.mean().item(), rel=1e-6)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert adapter.training_loss(model, 3, 5).item() == loss.item()
    assert adapter.training_loss(model, 3, 6).item() != loss.item()


def _model(name: str):
    shape = (1, 40) if models.MODELS.get(name).inputs == "signal" else (3, 32, 32)
    torch.manual_seed(0)
    model = models.create(name, shape, 10).eval()
    with torch.no_grad():  # BatchNorm away from (1, 0, 0, 1), so that a family missing an entry shows
        for n, t in model.state_dict().items():
            if ".running_var" in n:
                t.uniform_(0.5, 2.0)
            elif t.is_floating_point() and (".bn" in n or "bn" in n.split(".")[-2] or t.dim() == 1):
                t.normal_()
    return model, torch.randn(2, *shape)


def _perturb(model, fam, i, dims) -> None:
    """New values in group i of the family's members along `dims`. The producing side (dim 0) is set so that
    the unit is on: small incoming weights and running means, positive biases, BatchNorm scales, variances."""
    sd = model.state_dict()
    with torch.no_grad():
        for mem in fam.members:
            if mem.dim not in dims:
                continue
            block = sd[mem.tensor].narrow(mem.dim, i * mem.width, mem.width)
            if block.dim() > 1 or "running_mean" in mem.tensor:
                block.copy_(torch.randn_like(block) * (0.01 if mem.dim == 0 else 1.0))
            else:
                block.copy_(torch.rand_like(block) + 0.5)


@pytest.mark.parametrize("name", models.MODELS.names())
def test_every_family_holds_and_a_zeroed_group_is_cut_out_of_the_network(adapter, name):
    """Zero group i of a family; then neither its producing side (rows, biases, BatchNorm entries: dim 0)
    nor its reading side (the next layers' input columns: dim 1) reaches the output any more."""
    model, x = _model(name)
    fams = adapter.structure(model)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert fams and len({f.name for f in fams}) == len(fams)
    for fam in fams:
        fam.check(shapes)
    if name in ("resnet56", "vgg19", "vgg16"):  # the same code as resnet20 / vgg11: a few families suffice
        fams = fams[::5]
    base = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for fam in fams:
            i = fam.count // 2
            model.load_state_dict(base)
            _perturb(model, fam, i, dims=(0,))  # not vacuous: the unit matters before it is cut
            assert not torch.equal(model(x), _reference(model, base, x)), fam.name
            model.load_state_dict(base)
            for mem in fam.members:
                model.state_dict()[mem.tensor].narrow(mem.dim, i * mem.width, mem.width).zero_()
            cut = model(x)
            for dims in ((0,), (1,)):
                _perturb(model, fam, i, dims)
                torch.testing.assert_close(model(x), cut, rtol=1e-5, atol=1e-5, msg=f"{fam.name} dims {dims}")
                for mem in fam.members:
                    model.state_dict()[mem.tensor].narrow(mem.dim, i * mem.width, mem.width).zero_()


def _reference(model, base, x):
    now = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(base)
    out = model(x)
    model.load_state_dict(now)
    return out


def test_structure_of_an_unknown_model_is_unsupported(adapter):
    with pytest.raises(Unsupported, match="structure"):
        adapter.structure(torch.nn.Sequential(torch.nn.Linear(3, 3)))
