"""One job: fairseq's Trainer from `job.start_step` to `job.budget` updates under the job's mask.

The mask is held by `lth_core.hold.MaskHold`: pruned entries are zeroed on the model's Parameters and
each masked Parameter's gradient is multiplied by its mask in a hook on the Parameter itself, so
fairseq's Adam (built lazily by the Trainer, and rebuilt whenever the Trainer loads a checkpoint)
never moves a pruned weight, and the embedding fairseq ties to the output projection is one Parameter
with one hook. Validation cross-entropy at every `eval_every` updates chooses the early-stopping step;
the weights there are kept in memory and the test metric (BLEU / perplexity) is read on them once,
after training, so nothing selects on test data.
"""
from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path

import torch
from tqdm.auto import tqdm

from domains.nlp.fairseq_quiet import fairseq_warnings_quiet
from lth_core.early_stop import EarlyStopTracker
from lth_core.errors import Diverged
from lth_core.hold import MaskHold
from lth_core.job import Job, Outcome, StateDict
from lth_core.masks import Mask


def cpu_state(model: torch.nn.Module) -> StateDict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def eval_steps(start: int, budget: int, every: int) -> list[int]:
    steps = list(range((start // every + 1) * every, budget, every))
    return steps + [budget] if budget > start else steps


def run_job(session, job: Job, scratch_root: Path) -> Outcome:
    with fairseq_warnings_quiet():
        return _run_job(session, job, scratch_root)


def _run_job(session, job: Job, scratch_root: Path) -> Outcome:
    from fairseq.data import iterators
    from fairseq.logging import metrics
    from fairseq.trainer import Trainer

    from domains.nlp.tasks import TASKS, loss_on

    config = session.config
    spec = TASKS.get(config.task)
    if config.threads:
        torch.set_num_threads(config.threads)
    model = session.build_model(job.seed)
    model.load_state_dict(job.weights)
    model.to(session.device)
    hold = MaskHold(model, Mask(job.mask)) if job.mask is not None else None

    scratch_root.mkdir(parents=True, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="job-", dir=scratch_root)  # where fairseq would write crash.pt
    metrics.reset()
    try:
        cfg = session.job_cfg(job.seed, scratch)
        trainer = Trainer(cfg, session.task, model, session.criterion)
        trainer.set_num_updates(job.start_step)  # builds Adam and puts the schedule at the rewind point
        tracker = EarlyStopTracker(val_higher_is_better=spec.metric.val_higher_is_better)
        captured: dict[int, StateDict] = {}
        best_state: StateDict | None = None
        if job.start_step in job.capture_steps:
            captured[job.start_step] = cpu_state(model)
        evals = set(eval_steps(job.start_step, job.budget, config.eval_interval()))
        step, epoch = job.start_step, 1
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
                loss = float(log.get("loss", math.nan))
                if not math.isfinite(loss):
                    raise Diverged(f"training loss {loss} at update {trainer.get_num_updates()}")
                step = trainer.get_num_updates()
                bar.update(1)
                if step in job.capture_steps:
                    captured[step] = cpu_state(model)
                if step in evals:
                    val = loss_on(session, model, "valid")
                    if not math.isfinite(val):
                        raise Diverged(f"validation loss {val} at update {step}")
                    if tracker.observe(step, val, train_loss=loss * math.log(2)):
                        best_state = cpu_state(model)
                    bar.set_postfix(val=f"{val:.3f}")
                if step >= job.budget:
                    break
            if step == at_epoch_start:
                raise RuntimeError("a whole pass over the training split made no update (no batch fits?)")
            epoch += 1
        bar.close()
        if hold is not None:
            hold.assert_held()
        final_weights = cpu_state(model) if job.keep_final_weights else None
        final_score = spec.score_test(session, model)
        best = tracker.best
        if best is None:  # budget == start_step: nothing trained
            val = loss_on(session, model, "valid")
            tracker.observe(step, val)
            best = tracker.best
        if best.step == step or best_state is None:
            score = final_score
        else:
            model.load_state_dict(best_state)
            score = spec.score_test(session, model)
        tracker.set_best_test(score)
        tracker.curve[-1].test = final_score  # the last evaluation is at the end of training
        return Outcome(score=score, final_score=final_score, early_stop_step=best.step, val_at_stop=best.val,
                       steps=step - job.start_step, curve=tracker.curve, final_weights=final_weights,
                       captured=captured,
                       extras={"final_val": tracker.curve[-1].val, "metric_signature": spec.signature(config)})
    finally:
        if hold is not None:
            hold.release()
        shutil.rmtree(scratch, ignore_errors=True)
