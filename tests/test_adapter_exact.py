"""The adapter seam's defaults by exact behaviour (lth_core/adapter.py): which optional capabilities a domain is
seen to offer, the one line a missing capability is refused with (and the domain's own reason), and the defaults
an adapter gets without writing them (no batched pass, one stack, its initial weights, the flow outputs)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from toy_adapter import ToyAdapter, ToyConfig

from lth_core.adapter import OPTIONAL, SPLITS, Adapter, Metric, Unsupported
from lth_core.errors import UsageError


class Refusing(ToyAdapter):
    refusals = {"structure": "its layers are too small"}


def toy() -> ToyAdapter:
    return ToyAdapter(ToyConfig(steps=10))


def test_the_optional_capabilities_and_splits_are_named():
    assert OPTIONAL == (
        "evaluate",
        "training_loss",
        "input_shape",
        "structure",
        "compact",
        "cost",
        "recompute_norm_stats",
        "step_flops",
    )
    assert SPLITS == ("val", "test")


def test_capabilities_are_the_optional_methods_a_domain_overrides():
    assert toy().capabilities() == {"evaluate", "training_loss"}

    class More(ToyAdapter):
        def input_shape(self):
            return (10,)

    assert More(ToyConfig()).capabilities() == {"evaluate", "training_loss", "input_shape"}


def test_require_passes_what_a_domain_offers_and_refuses_the_rest_in_one_line():
    a = toy()
    a.require("evaluate", "--lmc")
    with pytest.raises(Unsupported) as e:
        a.require("recompute_norm_stats", "--bn recompute")
    assert str(e.value) == "domain 'toy' cannot recompute norm stats, which --bn recompute needs"
    assert isinstance(e.value, UsageError)
    with pytest.raises(Unsupported) as e:
        Refusing(ToyConfig()).require("structure", "--structured")
    assert str(e.value) == "domain 'toy' cannot structure, which --structured needs: its layers are too small"
    with pytest.raises(Unsupported) as e:
        Refusing(ToyConfig()).require("step_flops", "--flops")
    assert str(e.value) == "domain 'toy' cannot step flops, which --flops needs"  # no reason of its own


@pytest.mark.parametrize(
    "call,what",
    [
        (lambda a, m: a.input_shape(), "give the shape of one input example"),
        (lambda a, m: a.structure(m), "describe its structure (neurons, channels, heads)"),
        (lambda a, m: a.compact(m, {}), "compact a structured ticket (remove neurons, channels, heads)"),
        (lambda a, m: a.cost(m, {}), "measure the cost of a compacted model"),
        (
            lambda a, m: a.recompute_norm_stats({}, 1, 0),
            "recompute normalization statistics (it has no BatchNorm layers)",
        ),
        (lambda a, m: a.step_flops(None), "count the FLOPs of a training step"),
        (lambda a, m: Adapter.evaluate(a, {}, "val"), "evaluate arbitrary weights"),
        (lambda a, m: Adapter.training_loss(a, m, 1, 0), "compute a training loss for scoring"),
    ],
)
def test_an_optional_capability_a_domain_lacks_is_refused_naming_it(call, what):
    a = toy()
    with pytest.raises(Unsupported) as e:
        call(a, a.build(0))
    assert str(e.value) == f"domain 'toy' cannot {what}"


def test_the_defaults_an_adapter_gets():
    a = toy()
    assert (ToyAdapter.packages, Adapter.refusals) == ((), {})
    assert a.train_batch([]) is None and a.batch_stacks(8, 4) == 1 and a.close() is None
    model = a.build(0)
    x = torch.ones(2, 10)
    assert torch.equal(a.flow_output(model, x), model(x))
    w = a.initial_weights(4)
    ref = a.build(4).state_dict()
    assert list(w) == list(ref) and all(torch.equal(w[k], ref[k]) for k in ref)
    assert all(not v.requires_grad for v in w.values())
    a.build(4)[0].weight.data.zero_()  # a copy: later models do not share its storage
    assert torch.equal(w["0.weight"], ref["0.weight"])


def test_a_metric_is_frozen():
    m = Metric("accuracy", True, "val_loss", False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.name = "x"  # type: ignore[misc]
    assert (m.name, m.higher_is_better, m.val_name, m.val_higher_is_better) == ("accuracy", True, "val_loss", False)
