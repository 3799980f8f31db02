"""What the runner stores of a training, on tiny toy runs whose trainings return what a domain may return (tables not
drawn): a training's own extra columns in its row, its gradient sums saved and pruned by, the rewind weights where
the training captured none (rewind step 0: its own start), and a transferred ticket's row (mutation testing of
lth_core/imp_runner.py's `row` and `store_outcome`)."""

from __future__ import annotations

import math
import time

import pytest
import torch
from toy_adapter import ToyAdapter, ToyConfig

from lth_core import tables
from lth_core.config import ImpConfig, RunOptions
from lth_core.imp_runner import ImpRunner, derived_seed
from lth_core.masks import Mask
from lth_core.store import RunStore
from lth_core.strategies import STRATEGIES, PruneStep, global_names

CFG = ToyConfig(hidden=4, steps=6, eval_every=3)
NAMES = ("0.weight", "2.weight", "4.weight")
GLOBAL = global_names({"0.weight": "fc", "2.weight": "fc", "4.weight": "output"}, {})


def run(out, adapter: ToyAdapter, imp: ImpConfig, **opts):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tables, "write_tables", lambda store, plots: None)  # imported where it is called
        opts.setdefault("progress", False)
        return ImpRunner(adapter, lambda: type(adapter)(CFG), imp, RunOptions(out=str(out), **opts)).run()


class Extras(ToyAdapter):
    """A training that reports its own columns, one of them named like a runner column."""

    def train(self, job):
        out = super().train(job)
        out.extras.update({"reward_mean": 1.5 + job.level, "kind": "not the job's kind"})
        return out


def test_a_trainings_extra_columns_join_its_row_and_never_replace_the_runners(tmp_path):
    t0 = time.perf_counter()
    path = run(tmp_path, Extras(CFG), ImpConfig(levels=1, trials=2, controls="random_mask", rewind_step="3"))
    elapsed = time.perf_counter() - t0
    store = RunStore(path)
    walls = [store.record(f.stem)["row"]["wall_seconds"] for f in (path / "jobs").iterdir()]
    assert len(walls) == 6 and all(0 < w < elapsed for w in walls) and len(set(walls)) > 1  # each its own time
    for key, level, kind in (("L00-dense-t0", 0, "dense"), ("L01-ticket-t0", 1, "ticket")):
        row = store.record(key)["row"]
        assert (row["reward_mean"], row["kind"], row["level"]) == (1.5 + level, kind, level)


class Sums(ToyAdapter):
    """A training that returns a sum of g * w per tensor asked (`Job.grad_sums`): here a fixed function of the
    final weights and the job, so the test knows what the next level's pruning must have read."""

    def train(self, job):
        out = super().train(job)
        if job.grad_sums:
            out.grad_sums = {n: out.final_weights[n] * (1 + job.trial) - 0.01 * job.level for n in job.grad_sums}
        return out


class NoSums(ToyAdapter):
    pass


def test_gradient_sums_are_saved_before_the_record_and_drawn_from(tmp_path):
    imp = ImpConfig(levels=2, trials=1, controls="", strategy="movement", rewind_step="3", seed=7)
    path = run(tmp_path, Sums(CFG), imp)
    store = RunStore(path)
    mask = Mask({n: torch.ones_like(store.load_state("init-t0")[n], dtype=torch.bool) for n in NAMES})
    for level in (0, 1):
        sums, final = store.load_state(f"gradsums-L{level:02d}-t0"), store.load_state(f"final-L{level:02d}-t0")
        assert set(sums) == set(NAMES) and all(torch.equal(sums[n], final[n] - 0.01 * level) for n in NAMES)
        step = PruneStep({n: final[n] for n in NAMES}, mask, {n: 0.2 for n in NAMES}, GLOBAL,
                         derived_seed(7, level + 1, 0), grad_sums=sums)  # fmt: skip
        mask = STRATEGIES.build("movement", {})(step)
        saved = Mask({k: v.bool() for k, v in store.load_state(f"mask-L{level + 1:02d}-t0").items()})
        assert all(torch.equal(saved[n], mask[n]) for n in NAMES), level
    assert not store.state_path("gradsums-L02-t0").exists()
    with pytest.raises(RuntimeError, match=r"^adapter 'toy' returned no gradient sums for L00-dense-t0$"):
        run(tmp_path / "none", NoSums(CFG), imp)


class Uncaptured(ToyAdapter):
    """A training that captures nothing (a domain may skip the capture at its own start step)."""

    def train(self, job):
        out = super().train(job)
        out.captured = {}
        return out


def test_rewind_step_0_needs_no_capture_and_a_missing_capture_is_an_error(tmp_path):
    path = run(tmp_path, Uncaptured(CFG), ImpConfig(levels=1, trials=1, controls=""))
    store = RunStore(path)
    init, rewind = store.load_state("init-t0"), store.load_state("rewind-t0")
    assert all(torch.equal(init[k], rewind[k]) for k in init) and init.keys() == rewind.keys()
    with pytest.raises(RuntimeError, match=r"^adapter did not capture the rewind weights at step 3$"):
        run(tmp_path / "k", Uncaptured(CFG), ImpConfig(levels=1, trials=1, controls="", rewind_step="3"))


def test_a_transferred_tickets_row_has_no_scoring_time_and_its_dense_run_keeps_no_rewind(tmp_path):
    imp = ImpConfig(levels=1, trials=1, controls="", rewind_step="3")
    src = run(tmp_path / "src", ToyAdapter(CFG), imp)
    dst = run(tmp_path / "dst", ToyAdapter(CFG), imp, ticket_from=str(src))
    store = RunStore(dst)
    ticket = store.record("L01-ticket-t0")["row"]
    assert ticket["status"] == "ok" and math.isnan(ticket["scoring_s"]) and ticket["attempts"] == 1
    assert not store.state_path("rewind-t0").exists() and store.record("L00-dense-t0")["row"]["status"] == "ok"
