"""Resume you can trust: execution settings checked, wrong-shape records rebuilt, failed jobs retried a bounded
number of times (the same for every kind), the summary counting the retries."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from bad_input_tools import snapshot
from fault_tools import run_here

from benchmarks.run import main

TABLE = {"toy": "toy_adapter:ToyAdapter"}
ARGS = ["--domain", "toy", "--levels", "1", "--trials", "1", "--noprogress"]


def cli(out, *extra) -> int:
    return main([*ARGS, "--out", str(out), *extra], TABLE)


@pytest.mark.parametrize(
    "first,second,flag",
    [
        ([], ["--executor", "process", "--workers", "1"], "--executor"),
        ([], ["--cpus-per-job", "2"], "--cpus-per-job"),
        ([], ["--threads", "1"], "--threads"),
    ],
)
def test_resuming_under_another_execution_is_refused_naming_the_flag(tmp_path, capsys, first, second, flag):
    assert cli(tmp_path, *first) == 0
    (folder,) = tmp_path.iterdir()
    before = snapshot(folder)
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        cli(tmp_path, *second)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and flag in err and "--allow-mixed-execution" in err, err
    assert snapshot(folder) == before


def test_allow_mixed_execution_resumes_and_run_json_and_rows_record_it(tmp_path):
    assert cli(tmp_path) == 0
    (folder,) = tmp_path.iterdir()
    for f in folder.glob("jobs/L01-*.json"):
        f.unlink()  # three jobs left to train under the other execution
    assert cli(tmp_path, "--threads", "1", "--allow-mixed-execution") == 0
    meta = json.loads((folder / "run.json").read_text())
    assert meta["allow_mixed_execution"] is True and [e["threads"] for e in meta["executions"]] == [0, 1]
    rows = pd.read_csv(folder / "results.csv")
    assert sorted(json.loads(x)["threads"] for x in rows["execution"]) == [0, 1, 1, 1]
    assert "rows mix executions" in (folder / "summary.md").read_text()


def test_a_folder_of_the_previous_release_continues(tmp_path):
    """run.json without `execution` (the previous release): read from its options, then named in run.json."""
    assert cli(tmp_path) == 0
    (folder,) = tmp_path.iterdir()
    meta = json.loads((folder / "run.json").read_text())
    del meta["execution"]
    (folder / "run.json").write_text(json.dumps(meta))
    (folder / "jobs" / "L01-random_mask-t0.json").unlink()
    assert cli(tmp_path) == 0
    assert json.loads((folder / "run.json").read_text())["execution"]["executor"] == "local"
    assert (folder / "jobs" / "L01-random_mask-t0.json").is_file()


@pytest.mark.parametrize(
    "content",
    [
        "[1, 2]",
        '"row"',
        "3",
        '{"row": [1]}',
        '{"row": {"kind": "ticket"}}',
        '{"row": {"kind": 1, "level": 1, "trial": 0, "status": "ok"}}',
        '{"row": {"kind": "ticket", "level": 1, "trial": 0, "status": "ok"}, "curve": 5}',
    ],
)
def test_a_record_of_the_wrong_shape_is_quarantined_and_rebuilt(tmp_path, content):
    assert cli(tmp_path) == 0
    (folder,) = tmp_path.iterdir()
    good = pd.read_csv(folder / "results.csv").drop(columns=["wall_seconds", "scoring_s"], errors="ignore")
    (folder / "jobs" / "L01-ticket-t0.json").write_text(content)
    assert cli(tmp_path) == 0
    (moved,) = (folder / "corrupt").iterdir()
    assert moved.read_text() == content and moved.name.startswith("L01-ticket-t0.json")
    assert any("wrong shape" in r for r in json.loads((folder / "run.json").read_text())["recovered"])
    again = pd.read_csv(folder / "results.csv").drop(columns=["wall_seconds", "scoring_s"], errors="ignore")
    pd.testing.assert_frame_equal(good, again)


@pytest.mark.parametrize("key", ["L00-dense-t0", "L01-ticket-t0", "L01-random_mask-t0"])
@pytest.mark.parametrize("fault", ["raise_key", "nan_key"])
def test_a_failed_job_is_retried_a_bounded_number_of_times_for_every_kind(tmp_path, key, fault):
    log = tmp_path / "train.log"
    imp = {"levels": 1, "trials": 1}
    for _ in range(5):
        folder = run_here(tmp_path / "out", imp=imp, log=str(log), **{fault: key})
    trained = [line.split()[0] for line in log.read_text().splitlines() if not line.startswith("init")]
    per_run = 2 if fault == "raise_key" else 1  # an exception is tried twice within a run (train_safely)
    assert trained.count(key) == 3 * per_run  # the first run and --retries 2, one per resume; then it stays
    rec = json.loads((folder / "jobs" / f"{key}.json").read_text())
    assert rec["row"]["attempts"] == 3 and rec["row"]["status"] in ("failed", "diverged")
    summary = pd.read_csv(folder / "summary.csv")
    assert summary["retries"].sum() == 2
    assert "Retried: 2 trainings" in (folder / "summary.md").read_text()
