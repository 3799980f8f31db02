"""`python -m benchmarks.instability` end to end: the toy domain (with and without a finished run), vision quick at a
tiny budget, resuming, the run folder only read, and bad input refused in one line with nothing written."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import pandas as pd
import pytest
import torch
from toy_adapter import ToyAdapter

from benchmarks import instability, run
from lth_core.store import RunStore

TABLE = {"toy": "toy_adapter:ToyAdapter"}


def analyse(args: list[str], out: Path) -> Path:
    assert instability.main(["--domain", "toy", "--alphas", "5", "--out", str(out), *args], TABLE) == 0
    (folder,) = out.glob("instability-toy-*")
    return folder


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    run.main(["--domain", "toy", "--preset", "quick", "--rewind-step", "10", "--out", str(out), "--noprogress"], TABLE)
    (folder,) = out.glob("toy-*")
    return folder


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


def test_toy_with_a_run_end_to_end_leaves_the_run_untouched(tmp_path, toy_run, capsys):
    before = digest(toy_run)
    folder = analyse(["--run", str(toy_run), "--levels", "0,2", "--rewind-steps", "0,10,0.5"], tmp_path)
    assert digest(toy_run) == before
    table = pd.read_csv(folder / "instability.csv")
    assert len(table) == 3 * 2 and set(table["k"]) == {0, 10, 30} and set(table["level"]) == {0, 2}
    assert (table["status"] == "ok").all() and table["barrier"].notna().all()
    assert (table["stable"] == (table["barrier"] <= 0.02)).all()
    ends = (table["score_a"] + table["score_b"]) / 2
    assert (table["barrier_relative"] - table["barrier"] / ends).abs().max() < 1e-12
    mask = RunStore.foreign(toy_run).load_state(RunStore.mask_name(2, 0))
    assert mask is not None
    density = sum(int(m.sum()) for m in mask.values()) / sum(m.numel() for m in mask.values())
    assert table[table["level"] == 2]["density"].iloc[0] == pytest.approx(density)
    paths = pd.read_csv(folder / "paths.csv")
    assert len(paths) == 6 * 5 and {"test_accuracy", "val_loss", "test_loss"} <= set(paths.columns)
    for name in ("barrier.png", "paths.png", "run.json"):
        assert (folder / name).stat().st_size > 0
    assert "barrier" in capsys.readouterr().out


def test_ends_of_the_path_are_the_trained_copies_and_the_trajectory_is_the_runs(tmp_path, toy_run):
    folder = analyse(["--run", str(toy_run), "--rewind-steps", "30"], tmp_path)
    store, adapter = RunStore.foreign(folder), ToyAdapter(ToyAdapter.Config())
    row = pd.read_csv(folder / "instability.csv").iloc[0]
    for end, c in (("a", 0), ("b", 1)):
        weights = store.load_state(f"final-L00-k30-copy{c}-t0")
        assert weights is not None
        assert row[f"score_{end}"] == adapter.evaluate(weights, "test")["accuracy"]
    # the dense trajectory trained here to k = 10 is the run's own: the same weights as its rewind point
    here = analyse(["--run", str(toy_run), "--rewind-steps", "10"], tmp_path / "x")
    no_run = analyse(["--rewind-steps", "10"], tmp_path / "y")  # seed 0: the run's trial 0 init, trained here
    at10 = RunStore.foreign(no_run).load_state("at-k10")
    rewind = RunStore.foreign(toy_run).load_state(RunStore.rewind_name(0))
    assert at10 is not None and rewind is not None and all(torch.equal(at10[k], rewind[k]) for k in rewind)
    a, b = (pd.read_csv(f / "instability.csv").iloc[0] for f in (here, no_run))
    assert a["barrier"] == b["barrier"] and a["score_a"] == b["score_a"]


def test_tickets_found_on_the_fly_are_those_of_the_same_run_passed_with_run(tmp_path, monkeypatch):
    """--levels without --run runs IMP first (the preset's settings, no controls) in its own run folder under
    --out, then analyses it as --run of that folder would: the same identity, and nothing trained twice."""
    folder = analyse(["--levels", "0,2", "--rewind-steps", "0,10"], tmp_path)
    (found,) = tmp_path.glob("toy-*")
    meta = RunStore.foreign(found).meta()
    assert meta["imp"]["levels"] == 2 and meta["imp"]["trials"] == 1 and meta["imp"]["controls"] == ""
    results = pd.read_csv(found / "results.csv")
    assert set(results["kind"]) == {"dense", "ticket"} and set(results["level"]) == {0, 1, 2}
    table = pd.read_csv(folder / "instability.csv")
    assert (table["status"] == "ok").all() and len(table) == 4
    mask = RunStore.foreign(found).load_state(RunStore.mask_name(2, 0))
    assert mask is not None
    density = sum(int(m.sum()) for m in mask.values()) / sum(m.numel() for m in mask.values())
    assert table[table["level"] == 2]["density"].iloc[0] == pytest.approx(density)

    def refuse(self, job):
        raise AssertionError(f"{job.key} trained again")

    monkeypatch.setattr(ToyAdapter, "train", refuse)
    assert analyse(["--run", str(found), "--levels", "0,2", "--rewind-steps", "0,10"], tmp_path) == folder
    assert analyse(["--levels", "0,2", "--rewind-steps", "0,10"], tmp_path) == folder  # resumed, found again


def test_resume_trains_nothing_twice(tmp_path, monkeypatch):
    first = analyse(["--rewind-steps", "0,20"], tmp_path)
    table = pd.read_csv(first / "instability.csv")

    def refuse(self, job):
        raise AssertionError(f"{job.key} trained again")

    monkeypatch.setattr(ToyAdapter, "train", refuse)
    again = analyse(["--rewind-steps", "0,20"], tmp_path)
    assert again == first
    pd.testing.assert_frame_equal(pd.read_csv(again / "instability.csv"), table)


def test_vision_quick_tiny_budget(tmp_path):
    pytest.importorskip("mnist1d")
    args = ["--domain", "vision", "--preset", "quick", "--budget-scale", "0.02", "--rewind-steps", "0,0.1"]
    assert instability.main([*args, "--alphas", "4", "--out", str(tmp_path)]) == 0
    (folder,) = tmp_path.glob("instability-vision-*")
    table = pd.read_csv(folder / "instability.csv")
    assert list(table["k"]) == [0, 6] and (table["status"] == "ok").all()
    assert all(math.isfinite(b) and b >= 0 for b in table["barrier"])
    assert len(pd.read_csv(folder / "paths.csv")) == 2 * 4


def test_vision_bn_recompute_is_recorded_and_names_its_own_folder(tmp_path):
    args = ["--domain", "vision", "--dataset", "digits", "--model", "resnet20", "--iterations", "30"]
    args += ["--eval-every", "10", "--batch-size", "32", "--rewind-steps", "0", "--alphas", "3", "--out", str(tmp_path)]
    assert instability.main([*args, "--bn", "recompute", "--bn-batches", "4"]) == 0
    assert instability.main(args) == 0
    folders = {RunStore.foreign(f).meta()["analysis"]["bn"]: f for f in tmp_path.glob("instability-vision-*")}
    assert set(folders) == {"recompute", "interpolate"}
    rec, mix = (pd.read_csv(folders[m] / "instability.csv").iloc[0] for m in ("recompute", "interpolate"))
    assert rec["bn"] == "recompute" and rec["bn_batches"] == 4 and mix["bn"] == "interpolate" and mix["bn_batches"] == 0
    assert RunStore.foreign(folders["recompute"]).meta()["identity"]["settings"]["bn_batches"] == 4
    assert "bn_batches" not in RunStore.foreign(folders["interpolate"]).meta()["identity"]["settings"]
    # the same trained copies (the jobs do not depend on --bn); as trained they score alike under both modes
    assert rec["trained_score_a"] == mix["trained_score_a"] == mix["score_a"]
    assert rec["barrier"] != mix["barrier"] or rec["score_a"] != mix["score_a"]


@pytest.mark.parametrize(
    "args, says",
    [
        (["--levels", "1", "--rate", "0.5"], "unrecognized arguments"),  # on-the-fly IMP: the preset's settings
        (["--alphas", "1"], "--alphas"),
        (["--threshold", "nan"], "--threshold"),
        (["--rewind-steps", "60"], "a step must be in [0, 60)"),
        (["--rewind-steps", "1.5"], "a fraction of the budget must be in [0, 1)"),
        (["--rewind-steps", "inf"], "finite"),
        (["--rewind-steps", "x"], "not a finite step"),
        (["--rewind-steps", ","], "names no step"),
        (["--levels", "x"], "--levels"),
        (["--bn", "other"], "invalid choice"),
        (["--bn", "recompute"], "cannot recompute normalization statistics"),
        (["--run", "nowhere"], "not a run folder"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, capsys, args, says):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        instability.main(["--domain", "toy", "--out", str(out), *args], TABLE)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and says in err
    assert not out.exists()


@pytest.mark.parametrize("args, says", [(["--trial", "5"], "--trial 5"), (["--levels", "7"], "missing state/")])
def test_bad_input_about_the_run(tmp_path, capsys, toy_run, args, says):
    out, before = tmp_path / "out", digest(toy_run)
    with pytest.raises(SystemExit) as e:
        instability.main(["--domain", "toy", "--run", str(toy_run), "--out", str(out), *args], TABLE)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and says in err
    assert not out.exists() and digest(toy_run) == before
