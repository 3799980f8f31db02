"""The Ray executor's parts that need no cluster, by exact behaviour (lth_core/executor_ray.py): a Ray worker's
adapter built once per run and the earlier run's released, the import paths handed to local workers, the address
check that answers at once instead of Ray's minutes of retries, and the one-line refusals (tests/test_executors_ray.py
runs whole commands on a local Ray instance; tests/test_executor_ray_local_instance.py the executor on a small one)."""

from __future__ import annotations

import os
import socket
import sys

import pytest
import torch
from toy_adapter import ToyAdapter, ToyConfig

import lth_core.executor_ray as er
from lth_core.config import RunOptions
from lth_core.errors import UsageError
from lth_core.executor_ray import RayExecutor, _driver_paths, _train_task, _unreachable, connect
from lth_core.job import Job

ray = pytest.importorskip("ray")


class Closing(ToyAdapter):
    built: list[str] = []
    closed: list[str] = []

    def __init__(self, name: str) -> None:
        super().__init__(ToyConfig(steps=6, eval_every=3))
        self.name = name
        Closing.built.append(name)
        self.seen: list[int] = []

    def train(self, job):
        self.seen.append(torch.get_num_threads())
        return super().train(job)

    def close(self) -> None:
        Closing.closed.append(self.name)


def test_a_ray_worker_builds_one_adapter_per_run_and_releases_the_last_runs(monkeypatch):
    monkeypatch.setattr(er, "_ADAPTER", {})
    Closing.built, Closing.closed = [], []
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a = Closing("probe")
        job = Job(level=0, kind="dense", trial=0, seed=0, weights=a.initial_weights(0), mask=None, budget=6)
        Closing.built = []
        assert _train_task("run1", lambda: Closing("one"), 2, job).status == "ok"
        assert _train_task("run1", lambda: Closing("again"), 2, job).status == "ok"
        assert Closing.built == ["one"] and Closing.closed == [] and er._ADAPTER["run1"].seen == [2, 2]
        assert _train_task("run2", lambda: Closing("two"), 1, job).status == "ok"
        assert Closing.built == ["one", "two"] and Closing.closed == ["one"] and list(er._ADAPTER) == ["run2"]
    finally:
        torch.set_num_threads(before)


def test_without_ray_installed_the_executor_is_one_line_saying_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(UsageError) as e:
        er._import_ray()
    assert str(e.value) == "--executor ray needs Ray; install it with: pip install -e '.[ray]'"
    assert e.value.__suppress_context__
    monkeypatch.undo()
    assert er._import_ray() is ray


def test_local_workers_get_the_drivers_own_import_paths_and_pythonpath(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path)
    paths = [str(tmp_path / "a"), "", str(tmp_path / "a"), str(tmp_path / "gone"), sys.prefix + "/lib/x", "b"]
    monkeypatch.setattr(sys, "path", paths)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(["/extra/one", "", "/extra/two"]))
    assert _driver_paths() == os.pathsep.join(
        [str(tmp_path / "a"), str(tmp_path), str(tmp_path / "b"), "/extra/one", "/extra/two"]
    )
    monkeypatch.delenv("PYTHONPATH")
    monkeypatch.setattr(sys, "path", [str(tmp_path / "a"), os.path.join(sys.base_prefix, "lib"), sys.exec_prefix])
    assert _driver_paths() == str(tmp_path / "a")


def test_an_address_where_nothing_answers_is_said_at_once_and_others_are_left_to_ray():
    for address in ("auto", "ray://10.0.0.1:10001", "host:port", "nohost", ""):
        assert _unreachable(address) is None, address
    assert _unreachable("127.0.0.1:1") == "Connection refused"
    assert _unreachable("::1:1") is not None  # an IPv6 host: the port is after the last colon
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert _unreachable(f"127.0.0.1:{s.getsockname()[1]}") is None


def test_an_error_without_a_reason_is_named_by_its_type(monkeypatch):
    def refuse(address, timeout):
        raise OSError()

    monkeypatch.setattr(er.socket, "create_connection", refuse)
    assert _unreachable("10.0.0.1:6379") == "OSError"


def test_joining_where_nothing_answers_is_one_line_with_what_to_do():
    if ray.is_initialized():
        pytest.skip("Ray is already initialised in this process")
    with pytest.raises(UsageError) as e:
        connect(RunOptions(executor="ray", ray_address="127.0.0.1:1"))
    assert str(e.value) == (
        "--ray-address '127.0.0.1:1': cannot join a Ray cluster there (nothing answers: Connection refused); "
        "start one with `ray start --head`, or pass --ray-address '' for a local instance"
    )
    assert e.value.__suppress_context__ and not ray.is_initialized()


@pytest.mark.parametrize("error", [RuntimeError(""), ValueError("  bad address\nmore"), ConnectionError("no")])
def test_a_join_that_ray_refuses_is_one_line_naming_its_first_line(monkeypatch, error):
    """Ray's own refusal (a version mismatch, a bad address), as ray.init raises it, is turned into one line."""
    if ray.is_initialized():
        pytest.skip("Ray is already initialised in this process")

    asked: list[dict] = []

    def refuse(**kw):
        asked.append(kw)
        raise error

    monkeypatch.setattr(ray, "init", refuse)
    with socket.socket() as s:  # something answers there
        s.bind(("127.0.0.1", 0))
        s.listen()
        address = f"127.0.0.1:{s.getsockname()[1]}"
        with pytest.raises(UsageError) as e:
            connect(RunOptions(executor="ray", ray_address=address))
    first = {"RuntimeError": "RuntimeError", "ValueError": "bad address", "ConnectionError": "no"}[type(error).__name__]
    assert str(e.value).startswith(f"--ray-address {address!r}: cannot join a Ray cluster there ({first}); start")
    assert asked == [{"address": address}]  # joined there, not a new local instance


def test_a_local_instance_refuses_negative_workers_before_starting():
    if ray.is_initialized():
        pytest.skip("Ray is already initialised in this process")
    with pytest.raises(UsageError) as e:
        connect(RunOptions(executor="ray", workers=-1))
    assert str(e.value) == "--workers -1 must be >= 0 (0 = one per core)" and not ray.is_initialized()


@pytest.mark.parametrize("cpus,gpus", [(0.0, 0.0), (-1.0, 0.0), (1.0, -0.5)])
def test_a_job_asking_no_cpus_or_negative_gpus_is_refused_before_ray_starts(cpus, gpus):
    a = ToyAdapter(ToyConfig())
    with pytest.raises(UsageError) as e:
        RayExecutor(a, lambda: a, RunOptions(executor="ray", cpus_per_job=cpus, gpus_per_job=gpus))
    assert str(e.value) == f"--cpus-per-job {cpus} must be > 0 and --gpus-per-job {gpus} must be >= 0"
    assert not ray.is_initialized()


@pytest.mark.parametrize("cpus,gpus", [(1.0, 0.0), (0.5, 0.0), (2.0, 1.0)])
def test_a_job_asking_some_cpus_and_no_or_some_gpus_passes_that_check(cpus, gpus):
    """It reaches the next one (`--workers -1` is refused before a local instance starts)."""
    if ray.is_initialized():
        pytest.skip("Ray is already initialised in this process")
    a = ToyAdapter(ToyConfig())
    with pytest.raises(UsageError, match=r"^--workers -1 must be >= 0"):
        RayExecutor(a, lambda: a, RunOptions(executor="ray", cpus_per_job=cpus, gpus_per_job=gpus, workers=-1))


def test_a_local_instance_is_asked_for_this_processs_cores_no_dashboard_and_the_drivers_paths(monkeypatch):
    """What `connect` asks of Ray for a local instance, as ray.init receives it (the slow
    tests/test_executor_ray_local_instance.py checks the instance itself)."""
    if ray.is_initialized():
        pytest.skip("Ray is already initialised in this process")
    asked: list[dict] = []
    monkeypatch.setattr(ray, "init", lambda **kw: asked.append(kw))
    monkeypatch.setattr(er, "available_cores", lambda: 7)
    assert connect(RunOptions(executor="ray")) is True
    assert connect(RunOptions(executor="ray", workers=3)) is True
    paths = {"env_vars": {"PYTHONPATH": _driver_paths()}}
    assert asked == [
        {"num_cpus": 7, "include_dashboard": False, "runtime_env": paths},
        {"num_cpus": 3, "include_dashboard": False, "runtime_env": paths},
    ]


def test_an_instance_already_running_in_this_process_is_used_and_not_ours(monkeypatch):
    asked: list[dict] = []
    monkeypatch.setattr(ray, "init", lambda **kw: asked.append(kw))
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    assert connect(RunOptions(executor="ray", ray_address="127.0.0.1:1")) is False and asked == []
