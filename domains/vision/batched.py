"""Training the jobs of one level together: weights stacked along a job axis, one forward/backward for all.

Each job keeps its own weights, mask, data order (its seed) and augmentation; one optimizer steps the stacked
tensors, which is the same arithmetic as one optimizer per job because SGD and Adam(W) act elementwise.
A model class with a registered stacked forward (`domains/vision/stacked.py`) runs as plain batched matrix
products. Any other model is, on a GPU, stacked through `vmap(functional_call)` when it has no batch norm
(whose train-mode statistics are per call); on a CPU, and for batch norm, its jobs train one after another
with the ordinary loop, on this pass's thread: measured here, vmap halves a Conv-2 job's speed on a CPU, and
the executor's passes side by side already fill the cores. Models with dropout draw from the global RNG, so
they are never trained here (`train_batch` returns None; the executor trains them one by one).
"""
from __future__ import annotations

import math
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, vmap

from domains.vision.augment import AUGMENTS
from domains.vision.config import VisionConfig
from domains.vision.data import Data, Split
from domains.vision.optim import OPTIMIZERS, Schedule
from domains.vision.stacked import stacked_forward
from domains.vision.train import Batches, derived_seed, train_job
from lth_core.early_stop import EarlyStopTracker
from lth_core.errors import Diverged
from lth_core.job import Job, Outcome, StateDict
from lth_core.protocol import EvalGrid

PER_CALL_STATE = (nn.modules.batchnorm._BatchNorm,)
GLOBAL_RNG = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.FeatureAlphaDropout)


def batchable(model: nn.Module) -> bool:
    """Whether jobs of this model can share one vmapped forward (no per-call train-mode state, no dropout)."""
    return not any(isinstance(m, PER_CALL_STATE + GLOBAL_RNG) for m in model.modules())


def thread_safe(model: nn.Module) -> bool:
    """Whether training it leaves the global RNG alone (so passes may run side by side on threads)."""
    return not any(isinstance(m, GLOBAL_RNG) for m in model.modules())


def vmap_pays(model: nn.Module, device: torch.device) -> bool:
    """Stack a model with no registered stacked forward through vmap? On a GPU yes; on a CPU it is slower than
    the ordinary loop (measured: half the speed for Conv-2), and batch norm can't share a vmapped pass."""
    return device.type != "cpu" and batchable(model)


def one_by_one(model: nn.Module, data: Data, jobs: list[Job], c: VisionConfig, device: torch.device) -> list[Outcome]:
    """The jobs trained in turn by the ordinary loop, on one model instance reloaded with each job's weights."""
    outcomes = []
    for job in jobs:
        t0 = time.perf_counter()
        model.load_state_dict(job.weights)
        try:
            out = train_job(model, data, job, c, device)
        except Diverged as e:
            out = Outcome.failed("diverged", str(e))
        out.wall_seconds = time.perf_counter() - t0
        outcomes.append(out)
    return outcomes


class Stack:
    """The jobs' weights as stacked leaf tensors (some 2-D weights stored transposed), with stacked masks.

    Masks are applied to the gradients in place after each backward (`mask_grads`): this loop owns its
    optimizer, so the hooks a foreign loop needs (lth_core.hold) would only add an allocation per tensor.
    """

    def __init__(self, model: nn.Module, jobs: list[Job], device: torch.device, transposed: set[str]) -> None:
        self.transposed = transposed
        names = [n for n, _ in model.named_parameters()]
        buffers = [n for n, _ in model.named_buffers()]
        self.params = {n: self._stack([j.weights[n] for j in jobs], n, device).requires_grad_() for n in names}
        self.buffers = {n: torch.stack([j.weights[n] for j in jobs]).to(device) for n in buffers}
        self.masks: dict[str, Tensor] = {}
        masked = sorted({n for j in jobs if j.mask is not None for n in j.mask})
        for n in masked:
            shape = jobs[0].weights[n].shape
            m = [(j.mask[n] if j.mask is not None else torch.ones(shape, dtype=torch.bool)).float() for j in jobs]
            self.masks[n] = self._stack(m, n, device).to(self.params[n].dtype)
        with torch.no_grad():
            torch._foreach_mul_([self.params[n] for n in self.masks], list(self.masks.values()))

    def _stack(self, tensors: list[Tensor], name: str, device: torch.device) -> Tensor:
        if name in self.transposed:
            return torch.stack([t.t() for t in tensors]).contiguous().to(device)
        return torch.stack(tensors).to(device)

    def mask_grads(self) -> None:
        grads = [self.params[n].grad for n in self.masks]
        if grads:
            torch._foreach_mul_(grads, list(self.masks.values()))

    def job_state(self, i: int, params: dict[str, Tensor] | None = None) -> StateDict:
        params = self.params if params is None else params
        out = {n: (p[i].t() if n in self.transposed else p[i]).detach().to("cpu", copy=True).contiguous()
               for n, p in params.items()}
        out.update({n: b[i].detach().to("cpu", copy=True) for n, b in self.buffers.items()})
        return out

    def snapshot(self) -> dict[str, Tensor]:
        return {n: p.detach().clone() for n, p in self.params.items()}

    @torch.no_grad()
    def keep(self, into: dict[str, Tensor], jobs: list[int]) -> None:
        """Copy these jobs' current weights into a snapshot (their new best on validation)."""
        for n, p in self.params.items():
            into[n][jobs] = p[jobs]

    def violations(self, params: dict[str, Tensor] | None = None) -> int:
        params = self.params if params is None else params
        return sum(int(((params[n].detach() != 0) & (m == 0)).sum()) for n, m in self.masks.items())


Forward = Callable[[dict[str, Tensor], Tensor, bool], Tensor]


def make_forward(model: nn.Module, stack: Stack) -> Forward:
    """(params, x, shared) -> logits [J, B, classes]; x is [J, B, ...], or [B, ...] shared by every job."""
    spec = stacked_forward(model)
    if spec is not None:
        return lambda params, x, shared: spec.forward(model, params, x, shared)

    def one(params, buffers, x):
        return functional_call(model, (params, buffers), (x,))

    per_job, shared_input = vmap(one, in_dims=(0, 0, 0)), vmap(one, in_dims=(0, 0, None))
    return lambda params, x, shared: (shared_input if shared else per_job)(params, stack.buffers, x)


def train_batch(model: nn.Module, data: Data, jobs: list[Job], c: VisionConfig, device: torch.device) -> list[Outcome] | None:
    """Train jobs sharing a schedule (start step and budget) together; None when that can't be done here."""
    if not thread_safe(model) or len({(j.start_step, j.budget) for j in jobs}) != 1:
        return None
    spec = stacked_forward(model)
    if spec is None and not vmap_pays(model, device):
        return one_by_one(model, data, jobs, c, device)
    t0 = time.perf_counter()
    model = model.to(device).train()
    stack = Stack(model, jobs, device, spec.transposed(model) if spec else set())
    forward = make_forward(model, stack)
    n_jobs, start, budget = len(jobs), jobs[0].start_step, jobs[0].budget
    optimizer = OPTIMIZERS.get(c.optimizer)(list(stack.params.values()), c)
    schedule = Schedule(c)
    augment = AUGMENTS.get(data.augment)
    batches = [Batches(len(data.train), c.batch_size, j.seed) for j in jobs]
    evals = set(EvalGrid(c.eval_cadence()).points(start, budget))
    trackers = [EarlyStopTracker(val_higher_is_better=False) for _ in jobs]
    captured: list[dict[int, StateDict]] = [{} for _ in jobs]
    diverged: list[str] = ["" for _ in jobs]
    best = stack.snapshot()  # each job's weights at its best validation point, for the test read there
    loss_sum = torch.zeros(n_jobs, device=device)
    since = 0

    @torch.no_grad()
    def evaluate(split: Split, params: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        loss = torch.zeros(n_jobs, dtype=torch.float64, device=device)
        correct = torch.zeros(n_jobs, dtype=torch.long, device=device)
        for i in range(0, len(split), c.eval_batch):
            logits = forward(params, split.x[i:i + c.eval_batch], True)
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
        val_loss, val_acc = evaluate(data.val, stack.params)
        test_acc = evaluate(data.test, stack.params)[1].tolist() if c.test_curve else [None] * n_jobs
        improved = []
        for i in range(n_jobs):
            if since and not math.isfinite(train_loss[i]) and not diverged[i]:
                diverged[i] = f"non-finite training loss before iteration {step}"
            if not diverged[i] and trackers[i].observe(step, float(val_loss[i]), test=test_acc[i],
                                                       val_acc=float(val_acc[i]), train_loss=train_loss[i]):
                improved.append(i)
        if improved and not c.test_curve:
            stack.keep(best, improved)
        loss_sum, since = torch.zeros(n_jobs, device=device), 0

    for step in range(start, budget):
        checkpoint(step)
        idx = torch.cat([b(step) for b in batches]).to(device)
        x = data.train.x.index_select(0, idx).view(n_jobs, -1, *data.train.x.shape[1:])
        if data.augment != "none":
            x = torch.stack([augment(x[i], torch.Generator().manual_seed(derived_seed(j.seed, 2, step)))
                             for i, j in enumerate(jobs)])
        logits = forward(stack.params, x, False)
        per_job = F.cross_entropy(logits.flatten(0, 1), data.train.y.index_select(0, idx),
                                  reduction="none").view(n_jobs, -1).mean(1)
        lr = schedule(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        for p in stack.params.values():
            p.grad = None
        per_job.sum().backward()  # job i's weights get exactly the gradient of job i's mean loss
        stack.mask_grads()
        optimizer.step()
        loss_sum += per_job.detach()
        since += 1
    checkpoint(budget)

    if stack.violations():
        raise AssertionError(f"pruned weights revived in a batched training: {stack.violations()}")
    if not c.test_curve:  # test read twice per job: at its early-stop point and at the end
        final_test = evaluate(data.test, stack.params)[1].tolist()
        best_test = evaluate(data.test, best)[1].tolist()
        for i, tracker in enumerate(trackers):
            if not diverged[i]:
                tracker.curve[-1].test = final_test[i]
                tracker.set_best_test(best_test[i])
    seconds = time.perf_counter() - t0
    outcomes = []
    for i, j in enumerate(jobs):
        if diverged[i]:
            out = Outcome.failed("diverged", diverged[i])
        else:
            top, last = trackers[i].best, trackers[i].curve[-1]
            out = Outcome(score=top.test, final_score=last.test, early_stop_step=top.step, val_at_stop=top.val,
                          steps=budget - start, curve=trackers[i].curve,
                          final_weights=stack.job_state(i) if j.keep_final_weights else None, captured=captured[i],
                          extras={"val_acc_at_stop": top.extras.get("val_acc", math.nan),
                                  "iterations_per_s": (budget - start) / seconds if seconds > 0 else math.nan})
        out.wall_seconds = seconds / n_jobs  # the pass is shared: each job's share
        outcomes.append(out)
    return outcomes
