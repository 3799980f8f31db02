"""benchmarks.compare: alignment, Welch's test, exit codes, formats — on real toy runs and hand-made tables."""

from __future__ import annotations

import functools
import io
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from toy_adapter import ToyAdapter, ToyConfig

from benchmarks import compare
from benchmarks.compare import CompareConfig, density_cells
from benchmarks.run_folders import Run
from benchmarks.significance import holm, welch
from lth_core.config import ImpConfig, RunOptions
from lth_core.imp_runner import ImpRunner


@functools.cache
def build_toy_runs(root: Path) -> dict[str, Path]:
    """Three small real runs: a baseline, a broken one (learning rate 1e-4: near chance), another pruning rate."""

    def run(name: str, imp: ImpConfig, **kw) -> Path:
        cfg = ToyConfig(steps=40, **kw)
        return ImpRunner(
            ToyAdapter(cfg), lambda: ToyAdapter(cfg), imp, RunOptions(out=str(root / name), progress=False)
        ).run()

    return {
        "base": run("base", ImpConfig(levels=2, trials=3)),
        "broken": run("broken", ImpConfig(levels=2, trials=3), lr=1e-4),
        "rate": run("rate", ImpConfig(levels=2, trials=3, rate=0.36)),
    }


@pytest.fixture(scope="session")
def toy_runs(tmp_path_factory) -> dict[str, Path]:
    return build_toy_runs(tmp_path_factory.getbasetemp() / "toy-runs")


def cli(capsys, *args: str) -> tuple[int, str, str]:
    try:
        code = compare.main([str(a) for a in args])
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


# ---- exit codes ----------------------------------------------------------------------------------
def test_run_compared_with_itself_passes(toy_runs, capsys):
    code, out, err = cli(capsys, toy_runs["base"], toy_runs["base"], "--fail-on-regression", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["comparisons"] and all(c["verdict"] == "same" and c["diff"] == 0 for c in doc["comparisons"])
    assert "regression check passed" in err


def test_worse_run_fails_and_better_run_passes(toy_runs, capsys):
    code, out, err = cli(capsys, toy_runs["base"], toy_runs["broken"], "--fail-on-regression")
    assert code == 1
    assert "REGRESSION" in err and "ticket" in err
    assert "▼ worse" in out and "Welch" in out
    code, _, err = cli(capsys, toy_runs["broken"], toy_runs["base"], "--fail-on-regression")
    assert code == 0, err
    # a drop smaller than the tolerance is not a regression, however significant
    code, _, _ = cli(capsys, toy_runs["base"], toy_runs["broken"], "--fail-on-regression", "--tolerance", "0.9")
    assert code == 0
    code, _, _ = cli(capsys, toy_runs["base"], toy_runs["broken"], "--fail-on-regression", "--rel-tolerance", "0.9")
    assert code == 0  # the drop (~0.35) is about half of the baseline's ~0.69
    # without the flag the comparison only reports
    code, _, _ = cli(capsys, toy_runs["base"], toy_runs["broken"])
    assert code == 0


def test_csv_keeps_stdout_clean_and_notes_on_stderr(toy_runs, capsys):
    code, out, err = cli(capsys, toy_runs["base"], toy_runs["broken"], "--format", "csv")
    assert code == 0 and out.startswith("domain,task,")
    assert "differs in domain_config.lr 0.01 → 0.0001" in err


@pytest.mark.parametrize(
    "args",
    [
        ["{base}", "{missing}"],
        ["{base}", "{file}"],
        ["{base}", "{empty}"],
        ["{base}", "{base}", "--format", "xml"],
        ["{base}", "{base}", "--alpha", "2"],
        ["{base}", "{base}", "--value", "bleu"],
        [],
    ],
)
def test_bad_input_is_one_line_and_exit_2(toy_runs, tmp_path, capsys, args):
    (tmp_path / "empty").mkdir()
    paths = {
        "base": toy_runs["base"],
        "missing": tmp_path / "nope",
        "file": toy_runs["base"] / "results.csv",
        "empty": tmp_path / "empty",
    }
    code, out, err = cli(capsys, *[a.format(**paths) for a in args])
    assert code == 2
    assert out == "" and len(err.strip().splitlines()) == 1 and err.startswith("error: ")


def test_two_runs_of_one_task_in_one_folder_is_bad_input(toy_runs, tmp_path, capsys):
    for name in ("base", "broken"):
        shutil.copytree(toy_runs[name], tmp_path / "both" / name)
    code, _, err = cli(capsys, tmp_path / "both", toy_runs["base"])
    assert code == 2 and "holds 2 runs of toy/blobs/mlp" in err


# ---- alignment -----------------------------------------------------------------------------------
def test_different_densities_compare_what_aligns(toy_runs, capsys):
    code, out, err = cli(capsys, toy_runs["base"], toy_runs["rate"], "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    # rate 0.2 gives 100%, 80%, 64%; rate 0.36 gives 100%, 64%, 41%: only 100% and 64% align
    assert {round(c["density"], 3) for c in doc["comparisons"]} == {1.0, 0.64}
    notes = " | ".join(doc["notes"])
    assert "B lacks toy/blobs/mlp at 80%" in notes and "only B has toy/blobs/mlp at 40.9%" in notes
    assert "imp.rate 0.2 → 0.36" in notes


def test_different_metric_is_not_compared(toy_runs, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(toy_runs["base"], other)
    df = pd.read_csv(other / "results.csv")
    df["metric"], df["higher_is_better"] = "loss", False
    df.to_csv(other / "results.csv", index=False)
    code, out, err = cli(capsys, toy_runs["base"], other, "--fail-on-regression", "--format", "md")
    assert code == 1 and "nothing was checked" in err  # a gate that compared nothing must not pass
    assert "A reports accuracy (↑), B reports loss (↓): not compared" in out


def test_a_ticket_that_no_longer_trains_is_a_regression(toy_runs, tmp_path, capsys):
    other = tmp_path / "diverged"
    shutil.copytree(toy_runs["base"], other)
    df = pd.read_csv(other / "results.csv")
    sel = (df["kind"] == "ticket") & (df["level"] == 2)
    df.loc[sel, "status"], df.loc[sel, "score"] = "diverged", float("nan")
    df.to_csv(other / "results.csv", index=False)
    code, out, err = cli(capsys, toy_runs["base"], other, "--fail-on-regression")
    assert code == 1 and "all 3 trials failed" in err
    assert "[3 failed]" in out and "✗ failed" in out


def synthetic_run(
    name: str,
    cells: dict[tuple[str, float], list[float]],
    metric: str = "accuracy",
    higher: bool = True,
    task: str = "t/m",
) -> Run:
    rows = [
        {
            "domain": "d",
            "task": task,
            "kind": k,
            "level": 0,
            "trial": i,
            "density": dens,
            "metric": metric,
            "score": v,
            "early_stop_step": 1,
            "final_score": v,
            "higher_is_better": higher,
            "status": "ok",
        }
        for (k, dens), vals in cells.items()
        for i, v in enumerate(vals)
    ]
    return Run(Path(f"/x/{name}"), {"identity": {"imp": {"rate": 0.2}}}, pd.DataFrame(rows))


def run_compare(*runs: Run, **cfg) -> compare.Comparison:
    cfg = CompareConfig(runs=[r.name for r in runs], **cfg)
    return compare.compare([[r] for r in runs], cfg)


def test_close_densities_share_a_cell_and_far_ones_do_not():
    a = synthetic_run("a", {("ticket", 0.64): [0.9, 0.91], ("ticket", 0.5): [0.8, 0.81]})
    b = synthetic_run("b", {("ticket", 0.6403): [0.9, 0.92], ("ticket", 0.52): [0.8, 0.8]})
    comp = run_compare(a, b)
    assert list(comp.diffs["density"]) == [0.64]  # 0.64 vs 0.6403 within 1%; 0.5 vs 0.52 is 4% apart
    assert comp.diffs["density_here"].iloc[0] == pytest.approx(0.6403)
    assert run_compare(a, b, density_rtol=0.05).diffs["density"].tolist() == [0.64, 0.5]


def test_lower_is_better_direction_and_untested_cells():
    a = synthetic_run(
        "a", {("ticket", 0.5): [10.0, 10.2, 9.9], ("dense", 1.0): [8.0]}, metric="perplexity", higher=False
    )
    b = synthetic_run(
        "b", {("ticket", 0.5): [14.0, 14.3, 13.8], ("dense", 1.0): [9.0]}, metric="perplexity", higher=False
    )
    comp = run_compare(a, b, regression_kinds="ticket,dense")
    by_kind = comp.diffs.set_index("kind")
    assert by_kind.loc["ticket", "verdict"] == "worse" and by_kind.loc["ticket", "regression"]  # higher perplexity
    assert by_kind.loc["dense", "verdict"] == "untested" and by_kind.loc["dense", "untested_why"] == "n<2"
    assert not by_kind.loc["dense", "regression"]
    assert any("untested" in n for n in comp.notes)
    assert compare.gate_message(comp)[0] == 1
    assert compare.gate_message(run_compare(b, a))[0] == 0  # lower perplexity is better


def test_density_cells_never_merge_two_densities_of_one_side():
    rows = pd.DataFrame({"domain": "d", "task": "t", "side": ["A", "A", "B"], "density": [0.5, 0.499, 0.4995]})
    cells = density_cells(rows, "A", rtol=0.01)
    assert cells.iloc[0] != cells.iloc[1] and cells.iloc[2] in (0.5, 0.499)


# ---- significance ---------------------------------------------------------------------------------
def test_welch_matches_the_textbook_formula():
    a, b = [1.0, 2.0, 3.0, 4.0], [3.0, 4.5, 5.0, 6.0, 7.5]
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    t = (np.mean(a) - np.mean(b)) / math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    p = 2 * stats.t.sf(abs(t), dof)
    res = welch(a, b)
    assert res.t == pytest.approx(t) and res.p == pytest.approx(p)
    assert res.significant(0.05) == (p < 0.05)


def test_welch_says_when_it_cannot_decide():
    assert welch([1.0], [1.0, 2.0]).why == "n<2" and not welch([1.0], [1.0, 2.0]).tested
    assert welch([0.5, 0.5], [0.5, 0.5]).p == 1.0  # identical constants: plainly the same
    constant = welch([0.5, 0.5], [0.7, 0.7])
    assert not constant.tested and constant.why == "no spread"
    assert welch([1.0, float("nan"), 2.0], [1.0, 2.0]).tested  # non-finite trials are left out


def test_holm_adjusts_like_the_textbook():
    # Holm (1979)-style example: sorted p 0.01, 0.02, 0.03, 0.04 in a family of 4 (one untested cell left out)
    adjusted = holm([0.03, 0.01, float("nan"), 0.04, 0.02])
    assert adjusted[1] == pytest.approx(0.04) and adjusted[4] == pytest.approx(0.06)
    assert adjusted[0] == pytest.approx(0.06) and adjusted[3] == pytest.approx(
        0.06
    )  # monotone: max of the running values
    assert math.isnan(adjusted[2])


def test_regression_check_is_corrected_for_many_cells():
    # five ticket cells; one is worse at p ~ 0.02 alone: significant by itself, not after Holm over five
    base = {("ticket", 0.8**i): [0.90, 0.91, 0.92] for i in range(1, 6)}
    later = dict(base)
    later[("ticket", 0.8)] = [0.87, 0.88, 0.89]
    a, b = synthetic_run("a", base), synthetic_run("b", later)
    raw = run_compare(a, b, correction="none")
    row = raw.diffs[raw.diffs["density"] == 0.8].iloc[0]
    assert row["verdict"] == "worse" and 0.005 < row["p"] < 0.05 and row["regression"]
    corrected = run_compare(a, b)
    assert corrected.regressions.empty and compare.gate_message(corrected)[0] == 0
    assert compare.gate_message(raw)[0] == 1


# ---- formats ---------------------------------------------------------------------------------------
def test_csv_and_md_formats(toy_runs, capsys):
    code, out, _ = cli(capsys, toy_runs["base"], toy_runs["base"], toy_runs["broken"], "--format", "csv")
    assert code == 0
    df = pd.read_csv(io.StringIO(out))
    assert list(df.columns) == compare.CSV_COLUMNS
    assert set(df["side"]) == {"B", "C"} and (df[df["side"] == "B"]["verdict"] == "same").all()
    assert (df[(df["side"] == "C") & (df["kind"] == "ticket")]["verdict"] == "worse").all()
    code, out, _ = cli(capsys, toy_runs["base"], toy_runs["broken"], "--format", "md", "--value", "final_score")
    assert code == 0 and "| kind" in out and "final_score" in out and "**ticket** (regression)" in out
