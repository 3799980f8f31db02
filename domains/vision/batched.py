"""Training the jobs of one level together: weights stacked along a job axis, one vmapped forward/backward.

Each job keeps its own weights, mask, data order (its seed) and augmentation; one optimizer steps the stacked
tensors, which is the same arithmetic as one optimizer per job because SGD and Adam(W) act elementwise.
Small models (LeNet, Conv-2/4/6, the MNIST-1D nets) leave most of a CPU idle in one job; stacked, their
matrix products become batched ones that fill it. Models with batch norm or dropout are not batched
(their train-mode state is per call); `train_batch` returns None and the executor trains them one by one.
"""
from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, vmap

from domains.vision.augment import AUGMENTS
from domains.vision.config import VisionConfig
from domains.vision.data import Data, Split
from domains.vision.optim import OPTIMIZERS, Schedule
from domains.vision.train import Batches, derived_seed, eval_points
from lth_core.early_stop import EarlyStopTracker
from lth_core.job import Job, Outcome, StateDict

STATEFUL = (nn.modules.batchnorm._BatchNorm, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout)


def batchable(model: nn.Module) -> bool:
    return not any(isinstance(m, STATEFUL) for m in model.modules())


class Stack:
    """The jobs' weights as stacked leaf tensors, with stacked masks held through gradient hooks."""

    def __init__(self, model: nn.Module, jobs: list[Job], device: torch.device) -> None:
        names = [n for n, _ in model.named_parameters()]
        buffers = [n for n, _ in model.named_buffers()]
        self.params = {n: torch.stack([j.weights[n] for j in jobs]).to(device).requires_grad_() for n in names}
        self.buffers = {n: torch.stack([j.weights[n] for j in jobs]).to(device) for n in buffers}
        self.masks: dict[str, Tensor] = {}
        masked = sorted({n for j in jobs if j.mask is not None for n in j.mask})
        for n in masked:
            p = self.params[n]
            m = torch.stack([(j.mask[n] if j.mask is not None else torch.ones(p.shape[1:], dtype=torch.bool))
                             for j in jobs]).to(device=device, dtype=p.dtype)
            self.masks[n] = m
            with torch.no_grad():
                p.mul_(m)
            p.register_hook(lambda g, m=m: g * m)

    def job_state(self, i: int) -> StateDict:
        out = {n: p[i].detach().to("cpu", copy=True) for n, p in self.params.items()}
        out.update({n: b[i].detach().to("cpu", copy=True) for n, b in self.buffers.items()})
        return out

    def violations(self) -> int:
        return sum(int(((p.detach() != 0) & (self.masks[n] == 0)).sum()) for n, p in self.params.items() if n in self.masks)


def train_batch(model: nn.Module, data: Data, jobs: list[Job], c: VisionConfig, device: torch.device) -> list[Outcome] | None:
    """Train jobs sharing a schedule (start step and budget) together; None when the model can't be batched."""
    if not batchable(model) or len({(j.start_step, j.budget) for j in jobs}) != 1:
        return None
    t0 = time.perf_counter()
    model = model.to(device).train()
    stack = Stack(model, jobs, device)
    n_jobs, start, budget = len(jobs), jobs[0].start_step, jobs[0].budget
    optimizer = OPTIMIZERS.get(c.optimizer)(list(stack.params.values()), c)
    schedule = Schedule(c)
    augment = AUGMENTS.get(data.augment)
    batches = [Batches(len(data.train), c.batch_size, j.seed) for j in jobs]
    evals = eval_points(start, budget, c.eval_cadence())
    trackers = [EarlyStopTracker(val_higher_is_better=False) for _ in jobs]
    captured: list[dict[int, StateDict]] = [{} for _ in jobs]
    diverged: list[str] = ["" for _ in jobs]
    loss_sum = torch.zeros(n_jobs, device=device)
    since = 0

    def forward(params, buffers, x):
        return functional_call(model, (params, buffers), (x,))

    batched_forward = vmap(forward, in_dims=(0, 0, 0))
    shared_forward = vmap(forward, in_dims=(0, 0, None))

    @torch.no_grad()
    def evaluate(split: Split) -> tuple[Tensor, Tensor]:
        loss = torch.zeros(n_jobs, dtype=torch.float64, device=device)
        correct = torch.zeros(n_jobs, dtype=torch.long, device=device)
        for i in range(0, len(split), c.eval_batch):
            logits = shared_forward(stack.params, stack.buffers, split.x[i:i + c.eval_batch])
            y = split.y[i:i + c.eval_batch]
            loss += F.cross_entropy(logits.transpose(1, 2), y.expand(n_jobs, -1), reduction="none").double().sum(1)
            correct += (logits.argmax(2) == y).sum(1)
        n = max(len(split), 1)
        return loss / n, correct.double() / n

    def checkpoint(step: int) -> None:
        nonlocal loss_sum, since
        for i, j in enumerate(jobs):
            if step in j.capture_steps:
                captured[i][step] = stack.job_state(i)
        if step not in evals:
            return
        train_loss = (loss_sum / since).tolist() if since else [math.nan] * n_jobs
        val_loss, val_acc = evaluate(data.val)
        test_acc = evaluate(data.test)[1]
        for i in range(n_jobs):
            if since and not math.isfinite(train_loss[i]) and not diverged[i]:
                diverged[i] = f"non-finite training loss before iteration {step}"
            if not diverged[i]:
                trackers[i].observe(step, float(val_loss[i]), test=float(test_acc[i]), val_acc=float(val_acc[i]),
                                    train_loss=train_loss[i])
        loss_sum, since = torch.zeros(n_jobs, device=device), 0

    for step in range(start, budget):
        checkpoint(step)
        xs, ys = [], []
        for i, j in enumerate(jobs):
            idx = batches[i](step).to(device)
            x = data.train.x[idx]
            if data.augment != "none":
                x = augment(x, torch.Generator().manual_seed(derived_seed(j.seed, 2, step)))
            xs.append(x)
            ys.append(data.train.y[idx])
        logits = batched_forward(stack.params, stack.buffers, torch.stack(xs))
        per_job = F.cross_entropy(logits.transpose(1, 2), torch.stack(ys), reduction="none").mean(1)
        lr = schedule(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        per_job.sum().backward()  # job i's weights get exactly the gradient of job i's mean loss
        optimizer.step()
        loss_sum += per_job.detach()
        since += 1
    checkpoint(budget)

    if stack.violations():
        raise AssertionError(f"pruned weights revived in a batched training: {stack.violations()}")
    seconds = time.perf_counter() - t0
    outcomes = []
    for i, j in enumerate(jobs):
        if diverged[i]:
            out = Outcome.failed("diverged", diverged[i])
        else:
            best, last = trackers[i].best, trackers[i].curve[-1]
            out = Outcome(score=best.test, final_score=last.test, early_stop_step=best.step, val_at_stop=best.val,
                          steps=budget - start, curve=trackers[i].curve,
                          final_weights=stack.job_state(i) if j.keep_final_weights else None, captured=captured[i],
                          extras={"val_acc_at_stop": best.extras.get("val_acc", math.nan),
                                  "iterations_per_s": (budget - start) / seconds if seconds > 0 else math.nan})
        out.wall_seconds = seconds / n_jobs  # the pass is shared: each job's share
        outcomes.append(out)
    return outcomes
