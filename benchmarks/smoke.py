"""`python -m benchmarks.smoke [--domain D] [--preset P] [--out DIR]`: the `--smoke` of every paper preset, timed.

A paper preset is one that declares its smoke (`Preset.smoke`); each runs as `python -m benchmarks.run --domain D
--preset P --smoke` would, in this process, with the time spent in evaluation (the Trainee's validate and test,
which the protocol calls) measured per job. Prints one Markdown row per preset: jobs, wall and CPU seconds of
the run, and the largest share of a job's wall time that its evaluations took. Writes under --out only.
"""

from __future__ import annotations

import functools
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmarks import run as run_cli
from benchmarks.cli import OneLineParser, fail
from domains import domain_names, load_adapter_class
from lth_core import protocol
from lth_core.config import opt
from lth_core.errors import UsageError

PROG = "python -m benchmarks.smoke"


@dataclass
class SmokeConfig:
    """Which smokes to run and where their run folders go."""

    domain: str = opt("all", f"domain: {', '.join(domain_names())} or all")
    preset: str = opt("", "one preset only ('' = every preset of the domain that declares a smoke)")
    out: str = opt("", "folder for the run folders ('' = a temporary folder, removed afterwards)")


@dataclass
class SmokeResult:
    domain: str
    preset: str
    jobs: int
    wall_s: float
    cpu_s: float
    job_wall_s: list[float]
    eval_share: list[float]  # per job: evaluation seconds / the job's wall seconds
    ok: bool

    def row(self) -> dict:
        return {
            "domain": self.domain,
            "preset": self.preset,
            "jobs": self.jobs,
            "wall s": round(self.wall_s, 1),
            "CPU s": round(self.cpu_s, 1),
            "slowest job s": round(max(self.job_wall_s, default=0.0), 1),
            "max eval share": f"{max(self.eval_share, default=0.0):.0%}",
            "all ok": self.ok,
        }


def smoke_presets(domain: str) -> list[str]:
    return [name for name, p in load_adapter_class(domain).presets.items() if p.smoke]


@contextmanager
def timed_evaluation() -> Iterator[dict[tuple, float]]:
    """Seconds of evaluation per job (kind, level, trial): every JobProtocol's trainee's validate() and test()."""
    seconds: dict[tuple, float] = {}
    original = protocol.JobProtocol.__init__

    def timing(method, key: tuple):
        @functools.wraps(method)
        def call(*a, **k):
            t0 = time.perf_counter()
            try:
                return method(*a, **k)
            finally:
                seconds[key] = seconds.get(key, 0.0) + time.perf_counter() - t0

        return call

    def init(self, job, trainee, *a, **k):
        key = (job.kind, job.level, job.trial)
        seconds[key] = 0.0  # a retried job counts its last try, as its row's wall_seconds does
        trainee.validate = timing(trainee.validate, key)
        trainee.test = timing(trainee.test, key)
        original(self, job, trainee, *a, **k)

    protocol.JobProtocol.__init__ = init  # type: ignore[method-assign]
    try:
        yield seconds
    finally:
        protocol.JobProtocol.__init__ = original  # type: ignore[method-assign]


def cpu_seconds() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_smoke(domain: str, preset: str, out: Path, extra: tuple[str, ...] = ()) -> SmokeResult:
    """One `--smoke` run, in this process, with its evaluation timed per job."""
    argv = ["--domain", domain, "--preset", preset, "--smoke", "--out", str(out), "--progress", "false", *extra]
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    with timed_evaluation() as evals:
        plan = run_cli.parse(argv, domain, preset, smoke=True)
        folder = Path(run_cli.run_plan(plan))
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    rows = pd.read_csv(folder / "results.csv")
    job_wall = [float(w) for w in rows["wall_seconds"]]
    keys = zip(rows["kind"], rows["level"], rows["trial"])
    shares = [evals.get((k, int(lv), int(t)), 0.0) / w if w > 0 else 0.0 for (k, lv, t), w in zip(keys, job_wall)]
    return SmokeResult(domain, preset, len(rows), wall, cpu, job_wall, shares, bool((rows["status"] == "ok").all()))


def table(results: list[SmokeResult]) -> str:
    df = pd.DataFrame([r.row() for r in results])
    head = "| " + " | ".join(df.columns) + " |\n|" + "---|" * len(df.columns) + "\n"
    return head + "".join("| " + " | ".join(str(v) for v in row) + " |\n" for row in df.itertuples(index=False))


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog=PROG, description=__doc__)
    parser.add_arguments(SmokeConfig, dest="cfg")
    try:
        cfg = parser.parse_args(list(sys.argv[1:] if argv is None else argv)).cfg
        domains = domain_names() if cfg.domain == "all" else [cfg.domain]
        jobs = [(d, p) for d in domains for p in ([cfg.preset] if cfg.preset else smoke_presets(d))]
        with tempfile.TemporaryDirectory(prefix="lth-smoke-") as tmp:
            out = Path(cfg.out or tmp)
            results = []
            for d, p in jobs:
                results.append(run_smoke(d, p, out))
                print(f"smoke {d} {p}: {results[-1].row()}", file=sys.stderr, flush=True)  # each as it ends
    except UsageError as e:
        fail(str(e))
    print(table(results))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
