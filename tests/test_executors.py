"""Executors: the registry, and `process` giving the very table `local` gives, with workers that die."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from fault_adapter import FaultAdapter, FaultConfig, init_log, threads_log, train_log
from fault_tools import assert_same_run, run_here

from lth_core.config import RunOptions
from lth_core.errors import UsageError
from lth_core.executor_process import ProcessExecutor
from lth_core.executor_ray import connect
from lth_core.executors import EXECUTORS, WorkerStartError, available_cores
from lth_core.job import Job

SMALL = {"levels": 2, "trials": 2}  # 14 jobs


def adapter_job(adapter: FaultAdapter) -> Job:
    return Job(level=0, kind="dense", trial=0, seed=0, weights=adapter.initial_weights(0), mask=None, budget=20)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted local run of the small config: the table every other executor must give."""
    return run_here(tmp_path_factory.mktemp("reference"), "local", SMALL)


def test_registry_lists_the_executors_and_names_the_choices_on_a_typo():
    assert {"local", "process", "ray"} <= set(EXECUTORS.names())
    with pytest.raises(UsageError, match=r"unknown executor 'proces'; valid choices: .*local.*process.*ray"):
        EXECUTORS.get("proces")


def test_process_workers_must_not_be_negative():
    adapter = FaultAdapter(FaultConfig())
    with pytest.raises(UsageError, match="--workers -1"):
        ProcessExecutor(adapter, lambda: adapter, RunOptions(executor="process", workers=-1))


def test_a_ray_address_where_nothing_answers_is_a_usage_error_at_once():
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("Ray is already initialised in this process")
    with pytest.raises(UsageError, match=r"--ray-address '127.0.0.1:1': cannot join a Ray cluster there \(nothing "):
        connect(RunOptions(executor="ray", ray_address="127.0.0.1:1"))


def test_process_executor_gives_the_local_table_with_one_adapter_per_worker(reference, tmp_path):
    log = tmp_path / "train.log"
    folder = run_here(tmp_path / "out", "process", SMALL, workers=2, log=str(log))
    assert_same_run(reference, folder)
    starts = train_log(log)
    assert sorted(k for k, _ in starts) == sorted(p.stem for p in (folder / "jobs").glob("*.json"))
    worker_pids = {pid for _, pid in starts}
    inits = [pid for pid, _ in init_log(log) if pid in worker_pids]
    assert len(worker_pids) <= 2 and sorted(inits) == sorted(worker_pids)  # the adapter built once per worker
    assert set(threads_log(log).values()) == {1}  # every job with --cpus-per-job threads, as under local


def test_process_workers_split_the_cores_and_train_with_cpus_per_job_threads():
    adapter = FaultAdapter(FaultConfig())
    for cpus, workers in ((1, available_cores()), (2, max(1, available_cores() // 2))):
        ex = ProcessExecutor(adapter, lambda: adapter, RunOptions(executor="process", cpus_per_job=cpus))
        assert (ex.workers, ex.threads) == (workers, cpus)


def test_local_trains_with_cpus_per_job_threads_and_gives_the_process_its_threads_back(tmp_path):
    before = torch.get_num_threads()
    log = tmp_path / "train.log"
    run_here(tmp_path / "out", "local", {"levels": 1, "trials": 1}, cpus_per_job=3, log=str(log))
    assert set(threads_log(log).values()) == {3} and torch.get_num_threads() == before


def test_a_killed_worker_costs_a_retry_and_nothing_else(reference, tmp_path):
    """kill -9 of the worker mid-job: that job is trained again, the table is the uninterrupted one; a NaN
    loss in another job crosses the process boundary as a diverged row."""
    log = tmp_path / "train.log"
    folder = run_here(
        tmp_path / "out",
        "process",
        SMALL,
        workers=2,
        log=str(log),
        die_key="L01-ticket-t0",
        die_times=1,
        nan_key="L02-random_mask-t1",
    )
    assert_same_run(reference, folder, skip_keys=frozenset({"L02-random_mask-t1"}))
    keys = [k for k, _ in train_log(log)]
    assert keys.count("L01-ticket-t0") == 2
    again = {k for k in keys if keys.count(k) > 1}  # the job that died, and any job its death took down in flight
    assert all(k.startswith("L01-") and keys.count(k) == 2 for k in again), keys
    df = pd.read_csv(folder / "results.csv")
    bad = df[(df.level == 2) & (df.kind == "random_mask") & (df.trial == 1)].iloc[0]
    assert bad.status == "diverged" and pd.isna(bad.score) and "step 10" in bad.error
    assert (df.drop(index=bad.name).status == "ok").all()


def _broken_factory():
    raise OSError("no data here")


def test_workers_that_cannot_build_the_adapter_stop_the_run_with_that_error(tmp_path):
    adapter = FaultAdapter(FaultConfig())
    ex = ProcessExecutor(adapter, _broken_factory, RunOptions(executor="process", workers=1))
    job = adapter_job(adapter)
    try:
        with pytest.raises(WorkerStartError, match="could not build the adapter: OSError: no data here"):
            list(ex.run([job]))
    finally:
        ex.close()


@pytest.mark.slow
def test_a_job_whose_worker_always_dies_is_a_failed_row_and_the_run_goes_on(reference, tmp_path):
    log = tmp_path / "train.log"
    folder = run_here(
        tmp_path / "out", "process", SMALL, workers=2, log=str(log), die_key="L01-random_mask-t1", die_times=99
    )
    df = pd.read_csv(folder / "results.csv")
    bad = df[(df.level == 1) & (df.kind == "random_mask") & (df.trial == 1)].iloc[0]
    assert bad.status == "failed" and pd.isna(bad.score) and "worker died on all 3 attempts" in bad.error
    assert_same_run(reference, folder, skip_keys=frozenset({"L01-random_mask-t1"}))  # its neighbours were not blamed
    assert [k for k, _ in train_log(log)].count("L01-random_mask-t1") == 3
    summary = pd.read_csv(folder / "summary.csv")
    assert summary[(summary.level == 1) & (summary.kind == "random_mask")].failed.item() == 1


def test_a_job_that_keeps_raising_is_a_failed_row_with_its_error_and_the_run_goes_on(reference, tmp_path):
    log = tmp_path / "train.log"
    folder = run_here(tmp_path / "out", "local", SMALL, log=str(log), raise_key="L01-random_reinit-t0")
    df = pd.read_csv(folder / "results.csv")
    bad = df[(df.level == 1) & (df.kind == "random_reinit") & (df.trial == 0)].iloc[0]
    assert bad.status == "failed" and pd.isna(bad.score)
    assert "RuntimeError: injected failure in L01-random_reinit-t0" in bad.error
    assert [k for k, _ in train_log(log)].count("L01-random_reinit-t0") == 2  # retried once, then recorded
    assert_same_run(reference, folder, skip_keys=frozenset({"L01-random_reinit-t0"}))
    summary = pd.read_csv(folder / "summary.csv")
    assert summary[(summary.level == 1) & (summary.kind == "random_reinit")].failed.item() == 1
