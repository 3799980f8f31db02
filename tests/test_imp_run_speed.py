"""`benchmarks.imp_run_speed`: every level timed (dense, then ticket + both controls), the vision loop's `--sparse`
passed through where the config has it (refused beyond `never` before), bad input one line and exit 2."""

from __future__ import annotations

from dataclasses import fields

import pytest

from benchmarks.imp_run_speed import ImpRunSpeedConfig, configs, main, sparse_field, table, time_run
from domains.vision.config import VisionConfig
from lth_core.errors import UsageError

HAS_SPARSE = "sparse" in {f.name for f in fields(VisionConfig)}


def test_a_tiny_run_times_every_level():
    c = ImpRunSpeedConfig(levels=2, iterations=3, eval_every=3, batch_size=16)
    result = time_run(c)
    levels = result["levels"]
    assert [lv["level"] for lv in levels] == [0, 1, 2] and [lv["jobs"] for lv in levels] == [1, 3, 3]
    assert all(lv["ok"] and lv["wall_s"] > 0 and lv["train_s"] > 0 for lv in levels)
    assert [round(lv["density"], 4) for lv in levels] == [1.0, 0.8, 0.64]
    assert result["total_s"] >= result["setup_s"] + sum(lv["wall_s"] for lv in levels) - 1e-6
    assert table(result).row_count == 4  # the levels and the total


@pytest.mark.skipif(HAS_SPARSE, reason="the vision config has a sparse path: the pass-through is tested below")
def test_sparse_beyond_never_is_refused_before_the_sparse_path_exists(capsys):
    assert sparse_field("never") == {}
    with pytest.raises(SystemExit) as e:
        main(["--sparse", "auto"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "only 'never'" in err


@pytest.mark.skipif(not HAS_SPARSE, reason="no sparse path in this build")
def test_sparse_is_passed_to_the_vision_config(tmp_path):
    vc, _, _ = configs(ImpRunSpeedConfig(sparse="always"), str(tmp_path))
    assert getattr(vc, "sparse") == "always"


@pytest.mark.parametrize(
    "argv, words",
    [(["--rate", "1"], "--rate"), (["--dataset", "mnist"], "reads files"), (["--model", "nope"], "nope")],
)
def test_bad_input_is_one_line(capsys, argv, words):
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and words in err


def test_validate_refuses_nonsense():
    with pytest.raises(UsageError):
        ImpRunSpeedConfig(levels=-1).validate()
