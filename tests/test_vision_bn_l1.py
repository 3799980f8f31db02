"""`--bn-l1` (network slimming's L1 penalty on BatchNorm scales): it shrinks the trained |gamma|, and it joins the
run identity only where it is set."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from domains.vision.adapter import VisionAdapter
from domains.vision.config import VisionConfig
from lth_core.errors import UsageError
from lth_core.job import Job

BASE = dict(
    dataset="digits", model="resnet20", iterations=6, eval_every=6, batch_size=16, optimizer="sgd", lr=0.05, threads=1
)


def _gamma_l1(bn_l1: float) -> float:
    adapter = VisionAdapter(VisionConfig(**BASE, bn_l1=bn_l1))
    job = Job(0, "dense", 0, 0, adapter.initial_weights(0), None, adapter.budget(), keep_final_weights=True)
    out = adapter.train(job)
    assert out.status == "ok" and out.final_weights is not None
    return sum(float(v.abs().sum()) for k, v in out.final_weights.items() if k.endswith("bn1.weight"))


def test_bn_l1_shrinks_the_batchnorm_scales() -> None:
    assert _gamma_l1(1.0) < 0.9 * _gamma_l1(0.0)


def test_bn_l1_joins_the_identity_only_when_set_and_refuses_a_negative_value() -> None:
    plain = VisionConfig(**BASE)
    assert "bn_l1" not in plain.identity_extras()
    assert VisionConfig(**BASE, bn_l1=1e-4).identity_extras()["bn_l1"] == 1e-4
    with pytest.raises(UsageError, match="--bn-l1 -1.0"):
        dataclasses.replace(plain, bn_l1=-1.0).validate()
    assert torch.isfinite(torch.tensor(plain.bn_l1))
