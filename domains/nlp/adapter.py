"""NLP: fairseq Transformers trained by fairseq's own Trainer, scored by sacreBLEU; LSTM language models by perplexity.

Data is tokenised (sentencepiece learned on the training split) and binarised by fairseq once per
data identity, in a cache shared by all jobs and workers (prepare.py). Each job builds the model
from fairseq's task and dictionaries, loads the job's weights, holds the mask with MaskHold and
trains with `fairseq.trainer.Trainer` (label-smoothed cross-entropy, Adam, inverse-sqrt warm-up);
see train.py. Prunable: attention projections and feed-forward weights (LSTM: the recurrent
weights); embeddings and the output projection with --prune-embeddings, where a tied embedding is
one tensor of the mask under its first name. Structure: attention heads and FFN neurons (models.py); compact:
those removed (compact.py), and `train` / `evaluate` take a compacted model's weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from torch import Tensor, nn

from domains.nlp.config import NLPConfig
from domains.nlp.presets import PRESETS
from lth_core.adapter import SPLITS, Adapter, Metric
from lth_core.errors import UsageError
from lth_core.job import Job, Outcome, StateDict
from lth_core.structure import GroupFamily


class NLPAdapter(Adapter):
    domain = "nlp"
    packages = ("fairseq-fixed", "sacrebleu", "sentencepiece")
    Config = NLPConfig
    presets = PRESETS
    refusals = {
        "input_shape": "its inputs are discrete tokens (an all-ones input has no meaning before the embedding, whose "
        "table would get no flow) and attention's softmax and layer norm break SynFlow's path-flow argument; "
        "use snip, snip_iterative, grasp or movement"
    }

    def __init__(self, config: NLPConfig) -> None:
        super().__init__(config)
        self._session = None

    def __getstate__(self) -> dict:  # the fairseq session is rebuilt in a worker, not pickled
        state = dict(self.__dict__)
        state["_session"] = None
        return state

    @property
    def session(self):
        if self._session is None:
            from domains.nlp.fairseq_session import Session
            from domains.nlp.prepare import prepare

            if not self.config.data_fingerprint:
                self.config.validate()
            self._session = Session(self.config, prepare(self.config))
        return self._session

    def task(self) -> str:
        c = self.config
        data = {"folder": Path(c.data_dir).name or "folder", "hf": c.hf_dataset, "synthetic": "synthetic"}[c.dataset]
        langs = f"{c.src}-{c.tgt}" if c.task == "translation" else c.src
        return f"{data}.{langs}/{c.arch}"

    def metric(self) -> Metric:
        from domains.nlp.tasks import TASKS

        return TASKS.get(self.config.task).metric

    def build(self, seed: int) -> nn.Module:
        return self.session.build_model(seed)

    def prunable(self, model: nn.Module, biases: bool) -> dict[str, str]:
        from domains.nlp.models import prunable_groups

        return prunable_groups(model, biases, self.config.prune_embeddings)

    def budget(self) -> int:
        return self.config.updates()

    def train(self, job: Job) -> Outcome:
        from domains.nlp.prepare import cache_root
        from domains.nlp.train import run_job

        scratch = cache_root(self.config) / "scratch"
        if job.keep is not None:  # --compact: heads and FFN neurons removed, trained by fairseq's Trainer as ever
            from domains.nlp.compact import fit
            from lth_core.compact_jobs import train_compacted

            model = fit(self.build(job.seed), job.weights)
            return train_compacted(self, model, job, lambda _small, j: run_job(self.session, j, scratch))
        return run_job(self.session, job, scratch)

    def evaluate(self, weights: StateDict, split: str) -> dict[str, float]:
        """'val': validation cross-entropy (the early-stopping signal, as training computes it); 'test': BLEU or
        perplexity, as training reports it; both with 'loss', fairseq's training criterion on that split."""
        from domains.nlp.fairseq_quiet import fairseq_warnings_quiet
        from domains.nlp.tasks import TASKS, criterion_loss, loss_on

        if split not in SPLITS:
            raise UsageError(f"split {split!r} is not one of {', '.join(SPLITS)}")
        session, metric = self.session, self.metric()
        from domains.nlp.compact import fit

        model = fit(session.build_model(0), weights)
        model.to(session.device).eval()
        with fairseq_warnings_quiet():
            if split == "val":
                out = {metric.val_name: loss_on(session, model, "valid")}
            else:
                out = {metric.name: TASKS.get(self.config.task).score_test(session, model)}
            return {**out, "loss": criterion_loss(session, model, "valid" if split == "val" else "test")}

    def training_loss(self, model: nn.Module, batches: int, seed: int) -> Tensor:
        from domains.nlp.fairseq_quiet import fairseq_warnings_quiet
        from domains.nlp.tasks import training_loss

        with fairseq_warnings_quiet():
            return training_loss(self.session, model, batches, seed)

    def structure(self, model: nn.Module) -> list[GroupFamily]:
        from domains.nlp.models import structure_families

        return structure_families(model)

    def compact(self, model: nn.Module, keep: Mapping[str, Tensor]) -> nn.Module:
        from domains.nlp.compact import compact_transformer

        return compact_transformer(model, keep)

    def close(self) -> None:
        self._session = None
