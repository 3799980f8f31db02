"""Speed of masked training for each domain's quick model (the mask held by the domain's own loop).

A benchmark call trains a ticket-like job (init weights, one-shot magnitude mask at 20% density) for the
last `span` steps of the quick budget, so it includes one job's set-up and its final evaluation.
`extra_info` also carries the per-step cost with that fixed cost removed: a `short`-step job is timed
just before (best of two) and subtracted from the benchmark's best round.
"""

from __future__ import annotations

import time

import pytest

from benchmarks.bench_domains import DOMAIN_BENCH, masked_job, quick_config


@pytest.mark.parametrize("domain", list(DOMAIN_BENCH))
def test_masked_training_steps(benchmark, domain):
    bench = DOMAIN_BENCH[domain]
    cls, cfg, _ = quick_config(domain, tiny=False)
    adapter = cls(cfg)
    try:
        budget = adapter.budget()
        span, short = min(bench.span, budget), min(bench.short, budget)
        long_job = masked_job(adapter, 0.8, budget - span)
        short_job = masked_job(adapter, 0.8, budget - short)
        adapter.train(short_job)  # loads data, builds environments, warms caches: not timed
        fixed = min(_seconds(adapter, short_job) for _ in range(2))
        out = benchmark.pedantic(adapter.train, args=(long_job,), rounds=bench.rounds, iterations=1)
        assert out.status == "ok", out.error
        best = benchmark.stats.stats.min
        benchmark.extra_info.update(
            {
                "domain": domain,
                "task": adapter.task(),
                "unit": bench.unit,
                "steps": span,
                "density": 0.2,
                "short_job_steps": short,
                "short_job_seconds": round(fixed, 4),
                "seconds_per_step": (best - fixed) / max(1, span - short),
                "score": out.score,
            }
        )
    finally:
        adapter.close()


def _seconds(adapter, job) -> float:
    start = time.perf_counter()
    adapter.train(job)
    return time.perf_counter() - start
