"""Training the jobs of one level together: weights stacked along a job axis, one forward/backward for all.

Each job keeps its own weights, mask, data order (its order seed) and augmentation; one optimizer steps the
stacked tensors, which is the same arithmetic as one optimizer per job because SGD and Adam(W) act
elementwise. Each job runs under its own `lth_core.protocol.JobProtocol` (grid, early stopping, captures,
best state, test reads); its `Trainee` is a view of job i's slice of the stack, and the jobs' evaluations
share one stacked pass over a split (`StackEval`).

A model class with a registered stacked forward (`domains/vision/stacked_forward.py`) runs as plain batched
matrix products. Any other model is, on a GPU, stacked through `vmap(functional_call)` when it has no batch
norm (whose train-mode statistics are per call); on a CPU, and for batch norm, its jobs train one after
another with the ordinary loop, on this pass's thread: measured here, vmap halves a Conv-2 job's speed on a
CPU, and the executor's passes side by side already fill the cores. Models with dropout draw from the global
RNG, so they are never trained here (`train_batch` returns None; the executor trains them one by one).
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
from domains.vision.optim import OPTIMIZERS, Schedule, step_without_wrappers
from domains.vision.stacked_forward import stacked_forward
from domains.vision.train import Batches, derived_seed, train_job
from lth_core.errors import Diverged
from lth_core.job import Job, Outcome, StateDict
from lth_core.protocol import EvalGrid, JobProtocol, Trainee

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
    optimizer, so the hooks a foreign loop needs (lth_core.mask_hold) would only add an allocation per tensor.
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
        if self.masks:  # (foreach ops refuse empty lists: a stack of dense jobs has no mask)
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

    def job_state(self, i: int) -> StateDict:
        """Job i's state dict in the model's own layout: a detached CPU copy."""
        out = {
            n: (p[i].t() if n in self.transposed else p[i]).detach().to("cpu", copy=True).contiguous()
            for n, p in self.params.items()
        }
        out.update({n: b[i].detach().to("cpu", copy=True) for n, b in self.buffers.items()})
        return out

    @torch.no_grad()
    def load_job(self, i: int, state: StateDict) -> None:
        """Write a state dict (the model's layout) into job i's slice."""
        for n, p in self.params.items():
            p[i].copy_(state[n].t() if n in self.transposed else state[n])
        for n, b in self.buffers.items():
            b[i].copy_(state[n])

    def select(self, jobs: list[int] | None) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """(params, buffers) of these jobs only (all, without a copy, for None)."""
        if jobs is None:
            return self.params, self.buffers
        idx = torch.tensor(jobs, device=next(iter(self.params.values())).device)
        return (
            {n: p.detach().index_select(0, idx) for n, p in self.params.items()},
            {n: b.index_select(0, idx) for n, b in self.buffers.items()},
        )

    def violations(self, jobs: list[int]) -> int:
        """Pruned entries that are not zero in these jobs' weights."""
        return sum(int(((self.params[n].detach()[jobs] != 0) & (m[jobs] == 0)).sum()) for n, m in self.masks.items())


Forward = Callable[[dict[str, Tensor], dict[str, Tensor], Tensor, bool], Tensor]


def make_forward(model: nn.Module) -> Forward:
    """(params, buffers, x, shared) -> logits [J, B, classes]; x is [J, B, ...], or [B, ...] shared by every job."""
    spec = stacked_forward(model)
    if spec is not None:
        return lambda params, buffers, x, shared: spec.forward(model, params, x, shared)

    def one(params, buffers, x):
        return functional_call(model, (params, buffers), (x,))

    per_job, shared_input = vmap(one, in_dims=(0, 0, 0)), vmap(one, in_dims=(0, 0, None))
    return lambda params, buffers, x, shared: (shared_input if shared else per_job)(params, buffers, x)


class StackEval:
    """(loss, accuracy) of the stacked jobs on a split: whichever jobs lack a current value get it in one
    stacked pass, kept until their weights change. A validation point thus costs one pass for all jobs, and
    the test read on one job's early-stop weights a pass over that job alone."""

    def __init__(self, stack: Stack, forward: Forward, splits: dict[str, Split], chunk: int) -> None:
        self.stack, self.forward, self.splits, self.chunk = stack, forward, splits, chunk
        self.n_jobs = len(next(iter(stack.params.values())))
        self.active = set(range(self.n_jobs))  # jobs still training or finishing (others are never evaluated)
        self.version = [0] * self.n_jobs
        self.cache: dict[str, dict[int, tuple[int, float, float]]] = {name: {} for name in splits}

    def stepped(self) -> None:
        self.version = [v + 1 for v in self.version]

    def changed(self, job: int) -> None:
        self.version[job] += 1

    def get(self, split: str, job: int) -> tuple[float, float]:
        kept = self.cache[split]
        if kept.get(job, (-1,))[0] != self.version[job]:
            stale = sorted(j for j in self.active | {job} if kept.get(j, (-1,))[0] != self.version[j])
            losses, accs = self.compute(self.splits[split], stale)
            kept.update({j: (self.version[j], loss, acc) for j, loss, acc in zip(stale, losses, accs)})
        return kept[job][1], kept[job][2]

    @torch.no_grad()
    def compute(self, split: Split, jobs: list[int]) -> tuple[list[float], list[float]]:
        params, buffers = self.stack.select(None if len(jobs) == self.n_jobs else jobs)
        device = split.y.device
        loss = torch.zeros(len(jobs), dtype=torch.float64, device=device)
        correct = torch.zeros(len(jobs), dtype=torch.long, device=device)
        for i in range(0, len(split), self.chunk):
            logits = self.forward(params, buffers, split.x[i : i + self.chunk], True)
            y = split.y[i : i + self.chunk]
            loss += F.cross_entropy(logits.transpose(1, 2), y.expand(len(jobs), -1), reduction="none").double().sum(1)
            correct += (logits.argmax(2) == y).sum(1)
        n = max(len(split), 1)
        return (loss / n).tolist(), (correct.double() / n).tolist()


class StackedTrainee(Trainee):
    """The protocol's view of job i of a stack: its slice's validation loss (and accuracy), test accuracy."""

    def __init__(self, stack: Stack, evals: StackEval, job: int) -> None:
        self.stack, self.evals, self.job = stack, evals, job

    def validate(self) -> tuple[float, dict[str, float]]:
        val_loss, val_acc = self.evals.get("val", self.job)
        return val_loss, {"val_acc": val_acc}

    def test(self) -> float:
        return self.evals.get("test", self.job)[1]

    def weights(self) -> StateDict:
        return self.stack.job_state(self.job)

    def load_weights(self, weights: StateDict) -> None:
        self.stack.load_job(self.job, weights)
        self.evals.changed(self.job)


def train_batch(
    model: nn.Module, data: Data, jobs: list[Job], c: VisionConfig, device: torch.device
) -> list[Outcome] | None:
    """Train jobs sharing a schedule (start step and budget) together; None when that can't be done here.
    A job whose training diverges gets a 'diverged' outcome; the others go on."""
    if not thread_safe(model) or len({(j.start_step, j.budget) for j in jobs}) != 1:
        return None
    spec = stacked_forward(model)
    if spec is None and not vmap_pays(model, device):
        return one_by_one(model, data, jobs, c, device)
    t0 = time.perf_counter()
    model = model.to(device).train()
    stack = Stack(model, jobs, device, spec.transposed(model) if spec else set())
    forward = make_forward(model)
    evals = StackEval(stack, forward, {"val": data.val, "test": data.test}, c.eval_batch)
    n_jobs, start, budget = len(jobs), jobs[0].start_step, jobs[0].budget
    optimizer = OPTIMIZERS.get(c.optimizer)(list(stack.params.values()), c)
    schedule = Schedule(c)
    augment = AUGMENTS.get(data.augment)
    batches = [Batches(len(data.train), c.batch_size, j.order_seed) for j in jobs]
    grid = EvalGrid(c.eval_cadence())
    live = {
        i: JobProtocol(j, StackedTrainee(stack, evals, i), grid, val_higher_is_better=False, test_curve=c.test_curve)
        for i, j in enumerate(jobs)
    }
    diverged: dict[int, str] = {}
    finished: dict[int, Outcome] = {}  # jobs done, an early bird's at its declared point (its slice then idles)
    stopped: dict[int, JobProtocol] = {}
    loss_sum = torch.zeros(n_jobs, device=device)  # each job's training loss since its last evaluation
    since = [start] * n_jobs  # the step of each job's last evaluation

    def reach(step: int) -> None:
        losses: list[float] | None = None
        for i, protocol in list(live.items()):
            if not protocol.due(step):
                continue
            losses = loss_sum.tolist() if losses is None else losses
            trained = step - since[i]
            try:
                if protocol.reached(step, train_loss=losses[i] / trained if trained else None):
                    loss_sum[i], since[i] = 0.0, step
            except Diverged as e:
                diverged[i] = str(e)
                del live[i]
                evals.active.discard(i)
                continue
            if protocol.stopped:
                finished[i] = protocol.finish(step)
                stopped[i] = live.pop(i)
                evals.active.discard(i)

    for step in range(start, budget):
        reach(step)
        if not live:
            break
        idx = torch.cat([b(step) for b in batches]).to(device)
        x = data.train.x.index_select(0, idx).view(n_jobs, -1, *data.train.x.shape[1:])
        if data.augment != "none":
            x = torch.stack(
                [
                    augment(x[i], torch.Generator().manual_seed(derived_seed(j.order_seed, 2, step)))
                    for i, j in enumerate(jobs)
                ]
            )
        logits = forward(stack.params, stack.buffers, x, False)
        per_job = (
            F.cross_entropy(logits.flatten(0, 1), data.train.y.index_select(0, idx), reduction="none")
            .view(n_jobs, -1)
            .mean(1)
        )
        lr = schedule(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        for p in stack.params.values():
            p.grad = None
        per_job.sum().backward()  # job i's weights get exactly the gradient of job i's mean loss
        stack.mask_grads()
        step_without_wrappers(optimizer)
        evals.stepped()
        loss_sum += per_job.detach()
    if live:
        reach(budget)

    # a broken stacked mask is the job's error row, never retried one by one (which would hide it)
    revived = {i: n for i in sorted(live) if (n := stack.violations([i]))}
    for i, protocol in live.items():
        if i in revived:
            continue
        finished[i] = protocol.finish(budget)
        evals.active.discard(i)
    seconds = time.perf_counter() - t0
    outcomes = []
    for i in range(n_jobs):
        if i in diverged:
            out = Outcome.failed("diverged", diverged[i])
        elif i in revived:
            out = Outcome.failed("failed", f"mask violated: {revived[i]} pruned weights revived in a batched training")
        else:
            out, best = finished[i], (live.get(i) or stopped[i]).tracker.best
            assert best is not None
            out.extras = {
                "val_acc_at_stop": best.extras.get("val_acc", math.nan),
                "iterations_per_s": out.steps / seconds if seconds > 0 else math.nan,
            }
        out.wall_seconds = seconds / n_jobs  # the pass is shared: each job's share
        outcomes.append(out)
    return outcomes
