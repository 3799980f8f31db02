"""The process executor's parts by exact behaviour, mostly in process (lth_core/executor_process.py): a process's
start time (so a reused pid is not taken for the driver), the watch that ends a worker whose driver died, a
worker's set-up (its threads, its adapter or the error it sends back with its first job), the start each job
reports, the rows of errors raised outside training, the start method, and the executor's sizes and refusals.
The whole-run and kill tests (tests/test_executors.py) pin the pool's recovery; they take minutes."""

from __future__ import annotations

import atexit
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import pytest
import torch
from toy_adapter import ToyAdapter, ToyConfig

import lth_core.executor_process as ep
from lth_core.config import RunOptions
from lth_core.errors import UsageError
from lth_core.executor_process import ProcessExecutor, _context, _outcome, _started_at
from lth_core.executors import EXECUTORS, WorkerStartError, available_cores
from lth_core.job import Job, Outcome

TICK = os.sysconf("SC_CLK_TCK")


def uptime() -> float:
    return float(Path("/proc/uptime").read_text().split()[0])


def test_a_process_start_time_is_its_start_in_clock_ticks_since_boot():
    at = uptime()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        born = _started_at(child.pid)
        assert born is not None and born.isdigit() and abs(int(born) / TICK - at) < 5
        assert _started_at(child.pid) == born and int(_started_at(os.getpid()) or 0) <= int(born)
    finally:
        child.kill()
        child.wait()
    assert _started_at(child.pid) is None  # gone


def test_the_start_time_of_a_process_with_a_bracket_in_its_name(tmp_path):
    """/proc/PID/stat spells the name in parentheses, unescaped: the fields follow its last ')'."""
    name = tmp_path / "dr) iv(er"
    name.symlink_to("/bin/sleep")
    at = uptime()
    child = subprocess.Popen([str(name), "30"])
    try:
        deadline = time.time() + 20
        while ") iv(er" not in Path(f"/proc/{child.pid}/stat").read_text():  # until it has exec'd
            assert time.time() < deadline
            time.sleep(0.02)
        born = _started_at(child.pid)
        assert born is not None and born.isdigit() and abs(int(born) / TICK - at) < 5
    finally:
        child.kill()
        child.wait()


def test_a_zombie_is_not_alive():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.time() + 20
    while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.time() < deadline
        time.sleep(0.05)
    try:
        assert _started_at(child.pid) is None
    finally:
        child.wait()


def test_without_proc_a_live_pid_is_known_only_to_exist(monkeypatch):
    real = Path.read_text

    def no_proc(self, *a, **k):
        if str(self).startswith("/proc/"):
            raise FileNotFoundError(str(self))
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "read_text", no_proc)
    assert _started_at(os.getpid()) == "?"
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert _started_at(child.pid) is None


def test_a_pid_exists_unless_no_process_has_it(monkeypatch):
    assert ep._exists(os.getpid()) is True
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert ep._exists(child.pid) is False

    def forbidden(pid, sig):
        raise PermissionError("another user's")

    monkeypatch.setattr(os, "kill", forbidden)
    assert ep._exists(1) is True  # it exists, it is just not ours


class Exit(SystemExit):
    """os._exit, made catchable (a thread ends on it quietly): the code a worker would exit with."""


def test_a_worker_whose_driver_is_gone_exits_at_once(monkeypatch):
    codes: list[int] = []

    def exit_(code):
        codes.append(code)
        raise Exit(code)

    monkeypatch.setattr(os, "_exit", exit_)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    with pytest.raises(Exit):
        ep._exit_with_driver(child.pid)
    assert codes == [1]


def test_a_worker_exits_soon_after_its_driver_dies_and_not_before(monkeypatch):
    codes: list[int] = []

    def exit_(code):
        codes.append(code)
        raise Exit(code)  # ends the watching thread

    monkeypatch.setattr(os, "_exit", exit_)
    driver = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        ep._exit_with_driver(driver.pid)
        watch = [t for t in threading.enumerate() if t.name == "driver-watch" and t.is_alive()]
        assert len(watch) >= 1 and all(t.daemon for t in watch)
        time.sleep(1.2)
        assert codes == []  # the driver lives: the worker too
    finally:
        driver.kill()
        driver.wait()
    deadline = time.time() + 10
    while not codes and time.time() < deadline:
        time.sleep(0.05)
    assert codes == [1]


@pytest.fixture
def worker(monkeypatch):
    """This process as a worker: its own `_WORKER`, no atexit hook left behind, threads restored."""
    monkeypatch.setattr(ep, "_WORKER", {})
    hooks: list = []
    monkeypatch.setattr(atexit, "register", hooks.append)
    monkeypatch.setattr(ep, "_exit_with_driver", lambda pid: hooks.append(("watch", pid)))
    before = torch.get_num_threads()
    yield hooks
    torch.set_num_threads(before)


def toy_job(a: ToyAdapter, kind: str = "dense") -> Job:
    return Job(level=0, kind=kind, trial=0, seed=0, weights=a.initial_weights(0), mask=None, budget=6)


class Counting(ToyAdapter):
    def __init__(self, config):
        super().__init__(config)
        self.seen: list[int] = []

    def train(self, job):
        self.seen.append(torch.get_num_threads())
        return super().train(job)


def test_a_worker_builds_its_adapter_once_and_trains_with_the_jobs_threads(worker):
    a = Counting(ToyConfig(steps=6, eval_every=3))
    starts = multiprocessing.get_context("spawn").SimpleQueue()
    torch.set_num_threads(1)
    ep._init_worker(lambda: a, 2, 4242, starts)
    assert worker == [("watch", 4242), a.close] and torch.get_num_threads() == 2
    assert ep._WORKER == {"starts": starts, "threads": 2, "adapter": a}
    torch.set_num_threads(1)
    out = ep._train_in_worker(toy_job(a))
    assert out.status == "ok" and a.seen == [2] and starts.get() == "L00-dense-t0" and starts.empty()


@pytest.mark.parametrize(
    "error,sent", [(UsageError("--data: no such folder"), UsageError), (OSError("disk"), WorkerStartError)]
)
def test_a_worker_that_cannot_build_sends_the_error_back_with_its_first_job(worker, error, sent):
    def factory():
        raise error

    starts = multiprocessing.get_context("spawn").SimpleQueue()
    ep._init_worker(factory, 1, 4242, starts)
    assert "adapter" not in ep._WORKER and isinstance(ep._WORKER["error"], sent) and worker == [("watch", 4242)]
    a = ToyAdapter(ToyConfig(steps=6))
    with pytest.raises(sent) as e:
        ep._train_in_worker(toy_job(a, "ticket"))
    assert e.value is ep._WORKER["error"] and starts.get() == "L00-ticket-t0"  # its start is still reported


def test_an_error_outside_the_training_is_a_failed_row_and_a_stop_stays_one():
    done: Future = Future()
    o = Outcome.failed("ok", "")
    done.set_result(o)
    assert _outcome(done) is o
    bad: Future = Future()
    bad.set_exception(TypeError("cannot pickle '_thread.lock' object"))
    row = _outcome(bad)
    assert (row.status, row.error) == ("failed", "TypeError: cannot pickle '_thread.lock' object")
    for stop in (UsageError("u"), WorkerStartError("w"), KeyboardInterrupt()):
        f: Future = Future()
        f.set_exception(stop)
        with pytest.raises(type(stop)):
            _outcome(f)


def test_workers_start_from_a_fork_server_that_preloaded_torch_or_else_are_spawned(monkeypatch):
    from multiprocessing import forkserver

    ctx = _context()
    assert ctx.get_start_method() == "forkserver"
    assert forkserver._forkserver._preload_modules == ["torch", "lth_core.executor_process"]
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["fork", "spawn"])
    assert _context().get_start_method() == "spawn"


def test_the_executor_splits_the_cores_unless_told_and_refuses_negative_workers():
    a = ToyAdapter(ToyConfig())
    factory, options = (lambda: a), RunOptions(executor="process", cpus_per_job=2.0)
    ex = EXECUTORS.get("process")(a, factory, options)
    assert isinstance(ex, ProcessExecutor) and (ex.adapter, ex.factory, ex.options) == (a, factory, options)
    assert (ex.threads, ex.workers) == (2, max(1, available_cores() // 2)) and isinstance(ex.workers, int)
    assert isinstance(ProcessExecutor(a, factory, RunOptions(executor="process")).workers, int)  # a pool size
    assert (ex._pool, ex._starts, ex._started, ex.deaths) == (None, None, set(), 0)
    assert ex._context.get_start_method() == "forkserver"  # its workers' start method
    assert ProcessExecutor(a, lambda: a, RunOptions(executor="process", workers=3)).workers == 3
    assert ProcessExecutor(a, lambda: a, RunOptions(executor="process", cpus_per_job=64.0)).workers == 1
    with pytest.raises(UsageError) as e:
        ProcessExecutor(a, lambda: a, RunOptions(executor="process", workers=-2))
    assert str(e.value) == "--workers -2 must be >= 0 (0 = one per core)"
