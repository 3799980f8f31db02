"""Speed of the reporting layer: the standard tables and figure of a run, compare and the HTML report.

Built on a synthetic results table of a full-size run (20 levels x 3 kinds x 5 trials of one task) and on a
small real toy run, so what is timed is the code path a user's run goes through.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.compare import CompareConfig, compare
from benchmarks.report import ReportConfig, build_html
from benchmarks.run_folders import find_runs
from lth_core.config import ImpConfig, RunOptions
from lth_core.figures import figure1
from lth_core.imp_runner import ImpRunner
from lth_core.tables import gaps, markdown, summarize


def full_size_results(levels: int = 20, trials: int = 5, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for level in range(levels + 1):
        kinds = ["dense"] if level == 0 else ["ticket", "random_reinit", "random_mask"]
        for kind in kinds:
            for t in range(trials):
                score = 0.9 - (0.0 if kind in ("dense", "ticket") else 0.01 * level) + rng.normal(0, 0.01)
                rows.append(
                    {
                        "domain": "d",
                        "task": "data/model",
                        "kind": kind,
                        "level": level,
                        "trial": t,
                        "density": 0.8**level,
                        "metric": "accuracy",
                        "score": score,
                        "early_stop_step": int(rng.integers(100, 5000)),
                        "final_score": score,
                        "higher_is_better": True,
                        "seed": t,
                        "wall_seconds": 1.0,
                        "config_hash": "h",
                        "status": "ok",
                    }
                )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def results() -> pd.DataFrame:
    return full_size_results()


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> Path:
    from toy_adapter import ToyAdapter, ToyConfig

    cfg = ToyConfig(steps=40)
    out = tmp_path_factory.mktemp("toy")
    return ImpRunner(
        ToyAdapter(cfg),
        lambda: ToyAdapter(cfg),
        ImpConfig(levels=3, trials=3),
        RunOptions(out=str(out), progress=False),
    ).run()


def test_summary_gaps_and_markdown(benchmark, results):
    def build():
        summary = summarize(results)
        return summary, gaps(summary), markdown(summary, {"domain": "d", "task": "data/model", "config_hash": "h"})

    summary, g, md = benchmark(build)
    assert len(summary) == 61 and len(g) == 20 and "ticket" in md
    benchmark.extra_info.update(
        {"rows": len(results), "mean_ticket_minus_best_control": float(g["ticket_minus_best_control"].mean())}
    )


def test_figure1(benchmark, results, tmp_path):
    summary = summarize(results)
    benchmark.pedantic(figure1, args=(summary, tmp_path / "figure1.png"), rounds=3, iterations=1)
    assert (tmp_path / "figure1.png").stat().st_size > 0


def test_compare_two_runs(benchmark, toy_run):
    runs = find_runs(toy_run)
    cfg = CompareConfig(runs=[str(toy_run), str(toy_run)])
    comp = benchmark(compare, [runs, runs], cfg)
    assert not comp.diffs.empty and not comp.regressions.any().any()


def test_html_report(benchmark, toy_run):
    runs = find_runs(toy_run)
    page = benchmark.pedantic(build_html, args=(runs, ReportConfig(runs=[str(toy_run)])), rounds=3, iterations=1)
    assert page.count("data:image/png;base64,") >= 1
