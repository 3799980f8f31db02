"""`python -m benchmarks.imp_run_speed` (or `python -m benchmarks.speed imp-run`): how long a whole IMP run takes.

The run of the issue: LeNet-300-100, 15 levels at 20% per level (level L at 0.8^L of the weights: 3.5% at
level 15), 2,000 iterations per training, the ticket beside both controls (random_reinit, random_mask), one
trial: 46 trainings, through the real runner (pruning, controls, run store, tables and figures included) on
generated MNIST-shaped data (no download). It prints the wall time of every level (from the start of its
pruning to the end of its tables) beside the seconds its trainings took, and the total. `--sparse` is passed to
the vision loop's `sparse` field where the vision config has one, so runs with and without the sparse path
can be compared side by side; before that field exists only `never` (the masked dense path) is accepted.
"""

from __future__ import annotations

import csv
import functools
import json
import tempfile
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.cli import OneLineParser, fail
from domains.vision.adapter import VisionAdapter
from domains.vision.config import VisionConfig
from domains.vision.data import DATASETS
from lth_core.config import ImpConfig, RunOptions, opt
from lth_core.errors import UsageError
from lth_core.executors import EXECUTORS
from lth_core.imp_runner import ImpRunner
from lth_core.presets import apply
from lth_core.store import RunStore


@dataclass
class ImpRunSpeedConfig:
    """The whole run to time (defaults: the issue's)."""

    levels: int = opt(15, "pruning levels after the dense training")
    rate: float = opt(0.2, "fraction of the remaining weights pruned per level (every layer)")
    iterations: int = opt(2000, "training iterations of every training")
    batch_size: int = opt(60, "minibatch size (F&C's LeNet: 60)")
    model: str = opt("lenet_300_100", "vision model")
    dataset: str = opt("mnist-generated", "embedded or generated dataset (no files): mnist-generated, mnist1d, ...")
    executor: str = opt("local", "how the jobs of a level run: local, process, batched", choices=EXECUTORS)
    sparse: str = opt("never", "the vision loop's sparse training path: never, auto, always (where it exists)")
    eval_every: int = opt(100, "iterations between evaluations (validation for early stopping)")
    json: str = opt("", "also write the numbers to this JSON file")

    def validate(self) -> None:
        """One line for a bad value, before anything runs."""
        for name, lo in (("levels", 0), ("iterations", 1), ("batch_size", 1), ("eval_every", 1)):
            if getattr(self, name) < lo:
                raise UsageError(f"--{name.replace('_', '-')} {getattr(self, name)} must be >= {lo}")
        if not 0 < self.rate < 1:
            raise UsageError(f"--rate {self.rate} must be in (0, 1)")
        if DATASETS.get(self.dataset).files:
            raise UsageError(f"--dataset {self.dataset!r} reads files; pick an embedded or generated one")
        sparse_field(self.sparse)


def sparse_field(value: str) -> dict[str, str]:
    """{'sparse': value} for the vision config where it has that field; before it does, only 'never' (= {})."""
    if "sparse" in {f.name for f in fields(VisionConfig)}:
        return {"sparse": value}
    if value != "never":
        raise UsageError(
            f"--sparse {value!r}: this build's vision loop has no sparse training path (no VisionConfig.sparse "
            "field); only 'never' is accepted until it has one"
        )
    return {}


def configs(c: ImpRunSpeedConfig, out: str) -> tuple[VisionConfig, ImpConfig, RunOptions]:
    domain = {
        "dataset": c.dataset,
        "model": c.model,
        "optimizer": "adam",
        "lr": 1.2e-3,  # F&C's LeNet-300-100
        "batch_size": c.batch_size,
        "iterations": c.iterations,
        "eval_every": c.eval_every,
        "val_size": 1000,
        "augment": "none",
        **sparse_field(c.sparse),
    }
    vc = apply(VisionConfig(), domain)
    imp = apply(
        ImpConfig(),
        {
            "levels": c.levels,
            "rate": c.rate,
            "strategy": "magnitude_layerwise",
            "schedule": "iterative",
            "controls": "random_reinit,random_mask",
            "trials": 1,
            "rewind_step": "0",
        },
    )
    imp.validate()
    vc.validate()
    return vc, imp, RunOptions(executor=c.executor, out=out, progress=False)


class _TimedRunner(ImpRunner):
    """The runner, stamping the clock where each level starts (before its pruning)."""

    stamps: list[float]

    def level_jobs(self, store: RunStore, level: int):
        self.stamps.append(time.perf_counter())
        return super().level_jobs(store, level)


def time_run(c: ImpRunSpeedConfig) -> dict[str, Any]:
    """Run the whole IMP run once in a temporary folder; per level: wall seconds, training seconds, density."""
    with tempfile.TemporaryDirectory(prefix="imp-run-speed-") as out:
        vc, imp, options = configs(c, out)
        t0 = time.perf_counter()
        adapter = VisionAdapter(vc)
        runner = _TimedRunner(adapter, functools.partial(VisionAdapter, vc), imp, options, validated=True)
        runner.stamps = []
        path = runner.run()
        end = time.perf_counter()
        adapter.close()
        with open(path / "results.csv", newline="") as f:
            rows = list(csv.DictReader(f))
    stamps = runner.stamps + [end]
    levels = []
    for lv in range(c.levels + 1):
        mine = [r for r in rows if int(r["level"]) == lv]
        ticket = [r for r in mine if r["kind"] in ("dense", "ticket")]
        levels.append(
            {
                "level": lv,
                "density": float(ticket[0]["density"]) if ticket else float("nan"),
                "wall_s": stamps[lv + 1] - stamps[lv],
                "train_s": sum(float(r["wall_seconds"]) for r in mine),
                "jobs": len(mine),
                "ok": all(r["status"] == "ok" for r in mine),
            }
        )
    return {
        "config": {f.name: getattr(c, f.name) for f in fields(c) if f.name != "json"},
        "levels": levels,
        "setup_s": stamps[0] - t0,  # the runner's checks and the run folder, before level 0's jobs
        "total_s": end - t0,
    }


def table(result: dict[str, Any]) -> Table:
    c = result["config"]
    t = Table(
        title=f"{c['model']} on {c['dataset']}, {c['levels']} levels at {c['rate']:.0%}, {c['iterations']} iterations "
        f"per training, batch {c['batch_size']}, ticket + random_reinit + random_mask, executor {c['executor']}, "
        f"--sparse {c['sparse']}"
    )
    for col in ("level", "density", "jobs", "wall s", "trainings s", "other s", "job-it/s"):
        t.add_column(col, justify="right")
    for r in result["levels"]:
        t.add_row(
            str(r["level"]),
            f"{100 * r['density']:.3g}%",
            str(r["jobs"]) + ("" if r["ok"] else " (not all ok)"),
            f"{r['wall_s']:.2f}",
            f"{r['train_s']:.2f}",
            f"{r['wall_s'] - r['train_s']:.2f}",
            f"{r['jobs'] * c['iterations'] / r['wall_s']:.0f}",
        )
    train = sum(r["train_s"] for r in result["levels"])
    t.add_row(
        "total", "", str(sum(r["jobs"] for r in result["levels"])), f"{result['total_s']:.1f}", f"{train:.1f}", ""
    )
    return t


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m benchmarks.imp_run_speed", description=__doc__)
    parser.add_arguments(ImpRunSpeedConfig, dest="cfg")
    cfg: ImpRunSpeedConfig = parser.parse_args(argv).cfg
    try:
        cfg.validate()
        configs(cfg, tempfile.gettempdir())  # the run's own checks, before it starts
    except UsageError as e:
        fail(str(e))
    result = time_run(cfg)
    Console().print(table(result))
    print(
        f"other s: pruning, controls, run store, tables (and the figures at the last level); set-up "
        f"{result['setup_s']:.2f} s; executor {cfg.executor}: trainings s is the sum over a level's jobs"
    )
    if cfg.json:
        Path(cfg.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
