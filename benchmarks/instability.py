"""`python -m benchmarks.instability`: linear mode connectivity of dense networks and tickets (Frankle, Dziugaite,
Roy & Carbin 2020, "Linear Mode Connectivity and the Lottery Ticket Hypothesis"), in any domain.

For each step k of --rewind-steps and each level of --levels (0 = dense; L > 0 = the mask of level L of the
finished run --run): two copies start from the weights at step k of the dense trajectory under the same mask,
differ only in their data-order seed (two seeds derived from the trial's), and train through the executors for
the rest of the budget. Their final weights are interpolated at --alphas points and each point is evaluated
on validation and test (`adapter.evaluate`), BatchNorm statistics interpolated with the weights or (--bn
recompute, vision) recomputed at each point on training batches (`adapter.recompute_norm_stats`). The barrier
is the error's rise along the path in the metric's own units (see lth_core/interpolation.py); `stable` means
barrier <= --threshold.
A separate tool, not a flag of `benchmarks.run`: it trains pairs of copies, not levels of IMP, and writes its own
contract (instability.csv, paths.csv, barrier.png, paths.png) in its own identity-hashed, resumable folder.
"""

from __future__ import annotations

import functools
import json
import math
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import torch

from benchmarks.cli import OneLineParser, fail
from benchmarks.instability_presets import LMC_PRESETS, LmcTask
from benchmarks.run import Selection, make_adapter
from domains import DOMAINS, load_adapter_class
from lth_core.adapter import Adapter
from lth_core.atomic import atomic_write_text
from lth_core.config import ImpConfig, RunOptions, config_hash, full_dict, identity_dict, opt
from lth_core.errors import UsageError
from lth_core.executors import EXECUTORS
from lth_core.imp_runner import ImpRunner, derived_seed
from lth_core.interpolation import PathMetric, alphas, barriers, evaluate_path
from lth_core.job import Job, Outcome, StateDict
from lth_core.lmc_figures import barrier_plot, paths_plot
from lth_core.masks import Mask
from lth_core.preflight import check_out
from lth_core.presets import apply
from lth_core.provenance import git_commit, row_provenance, versions
from lth_core.store import RunStore, job_key

PROG = "python -m benchmarks.instability"
HEAD = ["domain", "task", "level", "density", "k", "rewind_step", "metric", "higher_is_better", "barrier", "score_a"]
HEAD += ["score_b", "barrier_relative", "stable", "threshold", "status"]  # then the rest by name
BN_MODES = ("interpolate", "recompute")  # statistics mixed with the weights, or recomputed at each point


@dataclass
class Analysis:
    """What the instability analysis measures (all of it names the output folder)."""

    rewind_steps: str = opt("0,0.01", "comma list of steps k the copies start from: steps, or fractions of the budget")
    levels: str = opt(
        "0",
        "comma list of levels: 0 = the dense network, L > 0 = level L's ticket mask of --run (without --run: found "
        "first by IMP with the preset's settings, no controls, in its own run folder under --out; resumable)",
    )
    run: str = opt("", "a finished run folder (only read): its init, rewind weights, masks and seeds", identity=False)
    trial: int = opt(0, "which trial of --run (its init, dense trajectory and masks)")
    seed: int = opt(0, "without --run: the initialization seed and the dense trajectory's data-order seed")
    alphas: int = opt(30, "points along the line between the two copies, both ends included")
    threshold: float = opt(0.02, "stable when the barrier is <= this, in the metric's own units (0.02 = 2 points)")
    bn: str = opt(
        "interpolate",
        "BatchNorm statistics along the path: interpolated with the weights, or recomputed at every point (the ends "
        "included) on --bn-batches training batches (vision; RL's and NLP's models have no BatchNorm)",
        choices=BN_MODES,
    )
    bn_batches: int = opt(20, "with --bn recompute: training batches each point's statistics are averaged over")


@dataclass
class Options:
    """Where and how the jobs run; none of it changes the analysis' identity."""

    out: str = opt("results", "folder that holds analysis folders (one per identity hash)", identity=False)
    executor: str = opt("local", "how the copies are trained", identity=False, choices=EXECUTORS)
    workers: int = opt(0, "worker processes for parallel executors (0 = one per core)", identity=False)
    cpus_per_job: float = opt(1.0, "torch threads each job trains with", identity=False)


def comma_ints(text: str, flag: str) -> list[int]:
    try:
        out = sorted({int(s) for s in text.split(",") if s.strip()})
    except ValueError:
        raise UsageError(f"{flag} {text!r} must be a comma list of integers") from None
    if not out or min(out) < 0:
        raise UsageError(f"{flag} {text!r} must name at least one level, each >= 0")
    return out


def rewind_steps(text: str, budget: int) -> list[tuple[str, int]]:
    """(as typed, step) of each k, by step; each k a step in [0, budget) or a fraction in [0, 1)."""
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise UsageError(f"--rewind-steps {text!r} names no step")
    out = {}
    for s in items:
        try:
            finite = math.isfinite(float(s))
        except ValueError:
            finite = False
        if not finite:
            raise UsageError(f"--rewind-steps item {s!r}: not a finite step or fraction of the budget")
        try:
            k = ImpConfig(rewind_step=s).rewind_at(budget)
        except UsageError as e:
            raise UsageError(f"--rewind-steps item {s!r}: {str(e).partition(': ')[2]}") from None
        out.setdefault(k, s)
    return [(s, k) for k, s in sorted(out.items())]


class Source:
    """Where the weights at step k and the masks come from: a finished run (only read) or the preset's init."""

    def __init__(self, run: str, analysis: Analysis, adapter: Adapter) -> None:
        self.store: RunStore | None = None
        self.meta: dict[str, Any] = {}
        shapes = {k: tuple(v.shape) for k, v in adapter.initial_weights(0).items()}
        if not run:
            self.seed, self.hash, self.rewind = analysis.seed, None, None
            self._init = adapter.initial_weights(analysis.seed)
            return
        folder = Path(run)
        if not (folder / "run.json").is_file():
            raise UsageError(f"--run {run!r} is not a run folder (no run.json there)")
        self.store = RunStore.foreign(folder)
        self.meta = self.store.meta()
        try:
            trials, self.hash = int(self.meta["imp"]["trials"]), str(self.meta["config_hash"])
            self.seed = int(self.meta["seed"]) + 1000 * analysis.trial
            self.rewind = int(self.meta["rewind_step"])
        except (KeyError, TypeError, ValueError):
            raise UsageError(f"--run {analysis.run!r}: run.json lacks imp.trials, config_hash, seed or rewind_step")
        if self.meta.get("domain") != adapter.domain:
            raise UsageError(f"--run {analysis.run!r} is a {self.meta.get('domain')!r} run, not {adapter.domain!r}")
        if not 0 <= analysis.trial < trials:
            raise UsageError(f"--trial {analysis.trial}: {analysis.run!r} has trials 0..{trials - 1}")
        self._init = self._read(adapter, RunStore.init_name(analysis.trial), shapes, whole=True)
        self.shapes = shapes

    def _read(self, adapter: Adapter, name: str, shapes: dict, whole: bool) -> StateDict:
        assert self.store is not None
        f = self.store.state_path(name)
        if not f.is_file():
            raise UsageError(f"--run {self.store.path}: missing state/{f.name} (run it to the end first)")
        try:
            state = torch.load(f, map_location="cpu", weights_only=True)
        except Exception as e:
            raise UsageError(f"--run: {f} is unreadable ({type(e).__name__}); nothing in that folder was changed")
        ok = isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())
        ok = ok and (set(state) == set(shapes) if whole else set(state) <= set(shapes))
        if not ok or any(tuple(v.shape) != shapes[k] for k, v in state.items()):
            raise UsageError(f"--run: {f} does not hold the tensors of {adapter.domain}/{adapter.task()}")
        return state

    def init(self) -> StateDict:
        return {k: v.clone() for k, v in self._init.items()}

    def rewind_weights(self, adapter: Adapter, trial: int) -> StateDict:
        return self._read(adapter, RunStore.rewind_name(trial), self.shapes, whole=True)

    def mask(self, adapter: Adapter, level: int, trial: int) -> dict[str, torch.Tensor] | None:
        if level == 0:
            return None
        if self.store is None:
            raise UsageError(f"--levels {level}: a ticket level needs --run, a finished run whose masks it reads")
        return {
            k: v.bool() for k, v in self._read(adapter, RunStore.mask_name(level, trial), self.shapes, False).items()
        }


class Instability:
    """The analysis of one domain: validated and resolved before anything is written."""

    def __init__(
        self, adapter: Adapter, factory: Any, analysis: Analysis, options: Options, preset: str, lmc: str = ""
    ) -> None:
        adapter.require("evaluate", "the instability analysis")
        if analysis.alphas < 2:
            raise UsageError(f"--alphas {analysis.alphas} must be >= 2 (the two ends are always included)")
        if not (math.isfinite(analysis.threshold) and analysis.threshold >= 0):
            raise UsageError(f"--threshold {analysis.threshold} must be a finite number >= 0")
        if analysis.bn == "recompute":
            if "recompute_norm_stats" not in adapter.capabilities():
                raise adapter.unsupported(
                    "recompute normalization statistics (no BatchNorm), which --bn recompute needs"
                )
            if analysis.bn_batches < 1:
                raise UsageError(f"--bn-batches {analysis.bn_batches} must be >= 1")
        check_out(options.out)
        EXECUTORS.check(options.executor)
        self.adapter, self.factory, self.a, self.options, self.preset = adapter, factory, analysis, options, preset
        self.lmc_preset = lmc
        self.budget = adapter.budget()
        self.ks = rewind_steps(analysis.rewind_steps, self.budget)
        self.levels = comma_ints(analysis.levels, "--levels")
        self.finder = ticket_finder(adapter, factory, analysis, options, preset, max(self.levels))
        if self.finder is None:
            self.source = Source(analysis.run, analysis, adapter)
            self.masks = {lv: self.source.mask(adapter, lv, analysis.trial) for lv in self.levels}  # checked up front
            self.seed, run_hash = self.source.seed, self.source.hash
        else:  # the run's trial seed and hash, as --run of the folder it will write gives them
            self.seed, run_hash = analysis.seed + 1000 * analysis.trial, self.finder.hash
        self.metric = adapter.metric()
        self.metrics = [
            PathMetric("test", self.metric.name, self.metric.higher_is_better),
            PathMetric("val", self.metric.val_name, self.metric.val_higher_is_better),
            PathMetric("test", "loss", False),
            PathMetric("val", "loss", False),
        ]
        self.identity = {
            "analysis": "instability",
            "domain": adapter.domain,
            "settings": settings(analysis),
            "domain_config": dict(
                sorted({**identity_dict(adapter.config), **adapter.config.identity_extras()}.items())
            ),
            "run": run_hash,
        }
        self.hash = config_hash(self.identity)
        self.path = Path(options.out) / f"instability-{adapter.domain}-{self.hash[:12]}"
        self.copy_seeds = [derived_seed(self.seed, "instability", c) for c in (0, 1)]
        self.bn_seed = derived_seed(self.seed, "instability", "bn")  # the order of the recompute's batches

    def meta(self) -> dict[str, Any]:
        return {
            "config_hash": self.hash,
            "identity": self.identity,
            "domain": self.adapter.domain,
            "task": self.adapter.task(),
            "preset": self.preset,
            "lmc_preset": self.lmc_preset,
            "analysis": full_dict(self.a),
            "domain_config": full_dict(self.adapter.config),
            "metric": self.metric.__dict__,
            "budget": self.budget,
            "seed": self.seed,
            "copy_seeds": self.copy_seeds,
            "versions": versions(tuple(self.adapter.packages)),
            "git_commit": git_commit(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }

    # ---- jobs --------------------------------------------------------------------------------
    def executor(self):
        opts = RunOptions(out=self.options.out, executor=self.options.executor, workers=self.options.workers)
        opts.cpus_per_job = self.options.cpus_per_job
        return EXECUTORS.get(self.options.executor)(self.adapter, self.factory, opts)

    def weights_at(self, store: RunStore, executor: Any) -> dict[int, StateDict]:
        """The dense trajectory's weights at each k: the init, the run's rewind weights, or captured by training
        the dense network from the init with the trajectory's own data-order seed (saved, so done once)."""
        out: dict[int, StateDict] = {}
        missing = []
        for _, k in self.ks:
            saved = store.load_state(f"at-k{k}")
            if k == 0:
                out[k] = self.source.init()
            elif self.source.rewind == k:
                out[k] = self.source.rewind_weights(self.adapter, self.a.trial)
            elif saved is not None:
                out[k] = saved
            else:
                missing.append(k)
        if missing:
            job = Job(0, "dense", self.a.trial, self.seed, self.source.init(), None, self.budget)
            job.capture_steps = tuple(missing)
            for _, outcome in executor.run([job]):
                if outcome.status != "ok":
                    raise UsageError(f"the dense training to k = {missing} {outcome.status}: {outcome.error}")
                for k in missing:
                    store.save_state(f"at-k{k}", outcome.captured[k])
                    out[k] = outcome.captured[k]
        return out

    def copy_jobs(self, start: dict[int, StateDict]) -> list[Job]:
        jobs = []
        for _, k in self.ks:
            for level in self.levels:
                for c, data_seed in enumerate(self.copy_seeds):
                    job = Job(
                        level=level,
                        kind=f"k{k}-copy{c}",
                        trial=self.a.trial,
                        seed=self.seed,
                        weights={n: v.clone() for n, v in start[k].items()},
                        mask=self.masks[level],
                        budget=self.budget,
                        start_step=k,
                        keep_final_weights=True,
                        data_seed=data_seed,
                    )
                    jobs.append(job)
        return jobs

    def row(self, job: Job, out: Outcome) -> dict[str, Any]:
        return {
            "level": job.level,
            "kind": job.kind,
            "start_step": job.start_step,
            "data_seed": job.order_seed,
            "score": out.score,
            "final_score": out.final_score,
            "early_stop_step": out.early_stop_step,
            "status": out.status,
            "error": out.error,
            "wall_seconds": round(out.wall_seconds, 3),
        }

    # ---- the analysis ------------------------------------------------------------------------
    def find_tickets(self) -> None:
        """Tickets found on the fly: the IMP run first (resumed where it stopped), then read as --run would."""
        if self.finder is None:
            return
        folder = self.finder.run()
        self.source = Source(str(folder), self.a, self.adapter)
        self.masks = {lv: self.source.mask(self.adapter, lv, self.a.trial) for lv in self.levels}

    def run(self) -> Path:
        self.find_tickets()
        executor = self.executor()
        try:
            store = RunStore(self.path).open(self.meta())
        except BaseException:
            executor.close()
            raise
        try:
            start = self.weights_at(store, executor)
            todo = [j for j in self.copy_jobs(start) if not self.done(store, j.key)]
            for job, outcome in executor.run(todo):
                if outcome.status == "ok" and outcome.final_weights is not None:
                    store.save_state(f"final-{job.key}", outcome.final_weights)
                store.write_record(
                    job.key, {"row": self.row(job, outcome), "curve": [p.__dict__ for p in outcome.curve]}
                )
            self.write_outputs(store)
            store.update_meta(finished=time.strftime("%Y-%m-%dT%H:%M:%S"), recovered=store.recovered)
        finally:
            executor.close()
            store.close()
        return self.path

    @staticmethod
    def done(store: RunStore, key: str) -> bool:
        rec = store.record(key)
        return rec is not None and (rec["row"]["status"] != "ok" or store.state_path(f"final-{key}").exists())

    def pair(self, store: RunStore, k: int, level: int) -> tuple[dict, list[dict]]:
        """The row of one k x level and its path (the path is computed once and kept as a record)."""
        keys = [job_key(level, f"k{k}-copy{c}", self.a.trial) for c in (0, 1)]
        recs = [store.record(key) for key in keys]
        mask = self.masks[level]
        density = Mask(mask).density if mask is not None else 1.0
        base = {
            "domain": self.adapter.domain,
            "task": self.adapter.task(),
            "level": level,
            "density": density,
            "k": k,
            "rewind_step": next(s for s, kk in self.ks if kk == k),
            "metric": self.metric.name,
            "higher_is_better": self.metric.higher_is_better,
        }
        path_key = f"path-L{level:02d}-k{k}-t{self.a.trial}"
        cached = store.record(path_key)
        if cached is not None:
            kept = {k: v for k, v in cached["row"].items() if k not in RECORD_KEYS}
            return {**base, **kept}, cached["path"]
        row: dict[str, Any] = {}
        path: list[dict] = []
        weights = [store.load_state(f"final-{key}") for key in keys]
        if all(r is not None and r["row"]["status"] == "ok" for r in recs) and all(w is not None for w in weights):
            a, b = weights
            assert a is not None and b is not None
            path = evaluate_path(self.adapter.evaluate, a, b, alphas(self.a.alphas), ("val", "test"), self.prepare())
            found = barriers(path, self.metrics)
            main = self.metrics[0].column
            trained = [self.adapter.evaluate(w, "test")[self.metric.name] for w in (a, b)]  # as trained, no recompute
            row = {
                "barrier": found[f"{main}_barrier"],
                "score_a": found[f"{main}_a"],
                "score_b": found[f"{main}_b"],
                "barrier_relative": relative(found[f"{main}_barrier"], found[f"{main}_a"], found[f"{main}_b"]),
                "stable": bool(found[f"{main}_barrier"] <= self.a.threshold),
                "status": "ok",
                "trained_score_a": trained[0],
                "trained_score_b": trained[1],
                **found,
            }
        else:
            row = {"barrier": math.nan, "stable": False, "status": "failed"}
        row.update(
            {
                "threshold": self.a.threshold,
                "bn": self.a.bn,
                "bn_batches": self.a.bn_batches if self.a.bn == "recompute" else 0,
                "alphas": self.a.alphas,
                "seed": self.seed,
                "data_seed_a": self.copy_seeds[0],
                "data_seed_b": self.copy_seeds[1],
                "score_at_stop_a": recs[0]["row"]["score"] if recs[0] else math.nan,
                "score_at_stop_b": recs[1]["row"]["score"] if recs[1] else math.nan,
                "config_hash": self.hash,
                "preset": self.preset,
                **row_provenance(tuple(self.adapter.packages)),
                "config": json.dumps(self.identity, sort_keys=True, default=str),
            }
        )
        if row["status"] == "ok":
            # the store's record shape (kind, level, trial, status), so a resume does not quarantine it
            keys = {"kind": "path", "level": level, "trial": self.a.trial}
            store.write_record(path_key, {"row": {**keys, **row}, "path": path})
        return {**base, **row}, path

    def prepare(self) -> Callable[[StateDict], StateDict] | None:
        """What each point of the path goes through before it is evaluated (none: statistics interpolated)."""
        if self.a.bn == "interpolate":
            return None
        return lambda w: self.adapter.recompute_norm_stats(w, self.a.bn_batches, self.bn_seed)

    def write_outputs(self, store: RunStore) -> pd.DataFrame:
        rows, paths = [], []
        for _, k in self.ks:
            for level in self.levels:
                row, path = self.pair(store, k, level)
                rows.append(row)
                paths += [{"k": k, "level": level, "density": row["density"], **p} for p in path]
        table = pd.DataFrame(rows)
        table = table[[c for c in HEAD if c in table] + sorted(c for c in table if c not in HEAD)]
        atomic_write_text(store.path / "instability.csv", table.to_csv(index=False))
        if paths:
            frame = pd.DataFrame(paths)
            atomic_write_text(store.path / "paths.csv", frame.to_csv(index=False))
            ok = table[table["status"] == "ok"]
            barrier_plot(ok, store.path / "barrier.png", self.metric.name, self.a.threshold)
            paths_plot(frame, store.path / "paths.png", self.metrics[0].column)
        return table


RECORD_KEYS = ("kind", "trial")  # in a path's record for the store's shape check, not columns of instability.csv


def ticket_finder(
    adapter: Adapter, factory: Any, analysis: Analysis, options: Options, preset: str, deepest: int
) -> ImpRunner | None:
    """Without --run, ticket levels need IMP first: the preset's IMP settings to the deepest level asked, trials
    up to --trial, seed --seed, no controls; validated here, before anything is written."""
    if analysis.run or deepest == 0:
        return None
    presets = getattr(type(adapter), "presets", {})
    imp = apply(ImpConfig(), presets[preset].imp) if preset in presets else ImpConfig()
    imp = replace(imp, levels=deepest, trials=analysis.trial + 1, controls="", seed=analysis.seed)
    opts = RunOptions(out=options.out, executor=options.executor, workers=options.workers, progress=False)
    opts.cpus_per_job = options.cpus_per_job
    return ImpRunner(adapter, factory, imp, opts, preset=preset)


def settings(analysis: Analysis) -> dict[str, Any]:
    """The analysis' identity: --bn-batches only names it under --bn recompute (interpolating never reads it)."""
    out = identity_dict(analysis)
    if analysis.bn != "recompute":
        del out["bn_batches"]
    return out


def relative(barrier: float, a: float, b: float) -> float:
    """The barrier as a fraction of the ends' mean magnitude (for metrics without a natural scale, e.g. return)."""
    ends = abs(a + b) / 2
    return barrier / ends if ends > 0 else math.nan


@dataclass
class Pick:
    """A named analysis: its tasks' domain, preset and values are the defaults (benchmarks/instability_presets.py)."""

    lmc_preset: str = opt("", f"a named analysis ({', '.join(LMC_PRESETS.names())}); sets --domain and --preset")


def parse_all(argv: list[str], table: dict[str, str] = DOMAINS) -> list[tuple[Instability, Adapter]]:
    """Every analysis the command line names (an --lmc-preset may name several), all validated before any runs."""
    pre = OneLineParser(prog=PROG, add_help=False)
    pre.add_arguments(Pick, dest="pick")
    name = pre.parse_known_args(argv)[0].pick.lmc_preset
    if not name:
        return [parse(argv, table)]
    preset = LMC_PRESETS.get(name)
    if given := [f for f in ("--domain", "--preset") if any(a == f or a.startswith(f + "=") for a in argv)]:
        raise UsageError(f"--lmc-preset {name} sets {' and '.join(given)}; drop them (other flags still win)")
    out: list[tuple[Instability, Adapter]] = []
    try:
        for task in preset.tasks:
            out.append(parse(["--domain", task.domain, "--preset", task.preset, *argv], table, task, name))
    except BaseException:
        for _, adapter in out:
            adapter.close()
        raise
    return out


def parse(
    argv: list[str], table: dict[str, str] = DOMAINS, task: LmcTask | None = None, lmc: str = ""
) -> tuple[Instability, Adapter]:
    """One analysis; `task` (of the --lmc-preset `lmc`) sets defaults of the domain config and the analysis."""
    analysis_defaults = apply(Analysis(), task.analysis if task else {})
    pre = OneLineParser(prog=PROG, add_help=False)
    pre.add_arguments(Selection, dest="selection")
    pre.add_arguments(Analysis, dest="analysis", default=analysis_defaults)
    sel, first = (lambda ns: (ns.selection, ns.analysis))(pre.parse_known_args(argv)[0])
    cls = load_adapter_class(sel.domain, table)
    if sel.preset not in cls.presets:
        raise UsageError(
            f"unknown preset {sel.preset!r} for domain {sel.domain!r}; valid choices: {', '.join(sorted(cls.presets))}"
        )
    defaults = apply(apply(cls.Config(), cls.presets[sel.preset].domain), task.domain_values if task else {})
    if first.run:  # the run's own domain config is the default (its dense trajectory and masks); flags still win
        meta = run_meta(first.run)
        names = {f for f in full_dict(defaults)}
        defaults = apply(
            defaults,
            {k: tuple(v) if isinstance(v, list) else v for k, v in meta.get("domain_config", {}).items() if k in names},
        )
    epilog = "named analyses (--lmc-preset):\n" + "\n".join(f"  {n:<24} {LMC_PRESETS.get(n).help}" for n in LMC_PRESETS)
    parser = OneLineParser(prog=PROG, description=__doc__, epilog=epilog)
    parser.add_arguments(Pick, dest="pick")
    parser.add_arguments(Selection, dest="selection")
    parser.add_arguments(Analysis, dest="analysis", default=analysis_defaults)
    parser.add_arguments(Options, dest="options")
    parser.add_arguments(cls.Config, dest="domain_config", default=defaults)
    ns = parser.parse_args(argv)
    ns.domain_config.validate()
    factory = functools.partial(make_adapter, sel.domain, ns.domain_config, table)
    adapter = factory()
    try:
        return Instability(adapter, factory, ns.analysis, ns.options, sel.preset, lmc), adapter
    except BaseException:
        adapter.close()
        raise


def run_meta(folder: str) -> dict[str, Any]:
    if not (Path(folder) / "run.json").is_file():
        raise UsageError(f"--run {folder!r} is not a run folder (no run.json there)")
    return RunStore.foreign(Path(folder)).meta()


def main(argv: list[str] | None = None, table: dict[str, str] = DOMAINS) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        analyses = parse_all(argv, table)
        try:
            for analysis, _ in analyses:
                path = analysis.run()
                cols = ["k", "level", "density", "barrier", "score_a", "score_b", "stable"]
                table_ = pd.read_csv(path / "instability.csv")
                print(f"{analysis.adapter.domain} {analysis.adapter.task()}")
                print(table_[[c for c in cols if c in table_]].to_string(index=False))
                print(f"results: {path}  (instability.csv, paths.csv, barrier.png, paths.png, run.json)")
        finally:
            for _, adapter in analyses:
                adapter.close()
    except UsageError as e:
        fail(str(e))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
