"""What is learned: per task, the fairseq flags (task, criterion), the reported metric and how the test split is scored.

translation: label-smoothed cross-entropy; test = corpus BLEU (sacreBLEU) of detokenised beam-search
output against the raw references (higher is better).
language_modeling: cross-entropy; test = perplexity on the test split (lower is better).
Both select the early-stopping step on validation cross-entropy per token (nats, no smoothing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import torch
from torch import nn

from lth_core.adapter import Metric
from lth_core.registry import Registry

if TYPE_CHECKING:
    from domains.nlp.config import NLPConfig


@dataclass(frozen=True)
class TaskSpec:
    metric: Metric
    flags: Callable[["NLPConfig"], list[str]]  # fairseq flags naming the task, criterion and tying
    score_test: Callable[..., float]  # (session, model) -> the reported metric on the test split
    signature: Callable[["NLPConfig"], str]  # how the metric is computed, for every result row


TASKS: Registry[TaskSpec] = Registry("task")


def _batches(
    session, model: nn.Module, split: str, max_tokens: int, seed: int = 1, shuffle: bool = False, epoch: int = 1
):
    from fairseq import utils

    task = session.task
    return task.get_batch_iterator(
        dataset=task.dataset(split),
        max_tokens=max_tokens,
        max_positions=utils.resolve_max_positions(task.max_positions(), model.max_positions()),
        ignore_invalid_inputs=False,
        seed=seed,
        epoch=epoch,
        disable_iterator_cache=True,
    ).next_epoch_itr(shuffle=shuffle)


def _to(sample, model: nn.Module):
    from fairseq import utils

    device = next(model.parameters()).device
    return utils.move_to_cuda(sample, device=device) if device.type == "cuda" else sample


def loss_on(session, model: nn.Module, split: str) -> float:
    """Cross-entropy per target token in nats (no label smoothing), over a whole split."""
    criterion = session.criterion
    was_training = model.training
    model.eval()
    total, ntokens = 0.0, 0
    with torch.no_grad():
        for sample in _batches(session, model, split, session.cfg.dataset.max_tokens_valid):
            sample = session.to_device(sample)
            net_output = model(**sample["net_input"])
            lprobs = model.get_normalized_probs(net_output, log_probs=True)
            target = model.get_targets(sample, net_output)
            nll = nn.functional.nll_loss(
                lprobs.view(-1, lprobs.size(-1)), target.view(-1), ignore_index=criterion.padding_idx, reduction="sum"
            )
            total += float(nll)
            ntokens += int(sample["ntokens"])
    model.train(was_training)
    return total / max(ntokens, 1)


def criterion_loss(session, model: nn.Module, split: str) -> float:
    """fairseq's training criterion (label smoothing included) per target token in nats, over a whole split."""
    was_training = model.training
    model.eval()
    total, size = 0.0, 0
    with torch.no_grad():
        for sample in _batches(session, model, split, session.cfg.dataset.max_tokens_valid):
            loss, sample_size, _ = session.criterion(model, _to(sample, model))
            total, size = total + float(loss), size + int(sample_size)
    model.train(was_training)
    return total / max(size, 1)


def training_loss(session, model: nn.Module, batches: int, seed: int) -> torch.Tensor:
    """fairseq's criterion per token on the first `batches` training batches of fairseq's shuffled order under
    `seed` (epochs follow one another if one is too short), differentiable. Dropout is off (eval mode), so the
    value is a function of the weights and the seed only, as a pruning score needs."""
    was_training = model.training
    model.eval()
    total, size, epoch, drawn = None, 0, 1, 0
    try:
        while drawn < batches:
            before = drawn
            for sample in _batches(session, model, "train", session.cfg.dataset.max_tokens, seed, True, epoch):
                loss, sample_size, _ = session.criterion(model, _to(sample, model))
                total, size, drawn = (loss if total is None else total + loss), size + int(sample_size), drawn + 1
                if drawn == batches:
                    break
            if drawn == before:
                raise RuntimeError("the training split yields no batch")
            epoch += 1
    finally:
        model.train(was_training)
    assert total is not None
    return total / max(size, 1)


def _translation_flags(cfg: "NLPConfig") -> list[str]:
    flags = [
        "--task",
        "translation",
        "--source-lang",
        cfg.src,
        "--target-lang",
        cfg.tgt,
        "--criterion",
        "label_smoothed_cross_entropy",
        "--label-smoothing",
        str(cfg.label_smoothing),
        "--beam",
        str(cfg.beam),
        "--lenpen",
        str(cfg.lenpen),
        "--max-len-a",
        "1.2",
        "--max-len-b",
        "10",
    ]
    if cfg.share_embeddings:
        flags.append("--share-all-embeddings")
    return flags


def corpus_bleu(session, model: nn.Module) -> float:
    """sacreBLEU corpus BLEU of beam search on the test split, detokenised, against the raw references."""
    from fairseq.data import data_utils

    from domains.nlp.prepare import TOKENIZERS, test_references

    task = session.task
    refs = test_references(Path(session.cfg.task.data))
    dataset = task.dataset("test")
    if len(dataset) != len(refs):
        raise RuntimeError(f"test split has {len(dataset)} sentences but {len(refs)} references")
    was_training = model.training
    model.eval()
    generator = task.build_generator([model], session.cfg.generation)
    itr = _batches(session, model, "test", session.cfg.dataset.max_tokens_valid)
    post = TOKENIZERS.get(session.config.tokenizer).post_process
    hyps: dict[int, str] = {}
    for sample in itr:
        sample = session.to_device(sample)
        out = task.inference_step(generator, [model], sample)
        for i, sid in enumerate(sample["id"].tolist()):
            text = task.target_dictionary.string(out[i][0]["tokens"].int().cpu())
            hyps[sid] = data_utils.post_process(text, post) if post else text
    model.train(was_training)
    ordered = [hyps[i] for i in range(len(refs))]
    return float(_bleu(session.config).corpus_score(ordered, [refs]).score)


def _bleu(cfg: "NLPConfig"):
    from sacrebleu.metrics import BLEU

    return BLEU(tokenize=cfg.bleu_tokenize)


def bleu_signature(cfg: "NLPConfig") -> str:
    """sacreBLEU's signature (references, case, tokenizer, smoothing, version), as MT papers report it."""
    bleu = _bleu(cfg)
    bleu.corpus_score(["x"], [["x"]])  # the signature needs the number of references, known after a call
    return bleu.get_signature().format()


def _lm_flags(cfg: "NLPConfig") -> list[str]:
    flags = [
        "--task",
        "language_modeling",
        "--criterion",
        "cross_entropy",
        "--tokens-per-sample",
        str(cfg.tokens_per_sample),
        "--sample-break-mode",
        "none",
    ]
    if cfg.share_embeddings:
        flags.append("--share-decoder-input-output-embed")
    return flags


def test_perplexity(session, model: nn.Module) -> float:
    return math.exp(loss_on(session, model, "test"))


TASKS.add(
    "translation", TaskSpec(Metric("bleu", True, "val_loss", False), _translation_flags, corpus_bleu, bleu_signature)
)
TASKS.add(
    "language_modeling",
    TaskSpec(
        Metric("perplexity", False, "val_loss", False),
        _lm_flags,
        test_perplexity,
        lambda cfg: f"exp(test cross-entropy per {cfg.tokenizer} token)",
    ),
)
