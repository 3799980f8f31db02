"""`--executor ray` on a local Ray instance: the local table through the CLI, worker deaths, resources.

One Ray instance serves the whole module (starting one takes seconds); it is started by the executor's
own `connect`, as a run without `--ray-address` would start it.
"""

from __future__ import annotations

import pandas as pd
import pytest
from fault_adapter import FaultAdapter, FaultConfig, init_log, threads_log, train_log
from fault_tools import TABLE, assert_same_run, cli_args, run_here

from benchmarks.run import main
from lth_core.config import RunOptions
from lth_core.errors import UsageError
from lth_core.executor_ray import RayExecutor, connect

ray = pytest.importorskip("ray")
SMALL = {"levels": 2, "trials": 2}


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    started = connect(RunOptions(executor="ray"))
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return run_here(tmp_path_factory.mktemp("reference"), "local", SMALL, preset="quick")


def test_the_cli_runs_the_quick_preset_on_ray_and_gives_the_local_table(reference, tmp_path):
    log = tmp_path / "train.log"
    assert main(cli_args(tmp_path / "ray", log, "ray", "--levels", str(SMALL["levels"])), table=TABLE) == 0
    assert_same_run(reference, tmp_path / "ray" / reference.name)
    worker_pids = {pid for _, pid in train_log(log)}
    inits = [pid for pid, _ in init_log(log) if pid in worker_pids]
    assert sorted(inits) == sorted(worker_pids)  # each Ray worker built the adapter once, for all its jobs
    assert set(threads_log(log).values()) == {1}  # every job with --cpus-per-job threads, as under local


def test_a_ray_worker_killed_mid_job_is_retried_by_ray(reference, tmp_path):
    log = tmp_path / "train.log"
    folder = run_here(
        tmp_path / "out",
        "ray",
        SMALL,
        preset="quick",
        log=str(log),
        die_key="L01-random_mask-t0",
        die_times=1,
        nan_key="L02-ticket-t1",
    )
    assert [k for k, _ in train_log(log)].count("L01-random_mask-t0") == 2
    assert_same_run(reference, folder, skip_keys=frozenset({"L02-ticket-t1"}))
    df = pd.read_csv(folder / "results.csv")
    bad = df[(df.level == 2) & (df.kind == "ticket") & (df.trial == 1)].iloc[0]
    assert bad.status == "diverged" and pd.isna(bad.score)  # a NaN loss crosses Ray as a diverged row
    summary = pd.read_csv(folder / "summary.csv")
    assert summary[(summary.level == 2) & (summary.kind == "ticket")].diverged.item() == 1


@pytest.mark.slow
def test_a_job_whose_ray_worker_always_dies_is_a_failed_row_and_the_run_goes_on(reference, tmp_path):
    log = tmp_path / "train.log"
    folder = run_here(
        tmp_path / "out", "ray", SMALL, preset="quick", log=str(log), die_key="L02-random_reinit-t0", die_times=99
    )
    df = pd.read_csv(folder / "results.csv")
    bad = df[(df.level == 2) & (df.kind == "random_reinit") & (df.trial == 0)].iloc[0]
    assert bad.status == "failed" and "worker died on all 3 attempts" in bad.error
    assert [k for k, _ in train_log(log)].count("L02-random_reinit-t0") == 3
    assert_same_run(reference, folder, skip_keys=frozenset({"L02-random_reinit-t0"}))


def test_a_job_asking_more_than_the_cluster_has_is_a_usage_error():
    adapter = FaultAdapter(FaultConfig())
    with pytest.raises(UsageError, match=r"--gpus-per-job 1000 but the Ray cluster has \d+ GPUs"):
        RayExecutor(adapter, lambda: adapter, RunOptions(executor="ray", gpus_per_job=1000))
    with pytest.raises(UsageError, match=r"--cpus-per-job 0 must be > 0"):
        RayExecutor(adapter, lambda: adapter, RunOptions(executor="ray", cpus_per_job=0))
