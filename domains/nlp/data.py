"""Where raw text comes from: a registry of sources (generated, a folder of files, Hugging Face `datasets`).

A source returns a `Corpus` of raw, untokenised lines per split ("train", "valid", "test"): for
translation each split is (source lines, target lines) aligned line by line; for language modelling
(a single column) each split is (lines,). Tokenisation and binarisation happen later, in prepare.py.

Every source also has a cheap `fingerprint`, the part of the data's identity that the config's
fields do not already name (for a folder: a hash of the files' bytes), so that a run's hash changes
when the data under the same path changes.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from lth_core.errors import UsageError
from lth_core.registry import Registry

if TYPE_CHECKING:
    from domains.nlp.config import NLPConfig

SPLITS = ("train", "valid", "test")
SYNTHETIC_VERSION = "grammar-v1"  # bump when synthetic.py changes what it generates


@dataclass(frozen=True)
class Corpus:
    splits: dict[str, tuple[list[str], ...]]  # split -> columns of aligned lines

    def columns(self) -> int:
        return len(self.splits["train"])


@dataclass(frozen=True)
class Source:
    load: Callable[["NLPConfig"], Corpus]
    fingerprint: Callable[["NLPConfig"], str]


SOURCES: Registry[Source] = Registry("dataset")


def _langs(cfg: "NLPConfig") -> tuple[str, ...]:
    return (cfg.src, cfg.tgt) if cfg.task == "translation" else (cfg.src,)


def _limit(corpus: Corpus, n: int) -> Corpus:
    """Keep the first `n` training pairs (0 = all); valid and test are never cut."""
    if n <= 0:
        return corpus
    splits = dict(corpus.splits)
    splits["train"] = tuple(col[:n] for col in splits["train"])
    return Corpus(splits)


# ---------------------------------------------------------------- synthetic
def _synthetic_load(cfg: "NLPConfig") -> Corpus:
    from domains.nlp.synthetic import generate

    data = generate(
        n_train=cfg.synthetic_size,
        n_valid=cfg.synthetic_eval_size,
        n_test=cfg.synthetic_eval_size,
        seed=cfg.synthetic_seed,
    )
    if cfg.task == "translation":
        return Corpus({s: data[s] for s in SPLITS})
    # language modelling on the generated language: the target side as monolingual text
    return Corpus({s: (data[s][1],) for s in SPLITS})


SOURCES.add("synthetic", Source(_synthetic_load, lambda cfg: SYNTHETIC_VERSION))


# ---------------------------------------------------------------- folder
SPLIT_ALIASES = {"train": ("train",), "valid": ("valid", "val", "dev"), "test": ("test",)}


def _read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file, plain or gzipped; a file that is neither is one line naming it."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="\n") as f:
            return [line.rstrip("\r\n") for line in f]
    except UnicodeDecodeError as e:
        raise UsageError(f"--data-dir: {path} is not UTF-8 text (byte {e.start}: {e.reason})") from None
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError; a cut .gz ends in EOFError
        kind = "a complete gzip file" if path.suffix == ".gz" else "readable"
        raise UsageError(f"--data-dir: {path} is not {kind} ({type(e).__name__}: {e})") from None


LM_SUFFIXES = ("txt", "tokens", "raw")  # text folders for language models: train.txt, wiki.train.tokens


def _split_of(stem: str) -> str | None:
    base = stem[5:] if stem.startswith("wiki.") else stem
    for split, aliases in SPLIT_ALIASES.items():
        if base in aliases or (split == "test" and base.startswith("test")):
            return split
    return None


def _stems(folder: Path, lang: str, lm: bool) -> dict[str, set[str]]:
    """split -> file stems (names without '.LANG[.gz]') in `folder` holding that split for `lang`."""
    suffixes = (lang,) + (LM_SUFFIXES if lm else ())
    out: dict[str, set[str]] = {s: set() for s in SPLITS}
    for p in folder.iterdir():
        name = p.name[:-3] if p.name.endswith(".gz") else p.name
        stem, _, suffix = name.rpartition(".")
        split = _split_of(stem) if stem and suffix in suffixes else None
        if split:
            out[split].add(stem)
    return out


def _find(folder: Path, stem: str, lang: str, lm: bool) -> Path:
    cands = [folder / f"{stem}.{ext}{gz}" for ext in (lang,) + (LM_SUFFIXES if lm else ()) for gz in ("", ".gz")]
    found = [c for c in cands if c.is_file()]
    if len(found) != 1:
        raise UsageError(
            f"--data-dir {folder}: {len(found)} files for split {stem!r} of {lang!r} "
            f"({', '.join(c.name for c in found)}); keep exactly one"
        )
    return found[0]


def folder_files(cfg: "NLPConfig") -> dict[str, list[Path]]:
    """split -> one file per column, checked to exist (the choice of test file follows --test-split)."""
    folder = Path(cfg.data_dir).expanduser()
    if not folder.is_dir():
        raise UsageError(f"--data-dir {cfg.data_dir!r} is not a folder")
    lm = cfg.task == "language_modeling"
    langs = _langs(cfg)
    out: dict[str, list[Path]] = {}
    for split in SPLITS:
        per_lang = {lang: _stems(folder, lang, lm)[split] for lang in langs}
        stems = sorted(set.intersection(*per_lang.values()))
        if split == "test" and cfg.test_split:
            if cfg.test_split not in stems:
                raise UsageError(
                    f"--test-split {cfg.test_split!r} not in {folder} for {'/'.join(langs)}; "
                    f"valid choices: {', '.join(stems) or 'none'}"
                )
            stems = [cfg.test_split]
        if not stems:
            missing = [lang for lang in langs if not per_lang[lang]] or list(langs)
            names = " or ".join(f"{a}{'*' if split == 'test' else ''}.{missing[0]}" for a in SPLIT_ALIASES[split])
            raise UsageError(
                f"--data-dir {folder}: missing the {split} split for {'/'.join(missing)} "
                f"(expected {names}, plain or .gz)"
            )
        if len(stems) > 1:
            flag = "--test-split" if split == "test" else "a single file per split"
            raise UsageError(
                f"--data-dir {folder}: several {split} splits ({', '.join(stems)}); choose one with {flag}"
            )
        out[split] = [_find(folder, stems[0], lang, lm) for lang in langs]
    return out


def _folder_load(cfg: "NLPConfig") -> Corpus:
    splits = {}
    for split, paths in folder_files(cfg).items():
        cols = tuple(_read_lines(p) for p in paths)
        for p, col in zip(paths, cols):
            if not any(line.strip() for line in col):
                raise UsageError(f"--data-dir: {p} is empty")
        if len({len(c) for c in cols}) != 1:
            counts = ", ".join(f"{p.name}: {len(c)}" for p, c in zip(paths, cols))
            raise UsageError(f"--data-dir: misaligned {split} split, line counts differ ({counts})")
        if split == "train" and len(cols) > 1:  # a pair with an empty side teaches nothing
            keep = [i for i in range(len(cols[0])) if all(c[i].strip() for c in cols)]
            cols = tuple([c[i] for i in keep] for c in cols)
        splits[split] = cols
    return Corpus(splits)


def _folder_fingerprint(cfg: "NLPConfig") -> str:
    h = hashlib.sha256()
    for split, paths in folder_files(cfg).items():
        for p in paths:
            h.update(f"{split}:{p.name}:".encode())
            with open(p, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()[:16]


SOURCES.add("folder", Source(_folder_load, _folder_fingerprint))


# ---------------------------------------------------------------- Hugging Face datasets
HF_SPLITS = {"train": ("train",), "valid": ("validation", "valid", "dev"), "test": ("test",)}


def _hf_column(ds, lang: str, name: str) -> list[str]:
    cols = ds.column_names
    if "translation" in cols:
        return [row[lang] for row in ds["translation"]]
    if lang in cols:
        return list(ds[lang])
    if "text" in cols:
        return [t.strip() for t in ds["text"]]
    raise UsageError(f"--hf-dataset {name}: no column for {lang!r}; columns are {', '.join(cols)}")


def _hf_load(cfg: "NLPConfig") -> Corpus:
    try:
        import datasets
    except ModuleNotFoundError:
        raise UsageError("--hf-dataset needs the 'datasets' package: pip install datasets") from None
    name = cfg.hf_dataset
    dd = datasets.load_dataset(name, cfg.hf_config or None, revision=cfg.hf_revision or None)
    splits = {}
    for split, aliases in HF_SPLITS.items():
        found = [a for a in aliases if a in dd]
        if not found:
            raise UsageError(f"--hf-dataset {name}: no {split} split; it has {', '.join(dd)}")
        splits[split] = tuple(_hf_column(dd[found[0]], lang, name) for lang in _langs(cfg))
    return Corpus(splits)


SOURCES.add("hf", Source(_hf_load, lambda cfg: ""))  # identity: hf_dataset, hf_config, hf_revision fields


def _eval_cut(corpus: Corpus, cfg: "NLPConfig") -> Corpus:
    """Validation and test cut to their first `cfg.eval_size("eval_lines", n)` lines (all of them by default)."""
    splits = dict(corpus.splits)
    for s in ("valid", "test"):
        n = cfg.eval_size("eval_lines", len(splits[s][0]))
        splits[s] = tuple(col[:n] for col in splits[s])
    return Corpus(splits)


def load_corpus(cfg: "NLPConfig") -> Corpus:
    return _eval_cut(_limit(SOURCES.get(cfg.dataset).load(cfg), cfg.train_limit), cfg)
