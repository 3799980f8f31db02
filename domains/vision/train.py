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
from domains.vision.optim import OPTIMIZERS, Schedule, step_without_wrappers
from lth_core.job import Job, Outcome, StateDict
from lth_core.mask_hold import GradSums, MaskHold
from lth_core.masks import Mask
from lth_core.protocol import EvalGrid, JobProtocol, Trainee
from lth_core.sparse_choice import KernelChoice
from lth_core.sparse_kernels import swap_linears


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
        return self._perm[pos * self.b : (pos + 1) * self.b]


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, chunk: int) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) on a whole split."""
    was_training = model.training
    model.eval()
    loss = torch.zeros((), dtype=torch.float64, device=split.y.device)
    correct = torch.zeros((), dtype=torch.long, device=split.y.device)
    for i in range(0, len(split), chunk):
        logits = model(split.x[i : i + chunk])
        y = split.y[i : i + chunk]
        loss += F.cross_entropy(logits, y, reduction="sum").double()
        correct += (logits.argmax(1) == y).sum()
    model.train(was_training)
    n = max(len(split), 1)
    return float(loss) / n, int(correct) / n


def state_copy(model: nn.Module) -> StateDict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


class VisionTrainee(Trainee):
    """The protocol's view of one model in training: validation loss (and accuracy), test accuracy, weights."""

    def __init__(self, model: nn.Module, data: Data, eval_batch: int) -> None:
        self.model, self.data, self.eval_batch = model, data, eval_batch

    def validate(self) -> tuple[float, dict[str, float]]:
        val_loss, val_acc = evaluate(self.model, self.data.val, self.eval_batch)
        return val_loss, {"val_acc": val_acc}

    def test(self) -> float:
        return evaluate(self.model, self.data.test, self.eval_batch)[1]

    def weights(self) -> StateDict:
        return state_copy(self.model)

    def load_weights(self, weights: StateDict) -> None:
        self.model.load_state_dict(weights)


def train_job(model: nn.Module, data: Data, job: Job, c: VisionConfig, device: torch.device) -> Outcome:
    """Train `model` (already holding job.weights) from job.start_step to job.budget under the engine's protocol."""
    t0 = time.perf_counter()
    model.to(device).train()
    # This loop owns its optimizer, so it masks gradients in place after backward instead of through hooks.
    hold = MaskHold(model, Mask(job.mask), hooks=False) if job.mask is not None else None
    sums = GradSums.for_job(model, job)
    # --sparse: masked Linear layers swapped for CSR ones after the hold zeroed their pruned entries, before the
    # optimizer is built (its state then covers kept weights only); restored before the hold is checked.
    choice = KernelChoice(c.sparse if sums is None else "never", c.batch_size)
    swap = swap_linears(model, job.mask, choice) if job.mask is not None and choice.mode != "never" else None
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = OPTIMIZERS.get(c.optimizer)(params, c)
    schedule = Schedule(c)
    augment = AUGMENTS.get(data.augment)
    batches = Batches(len(data.train), c.batch_size, job.order_seed)
    protocol = JobProtocol(
        job,
        VisionTrainee(model, data, c.eval_batch),
        EvalGrid(c.eval_cadence()),
        val_higher_is_better=False,
        test_curve=c.test_curve,
    )
    loss_sum = torch.zeros((), device=device)
    since = 0
    gammas = [m.weight for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine]

    end = job.budget
    for step in range(job.start_step, job.budget):
        if protocol.due(step):
            protocol.reached(step, train_loss=float(loss_sum) / since if since else None)
            loss_sum, since = torch.zeros((), device=device), 0
            if protocol.stopped:  # early bird: the watched masks are declared; the training ends here
                end = step
                break
        idx = batches(step).to(device)
        x = data.train.x.index_select(0, idx)
        if data.augment != "none":
            x = augment(x, torch.Generator().manual_seed(derived_seed(job.order_seed, 2, step)))
        ce = F.cross_entropy(model(x), data.train.y.index_select(0, idx))
        loss = ce  # the training loss reported (train_loss) is the cross-entropy alone
        if c.bn_l1 and gammas:  # network slimming's sparsity penalty on the BatchNorm scales
            loss = ce + c.bn_l1 * torch.stack([g.abs().sum() for g in gammas]).sum()
        lr = schedule(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        for p in params:  # = zero_grad(set_to_none=True), without its per-call profiler record (~5% of a small step)
            p.grad = None
        loss.backward()
        if hold is not None:
            hold.mask_grads()
        step_without_wrappers(optimizer)
        loss_sum += ce.detach()
        since += 1
    if end == job.budget:
        protocol.reached(job.budget, train_loss=float(loss_sum) / since if since else None)

    if swap is not None:
        swap.restore()
    if hold is not None:
        hold.assert_held()
        hold.release()
    seconds = time.perf_counter() - t0
    trained = end - job.start_step
    grad_sums = sums.take() if sums is not None else None
    out = protocol.finish(end)
    out.grad_sums = grad_sums
    best = protocol.tracker.best
    assert best is not None
    out.extras = {
        "val_acc_at_stop": best.extras.get("val_acc", math.nan),
        "iterations_per_s": trained / seconds if seconds > 0 else math.nan,
    }
    if swap is not None:  # which kernel trained each masked Linear weight (auto: with its measured csr/dense ratio)
        out.extras["sparse_kernels"] = choice.describe(swap.kernels)
    return out
