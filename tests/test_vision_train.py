"""The vision training loop: masks held, rewind-consistent data order, captures, early stopping on
validation, the learning-rate schedule, determinism and divergence."""

from __future__ import annotations

import math

import pytest
import torch

from domains.vision.adapter import VisionAdapter
from domains.vision.config import VisionConfig
from domains.vision.optim import Schedule
from domains.vision.train import Batches
from lth_core.errors import Diverged, UsageError
from lth_core.job import Job
from lth_core.masks import Mask
from lth_core.protocol import EvalGrid
from lth_core.strategies import STRATEGIES, PruneStep, resolve_rates

SMALL = dict(dataset="digits", model="mlp", iterations=60, batch_size=32, eval_every=20, lr=3e-3, threads=1)


def adapter(**kw) -> VisionAdapter:
    cfg = VisionConfig(**{**SMALL, **kw})
    cfg.validate()
    return VisionAdapter(cfg)


def half_mask(ad: VisionAdapter, weights) -> dict[str, torch.Tensor]:
    groups = ad.prunable(ad.build(0), biases=False)
    mask = Mask.ones_like({n: weights[n] for n in groups})
    step = PruneStep({n: weights[n] for n in groups}, mask, resolve_rates(groups, 0.5, {}), frozenset())
    return STRATEGIES.get("magnitude_layerwise")(step).to_state()


def test_dense_job_captures_rewind_points_and_reports_on_the_validation_choice():
    ad = adapter()
    w0 = ad.initial_weights(0)
    out = ad.train(Job(0, "dense", 0, 0, w0, None, ad.budget(), capture_steps=(0, 20), keep_final_weights=True))
    assert out.status == "ok" and out.steps == 60
    assert all(torch.equal(out.captured[0][k], w0[k]) for k in w0)
    assert not torch.equal(out.captured[20]["fc.weight"], w0["fc.weight"])
    assert [p.step for p in out.curve] == [0, 20, 40, 60]
    best = min(out.curve, key=lambda p: p.val)
    assert out.early_stop_step == best.step and out.score == best.test and out.val_at_stop == best.val
    assert out.final_score == out.curve[-1].test
    assert out.score > 0.5  # digits are easy: the loop learns
    assert set(out.final_weights) == set(w0)


def test_mask_holds_under_every_optimizer_and_weight_decay():
    for opt in ("adam", "adamw", "sgd"):
        ad = adapter(optimizer=opt, momentum=0.9, weight_decay=0.05, nesterov=True, lr=0.05)
        w0 = ad.initial_weights(1)
        mask = half_mask(ad, w0)
        out = ad.train(Job(1, "ticket", 0, 0, w0, mask, ad.budget(), keep_final_weights=True))
        for name, m in mask.items():
            assert (out.final_weights[name][~m] == 0).all(), (opt, name)
            assert (out.final_weights[name][m] != 0).float().mean() > 0.99


def test_rewound_job_sees_the_same_batches_as_the_dense_run_from_k_on():
    """Training 0->60 and (capture at 20) then 20->60 from the captured weights end identically."""
    ad = adapter(optimizer="sgd", lr=0.05)
    w0 = ad.initial_weights(2)
    full = ad.train(Job(0, "dense", 0, 7, w0, None, 60, capture_steps=(20,), keep_final_weights=True))
    resumed = ad.train(Job(0, "dense", 0, 7, full.captured[20], None, 60, start_step=20, keep_final_weights=True))
    for k, v in full.final_weights.items():
        torch.testing.assert_close(resumed.final_weights[k], v, rtol=1e-5, atol=1e-6)
    assert resumed.steps == 40 and resumed.curve[0].step == 20


def test_same_seed_same_result_other_seed_other_data_order():
    ad = adapter()
    w0 = ad.initial_weights(0)
    a, b, c = (ad.train(Job(0, "dense", 0, s, w0, None, 60, keep_final_weights=True)) for s in (5, 5, 6))
    assert all(torch.equal(a.final_weights[k], b.final_weights[k]) for k in a.final_weights)
    assert not torch.equal(a.final_weights["fc.weight"], c.final_weights["fc.weight"])


def test_batches_cover_each_epoch_once_and_are_random_access():
    b = Batches(100, 32, seed=3)
    epoch0 = torch.cat([b(s) for s in range(3)])
    assert len(set(epoch0.tolist())) == 96
    later = Batches(100, 32, seed=3)
    assert torch.equal(later(4), b(4)) and torch.equal(later(1), b(1))
    assert not torch.equal(b(0), b(3))  # a new permutation each epoch


def test_schedule_warmup_and_step_decay_scale_with_the_budget():
    c = VisionConfig(
        iterations=30000, lr=0.1, lr_milestones="20000,25000", warmup=1000, budget_scale=0.01, eval_every=10000
    )
    c.validate()
    s = Schedule(c)
    assert c.total_iterations() == 300 and c.milestones() == [200, 250] and c.warmup_iterations() == 10
    assert s(0) == pytest.approx(0.01) and s(9) == pytest.approx(0.1) and s(199) == pytest.approx(0.1)
    assert s(200) == pytest.approx(0.01) and s(299) == pytest.approx(0.001)
    assert EvalGrid(c.eval_cadence()).points(0, 300) == [0, 100, 200, 300]
    assert EvalGrid(100).points(150, 300) == [150, 200, 300]
    with pytest.raises(UsageError, match="--lr-milestones '40000' must lie below --iterations"):
        VisionConfig(iterations=30000, lr_milestones="40000").validate()


def test_divergence_is_reported_as_diverged():
    ad = adapter(optimizer="sgd", lr=1e6, momentum=0.9)
    with pytest.raises(Diverged):
        ad.train(Job(0, "dense", 0, 0, ad.initial_weights(0), None, ad.budget()))


def test_augmented_cifar_shaped_training_runs_and_holds_the_mask(tmp_path):
    from benchmarks.fake_vision_files import write_cifar10

    write_cifar10(tmp_path, per_batch=20, n_test=20)
    ad = adapter(
        dataset="cifar10",
        model="resnet20",
        data_dir=str(tmp_path),
        val_size=20,
        iterations=4,
        eval_every=2,
        batch_size=8,
        optimizer="sgd",
        momentum=0.9,
        lr=0.1,
    )
    assert ad.data().augment == "crop_flip"
    w0 = ad.initial_weights(0)
    mask = half_mask(ad, w0)
    out = ad.train(Job(1, "ticket", 0, 0, w0, mask, ad.budget(), keep_final_weights=True))
    assert out.status == "ok" and math.isfinite(out.score)
    assert all((out.final_weights[n][~m] == 0).all() for n, m in mask.items())
    # BatchNorm statistics moved: the loop trains in train mode and evaluates in eval mode
    assert not torch.equal(out.final_weights["bn.running_mean"], w0["bn.running_mean"])


def test_batch_larger_than_the_training_set_is_a_usage_error():
    ad = adapter(batch_size=5000)
    with pytest.raises(UsageError, match="--batch-size 5000 exceeds the 1138 training examples of digits"):
        ad.data()


@pytest.mark.parametrize("masked", [False, True])
def test_test_set_read_only_at_the_early_stop_step_and_end_gives_the_same_scores_as_a_full_test_curve(masked):
    """By default the test set is read on the weights kept at the best validation point, not at every evaluation;
    the reported numbers must be exactly those of a run that reads it everywhere (--test-curve)."""
    runs = {}
    for curve in (False, True):
        ad = adapter(iterations=200, eval_every=10, train_size=100, lr=0.01, optimizer="adam", test_curve=curve)
        w0 = ad.initial_weights(2)
        runs[curve] = ad.train(
            Job(1, "ticket", 0, 5, w0, half_mask(ad, w0) if masked else None, ad.budget(), keep_final_weights=True)
        )
    lazy, full = runs[False], runs[True]
    assert lazy.early_stop_step < 200  # the early-stop step is not the last one, so the kept weights are used
    assert (lazy.score, lazy.final_score, lazy.early_stop_step) == (full.score, full.final_score, full.early_stop_step)
    assert lazy.score == next(p.test for p in full.curve if p.step == full.early_stop_step)
    assert all(p.test is not None for p in full.curve)
    assert [p.step for p in lazy.curve if p.test is not None] == [lazy.early_stop_step, 200]
    for k, v in full.final_weights.items():
        assert torch.equal(lazy.final_weights[k], v)  # reading test on the kept weights leaves the final ones
