"""The NLP domain's flags: one typed declaration for CLI, help, defaults, presets and the run's identity.

The data's identity: a folder's path is not identity (it moves between machines), its content is.
`data_fingerprint` is a hash of the files the run will read (for the synthetic source, the generator's
version; for Hugging Face, the dataset/config/revision fields already name it); `identity_extras()` puts it
in the run's identity, so the run hash changes when the data changes and not when the folder moves.
`validate()` only checks: `--data-dir` / `--hf-dataset` imply their dataset when the config is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from lth_core.config import DomainConfig, opt
from lth_core.errors import UsageError

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "amp")


def _choice(flag: str, value: str, valid) -> None:
    if value not in valid:
        raise UsageError(f"{flag} {value!r} is not valid; valid choices: {', '.join(valid)}")


@dataclass
class NLPConfig(DomainConfig):
    task: str = opt(
        "translation", "what is learned: translation (test BLEU by sacreBLEU) or language_modeling (test perplexity)"
    )
    dataset: str = opt(
        "synthetic",
        "text source: synthetic (generated, offline), folder (--data-dir) or hf "
        "(--hf-dataset); --data-dir / --hf-dataset imply folder / hf",
    )
    data_dir: str = opt(
        "", "folder of SPLIT.LANG[.gz] files: train, val|valid|dev, test* (one of each)", identity=False
    )
    src: str = opt("en", "source language suffix (the text's language for language modelling)")
    tgt: str = opt("de", "target language suffix")
    test_split: str = opt("", "which test* split of a folder is scored when it has several, e.g. test_2016_flickr")
    hf_dataset: str = opt(
        "",
        "Hugging Face dataset, e.g. wmt/wmt14, bentrevett/multi30k, IWSLT/iwslt2017, Salesforce/wikitext "
        "(needs a network)",
    )
    hf_config: str = opt("", "its configuration, e.g. de-en, iwslt2017-en-de, wikitext-2-v1")
    hf_revision: str = opt("", "its revision (a commit or tag; '' = the hub's default)")
    train_limit: int = opt(0, "train on the first N pairs (lines) only; 0 = all")
    synthetic_size: int = opt(20000, "training pairs made by the synthetic source")
    synthetic_eval_size: int = opt(500, "validation and test pairs (each) made by the synthetic source")
    synthetic_seed: int = opt(7, "seed of the synthetic language and its sentences")
    eval_lines: int = opt(
        0,
        "validation and test lines (pairs) read, the first N of each (0 = all); under --budget-scale < 1: x the "
        "scale, at least 64 (a scaled run's BLEU or perplexity is then on part of the test set)",
        identity=False,  # joins the identity where it acts (identity_extras)
        eval_floor=64,
    )
    tokenizer: str = opt(
        "bpe",
        "sentencepiece bpe or unigram learned on the training split (joint for source and "
        "target), or word (whitespace, for pre-tokenised text such as Wikitext)",
    )
    vocab_size: int = opt(8000, "sentencepiece vocabulary size")
    arch: str = opt(
        "transformer_lth_tiny",
        "fairseq architecture, e.g. transformer_lth_tiny, transformer_lth_small, "
        "transformer_iwslt_de_en, transformer, transformer_vaswani_wmt_en_de_big, "
        "lstm_lm_lth_small, lstm_lm",
    )
    share_embeddings: bool = opt(True, "one embedding matrix for source, target and output projection (translation)")
    prune_embeddings: bool = opt(False, "also prune embeddings (and the output projection tied to them)")
    dropout: float = opt(0.1, "dropout")
    label_smoothing: float = opt(0.1, "label smoothing of the translation loss")
    max_updates: int = opt(2000, "optimizer updates per training (the budget)")
    budget_scale: float = opt(
        1.0,
        "multiplies max_updates, warmup and eval_every (shrink or stretch a preset); below 1 evaluation shrinks too "
        "(--eval-points, --eval-lines); the batch (--max-tokens), beam and architecture are kept: shrinking them "
        "would change what a preset measures",
    )
    max_tokens: int = opt(4096, "tokens per batch")
    update_freq: int = opt(1, "batches accumulated per update")
    lr: float = opt(5e-4, "peak learning rate (Adam, inverse-sqrt schedule)")
    warmup: int = opt(4000, "linear warm-up updates of the inverse-sqrt schedule")
    adam_betas: str = opt("0.9,0.98", "Adam betas")
    clip_norm: float = opt(0.0, "gradient clipping norm (0 = none)")
    weight_decay: float = opt(0.0, "Adam weight decay")
    eval_every: int = opt(250, "updates between validations (the early-stopping grid)", cadence=True)
    beam: int = opt(5, "beam size of the test translation")
    eval_max_tokens: int = opt(4096, "tokens per batch when evaluating and translating", identity=False)
    lenpen: float = opt(1.0, "length penalty of beam search")
    bleu_tokenize: str = opt("13a", "sacreBLEU tokenizer (13a, intl, zh, ja-mecab, none ...)")
    tokens_per_sample: int = opt(256, "language modelling: tokens per block")
    precision: str = opt("fp32", "fp32, or amp (mixed precision; CUDA only)")
    device: str = opt("auto", "auto (CUDA when available), cpu or cuda", identity=False)
    cache_dir: str = opt(
        "",
        "cache of tokenised and binarised data (default: $XDG_CACHE_HOME or ~/.cache, /lth-bench/nlp)",
        identity=False,
    )
    threads: int = opt(0, "torch intra-op threads per training (0 = leave as set)", identity=False)

    def __post_init__(self) -> None:
        """--data-dir and --hf-dataset imply their source (the default synthetic one would ignore them)."""
        if self.data_dir and self.dataset == "synthetic":
            self.dataset = "folder"
        if self.hf_dataset and self.dataset == "synthetic":
            self.dataset = "hf"

    # ---------------------------------------------------------------- derived
    def updates(self) -> int:
        return self.scaled(self.max_updates)

    def warmup_updates(self) -> int:
        return max(0, int(round(self.warmup * self.budget_scale)))

    def eval_interval(self) -> int:
        return self.eval_cadence_for(self.updates())

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    # ---------------------------------------------------------------- checks
    def validate(self) -> None:
        from domains.nlp.data import SOURCES
        from domains.nlp.models import check_arch
        from domains.nlp.prepare import TOKENIZERS
        from domains.nlp.tasks import TASKS

        TASKS.check(self.task)
        SOURCES.check(self.dataset)
        if self.dataset == "folder" and not self.data_dir:
            raise UsageError("--dataset folder needs --data-dir DIR (a folder of train/valid/test files)")
        if self.dataset == "hf" and not self.hf_dataset:
            raise UsageError(
                "--dataset hf needs --hf-dataset NAME, e.g. wmt/wmt14, bentrevett/multi30k, Salesforce/wikitext"
            )
        if self.data_dir and self.dataset != "folder":
            raise UsageError(f"--data-dir is only read with --dataset folder, not {self.dataset!r}")
        if self.hf_dataset and self.dataset != "hf":
            raise UsageError(f"--hf-dataset is only read with --dataset hf, not {self.dataset!r}")
        if not self.src or (self.task == "translation" and (not self.tgt or self.src == self.tgt)):
            raise UsageError(f"--src {self.src!r} --tgt {self.tgt!r}: need two different language suffixes")
        TOKENIZERS.check(self.tokenizer)
        check_arch(self.arch, self.task)
        _choice("--device", self.device, DEVICES)
        _choice("--precision", self.precision, PRECISIONS)
        if self.device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise UsageError("--device cuda: no CUDA device is visible; use --device cpu or auto")
        if self.precision == "amp" and self.resolved_device() != "cuda":
            raise UsageError("--precision amp needs a CUDA device; use --precision fp32 on CPU")
        positive = {
            "--max-updates": self.max_updates,
            "--eval-every": self.eval_every,
            "--max-tokens": self.max_tokens,
            "--eval-max-tokens": self.eval_max_tokens,
            "--beam": self.beam,
            "--update-freq": self.update_freq,
            "--tokens-per-sample": self.tokens_per_sample,
            "--synthetic-size": self.synthetic_size,
            "--synthetic-eval-size": self.synthetic_eval_size,
        }
        for flag, v in positive.items():
            if v < 1:
                raise UsageError(f"{flag} {v} must be >= 1")
        if self.tokenizer != "word" and self.vocab_size < 16:
            raise UsageError(f"--vocab-size {self.vocab_size} must be >= 16")
        if self.train_limit < 0 or self.warmup < 0 or self.threads < 0 or self.eval_lines < 0:
            raise UsageError("--train-limit, --warmup, --threads and --eval-lines must be >= 0")
        super().validate()  # --budget-scale
        if not self.lr > 0:
            raise UsageError(f"--lr {self.lr} must be > 0")
        for flag, v in {"--dropout": self.dropout, "--label-smoothing": self.label_smoothing}.items():
            if not 0.0 <= v < 1.0:
                raise UsageError(f"{flag} {v} must be in [0, 1)")
        try:
            betas = [float(b) for b in self.adam_betas.split(",")]
        except ValueError:
            betas = []
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise UsageError(f"--adam-betas {self.adam_betas!r} must be two numbers in [0, 1) like 0.9,0.98")
        from sacrebleu.metrics import BLEU

        _choice("--bleu-tokenize", self.bleu_tokenize, list(BLEU.TOKENIZERS))
        self.identity_extras()  # reads the data's files: a folder that cannot be read is one line here

    @cached_property
    def data_fingerprint(self) -> str:
        """The part of the data's identity the fields do not name (read once per config; see the module doc)."""
        from domains.nlp.data import SOURCES

        return SOURCES.get(self.dataset).fingerprint(self)

    def identity_extras(self) -> dict[str, Any]:
        out = {**super().identity_extras(), "data_fingerprint": self.data_fingerprint}
        if self.eval_lines:
            out["eval_lines"] = self.eval_lines
        return out
