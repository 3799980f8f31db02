"""One job: fairseq's own Trainer from `job.start_step` to `job.budget` updates, under the job's mask and the
engine's `JobProtocol` (evaluation grid, early stopping, captures, best state, test reads).

The mask is held by `lth_core.mask_hold.MaskHold`: pruned entries are zeroed on the model's Parameters and
each masked Parameter's gradient is multiplied by its mask in a hook on the Parameter itself, so
fairseq's Adam (built lazily by the Trainer, and rebuilt whenever the Trainer loads a checkpoint)
never moves a pruned weight, and the embedding fairseq ties to the output projection is one Parameter
with one hook. The loop only adds what is fairseq's own: its FloatingPointError on non-finite gradients.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from domains.nlp.compact import fit
from domains.nlp.fairseq_quiet import fairseq_warnings_quiet
from domains.nlp.tasks import TASKS, TaskSpec, loss_on
from lth_core.errors import Diverged
from lth_core.job import Job, Outcome, StateDict
from lth_core.mask_hold import GradSums, MaskHold
from lth_core.masks import Mask
from lth_core.protocol import EvalGrid, JobProtocol, Trainee


def cpu_state(model: nn.Module) -> StateDict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


class NLPTrainee(Trainee):
    """The protocol's view of a fairseq model in training: validation cross-entropy, BLEU / perplexity, weights."""

    def __init__(self, session, spec: TaskSpec, model: nn.Module) -> None:
        self.session, self.spec, self.model = session, spec, model

    def validate(self) -> tuple[float, dict[str, float]]:
        return loss_on(self.session, self.model, "valid"), {}

    def test(self) -> float:
        return self.spec.score_test(self.session, self.model)

    def weights(self) -> StateDict:
        return cpu_state(self.model)

    def load_weights(self, weights: StateDict) -> None:
        self.model.load_state_dict(weights)


def run_job(session, job: Job, scratch_root: Path) -> Outcome:
    with fairseq_warnings_quiet():
        return _run_job(session, job, scratch_root)


def _run_job(session, job: Job, scratch_root: Path) -> Outcome:
    from fairseq.data import iterators
    from fairseq.logging import metrics
    from fairseq.trainer import Trainer

    config, spec = session.config, TASKS.get(session.config.task)
    if config.threads:
        torch.set_num_threads(config.threads)
    model = fit(session.build_model(job.seed), job.weights)  # a compacted ticket's weights: cut to their shapes
    model.to(session.device)
    hold = MaskHold(model, Mask(job.mask)) if job.mask is not None else None
    sums = GradSums.for_job(model, job)  # fairseq's gradients before its division by the sample size
    scratch_root.mkdir(parents=True, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="job-", dir=scratch_root)  # where fairseq would write crash.pt
    metrics.reset()
    try:
        trainer = Trainer(session.job_cfg(job.order_seed, scratch), session.task, model, session.criterion)
        trainer.set_num_updates(job.start_step)  # builds Adam and puts the schedule at the rewind point
        protocol = JobProtocol(
            job,
            NLPTrainee(session, spec, model),
            EvalGrid(config.eval_interval(), at_start=False),
            val_higher_is_better=spec.metric.val_higher_is_better,
        )
        step, epoch, loss_sum, since = job.start_step, 1, 0.0, 0
        protocol.reached(step)  # a capture at the start step
        bar = tqdm(total=job.budget - job.start_step, desc=job.key, leave=False, disable=None)
        while step < job.budget:
            epoch_itr = trainer.get_train_iterator(epoch, load_dataset=False, disable_iterator_cache=True)
            itr = iterators.GroupedIterator(epoch_itr.next_epoch_itr(shuffle=True), config.update_freq)
            trainer.begin_epoch(epoch)
            at_epoch_start = step
            for samples in itr:
                try:
                    log = trainer.train_step(samples)
                except Exception as e:  # fairseq's own NaN re-run can fail on top of the FloatingPointError
                    cause = e if isinstance(e, FloatingPointError) else e.__context__
                    if isinstance(cause, FloatingPointError):
                        raise Diverged(f"non-finite gradients at update {step}: {cause}") from None
                    raise
                if log is None:  # an overflow (amp) or OOM skipped this batch without an update
                    continue
                step, since = trainer.get_num_updates(), since + 1
                loss_sum += float(log.get("loss", math.nan)) * math.log(2)  # fairseq logs base 2; nats
                bar.update(1)
                if protocol.due(step) and protocol.reached(step, train_loss=loss_sum / since):
                    loss_sum, since = 0.0, 0
                    bar.set_postfix(val=f"{protocol.tracker.curve[-1].val:.3f}")
                if step >= job.budget or protocol.stopped:  # early bird: the watched masks are declared
                    break
            if step == at_epoch_start:
                raise RuntimeError("a whole pass over the training split made no update (no batch fits?)")
            if protocol.stopped:
                break
            epoch += 1
        bar.close()
        if hold is not None:
            hold.assert_held()
        grad_sums = sums.take() if sums is not None else None
        out = protocol.finish(step, extras={"metric_signature": spec.signature(config)})
        out.extras["final_val"] = out.curve[-1].val
        out.grad_sums = grad_sums
        return out
    finally:
        if hold is not None:
            hold.release()
        if sums is not None:
            sums.take()
        shutil.rmtree(scratch, ignore_errors=True)
