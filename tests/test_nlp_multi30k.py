"""End to end on real parallel text: the shared Multi30k en-de folder through `--data-dir`, the CLI and the runner,
scored by sacreBLEU. Skips where ../shared/data/multi30k is absent (a user's machine)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

pytest.importorskip("fairseq")
pytest.importorskip("sentencepiece")
pytest.importorskip("sacrebleu")


@pytest.fixture
def multi30k(shared_data):
    path = shared_data / "multi30k"
    if not (path / "train.en.gz").is_file():
        pytest.skip("../shared/data/multi30k is not here")
    return path


def test_data_dir_runs_end_to_end_and_reports_sacrebleu(multi30k, tmp_path):
    from benchmarks.run import main

    out = tmp_path / "results"
    argv = [
        "--domain",
        "nlp",
        "--preset",
        "quick",
        "--data-dir",
        str(multi30k),
        "--src",
        "en",
        "--tgt",
        "de",
        "--train-limit",
        "3000",
        "--vocab-size",
        "1000",
        "--max-updates",
        "12",
        "--eval-every",
        "6",
        "--warmup",
        "4",
        "--beam",
        "1",
        "--levels",
        "1",
        "--trials",
        "1",
        "--controls",
        "random_reinit",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--out",
        str(out),
        "--progress",
        "false",
        "--threads",
        "1",
    ]
    assert main(argv) == 0
    rows = pd.read_csv(next(out.glob("nlp-*/results.csv")))
    assert sorted(rows["kind"]) == ["dense", "random_reinit", "ticket"]
    assert (rows["status"] == "ok").all() and (rows["metric"] == "bleu").all()
    assert rows["task"].iloc[0] == "multi30k.en-de/transformer_lth_tiny"
    assert rows["metric_signature"].str.startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp").all()
    for score in rows["score"]:
        assert math.isfinite(score) and 0.0 <= score <= 100.0
    assert (rows["early_stop_step"].isin([6, 12])).all()
    assert rows.loc[rows["kind"] == "ticket", "density"].iloc[0] == pytest.approx(0.5, abs=0.01)
