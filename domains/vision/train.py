"""Our own training loop: in-memory tensors, batches by index, evaluation only at the preset's cadence.

Data order and augmentation are pure functions of (job seed, epoch / iteration), so a training that
starts at iteration k (a ticket rewound to k) sees exactly the batches the dense run saw from k on.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from domains.vision.augment import AUGMENTS
from domains.vision.config import VisionConfig
from domains.vision.data import Data, Split
from domains.vision.optim import OPTIMIZERS, Schedule
from lth_core.early_stop import EarlyStopTracker
from lth_core.errors import Diverged
from lth_core.hold import MaskHold
from lth_core.job import Job, Outcome, StateDict
from lth_core.masks import Mask


def derived_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from integers (job seed, stream, epoch ...), free of collisions in practice."""
    return int(np.random.SeedSequence([abs(int(p)) for p in parts]).generate_state(2, dtype=np.uint64)[0] >> 1)


class Batches:
    """Epoch-wise random permutations of the training set; batch `step` is found without replaying earlier ones."""

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        self.n, self.b, self.seed = n, batch_size, seed
        self.per_epoch = n // batch_size  # the last partial batch of an epoch is dropped
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.long)

    def __call__(self, step: int) -> Tensor:
        epoch, pos = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(derived_seed(self.seed, 1, epoch))
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=g)
        return self._perm[pos * self.b:(pos + 1) * self.b]


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, chunk: int) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) on a whole split."""
    was_training = model.training
    model.eval()
    loss = torch.zeros((), dtype=torch.float64, device=split.y.device)
    correct = torch.zeros((), dtype=torch.long, device=split.y.device)
    for i in range(0, len(split), chunk):
        logits = model(split.x[i:i + chunk])
        y = split.y[i:i + chunk]
        loss += F.cross_entropy(logits, y, reduction="sum").double()
        correct += (logits.argmax(1) == y).sum()
    model.train(was_training)
    n = max(len(split), 1)
    return float(loss) / n, int(correct) / n


def state_copy(model: nn.Module) -> StateDict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def eval_points(start: int, budget: int, every: int) -> set[int]:
    return {start, budget} | set(range((start // every + 1) * every, budget, every))


def train_job(model: nn.Module, data: Data, job: Job, c: VisionConfig, device: torch.device) -> Outcome:
    """Train `model` (already holding job.weights) from job.start_step to job.budget; see lth_core.job."""
    t0 = time.perf_counter()
    model.to(device).train()
    # This loop owns its optimizer, so it masks gradients in place after backward instead of through hooks.
    hold = MaskHold(model, Mask(job.mask), hooks=False) if job.mask is not None else None
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = OPTIMIZERS.get(c.optimizer)(params, c)
    schedule = Schedule(c)
    augment = AUGMENTS.get(data.augment)
    batches = Batches(len(data.train), c.batch_size, job.seed)
    evals = eval_points(job.start_step, job.budget, c.eval_cadence())
    tracker = EarlyStopTracker(val_higher_is_better=False)
    captured: dict[int, StateDict] = {}
    best_state: StateDict = {}  # the weights at the best validation point, where the test set is read
    loss_sum = torch.zeros((), device=device)
    since = 0

    def checkpoint(step: int) -> None:
        nonlocal loss_sum, since, best_state
        if step in job.capture_steps:
            captured[step] = state_copy(model)
        if step in evals:
            train_loss = float(loss_sum) / since if since else math.nan
            if not math.isfinite(train_loss) and since:
                raise Diverged(f"non-finite training loss before iteration {step}")
            val_loss, val_acc = evaluate(model, data.val, c.eval_batch)
            test = (lambda: evaluate(model, data.test, c.eval_batch)[1]) if c.test_curve else None
            if tracker.observe(step, val_loss, test=test, val_acc=val_acc, train_loss=train_loss) and not c.test_curve:
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            loss_sum, since = torch.zeros((), device=device), 0

    for step in range(job.start_step, job.budget):
        checkpoint(step)
        idx = batches(step).to(device)
        x = data.train.x.index_select(0, idx)
        if data.augment != "none":
            x = augment(x, torch.Generator().manual_seed(derived_seed(job.seed, 2, step)))
        loss = F.cross_entropy(model(x), data.train.y.index_select(0, idx))
        lr = schedule(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        for p in params:  # = zero_grad(set_to_none=True), without its per-call profiler record (~5% of a small step)
            p.grad = None
        loss.backward()
        if hold is not None:
            hold.mask_grads()
        optimizer.step()
        loss_sum += loss.detach()
        since += 1
    checkpoint(job.budget)

    if hold is not None:
        hold.assert_held()
        hold.release()
    final_weights = state_copy(model) if job.keep_final_weights else None
    if not c.test_curve:  # the test set read twice: at the end, and on the weights kept at the early-stop step
        tracker.curve[-1].test = evaluate(model, data.test, c.eval_batch)[1]
        if tracker.best is not tracker.curve[-1]:
            model.load_state_dict(best_state)
            tracker.set_best_test(evaluate(model, data.test, c.eval_batch)[1])
    best, last = tracker.best, tracker.curve[-1]
    assert best is not None and best.test is not None and last.test is not None
    seconds = time.perf_counter() - t0
    trained = job.budget - job.start_step
    return Outcome(
        score=best.test, final_score=last.test, early_stop_step=best.step, val_at_stop=best.val, steps=trained,
        curve=tracker.curve, final_weights=final_weights, captured=captured,
        extras={"val_acc_at_stop": best.extras.get("val_acc", math.nan),
                "iterations_per_s": trained / seconds if seconds > 0 else math.nan},
    )
