"""One IMP level (dense level 0, then ticket + controls at level 1) of each quick preset at a tiny budget.

Timed end to end through the engine's runner into a fresh run folder per round. The ticket-minus-best-control
gap of the last round goes into `extra_info`, so a quality regression shows beside a speed one in
`pytest-benchmark compare`. At a tiny budget the gap is mostly noise for the real domains; the toy runs
its full budget.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace

import pandas as pd
import pytest

from benchmarks.bench_domains import DOMAIN_BENCH, quick_config
from lth_core.config import RunOptions
from lth_core.imp_runner import ImpRunner
from lth_core.tables import gaps


@pytest.mark.parametrize("domain", list(DOMAIN_BENCH))
def test_one_imp_level(benchmark, domain, tmp_path):
    cls, cfg, imp = quick_config(domain, tiny=True)
    imp = replace(imp, levels=1, trials=1)
    adapter = cls(cfg)
    folders: list[str] = []

    def fresh_folder():
        folders.append(tempfile.mkdtemp(dir=tmp_path))
        return (folders[-1],), {}

    def one_level(out: str):
        return ImpRunner(adapter, lambda: cls(cfg), imp, RunOptions(out=out, progress=False), preset="quick").run()

    try:
        path = benchmark.pedantic(one_level, setup=fresh_folder, rounds=DOMAIN_BENCH[domain].rounds, iterations=1)
    finally:
        adapter.close()
    results = pd.read_csv(path / "results.csv")
    assert (results["status"] == "ok").all(), results[["kind", "status", "error"]]
    summary = pd.read_csv(path / "summary.csv")
    gap = gaps(summary).iloc[0]
    dense = summary[summary["kind"] == "dense"]["score_mean"].iloc[0]
    benchmark.extra_info.update(
        {
            "domain": domain,
            "task": adapter.task(),
            "metric": str(summary["metric"].iloc[0]),
            "higher_is_better": bool(summary["higher_is_better"].iloc[0]),
            "budget": adapter.budget(),
            "jobs": len(results),
            "density": float(gap["density"]),
            "dense_score": float(dense),
            "ticket_score": float(gap["ticket"]),
            "best_control": gap["best_control"],
            "ticket_minus_best_control": float(gap["ticket_minus_best_control"]),
            "advantage": float(gap["advantage"]),
        }
    )
