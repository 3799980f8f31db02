"""The NLP domain's text sources and flags: folder layout errors are one clear line, the data's identity is its
content."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

pytest.importorskip("fairseq")
pytest.importorskip("sentencepiece")

from domains.nlp.config import NLPConfig  # noqa: E402
from domains.nlp.data import load_corpus  # noqa: E402
from domains.nlp.synthetic import VERBS, Grammar, _plural_verb, generate  # noqa: E402
from lth_core.errors import UsageError  # noqa: E402

PAIRS = {"train": 6, "val": 3, "test_2016": 2}


def write_folder(root: Path, sizes: dict[str, int] = PAIRS, gz: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for split, n in sizes.items():
        for lang in ("en", "de"):
            text = "".join(f"{split} {lang} sentence {i}\n" for i in range(n))
            if gz:
                with gzip.open(root / f"{split}.{lang}.gz", "wt", encoding="utf-8") as f:
                    f.write(text)
            else:
                (root / f"{split}.{lang}").write_text(text, encoding="utf-8")
    return root


def folder_config(path: Path, **kw) -> NLPConfig:
    cfg = NLPConfig(data_dir=str(path), src="en", tgt="de", **kw)
    cfg.validate()
    return cfg


def test_folder_reads_plain_and_gz_and_maps_val_to_valid(tmp_path):
    for gz in (False, True):
        cfg = folder_config(write_folder(tmp_path / f"gz{gz}", gz=gz))
        assert cfg.dataset == "folder"
        corpus = load_corpus(cfg)
        assert {s: len(c[0]) for s, c in corpus.splits.items()} == {"train": 6, "valid": 3, "test": 2}
        assert corpus.splits["valid"][1][0] == "val de sentence 0"
        assert corpus.splits["test"][0][1] == "test_2016 en sentence 1"


def test_fingerprint_follows_content_not_path(tmp_path):
    a = folder_config(write_folder(tmp_path / "a")).data_fingerprint
    b = folder_config(write_folder(tmp_path / "b")).data_fingerprint
    assert a == b and len(a) == 16
    (tmp_path / "b" / "train.de").write_text("".join(f"changed {i}\n" for i in range(6)))
    assert folder_config(tmp_path / "b").data_fingerprint != a


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda d: (d / "val.de").unlink(), "missing the valid split for de (expected valid.de or val.de or dev.de"),
        (lambda d: (d / "train.en").write_text("one line\n"), "misaligned train split"),
        (lambda d: (d / "test_2016.de").write_text(""), "is empty"),
        (lambda d: write_folder(d, {"test_2017": 2}), "several test splits"),
        (lambda d: write_folder(d, {"valid": 3}), "several valid splits"),
    ],
)
def test_folder_errors_are_one_line(tmp_path, breakage, message):
    folder = write_folder(tmp_path / "data")
    breakage(folder)
    with pytest.raises(UsageError) as err:
        load_corpus(folder_config(folder))
    text = str(err.value)
    assert message in text and "\n" not in text


def test_several_test_splits_choose_one(tmp_path):
    folder = write_folder(tmp_path / "data")
    write_folder(folder, {"test_2017": 4})
    corpus = load_corpus(folder_config(folder, test_split="test_2017"))
    assert len(corpus.splits["test"][0]) == 4
    with pytest.raises(UsageError, match="valid choices: test_2016, test_2017"):
        folder_config(folder, test_split="test_2018")


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"dataset": "folder"}, "needs --data-dir"),
        ({"data_dir": "/nonexistent/folder"}, "is not a folder"),
        ({"dataset": "hf"}, "needs --hf-dataset"),
        ({"arch": "lstm_lm"}, "not a fairseq translation architecture"),
        ({"task": "language_modeling", "arch": "transformer"}, "not a fairseq language_modeling architecture"),
        ({"task": "summarise"}, "unknown task"),
        ({"tokenizer": "bytes"}, "unknown tokenizer"),
        ({"dataset": "wmt"}, "unknown dataset"),
        ({"src": "en", "tgt": "en"}, "two different language"),
        ({"precision": "amp", "device": "cpu"}, "needs a CUDA device"),
        ({"bleu_tokenize": "moses"}, "valid choices"),
        ({"adam_betas": "0.9"}, "--adam-betas"),
    ],
)
def test_config_errors_name_the_flag(fields, message):
    with pytest.raises(UsageError, match=message) as err:
        NLPConfig(**fields).validate()
    assert "\n" not in str(err.value)


def test_synthetic_language_is_fixed_and_structured():
    a, b = generate(200, 20, 20, seed=7), generate(200, 20, 20, seed=7)
    assert a == b
    src, tgt = a["train"]
    assert len(set(src)) == 200  # distinct sentences, disjoint from valid/test
    assert not set(src) & set(a["test"][0])
    lex, _ = Grammar(7).lexicon()
    forms = {v: v for v in VERBS} | {_plural_verb(v): v for v in VERBS}
    for s, t in zip(src, tgt):  # the word-order rule: the source's verb ends the target sentence
        verb = next(forms[w] for w in s.lower().rstrip(".").split() if w in forms)
        assert t.rstrip(".").split()[-1].lower() in (lex[verb], lex[verb] + "nu")


def test_language_model_folder_reads_wikitext_layout(tmp_path):
    folder = tmp_path / "wikitext-2"
    folder.mkdir()
    for split, n in (("train", 5), ("valid", 2), ("test", 3)):
        (folder / f"wiki.{split}.tokens").write_text("".join(f" = {split} {i} = \n" for i in range(n)))
    cfg = NLPConfig(task="language_modeling", arch="lstm_lm_lth_small", tokenizer="word", data_dir=str(folder))
    cfg.validate()
    corpus = load_corpus(cfg)
    assert corpus.columns() == 1
    assert {s: len(c[0]) for s, c in corpus.splits.items()} == {"train": 5, "valid": 2, "test": 3}


def test_hf_source_reads_translation_and_text_columns(monkeypatch):
    """The Hugging Face reader's column handling, on in-memory datasets (the network is never used in tests)."""
    datasets = pytest.importorskip("datasets")
    calls = []

    def fake_load(name, config=None, revision=None):
        calls.append((name, config, revision))
        if name == "wmt/wmt14":
            pairs = lambda n: {"translation": [{"en": f"en {i}", "de": f"de {i}"} for i in range(n)]}  # noqa: E731
            return datasets.DatasetDict(
                {s: datasets.Dataset.from_dict(pairs(n)) for s, n in (("train", 4), ("validation", 2), ("test", 3))}
            )
        return datasets.DatasetDict(
            {
                s: datasets.Dataset.from_dict({"text": [f" line {i} \n" for i in range(n)]})
                for s, n in (("train", 5), ("validation", 1), ("test", 2))
            }
        )

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    mt = load_corpus(NLPConfig(dataset="hf", hf_dataset="wmt/wmt14", hf_config="de-en", src="en", tgt="de"))
    assert mt.splits["test"] == (["en 0", "en 1", "en 2"], ["de 0", "de 1", "de 2"])
    lm = load_corpus(NLPConfig(task="language_modeling", dataset="hf", hf_dataset="Salesforce/wikitext"))
    assert lm.splits["train"][0][1] == "line 1" and len(lm.splits["valid"][0]) == 1
    assert calls == [("wmt/wmt14", "de-en", None), ("Salesforce/wikitext", None, None)]


def test_cli_reports_a_broken_folder_in_one_line_and_exit_2(tmp_path, capsys):
    from benchmarks.run import main

    folder = write_folder(tmp_path / "data")
    (folder / "train.de").write_text("only one line\n")
    with pytest.raises(SystemExit) as exc:
        main(["--domain", "nlp", "--preset", "quick", "--data-dir", str(folder), "--out", str(tmp_path / "out")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "misaligned train split" in err and "\n" not in err
    assert not (tmp_path / "out").exists()
