"""Fault injection: kill -9 of the driver at random moments, concurrent writers, corrupt and half-written
files, NaN losses. Each checks the final table against an uninterrupted run of the same command.

The default run keeps one kill-and-resume chain per local and process executor; `-m slow` adds many seeds
(and Ray). Figures (kills tried/survived, files corrupted/recovered, ...) print at the end of the module.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from fault_adapter import train_log
from fault_tools import QUICK, Driver, assert_same_run, cli_args, committed, run_here, wait_session_gone, write_driver

from lth_core.errors import UsageError

FIGURES: Counter = Counter()
PACE = ("--sleep", "0.1")  # each training a little longer, so that more kills land while a job is in flight


@pytest.fixture(scope="module", autouse=True)
def report_figures():
    yield
    print("\nfault figures: " + ", ".join(f"{k} {v}" for k, v in sorted(FIGURES.items())))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[Path, float]:
    """The uninterrupted run every faulty run must end up equal to (the CLI, local executor), and how long
    its work took here, from taking the run folder's lock to its exit (kill times are drawn within that)."""
    where = tmp_path_factory.mktemp("reference")
    driver = Driver(write_driver(where), cli_args(where / "out", where / "train.log", "local", *PACE), where / "stderr")
    assert driver.wait_for_lock(where / "out"), driver.error()
    start = time.monotonic()
    assert driver.wait(timeout=600) == 0, driver.error()
    (folder,) = (where / "out").iterdir()
    return folder, time.monotonic() - start


@pytest.fixture(scope="module")
def reference(uninterrupted) -> Path:
    return uninterrupted[0]


@pytest.fixture(scope="module")
def duration(uninterrupted) -> float:
    return uninterrupted[1]


# ---- kill -9 of the driver ------------------------------------------------------------------------
def kill_and_resume(tmp_path: Path, reference: Path, duration: float, seed: int, executor: str, kills: int) -> None:
    """Run the same command, kill -9 it after a random delay, again and again, then let it finish.

    After each attempt: no job whose record existed before the attempt was trained in it. At the end: the
    table equals the uninterrupted run, and the workers of every killed driver have exited."""
    rng = random.Random(seed)
    log = tmp_path / "train.log"
    driver_py = write_driver(tmp_path)
    args = cli_args(tmp_path / "out", log, executor, *PACE)
    folder = tmp_path / "out" / reference.name
    tried = 0
    linger = 120.0 if executor == "ray" else 30.0  # Ray's node agents notice a dead driver after about a minute
    for attempt in range(kills + 1):
        before, seen = committed(folder), len(train_log(log))
        driver = Driver(driver_py, args, tmp_path / f"stderr{attempt}")
        try:
            delay = rng.uniform(0.0, duration)
            if attempt < kills and driver.wait_for_lock(folder) and driver.kill_after(delay, linger):
                tried += 1
            else:
                assert driver.wait(timeout=600) == 0, driver.error()
                assert not wait_session_gone(driver.proc.pid)
                break
        finally:
            driver.stop()
        started = [k for k, _ in train_log(log)[seen:]]
        assert not set(started) & before, f"finished jobs trained again after kill {attempt}: {set(started) & before}"
        FIGURES[
            "kills with a job in flight"
            if started and started[-1] not in committed(folder)
            else "kills between jobs (pruning, tables, opening)"
        ] += 1
    retrained = {k for k, _ in train_log(log)[seen:]} & before
    assert not retrained, f"finished jobs trained again in the last run: {retrained}"
    assert_same_run(reference, folder)
    FIGURES["kills tried"] += tried
    FIGURES["kills survived with identical tables"] += tried


def test_kill_9_of_the_driver_then_the_same_command_gives_the_same_table(tmp_path, reference, duration):
    kill_and_resume(tmp_path, reference, duration, seed=0, executor="local", kills=2)


def test_kill_9_of_a_driver_with_worker_processes(tmp_path, reference, duration):
    kill_and_resume(tmp_path, reference, duration * 1.5, seed=1, executor="process", kills=1)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(2, 14))
def test_kill_9_at_random_moments_many_seeds(tmp_path, reference, duration, seed):
    kill_and_resume(tmp_path, reference, duration, seed=seed, executor="local", kills=4)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 106))
def test_kill_9_at_random_moments_with_worker_processes(tmp_path, reference, duration, seed):
    kill_and_resume(tmp_path, reference, duration * 1.5, seed=seed, executor="process", kills=3)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(200, 202))
def test_kill_9_at_random_moments_with_ray(tmp_path, reference, duration, seed):
    pytest.importorskip("ray")
    kill_and_resume(tmp_path, reference, duration * 4, seed=seed, executor="ray", kills=2)


# ---- a second writer --------------------------------------------------------------------------------
def test_a_second_process_on_the_same_run_is_refused_naming_the_holder(tmp_path, reference):
    """While a run holds its folder, the same command elsewhere exits 2 with one line naming the holder and
    writes nothing; once the holder is killed -9 its lock is gone and the run resumes to the same table."""
    driver_py, log = write_driver(tmp_path), tmp_path / "train.log"
    args = cli_args(tmp_path / "out", log, "local", "--sleep", "3")
    folder = tmp_path / "out" / reference.name
    holder = Driver(driver_py, args, tmp_path / "holder.stderr")
    deadline = time.monotonic() + 300
    while not train_log(log) and time.monotonic() < deadline:  # it holds the lock once it trains
        assert holder.proc.poll() is None, holder.error()
        time.sleep(0.2)
    others = [Driver(driver_py, args, tmp_path / f"other{i}.stderr") for i in range(2)]
    codes = [o.wait(timeout=300) for o in others]
    assert holder.proc.poll() is None, "the holder finished before the others tried: lengthen --sleep"
    for o, code in zip(others, codes):
        lines = o.error().strip().splitlines()
        assert code == 2 and len(lines) == 1, o.error()
        assert f"is locked by pid {holder.proc.pid} on " in lines[0] and lines[0].startswith("error: run folder ")
    with pytest.raises(UsageError, match=f"locked by pid {holder.proc.pid} "):
        run_here(tmp_path / "out")  # the library refuses as the CLI does
    refused = {o.proc.pid for o in others}
    assert not refused & {pid for _, pid in train_log(log)}  # they trained nothing
    FIGURES["concurrent writers tried"] += len(others) + 1
    FIGURES["concurrent writers refused"] += codes.count(2) + 1
    assert holder.kill_after(0)
    finish = Driver(driver_py, cli_args(tmp_path / "out", log, "local"), tmp_path / "finish.stderr")
    assert finish.wait(timeout=600) == 0, finish.error()
    assert_same_run(reference, folder)


# ---- corrupt, truncated and half-written files -------------------------------------------------------
def truncate(f: Path) -> None:
    f.write_bytes(f.read_bytes()[: len(f.read_bytes()) // 2])


def empty(f: Path) -> None:
    f.write_bytes(b"")


def garbage(f: Path) -> None:
    f.write_bytes(bytes(random.Random(f.name).randrange(256) for _ in range(300)))


def rowless(f: Path) -> None:
    f.write_text('{"curve": []}\n')


def half_written(f: Path) -> None:  # a kill during an atomic write leaves its temporary file beside the target
    (f.parent / f".{f.name}.k1ll3d.tmp").write_bytes(f.read_bytes()[:40])


# file -> (damage, jobs that must be trained again to rebuild it)
DAMAGE = {
    "jobs/L01-ticket-t0.json": (truncate, {"L01-ticket-t0"}),
    "jobs/L02-random_mask-t1.json": (empty, {"L02-random_mask-t1"}),
    "jobs/L03-random_reinit-t0.json": (garbage, {"L03-random_reinit-t0"}),
    "jobs/L00-dense-t1.json": (rowless, {"L00-dense-t1"}),
    "state/final-L02-t1.pt": (truncate, {"L02-ticket-t1"}),
    "state/rewind-t0.pt": (truncate, {"L00-dense-t0"}),
    "state/mask-L02-t0.pt": (garbage, set()),
    "state/init-t1.pt": (empty, set()),
    "results.csv": (truncate, set()),
    "summary.csv": (garbage, set()),
    "summary.md": (truncate, set()),
    "figure1.png": (truncate, set()),
    "run.json": (truncate, set()),
    "jobs/L03-ticket-t1.json": (half_written, set()),
}


def damage_and_rerun(tmp_path: Path, reference: Path, files: list[str]) -> tuple[Path, list[str]]:
    import shutil

    folder = tmp_path / "out" / reference.name
    shutil.copytree(reference, folder)
    for name in files:
        DAMAGE[name][0](folder / name)
    log = tmp_path / "train.log"
    assert run_here(tmp_path / "out", "local", QUICK, log=str(log), preset="quick") == folder
    retrained = sorted(k for k, _ in train_log(log))
    expected = sorted(set().union(*(DAMAGE[n][1] for n in files)))
    assert retrained == expected  # exactly the jobs whose result was lost, once each
    assert_same_run(reference, folder)
    assert not list(folder.rglob(".*.tmp"))
    notes = json.loads((folder / "run.json").read_text())["recovered"]
    for name in files:
        if DAMAGE[name][0] is half_written:  # never committed: removed, and said so
            tmp = Path(name)
            assert f"{tmp.parent / f'.{tmp.name}.k1ll3d.tmp'} (a write cut short by a kill) removed" in notes, notes
            continue
        assert any(n.startswith(f"{name} (") for n in notes), (name, notes)
        assert list((folder / "corrupt").glob(f"{Path(name).name}.*")), name  # kept aside, not deleted
    FIGURES["corrupt files tried"] += len(files)
    FIGURES["corrupt files recovered"] += len(files)
    return folder, notes


def test_every_kind_of_damaged_file_at_once_is_detected_and_rebuilt(tmp_path, reference):
    folder, notes = damage_and_rerun(tmp_path, reference, list(DAMAGE))
    run_here(tmp_path / "out", "local", QUICK, preset="quick")  # a clean resume keeps the list of repairs
    assert json.loads((folder / "run.json").read_text())["recovered"] == notes


@pytest.mark.slow
@pytest.mark.parametrize("name", list(DAMAGE))
def test_each_damaged_file_is_detected_and_rebuilt(tmp_path, reference, name):
    damage_and_rerun(tmp_path, reference, [name])


# ---- NaN losses -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "key", ["L01-random_mask-t0", "L02-ticket-t1", pytest.param("L00-dense-t0", marks=pytest.mark.slow)]
)
def test_a_nan_loss_is_a_diverged_row_counted_in_the_summary_and_the_run_goes_on(tmp_path, reference, key):
    folder = run_here(tmp_path / "out", "local", QUICK, preset="quick", nan_key=key)
    FIGURES["NaN runs"] += 1
    df = pd.read_csv(folder / "results.csv")
    level, kind, trial = int(key[1:3]), key[4:].rsplit("-t", 1)[0], int(key[-1])
    bad = df[(df.level == level) & (df.kind == kind) & (df.trial == trial)].iloc[0]
    assert bad.status == "diverged" and pd.isna(bad.score) and pd.isna(bad.final_score) and "nan" in bad.error.lower()
    summary = pd.read_csv(folder / "summary.csv")
    cell = summary[(summary.level == level) & (summary.kind == kind)].iloc[0]
    assert cell.diverged == 1 and cell.n == 1  # counted apart, not averaged in
    assert "Diverged: 1 rows" in (folder / "summary.md").read_text()
    # the run went on: the other trial is complete, and a diverged ticket or dense run ends only its own trial
    stopped = kind in ("ticket", "dense")
    expected = {
        f"L{lv:02d}-{k}-t{t}"
        for lv in range(4)
        for t in range(2)
        for k in (["dense"] if lv == 0 else ["ticket", "random_mask", "random_reinit"])
        if not (stopped and t == trial and lv > level)
    }
    assert committed(folder) == expected
    assert (df.status == "ok").sum() == len(expected) - 1
    FIGURES["NaN runs recorded"] += 1
    others = expected - {key}  # rows beside the diverged one match the clean run
    ref = pd.read_csv(reference / "results.csv")
    keys = lambda d: d.level.map("L{:02d}".format) + "-" + d.kind + "-t" + d.trial.astype(str)  # noqa: E731
    mine, theirs = df[keys(df).isin(others)], ref[keys(ref).isin(others)]
    pd.testing.assert_series_equal(mine.score.reset_index(drop=True), theirs.score.reset_index(drop=True))
