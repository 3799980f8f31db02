"""One tiny toy run, read back by exact values: the state it saves, the masks it draws, the rows and records
it writes, and what a second run of the same command trains (mutation testing of lth_core/imp_runner.py; the
toy runs of tests/test_runner.py check shapes and counts)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil

import pytest
import torch
from toy_adapter import ToyAdapter, ToyConfig

from lth_core import tables
from lth_core.config import ImpConfig, RunOptions, config_hash
from lth_core.imp_runner import ImpRunner, attempts, derived_seed, run_identity
from lth_core.masks import Mask
from lth_core.provenance import git_commit
from lth_core.store import RunStore
from lth_core.strategies import STRATEGIES, PruneStep

CFG = ToyConfig(hidden=4, steps=6, eval_every=3)
IMP = ImpConfig(levels=1, trials=2, controls="random_mask", rewind_step="3", seed=7)
SIZES = {"0.weight": 40, "2.weight": 16, "4.weight": 12}


class Counting(ToyAdapter):
    trained: list[str] = []

    def train(self, job):
        Counting.trained.append(job.key)
        return super().train(job)


def runner(out) -> ImpRunner:
    return ImpRunner(Counting(CFG), lambda: Counting(CFG), IMP, RunOptions(out=str(out), progress=False))


@pytest.fixture
def done(tmp_path_factory):
    """Two runs of one command. Its tables and figures are not drawn (they are ~90% of the time here, and
    tests/test_runner.py checks them): the claims below are the records, state and trainings. Run for every test
    (~1 s): mutmut runs, for a mutant, the tests it saw reach the function, and a module-scoped run is seen only by
    the first test that set it up, so the row and record checks below never ran against `row`'s mutants."""
    Counting.trained = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tables, "write_tables", lambda store, plots: None)  # imported where it is called
        r = runner(tmp_path_factory.mktemp("exact"))
        path = r.run()
        first = list(Counting.trained)
        Counting.trained = []
        runner(path.parent).run()  # the same command again: everything is done
    return r, path, first, list(Counting.trained)


def test_seeds_are_derived_from_named_parts():
    assert derived_seed(7, 1, 0) == int(hashlib.sha256(repr((7, 1, 0)).encode()).hexdigest()[:8], 16)
    assert derived_seed(0, 1, 0) == 1674369982 and derived_seed(0, 1, 0) != derived_seed(0, 0, 1)
    assert attempts({"row": {}}) == 1 and attempts({"row": {"attempts": 3}}) == 3


def test_the_run_trains_each_job_once_and_a_rerun_trains_nothing(done):
    r, path, first, again = done
    assert sorted(first) == sorted(
        ["L00-dense-t0", "L00-dense-t1", "L01-ticket-t0", "L01-ticket-t1", "L01-random_mask-t0", "L01-random_mask-t1"]
    )
    assert first.index("L00-dense-t1") < first.index("L01-ticket-t0") and again == []
    assert path.name == f"toy-{r.hash[:12]}" and r.hash == config_hash(run_identity("toy", IMP, CFG))
    assert (r.trial_seed(0), r.trial_seed(1), r.rewind, r.budget) == (7, 1007, 3, 6)


def test_run_json_names_what_was_run(done):
    r, path, _, _ = done
    meta = json.loads((path / "run.json").read_text())
    assert meta["config_hash"] == r.hash and meta["identity"] == json.loads(json.dumps(r.identity))
    assert (meta["domain"], meta["task"], meta["seed"], meta["budget"], meta["rewind_step"]) == (
        "toy",
        "blobs/mlp",
        7,
        6,
        3,
    )
    assert meta["prunable"] == {"0.weight": "fc", "2.weight": "fc", "4.weight": "output"}
    assert meta["rates"] == {n: 0.2 for n in SIZES} and meta["ticket_from"] is None
    assert meta["recovered"] == [] and len(meta["finished"]) == 19 and meta["imp"]["controls"] == "random_mask"


def test_state_the_ticket_is_pruned_from_and_starts_at(done):
    r, path, _, _ = done
    store = RunStore(path)
    for t in (0, 1):
        init, rewind, final = (store.load_state(n) for n in ("init-t%d" % t, "rewind-t%d" % t, "final-L00-t%d" % t))
        fresh = ToyAdapter(CFG).initial_weights(7 + 1000 * t)
        assert all(torch.equal(init[k], fresh[k]) for k in fresh) and not torch.equal(
            rewind["0.weight"], init["0.weight"]
        )
        mask = Mask({k: v.bool() for k, v in store.load_state(f"mask-L01-t{t}").items()})
        weights = {n: final[n] for n in SIZES}
        ones = Mask({n: torch.ones_like(final[n], dtype=torch.bool) for n in SIZES})
        step = PruneStep(weights, ones, {n: 0.2 for n in SIZES}, frozenset(SIZES), seed=derived_seed(7, 1, t))
        want = STRATEGIES.get("magnitude_layerwise")(step)
        assert all(torch.equal(mask[n], want[n]) for n in SIZES)
        assert mask.kept() == {"0.weight": 32, "2.weight": 13, "4.weight": 10}
        assert float(store.load_state(f"scoring-L01-t{t}")["seconds"]) >= 0
        assert store.load_state(f"final-L01-t{t}") is None  # the last level's weights feed no level


def test_rows_and_records(done):
    r, path, _, _ = done
    store = RunStore(path)
    dense, ticket, control = (store.record(k) for k in ("L00-dense-t1", "L01-ticket-t1", "L01-random_mask-t1"))
    d = dense["row"]
    assert (d["kind"], d["level"], d["trial"], d["seed"], d["start_step"], d["density"]) == (
        "dense",
        0,
        1,
        1007,
        0,
        1.0,
    )
    assert (d["kept"], d["total"], d["status"], d["error"], d["attempts"], d["steps"]) == (None, None, "ok", "", 1, 6)
    assert (d["domain"], d["task"], d["metric"], d["val_metric"], d["higher_is_better"]) == (
        "toy",
        "blobs/mlp",
        "accuracy",
        "val_loss",
        True,
    )
    assert d["config_hash"] == r.hash and json.loads(d["config"]) == json.loads(json.dumps(r.identity))
    assert json.loads(d["execution"]) == r.execution and d["preset"] == ""
    # every row carries the versions and the commit it ran under, written canonically (sorted keys)
    assert d["git_commit"] == git_commit() and d["versions"] == json.dumps(r.versions(), sort_keys=True)
    assert d["config"] == json.dumps(r.identity, sort_keys=True, default=str)
    assert d["execution"] == json.dumps(r.execution, sort_keys=True)
    assert d["wall_seconds"] > 0 and d["wall_seconds"] == round(d["wall_seconds"], 3)
    assert [p["step"] for p in dense["curve"]] == [0, 3, 6] and "tensors" not in dense and "scoring_s" not in d
    t = ticket["row"]
    assert (t["kind"], t["level"], t["seed"], t["start_step"], t["steps"], t["kept"], t["total"]) == (
        "ticket",
        1,
        1007,
        3,
        3,
        55,
        68,
    )
    at = {p["step"]: p for p in ticket["curve"]}
    assert t["density"] == pytest.approx(55 / 68) and t["score"] == at[t["early_stop_step"]]["test"]
    assert t["final_score"] == at[6]["test"] and t["val_at_stop"] == at[t["early_stop_step"]]["val"]
    assert ticket["tensors"] == {"0.weight": [32, 40], "2.weight": [13, 16], "4.weight": [10, 12]}
    assert isinstance(t["scoring_s"], float) and t["scoring_s"] == round(t["scoring_s"], 4)
    assert [p["step"] for p in ticket["curve"]] == [3, 6]
    c = control["row"]
    assert (c["kind"], c["seed"], c["start_step"], c["kept"]) == ("random_mask", 1007, 3, 55)
    assert control["tensors"] == ticket["tensors"] and "scoring_s" not in c
    mask_t = Mask({k: v.bool() for k, v in store.load_state("mask-L01-t1").items()})
    assert mask_t.kept() == {n: k for n, (k, _) in ticket["tensors"].items()}


def test_a_dense_run_whose_rewind_weights_are_gone_is_trained_again(done, tmp_path):
    _, path, _, _ = done
    shutil.copytree(path, tmp_path / path.name)
    (tmp_path / path.name / "state" / "rewind-t1.pt").unlink()
    Counting.trained = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tables, "write_tables", lambda store, plots: None)  # imported where it is called
        runner(tmp_path).run()
    assert Counting.trained == ["L00-dense-t1"] and (tmp_path / path.name / "state" / "rewind-t1.pt").is_file()
    # a job that was ok and trains again (its state was lost) starts its count of tries afresh
    assert RunStore(tmp_path / path.name).record("L00-dense-t1")["row"]["attempts"] == 1


def test_a_diverged_job_is_retried_while_tries_are_left_and_then_left_alone(tmp_path):
    cfg = ToyConfig(hidden=4, steps=4, eval_every=2, nan_at=1)
    imp = ImpConfig(levels=0, trials=1, controls="")
    tried = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tables, "write_tables", lambda store, plots: None)  # imported where it is called
        for retries in (0, 0, 1, 1):
            Counting.trained = []
            opts = RunOptions(out=str(tmp_path), progress=False, retries=retries)
            path = ImpRunner(Counting(cfg), lambda: Counting(cfg), imp, opts).run()
            tried.append(len(Counting.trained))
    rec = RunStore(path).record("L00-dense-t0")
    assert tried == [1, 0, 1, 0] and (rec["row"]["status"], rec["row"]["attempts"]) == ("diverged", 2)


class AlwaysFinal(ToyAdapter):
    """A domain that hands back its trained weights whether the job asked for them or not."""

    def train(self, job):
        out = super().train(job)
        return dataclasses.replace(
            out, final_weights={k: torch.full_like(v, job.level + 1) for k, v in job.weights.items()}
        )


def test_final_weights_are_saved_only_for_the_jobs_that_keep_them(tmp_path):
    """Only a job with keep_final_weights (the dense run, a ticket feeding a next level) writes `final-*`: a
    control's or the last level's weights, handed back anyway, never overwrite the file the next level prunes."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tables, "write_tables", lambda store, plots: None)
        opts = RunOptions(out=str(tmp_path), progress=False)
        path = ImpRunner(AlwaysFinal(CFG), lambda: AlwaysFinal(CFG), IMP, opts).run()
    store = RunStore(path)
    for t in (0, 1):
        assert all(v.eq(1).all() for v in store.load_state(f"final-L00-t{t}").values())  # the dense run's
        assert store.load_state(f"final-L01-t{t}") is None
