"""`python -m benchmarks.lmc_eval_speed FOLDER`: are the path evaluations of an instability analysis faster in
the driver (as benchmarks.instability runs them) or as jobs in worker processes (each worker builds the adapter
from the analysis' factory, as the process executor's workers do, and evaluates a share of the alphas)?

Paired and interleaved: each repetition times the driver, then a cold pool (its start and the adapters' data
loading counted: what one analysis would pay), then the same evaluations on a warm pool; medians and ratios.
The first pair of FOLDER (an analysis folder with its final weights) is the path evaluated.
"""

from __future__ import annotations

import functools
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

from benchmarks.run import make_adapter
from domains import load_adapter_class
from lth_core.executor_process import _context
from lth_core.interpolation import alphas, evaluate_path
from lth_core.job import StateDict
from lth_core.presets import apply
from lth_core.store import RunStore

_W: dict[str, Any] = {}


def _init(factory: Any, threads: int) -> None:
    torch.set_num_threads(threads)
    _W["adapter"] = factory()


def _evaluate(a: StateDict, b: StateDict, points: list[float]) -> list[dict[str, float]]:
    return evaluate_path(_W["adapter"].evaluate, a, b, points, ("val", "test"))


def on_pool(pool: ProcessPoolExecutor, a: StateDict, b: StateDict, points: list[float], workers: int) -> list:
    shares = [points[i::workers] for i in range(workers)]
    return [row for part in pool.map(_evaluate, [a] * workers, [b] * workers, shares) for row in part]


def main(argv: list[str]) -> int:
    folder, reps, workers = Path(argv[0]), int(argv[1]) if len(argv) > 1 else 5, 2
    meta = RunStore.foreign(folder).meta()
    cls = load_adapter_class(meta["domain"])
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["domain_config"].items()}
    factory = functools.partial(make_adapter, meta["domain"], apply(cls.Config(), values))
    adapter = factory()
    store = RunStore.foreign(folder)
    keys = sorted(p.stem.removeprefix("final-") for p in (folder / "state").glob("final-*"))[:2]
    a, b = (store.load_state(f"final-{k}") for k in keys)
    assert a is not None and b is not None
    points = alphas(int(meta["analysis"]["alphas"]))
    torch.set_num_threads(1)
    ctx = _context()  # the process executor's: a fork server, never plain fork
    times: dict[str, list[float]] = {"driver": [], "jobs, cold pool": [], "jobs, warm pool": []}
    for _ in range(reps):
        t = time.perf_counter()
        ref = evaluate_path(adapter.evaluate, a, b, points, ("val", "test"))
        times["driver"].append(time.perf_counter() - t)
        t = time.perf_counter()
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init, initargs=(factory, 1)) as pool:
            got = on_pool(pool, a, b, points, workers)
            times["jobs, cold pool"].append(time.perf_counter() - t)
            t = time.perf_counter()
            got = on_pool(pool, a, b, points, workers)
            times["jobs, warm pool"].append(time.perf_counter() - t)
        assert sorted(r["alpha"] for r in got) == [r["alpha"] for r in ref]
    base = statistics.median(times["driver"])
    print(f"{meta['domain']} {meta['task']}: {len(points)} points x 2 splits, {workers} workers, {reps} reps")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:<16} median {med:7.3f} s  ({med / base:.2f}x the driver)  all: {[round(x, 2) for x in ts]}")
    adapter.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
