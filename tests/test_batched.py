"""The batched executor trains each job as it would be trained alone (within float tolerance)."""
import pytest
import torch

from domains.vision.adapter import VisionAdapter
from domains.vision.config import VisionConfig
from lth_core.controls import CONTROLS, ControlInput
from lth_core.job import Job
from lth_core.masks import Mask
from lth_core.strategies import STRATEGIES, PruneStep, global_names, resolve_rates


def level_jobs(adapter, start=0):
    init = adapter.initial_weights(3)
    groups = adapter.prunable(adapter.build(0), False)
    weights = {n: init[n] for n in groups}
    mask = STRATEGIES.get("magnitude_layerwise")(PruneStep(weights, Mask.ones_like(weights), resolve_rates(groups, 0.5, {}),
                                                           global_names(groups, {})))
    ci = ControlInput(mask, init, adapter.initial_weights, seed=11)
    jobs = [Job(level=1, kind="ticket", trial=0, seed=7, weights=init, mask=mask.to_state(), budget=start + 40,
                start_step=start, capture_steps=(start + 20,), keep_final_weights=True)]
    for i, c in enumerate(("random_reinit", "random_mask")):
        w, m = CONTROLS.get(c)(ci)
        jobs.append(Job(level=1, kind=c, trial=i, seed=8 + i, weights=w, mask=m.to_state(), budget=start + 40, start_step=start))
    jobs.append(Job(level=0, kind="dense", trial=0, seed=9, weights=init, mask=None, budget=start + 40, start_step=start))
    return jobs


@pytest.mark.parametrize("model,optimizer,start", [("mlp", "adam", 0), ("cnn1d", "sgd", 10), ("lenet_300_100", "adamw", 0)])
def test_batched_jobs_match_jobs_trained_alone(model, optimizer, start):
    torch.set_num_threads(1)
    cfg = VisionConfig(dataset="mnist1d", model=model, optimizer=optimizer, lr=0.01 if optimizer == "sgd" else 1e-3,
                       momentum=0.9, weight_decay=1e-4, iterations=50, eval_every=10, batch_size=32,
                       mnist1d_samples=1500)
    if model == "lenet_300_100":
        cfg = VisionConfig(**{**cfg.__dict__, "dataset": "digits"})
    adapter = VisionAdapter(cfg)
    jobs = level_jobs(adapter, start)
    together = adapter.train_batch(jobs)
    assert together is not None
    for job, b in zip(jobs, together):
        alone = adapter.train(job)
        assert b.status == alone.status == "ok"
        assert b.early_stop_step == alone.early_stop_step
        assert [p.step for p in b.curve] == [p.step for p in alone.curve]
        for pb, pa in zip(b.curve, alone.curve):
            assert pb.val == pytest.approx(pa.val, rel=1e-3, abs=1e-4)
            assert pb.test == pytest.approx(pa.test, abs=2e-3)
        if job.keep_final_weights:
            for k, v in alone.final_weights.items():
                torch.testing.assert_close(b.final_weights[k], v, rtol=1e-3, atol=1e-4)
                if job.mask is not None and k in job.mask:
                    assert (b.final_weights[k][~job.mask[k]] == 0).all()
        for step, state in alone.captured.items():
            for k, v in state.items():
                torch.testing.assert_close(b.captured[step][k], v, rtol=1e-3, atol=1e-4)


def test_models_with_batch_norm_fall_back():
    adapter = VisionAdapter(VisionConfig(dataset="digits", model="resnet20", iterations=4, eval_every=2))
    assert adapter.train_batch(level_jobs(adapter)[:2]) is None
