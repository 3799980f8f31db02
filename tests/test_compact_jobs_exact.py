"""lth_core/compact_jobs.py: a structured job trained as the compacted model gives the masked training's weights
(kept entries trained, masked ones zero, the rest as the job started), its tensors cut and put back exactly."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from domains.vision.adapter import VisionAdapter
from domains.vision.config import VisionConfig
from lth_core.compact_jobs import compact_job, expand_outcome, expand_tensors, slice_tensors, train_compacted
from lth_core.job import Job, Outcome
from lth_core.mask_hold import MaskHold
from lth_core.masks import Mask
from lth_core.structure import Coupled, GroupFamily
from lth_core.structured import keeps_to_mask

FAMS = (
    GroupFamily("a", "neuron", 3, (Coupled("w1", 0), Coupled("b1", 0), Coupled("w2", 1, 2))),
    GroupFamily("b", "neuron", 2, (Coupled("w2", 0),)),
)
KEEP = {"a": torch.tensor([True, False, True]), "b": torch.tensor([False, True])}


def test_slice_cuts_every_member_along_each_of_its_dims_and_skips_absent_ones() -> None:
    t = {"w1": torch.arange(6.0).view(3, 2), "w2": torch.arange(12.0).view(2, 6), "other": torch.ones(2)}
    out = slice_tensors(FAMS, KEEP, t)
    assert out["w1"].tolist() == [[0, 1], [4, 5]]
    assert out["w2"].tolist() == [[6, 7, 10, 11]]  # row 1 (b), columns 0-1 and 4-5 (a's groups 0, 2; width 2)
    assert out["other"] is t["other"] and "b1" not in out
    assert t["w1"].shape == (3, 2)  # the input is not cut in place


def test_expand_puts_kept_entries_back_and_takes_the_rest_from_like() -> None:
    like = {"w1": torch.full((3, 2), -1.0), "w2": torch.full((2, 6), -2.0), "b1": torch.zeros(3)}
    # a tensor outside every family comes first: the members after it are still put back
    small = {"other": torch.tensor([9.0]), "w1": torch.tensor([[1.0, 2.0], [3.0, 4.0]])}
    small["w2"] = torch.tensor([[5.0, 6.0, 7.0, 8.0]])
    out = expand_tensors(FAMS, KEEP, small, like)
    assert out["w1"].tolist() == [[1, 2], [-1, -1], [3, 4]]
    assert out["w2"].tolist() == [[-2] * 6, [5, 6, -2, -2, 7, 8]]
    assert out["other"] is small["other"] and "b1" not in out  # only what `small` has
    assert like["w1"].eq(-1).all()  # `like` is not written to
    half = expand_tensors(FAMS, KEEP, {"w1": small["w1"].double()}, like)
    assert half["w1"].dtype == torch.float64  # in the trained tensor's dtype


def test_compact_job_cuts_weights_and_mask_and_drops_the_keep() -> None:
    w = {"w1": torch.arange(6.0).view(3, 2), "w2": torch.arange(12.0).view(2, 6), "b1": torch.arange(3.0)}
    mask = {"w1": torch.ones(3, 2, dtype=torch.bool), "w2": torch.ones(2, 6, dtype=torch.bool)}
    job = Job(1, "ticket", 0, 5, w, mask, 10, keep=KEEP)
    small = compact_job(job, FAMS)
    assert small.keep is None and small.seed == 5 and small.budget == 10
    assert small.weights["b1"].tolist() == [0, 2] and small.weights["w2"].shape == (1, 4)
    assert small.mask is not None and small.mask["w1"].shape == (2, 2) and small.mask["w2"].shape == (1, 4)
    assert compact_job(dataclasses.replace(job, mask=None), FAMS).mask is None


def test_expand_outcome_zeroes_masked_entries_and_marks_the_row_compacted() -> None:
    w = {"w1": torch.full((3, 2), 7.0), "w2": torch.full((2, 6), 7.0), "b1": torch.full((3,), 7.0)}
    mask = {"w1": torch.tensor([[True, False], [True, True], [True, True]]), "w2": torch.ones(2, 6, dtype=torch.bool)}
    job = Job(1, "ticket", 0, 5, w, mask, 10, keep=KEEP)
    small = {"w1": torch.ones(2, 2), "w2": torch.ones(1, 4), "b1": torch.ones(2)}
    out = Outcome(0.5, 0.5, 3, 0.1, 10, final_weights=small, captured={4: small}, extras={"x": 1.0})
    got = expand_outcome(out, FAMS, job)
    assert got.final_weights is not None
    assert got.final_weights["w1"].tolist() == [[1, 0], [7, 7], [1, 1]]  # a masked entry: zero; a removed row: start
    assert got.final_weights["b1"].tolist() == [1, 7, 1]  # not masked: the job's start at removed groups
    assert got.final_weights["w2"].tolist() == [[7] * 6, [1, 1, 7, 7, 1, 1]]
    assert list(got.captured) == [4] and torch.equal(got.captured[4]["w1"], got.final_weights["w1"])
    assert got.extras == {"x": 1.0, "compacted": True}
    dense = expand_outcome(Outcome(0.5, 0.5, 3, 0.1, 10, final_weights=None), FAMS, job)
    assert dense.final_weights is None and dense.captured == {} and dense.extras == {"compacted": True}


def _sgd(model: nn.Module, job: Job) -> Outcome:
    """Eight plain SGD steps on one fixed batch under the job's mask; the weights captured at step 4."""
    model.load_state_dict(dict(job.weights))
    hold = MaskHold(model, Mask(dict(job.mask))) if job.mask is not None else None
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 64, generator=g), torch.randint(0, 10, (16,), generator=g)
    captured = {}
    for step in range(8):
        if step == 4:
            captured[4] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        with torch.no_grad():  # plain SGD by hand (torch.optim's first step imports torch._dynamo: seconds)
            for p in model.parameters():
                p -= 0.1 * p.grad
    if hold is not None:
        hold.release()
    final = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return Outcome(0.0, 0.0, 8, 0.0, 8, final_weights=final, captured=captured, extras={"shape": 0.0})


def test_training_compacted_gives_the_masked_trainings_weights() -> None:
    adapter = VisionAdapter(VisionConfig(dataset="digits", model="lenet_300_100"))
    model = adapter.build(3)
    fams = tuple(adapter.structure(model))
    g = torch.Generator().manual_seed(1)
    keep = {f.name: torch.rand(f.count, generator=g) > 0.5 for f in fams}
    dense = {n: torch.ones_like(model.state_dict()[n], dtype=torch.bool) for n in adapter.prunable(model, False)}
    mask = keeps_to_mask(fams, keep, Mask(dense)).to_state()
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    job = Job(1, "ticket", 0, 0, weights, mask, 8, keep=keep)
    masked = _sgd(adapter.build(3), dataclasses.replace(job, keep=None))
    shapes: list = []

    def train(small: nn.Module, cut: Job) -> Outcome:
        shapes.append(small.hidden[0].weight.shape)
        return _sgd(small, cut)

    got = train_compacted(adapter, model, job, train)
    assert shapes == [(int(keep["hidden.0"].sum()), 64)]  # the smaller model trained
    assert got.extras["compacted"] is True
    assert got.final_weights is not None and masked.final_weights is not None
    for k, v in masked.final_weights.items():
        assert torch.allclose(got.final_weights[k], v, atol=1e-6, rtol=1e-5), k
    for k, v in masked.captured[4].items():
        assert torch.allclose(got.captured[4][k], v, atol=1e-6, rtol=1e-5), k
