"""Raw text -> sentencepiece -> fairseq binarised data, once per data identity, cached on disk.

The cache folder's name is a hash of everything that changes its contents (the data's identity,
languages, tokenizer, vocabulary, joint dictionary ...), so every job of a run, every run with the
same data and every worker process reuse one copy; a file lock makes concurrent workers wait for the
first one instead of racing. The folder holds what fairseq's `translation` / `language_modeling`
tasks read (dict.*.txt, *.bin/*.idx), the sentencepiece model, and the raw test references that
BLEU is scored against (the untokenised text, as sacreBLEU expects).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from filelock import FileLock
from tqdm.auto import tqdm

from lth_core.registry import Registry

if TYPE_CHECKING:
    from domains.nlp.config import NLPConfig

PREP_VERSION = 1  # bump when the files written here change
SPM_INPUT_SENTENCES = 2_000_000  # sentencepiece learns on a sample of this many lines at most


@dataclass(frozen=True)
class Tokenizer:
    """Learns a segmentation on training text and applies it; `post_process` is fairseq's name for undoing it."""

    learn: Callable[[list[str], Path, int], None]  # (training lines, output folder, vocab size)
    encode: Callable[[Path, list[str]], list[str]]  # (folder, lines) -> space-separated tokens per line
    post_process: str | None


TOKENIZERS: Registry[Tokenizer] = Registry("tokenizer")


def _spm_learner(model_type: str) -> Callable[[list[str], Path, int], None]:
    def learn(lines: list[str], folder: Path, vocab_size: int) -> None:
        import sentencepiece as spm

        spm.set_random_generator_seed(1)  # the input sample is drawn at random: fix it
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines),
            model_prefix=str(folder / "spm"),
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=1.0,
            hard_vocab_limit=False,
            input_sentence_size=SPM_INPUT_SENTENCES,
            shuffle_input_sentence=True,
            num_threads=2,
            minloglevel=2,
        )

    return learn


def _spm_encode(folder: Path, lines: list[str]) -> list[str]:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(folder / "spm.model"))
    out: list[str] = []
    step = 20000
    for i in tqdm(range(0, len(lines), step), desc="sentencepiece", leave=False, disable=len(lines) < 10 * step):
        out.extend(" ".join(p) for p in sp.encode(lines[i : i + step], out_type=str))
    return out


TOKENIZERS.add("bpe", Tokenizer(_spm_learner("bpe"), _spm_encode, "sentencepiece"))
TOKENIZERS.add("unigram", Tokenizer(_spm_learner("unigram"), _spm_encode, "sentencepiece"))
TOKENIZERS.add(
    "word", Tokenizer(lambda lines, folder, v: None, lambda folder, lines: [" ".join(s.split()) for s in lines], None)
)

# The config fields that determine the prepared data (the rest, e.g. the model, do not).
DATA_FIELDS = (
    "task",
    "dataset",
    "data_fingerprint",
    "hf_dataset",
    "hf_config",
    "hf_revision",
    "src",
    "tgt",
    "test_split",
    "train_limit",
    "synthetic_size",
    "synthetic_eval_size",
    "synthetic_seed",
    "tokenizer",
    "vocab_size",
    "share_embeddings",
)


def cache_root(cfg: "NLPConfig") -> Path:
    if cfg.cache_dir:
        return Path(cfg.cache_dir).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lth-bench" / "nlp"


def data_key(cfg: "NLPConfig") -> str:
    ident = {f: getattr(cfg, f) for f in DATA_FIELDS}
    if cfg.tokenizer == "word":
        ident["vocab_size"] = 0  # all words are kept
    if cfg.eval_lines or cfg.scaling_down():  # the evaluation splits are cut (absent: whole, as before)
        ident["eval_cut"] = [cfg.eval_lines, cfg.budget_scale]
    blob = json.dumps({"version": PREP_VERSION, **ident}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _write(path: Path, lines: Iterable[str]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(line.replace("\n", " ") + "\n")


def _binarise(cfg: "NLPConfig", tok: Path, dest: Path) -> None:
    """fairseq's own preprocessing (fairseq_cli.preprocess), called in-process."""
    from domains.nlp.fairseq_quiet import fairseq_warnings_quiet, import_fairseq

    import_fairseq("fairseq.options", "fairseq_cli.preprocess")
    from fairseq import options
    from fairseq_cli import preprocess

    argv = [
        "--trainpref",
        str(tok / "train"),
        "--validpref",
        str(tok / "valid"),
        "--testpref",
        str(tok / "test"),
        "--destdir",
        str(dest),
        "--workers",
        "1",
        "--dataset-impl",
        "mmap",
    ]
    if cfg.task == "translation":
        argv += ["--source-lang", cfg.src, "--target-lang", cfg.tgt]
        if cfg.share_embeddings:
            argv.append("--joined-dictionary")
    else:
        argv += ["--only-source", "--task", "language_modeling"]
    with fairseq_warnings_quiet():
        parser = options.get_preprocessing_parser()
        preprocess.main(parser.parse_args(argv))


def prepare(cfg: "NLPConfig") -> Path:
    """The binarised data folder for `cfg`, built on first use (the config must be validated)."""
    root = cache_root(cfg)
    root.mkdir(parents=True, exist_ok=True)
    folder = root / f"{cfg.task}-{cfg.dataset}-{data_key(cfg)}"
    with FileLock(str(folder) + ".lock"):
        if (folder / "READY").is_file():
            return folder
        from domains.nlp.data import load_corpus

        corpus = load_corpus(cfg)  # may raise UsageError: before anything is written
        tmp = root / f"{folder.name}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            _build(cfg, corpus, tmp)
            shutil.rmtree(folder, ignore_errors=True)
            tmp.rename(folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _build(cfg: "NLPConfig", corpus, tmp: Path) -> None:
    (tmp / "tok").mkdir(parents=True)
    tokenizer = TOKENIZERS.get(cfg.tokenizer)
    tokenizer.learn([line for col in corpus.splits["train"] for line in col], tmp, cfg.vocab_size)
    suffixes = [cfg.src, cfg.tgt] if cfg.task == "translation" else [None]
    for split, cols in corpus.splits.items():
        for suffix, col in zip(suffixes, cols):
            _write(tmp / "tok" / (f"{split}.{suffix}" if suffix else split), tokenizer.encode(tmp, col))
    _binarise(cfg, tmp / "tok", tmp)
    shutil.rmtree(tmp / "tok")
    _write(tmp / "test.ref", corpus.splits["test"][-1])  # raw target (or text) lines of the test split
    counts = {s: len(c[0]) for s, c in corpus.splits.items()}
    (tmp / "READY").write_text(
        json.dumps({"counts": counts, **{f: getattr(cfg, f) for f in DATA_FIELDS}}, indent=1, default=str)
    )


def test_references(folder: Path) -> list[str]:
    with open(folder / "test.ref", encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]
