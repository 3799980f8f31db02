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
    mask = STRATEGIES.get("magnitude_layerwise")(
        PruneStep(weights, Mask.ones_like(weights), resolve_rates(groups, 0.5, {}), global_names(groups, {}))
    )
    ci = ControlInput(mask, init, adapter.initial_weights, seed=11)
    jobs = [
        Job(
            level=1,
            kind="ticket",
            trial=0,
            seed=7,
            weights=init,
            mask=mask.to_state(),
            budget=start + 40,
            start_step=start,
            capture_steps=(start + 20,),
            keep_final_weights=True,
        )
    ]
    for i, c in enumerate(("random_reinit", "random_mask")):
        w, m = CONTROLS.get(c)(ci)
        jobs.append(
            Job(level=1, kind=c, trial=i, seed=8 + i, weights=w, mask=m.to_state(), budget=start + 40, start_step=start)
        )
    jobs.append(
        Job(level=0, kind="dense", trial=0, seed=9, weights=init, mask=None, budget=start + 40, start_step=start)
    )
    return jobs


@pytest.mark.parametrize(
    "model,optimizer,start,test_curve",
    [
        ("mlp", "adam", 0, False),  # stacked batched matrix products (domains/vision/stacked_forward.py)
        ("cnn1d", "sgd", 10, True),  # vmap(functional_call), as on a GPU
        ("lenet_300_100", "adamw", 0, False),
        ("lenet_300_100", "sgd", 0, True),
    ],
)
def test_batched_jobs_match_jobs_trained_alone(model, optimizer, start, test_curve, monkeypatch):
    import domains.vision.batched_training as vb

    monkeypatch.setattr(vb, "vmap_pays", lambda model, device: vb.batchable(model))  # the GPU's choice, here
    torch.set_num_threads(1)
    cfg = VisionConfig(
        dataset="mnist1d",
        model=model,
        optimizer=optimizer,
        lr=0.01 if optimizer == "sgd" else 1e-3,
        momentum=0.9,
        weight_decay=1e-4,
        iterations=50,
        eval_every=10,
        batch_size=32,
        mnist1d_samples=1500,
        test_curve=test_curve,
    )
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
        assert b.score == pytest.approx(alone.score, abs=2e-3)
        assert b.final_score == pytest.approx(alone.final_score, abs=2e-3)
        # the test set is read at every point only with --test-curve; else at the early-stop step and the end
        read = {p.step for p in alone.curve if p.test is not None}
        assert read == ({p.step for p in alone.curve} if test_curve else {alone.early_stop_step, job.budget})
        for pb, pa in zip(b.curve, alone.curve):
            assert pb.val == pytest.approx(pa.val, rel=1e-3, abs=1e-4)
            assert (pb.test is None) == (pa.test is None)
            if pa.test is not None:
                assert pb.test == pytest.approx(pa.test, abs=2e-3)
        if job.keep_final_weights:
            for k, v in alone.final_weights.items():
                torch.testing.assert_close(b.final_weights[k], v, rtol=1e-3, atol=1e-4)
                if job.mask is not None and k in job.mask:
                    assert (b.final_weights[k][~job.mask[k]] == 0).all()
        for step, state in alone.captured.items():
            for k, v in state.items():
                torch.testing.assert_close(b.captured[step][k], v, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("model,dataset", [("resnet20", "digits"), ("conv2", "digits")])
def test_models_without_a_stacked_forward_train_in_turn_on_a_cpu_exactly_as_alone(model, dataset):
    """Batch norm can't share a vmapped pass, and on a CPU vmap is slower than the ordinary loop (Conv-2: half
    the speed), so such a pass trains its jobs in turn: the very numbers `local` gives."""
    torch.set_num_threads(1)
    adapter = VisionAdapter(VisionConfig(dataset=dataset, model=model, iterations=6, eval_every=2))
    jobs = level_jobs(adapter)[:2]
    for j in jobs:
        j.budget = 6
    together = adapter.train_batch(jobs)
    assert together is not None
    for job, out in zip(jobs, together):
        alone = adapter.train(job)
        assert (out.status, out.score, out.final_score, out.early_stop_step) == (
            alone.status,
            alone.score,
            alone.final_score,
            alone.early_stop_step,
        )
        assert [p.val for p in out.curve] == [p.val for p in alone.curve]


def test_models_with_dropout_are_not_trained_in_a_pass():
    from torch import nn

    from domains.vision.batched_training import train_batch

    adapter = VisionAdapter(VisionConfig(dataset="digits", model="mlp", iterations=4, eval_every=2))
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.1), nn.Linear(64, 10))  # dropout draws from the global RNG
    assert train_batch(model, adapter.data(), level_jobs(adapter)[:2], adapter.config, torch.device("cpu")) is None


def _executor(adapter, monkeypatch, cores):
    import lth_core.executor_batched as eb
    from lth_core.config import RunOptions

    monkeypatch.setattr(eb, "available_cores", lambda: cores)
    return eb.BatchedExecutor(adapter, lambda: adapter, RunOptions(executor="batched"))


@pytest.mark.parametrize("model,cores", [("mlp", 1), ("mlp", 2), ("mlp", 3), ("cnn1d", 2)])
def test_batched_executor_splits_a_level_into_stacks_on_threads_and_pairs_each_job_with_its_outcome(
    monkeypatch, model, cores
):
    dataset = "mnist1d" if model == "cnn1d" else "digits"
    if model == "cnn1d":  # the vmap path (a GPU's choice) must be safe on threads too
        import domains.vision.batched_training as vb

        monkeypatch.setattr(vb, "vmap_pays", lambda model, device: vb.batchable(model))
    adapter = VisionAdapter(
        VisionConfig(
            dataset=dataset,
            model=model,
            optimizer="adam",
            iterations=30,
            eval_every=10,
            batch_size=32,
            mnist1d_samples=1500,
        )
    )
    assert adapter.batch_stacks(4, cores) == min(4, cores)
    jobs = level_jobs(adapter)
    jobs[-1].start_step, jobs[-1].budget = 0, 30  # a job with another schedule trains in a group of its own
    before = torch.get_num_threads()
    results = list(_executor(adapter, monkeypatch, cores).run(jobs))
    assert torch.get_num_threads() == before
    assert sorted(id(j) for j, _ in results) == sorted(id(j) for j in jobs)
    torch.set_num_threads(1)
    for job, out in results:
        alone = adapter.train(job)
        assert out.status == "ok" and out.steps == job.budget - job.start_step
        assert out.early_stop_step == alone.early_stop_step
        assert out.score == pytest.approx(alone.score, abs=2e-3)
        assert out.val_at_stop == pytest.approx(alone.val_at_stop, rel=1e-3, abs=1e-4)
    torch.set_num_threads(before)


def test_batched_executor_trains_batch_norm_models_side_by_side(monkeypatch):
    adapter = VisionAdapter(VisionConfig(dataset="digits", model="resnet20", iterations=4, eval_every=2))
    jobs = level_jobs(adapter)[:2]
    for j in jobs:
        j.budget = 4
    results = list(_executor(adapter, monkeypatch, 2).run(jobs))
    assert [j for j, _ in results] == jobs and all(o.status == "ok" and o.steps == 4 for _, o in results)


def test_a_stack_of_dense_jobs_trains():
    """Jobs with no mask at all (a level 0 of dense trials) stack too: no masked tensor to apply."""
    torch.set_num_threads(1)
    adapter = VisionAdapter(VisionConfig(dataset="digits", model="mlp", iterations=6, eval_every=3))
    jobs = [
        Job(level=0, kind="dense", trial=i, seed=i, weights=adapter.initial_weights(i), mask=None, budget=6)
        for i in range(2)
    ]
    outs = adapter.train_batch(jobs)
    assert outs is not None and [o.status for o in outs] == ["ok", "ok"]
    for job, out in zip(jobs, outs):
        alone = adapter.train(job)
        assert (out.early_stop_step, out.score) == (alone.early_stop_step, pytest.approx(alone.score, abs=2e-3))


def test_a_diverged_job_gets_its_outcome_and_the_others_go_on():
    torch.set_num_threads(1)
    adapter = VisionAdapter(VisionConfig(dataset="digits", model="mlp", optimizer="adam", iterations=20, eval_every=5))
    jobs = level_jobs(adapter)
    for j in jobs:
        j.budget = 20
    jobs[1].weights = {**jobs[1].weights, "fc.bias": torch.full_like(jobs[1].weights["fc.bias"], float("nan"))}
    outs = adapter.train_batch(jobs)
    assert outs is not None
    assert outs[1].status == "diverged" and "non-finite" in outs[1].error
    for i in (0, 2, 3):
        alone = adapter.train(jobs[i])
        assert outs[i].status == "ok"
        assert outs[i].early_stop_step == alone.early_stop_step
        assert outs[i].score == pytest.approx(alone.score, abs=2e-3)


def test_a_stack_validates_all_its_jobs_in_one_pass_per_point(monkeypatch):
    """The per-job protocols pull validation through one shared pass; test reads: one pass for the final
    weights of all jobs, then one single-job pass per job whose early-stop step is not its last."""
    import domains.vision.batched_training as vb

    calls: list[tuple[object, int]] = []
    compute = vb.StackEval.compute

    def counted(self, split, jobs):
        calls.append((split, len(jobs)))
        return compute(self, split, jobs)

    monkeypatch.setattr(vb.StackEval, "compute", counted)
    torch.set_num_threads(1)
    adapter = VisionAdapter(VisionConfig(dataset="digits", model="mlp", optimizer="adam", iterations=40, eval_every=10))
    data = adapter.data()
    jobs = level_jobs(adapter)
    outs = adapter.train_batch(jobs)
    assert outs is not None
    val = [n for split, n in calls if split is data.val]
    test = [n for split, n in calls if split is data.test]
    assert len(val) + len(test) == len(calls)
    assert val == [len(jobs)] * len(outs[0].curve)
    early = sum(o.early_stop_step != jobs[0].budget for o in outs)
    assert test == [len(jobs)] + [1] * early


def test_no_early_stopping_of_its_own_in_the_vision_domain():
    """Early stopping, the best state and captures live in lth_core.protocol, once."""
    from pathlib import Path

    import domains.vision

    for path in Path(domains.vision.__file__).parent.glob("*.py"):
        assert "EarlyStopTracker" not in path.read_text(), path
