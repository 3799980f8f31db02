"""Early-bird tickets (lth_core/early_bird.py, the `early_bird` schedule): the mask distance, the declared point,
the stop, a training that never stabilizes, the cost columns, and resume after a kill at the early-bird point."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from fault_tools import ROOT, TESTS, assert_same_run
from toy_adapter import ToyAdapter, ToyConfig

from lth_core.config import ImpConfig, RunOptions
from lth_core.early_bird import EarlyBirdSpec, EarlyBirdWatch, Target, declared_at, mask_distance
from lth_core.early_bird_files import read_matrix
from lth_core.errors import UsageError
from lth_core.imp_runner import ImpRunner
from lth_core.job import Job
from lth_core.masks import Mask
from lth_core.store import RunStore
from lth_core.strategies import STRATEGIES, PruneStep

TOY = ToyConfig(steps=200, eval_every=10)  # 21 evaluation points
EPS = {"early_bird": {"epsilon": 0.15}}  # the toy's masks settle at 90, 80, 70 for levels 1, 2, 3 (0.1: level 1 never)


def run(out: Path, schedule: str = "early_bird", cfg: ToyConfig = TOY, **imp) -> Path:
    imp = {"levels": 3, "trials": 1, "schedule": schedule, **imp}
    runner = ImpRunner(ToyAdapter(cfg), functools.partial(ToyAdapter, cfg), ImpConfig(**imp), RunOptions(out=str(out)))
    return runner.run()


def rows(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "results.csv").set_index(["level", "kind"])


def test_identical_masks_are_at_distance_zero_and_the_distance_counts_all_entries_together():
    g = torch.Generator().manual_seed(0)
    a = Mask({"x": torch.rand(10, 10, generator=g) > 0.5, "y": torch.rand(30, generator=g) > 0.5})
    assert mask_distance(a, Mask({k: v.clone() for k, v in a.tensors.items()})) == 0.0
    b = Mask({"x": a["x"].clone(), "y": a["y"].clone()})
    b["x"][0, :3] = ~b["x"][0, :3]
    b["y"][:2] = ~b["y"][:2]
    assert mask_distance(a, b) == pytest.approx(5 / 130)


def masks_to_weights(masks: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """Weights whose top-half magnitudes are exactly `mask` (so magnitude pruning at 50% draws it back)."""
    return [{"w": m.float() * 2.0 + 0.5} for m in masks]


def test_the_declared_point_is_the_first_where_the_latest_mask_is_within_epsilon_of_the_window_before_it():
    g = torch.Generator().manual_seed(1)
    base = torch.zeros(100, dtype=torch.bool)
    base[torch.randperm(100, generator=g)[:50]] = True

    def moved(m: torch.Tensor, k: int) -> torch.Tensor:  # swap k kept entries with k pruned ones
        m = m.clone()
        on, off = torch.nonzero(m).flatten()[:k], torch.nonzero(~m).flatten()[:k]
        m[on], m[off] = False, True
        return m

    # each mask swaps k entries of the one before: big moves, then small ones; with window 4 and epsilon 0.05 the
    # first point whose 3 predecessors are all within 5 of 100 entries comes a few points after the moves settle
    masks = [base]
    for k in [20, 15, 10, 2, 1, 1, 1, 1, 1]:
        masks.append(moved(masks[-1], k))
    steps = [10 * i for i in range(len(masks))]
    spec = EarlyBirdSpec(
        "magnitude_layerwise", {}, ("w",), frozenset(), (Target(1, {"w": 0.5}, 0),), window=4, epsilon=0.05
    )
    watch = EarlyBirdWatch(spec)
    for s, w in zip(steps, masks_to_weights(masks)):
        watch.observe(s, w)
        if watch.done:
            break
    dist = [[mask_distance(Mask({"w": a}), Mask({"w": b})) for b in masks] for a in masks]
    expected = declared_at(dist, steps, 4, 0.05)
    assert expected is not None
    assert watch.result.declared == {1: expected}
    i = steps.index(expected)
    assert i > 3  # not the first point a window of 4 allows
    assert all(dist[i][j] <= 0.05 for j in range(i - 3, i))
    for earlier in range(3, i):  # no earlier point satisfies the window condition
        assert any(dist[earlier][j] > 0.05 for j in range(earlier - 3, earlier))
    n = len(watch.result.steps)  # the watch's own matrix is the pairwise one, up to the declared point
    assert torch.allclose(torch.tensor(dist)[:n, :n].double(), torch.tensor(watch.result.distances[1]).double())
    assert torch.equal(watch.result.weights[1]["w"], masks_to_weights(masks)[i]["w"])


def test_declared_training_stops_there_and_its_tickets_are_pruned_from_the_weights_at_that_point(tmp_path):
    folder = run(tmp_path, params=EPS)
    df = rows(folder)
    dense = df.loc[(0, "dense")]
    assert bool(dense["eb_declared"]) and dense["steps"] < TOY.steps and dense["eb_step"] == dense["steps"]
    store = RunStore.foreign(folder)
    declared = json.loads((folder / "jobs" / "L00-dense-t0.json").read_text())["early_bird"]["declared"]
    adapter = ToyAdapter(TOY)
    init = store.load_state(store.init_name(0))
    for level in (1, 2, 3):
        at = declared[str(level)]
        assert df.loc[(level, "ticket"), "eb_step"] == at and df.loc[(level, "ticket"), "discovery_steps"] == at
        # the same training stopped at `at` by its budget ends on the captured weights
        alone = adapter.train(Job(0, "dense", 0, 0, init, None, budget=at, keep_final_weights=True))
        captured = store.load_state(store.captured_name(level, 0))
        assert all(torch.equal(captured[k], alone.final_weights[k]) for k in captured)
        # the ticket's mask is the strategy's one-shot mask of those weights, at the level's density
        mask = store.load_state(store.mask_name(level, 0))
        rates = {n: 1 - 0.8**level for n in mask}
        full = Mask({n: torch.ones_like(v, dtype=torch.bool) for n, v in mask.items()})
        drawn = STRATEGIES.get("magnitude_layerwise")(
            PruneStep({n: captured[n] for n in mask}, full, rates, frozenset())
        )
        assert all(torch.equal(drawn[n], mask[n].bool()) for n in mask)
        steps, dist = read_matrix(folder / RunStore.distances_name("L00-dense-t0", level))
        assert (
            steps[-1] == dense["steps"] and len(dist) == len(steps) and all(dist[i][i] == 0 for i in range(len(dist)))
        )
    assert max(declared.values()) == dense["steps"]  # it stopped at the last declaration
    assert (folder / "early_bird" / "L00-dense-t0.png").stat().st_size > 0


def test_a_training_that_never_stabilizes_runs_its_full_budget_and_says_so(tmp_path):
    folder = run(tmp_path, params={"early_bird": {"window": 30}})  # more masks than the 21 points: never
    df = rows(folder)
    dense = df.loc[(0, "dense")]
    assert dense["steps"] == TOY.steps and not bool(dense["eb_declared"]) and pd.isna(dense["eb_step"])
    store = RunStore.foreign(folder)
    final = store.load_state(store.captured_name(3, 0))
    for level in (1, 2, 3):
        t = df.loc[(level, "ticket")]
        assert not bool(t["eb_declared"]) and pd.isna(t["eb_step"]) and t["discovery_steps"] == TOY.steps
        captured = store.load_state(store.captured_name(level, 0))
        assert all(torch.equal(captured[k], final[k]) for k in final)  # the end of training's weights


def test_discovery_cost_of_imp_adds_each_level_trained_before_the_ticket(tmp_path):
    df = rows(run(tmp_path, schedule="iterative", rewind_step="20"))
    budget, rewind = TOY.steps, 20
    assert df.loc[(0, "dense"), "discovery_steps"] == budget
    for level in (1, 2, 3):
        expected = budget + (level - 1) * (budget - rewind)
        for kind in ("ticket", "random_reinit", "random_mask"):
            assert df.loc[(level, kind), "discovery_steps"] == expected
    assert df["discovery_flops"].isna().all()  # the toy adapter counts no FLOPs


def test_early_bird_refuses_a_strategy_that_needs_data_and_a_window_below_two(tmp_path):
    with pytest.raises(UsageError, match="needs data"):
        run(tmp_path, strategy="snip")
    with pytest.raises(UsageError, match="--early-bird-window 1"):
        run(tmp_path, params={"early_bird": {"window": 1}})
    assert not any(tmp_path.iterdir())


KILLER = """import functools, os, signal, sys
sys.path[:0] = [{root!r}, {tests!r}]
from toy_adapter import ToyAdapter, ToyConfig
from lth_core.config import ImpConfig, RunOptions
from lth_core.imp_runner import ImpRunner
from lth_core.store import RunStore

write = RunStore.write_record
def write_record(self, key, record):  # the early-bird weights are saved: kill -9 before the record commits them
    if key == "L00-dense-t0" and self.state_path(self.captured_name(1, 0)).exists():
        os.kill(os.getpid(), signal.SIGKILL)
    write(self, key, record)
RunStore.write_record = write_record
cfg = ToyConfig(steps=200, eval_every=10)
imp = ImpConfig(levels=3, trials=1, schedule="early_bird", params={eps!r})
ImpRunner(ToyAdapter(cfg), functools.partial(ToyAdapter, cfg), imp, RunOptions(out={out!r}, progress=False)).run()
"""


def test_resume_after_a_kill_at_the_early_bird_point_gives_the_same_ticket(tmp_path):
    reference = run(tmp_path / "ref", params=EPS)
    script = tmp_path / "killer.py"
    script.write_text(KILLER.format(root=str(ROOT), tests=str(TESTS), out=str(tmp_path / "run"), eps=EPS))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, env={**os.environ, "PYTHONPATH": ""})
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    folder = tmp_path / "run" / reference.name
    assert (folder / "state" / "captured-L01-t0.pt").exists() and not (folder / "jobs" / "L00-dense-t0.json").exists()
    assert run(tmp_path / "run", params=EPS) == folder
    assert_same_run(reference, folder)


def test_compare_and_report_put_imp_and_early_bird_side_by_side_on_score_and_discovery_cost(tmp_path, capsys):
    from benchmarks import compare, report

    imp, eb = run(tmp_path / "a", schedule="iterative", levels=2), run(tmp_path / "b", levels=2, params=EPS)
    assert compare.main([str(imp), str(eb), "--format", "md"]) == 0
    md = capsys.readouterr().out
    assert "## Ticket score and discovery steps" in md and "## Total discovery cost" in md
    assert f"{imp.name} iterative steps" in md and f"{eb.name} early_bird steps" in md
    totals = compare.totals([compare.load_sources([str(p)])[0][0] for p in (imp, eb)]).set_index("schedule")
    steps = totals["total discovery steps"]
    assert (
        steps["iterative"] == 2 * TOY.steps and steps["early_bird"] == rows(eb).loc[(0, "dense"), "steps"] < TOY.steps
    )
    assert compare.main([str(imp), str(eb), "--value", "discovery_steps", "--format", "csv"]) == 0
    assert report.main([str(imp), str(eb), "--out", str(tmp_path / "r.html")]) == 0
    assert "Score against the cost of finding the ticket" in (tmp_path / "r.html").read_text()
