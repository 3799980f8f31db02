"""The toy domain trains with the threads the executor gives it (it sets none itself), so the executors' thread
handling is what the engine's tests see: `--cpus-per-job` under local, one thread per worker under process."""

from __future__ import annotations

import pytest
import torch
from toy_adapter import ToyAdapter, ToyConfig

from lth_core.config import ImpConfig, RunOptions
from lth_core.executors import train_safely
from lth_core.imp_runner import ImpRunner


class Watching(ToyAdapter):
    """Records the torch threads in force at each evaluation, i.e. inside the training loop."""

    seen: list[int] = []

    def _eval(self, model, data):
        Watching.seen.append(torch.get_num_threads())
        return super()._eval(model, data)


@pytest.mark.parametrize("cpus", [1, 2])
def test_local_jobs_train_with_cpus_per_job_threads_inside_the_loop(tmp_path, cpus):
    before = torch.get_num_threads()
    Watching.seen = []
    cfg = ToyConfig(steps=20, eval_every=10)
    options = RunOptions(out=str(tmp_path), progress=False, cpus_per_job=cpus)
    ImpRunner(Watching(cfg), lambda: Watching(cfg), ImpConfig(levels=1, trials=1), options).run()
    assert Watching.seen and set(Watching.seen) == {cpus}
    assert torch.get_num_threads() == before


def test_the_toy_keeps_the_threads_it_is_given():
    from lth_core.job import Job

    a = Watching(ToyConfig(steps=10, eval_every=5))
    before = torch.get_num_threads()
    try:
        Watching.seen = []
        w = a.initial_weights(0)
        train_safely(a, Job(level=0, kind="dense", trial=0, seed=0, weights=w, mask=None, budget=10), threads=2)
        assert set(Watching.seen) == {2}
    finally:
        torch.set_num_threads(before)
