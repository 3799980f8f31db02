"""The iterative-magnitude-pruning runner: levels of jobs in, result rows out. It never sees a dataset.

Trial t is an independent replicate (its own init, dense run and ticket sequence), seeded `seed + 1000 t`.
Every job of a trial shares that seed for its own randomness (data order, exploration), so a ticket and its
controls differ only in weights and mask. Level 0 trains the dense network and keeps the rewind weights;
level L prunes where its schedule says (iterative: the trained ticket of level L-1; one-shot: the dense weights)
and trains the new ticket and each control from the rewind point for the remaining budget.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from lth_core.adapter import Adapter
from lth_core.config import (
    DomainConfig,
    ImpConfig,
    RunOptions,
    check_finite,
    check_options,
    config_hash,
    full_dict,
    identity_dict,
    parse_overrides,
)
from lth_core.controls import ControlInput
from lth_core.early_bird import EarlyBirdSpec, Target
from lth_core.early_bird_files import save_early_bird
from lth_core.errors import UsageError
from lth_core.executors import EXECUTORS, AdapterFactory
from lth_core.job import Job, Outcome, StateDict
from lth_core.masks import Mask
from lth_core.preflight import architecture_hash, build_checked, check_execution, check_out, check_overrides, execution
from lth_core.provenance import git_commit, row_provenance, versions
from lth_core.schedules import Source
from lth_core.store import RunStore
from lth_core.strategies import PruneStep, ScoringHook, Strategy, global_names, resolve_rates
from lth_core.structured import StructuredCosts, check_compact, families_for, job_keep
from lth_core.ticket_cost import discovery

DENSE = "dense"
TICKET = "ticket"


def attempts(rec: dict[str, Any]) -> int:
    """How many times a job has been trained into its record (records of the previous release: once)."""
    return int(rec["row"].get("attempts", 1))


def derived_seed(*parts: Any) -> int:
    """A stable seed from named parts (same on every platform and Python run)."""
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:8], 16)


def run_identity(
    domain: str, imp: ImpConfig, config: DomainConfig, ticket_source_hash: str | None = None
) -> dict[str, Any]:
    """What names a run: its hash is the folder name, so equal identities resume, different ones never mix.

    The domain config's part is its identity fields and the values its `identity_extras()` resolves."""
    domain_config = dict(sorted({**identity_dict(config), **config.identity_extras()}.items()))
    return {"domain": domain, "imp": imp.identity(), "domain_config": domain_config, "ticket_from": ticket_source_hash}


class TicketSource:
    """Another run's tickets (masks + rewind weights), for training them under this run's config.

    The source folder is only read (never locked, written or repaired): every file this run will take from it
    is read and checked here, before this run writes anything, and kept memory-mapped for the run.
    """

    def __init__(self, path: str, adapter: Adapter, imp: ImpConfig, here: str) -> None:
        """`here`: the architecture hash of this run's model."""
        folder = Path(path)
        if not (folder / "run.json").is_file():
            raise UsageError(f"--ticket-from {path!r} is not a run folder (no run.json there)")
        self.store = RunStore.foreign(folder)
        self.meta = self.store.meta()
        try:
            src_levels, src_trials = int(self.meta["imp"]["levels"]), int(self.meta["imp"]["trials"])
            self.hash, src_rewind = str(self.meta["config_hash"]), int(self.meta["rewind_step"])
        except (KeyError, TypeError, ValueError):
            raise UsageError(
                f"--ticket-from {path!r}: {folder / 'run.json'} lacks imp.levels, imp.trials, "
                "config_hash or rewind_step (not a run record of this tool)"
            ) from None
        there = self.meta.get("architecture_hash")
        if adapter.domain != self.meta.get("domain") or here != there:
            raise UsageError(
                f"--ticket-from {path!r}: architecture differs ({self.meta.get('domain')}/"
                f"{self.meta.get('task')} {there} vs {adapter.domain}/{adapter.task()} {here})"
            )
        if imp.levels > src_levels or imp.trials > src_trials:
            raise UsageError(
                f"--ticket-from {path!r} has {src_levels} levels x {src_trials} trials; "
                f"asked for {imp.levels} x {imp.trials}"
            )
        rewind = imp.rewind_at(adapter.budget())
        if imp.levels and rewind != src_rewind:  # its rewind weights are those of step src_rewind
            raise UsageError(
                f"--ticket-from {path!r} rewound its tickets to step {src_rewind}, this run to step "
                f"{rewind}; pass --rewind-step {src_rewind} to train them from where they were rewound"
            )
        self.states = self._read_all(adapter, imp)

    def _read_all(self, adapter: Adapter, imp: ImpConfig) -> dict[str, StateDict]:
        """Every state file the run takes from the source, read and matched against this run's tensors."""
        shapes = {k: tuple(v.shape) for k, v in adapter.initial_weights(imp.seed).items()}
        st, masks = self.store, set[str]()
        names = [st.init_name(t) for t in range(imp.trials)]
        if imp.levels:
            names += [st.rewind_name(t) for t in range(imp.trials)]
            masks = {st.mask_name(lv, t) for lv in range(1, imp.levels + 1) for t in range(imp.trials)}
            names += sorted(masks)
        out = {}
        for name in names:
            f = self.store.state_path(name)
            if not f.is_file():
                raise UsageError(
                    f"--ticket-from {self.store.path}: missing {f.name} in state/ (run it to the end first)"
                )
            try:
                state = torch.load(f, map_location="cpu", weights_only=True, mmap=True)
            except Exception as e:  # truncated, garbage, not ours: refused, and left where it is
                raise UsageError(
                    f"--ticket-from: {f} is unreadable ({type(e).__name__}); that folder is only read "
                    "here, so nothing in it was changed"
                ) from None
            whole = name not in masks  # weights name every tensor, a mask only the prunable ones
            if not (
                isinstance(state, dict)
                and all(isinstance(v, torch.Tensor) for v in state.values())
                and (set(state) == set(shapes) if whole else set(state) <= set(shapes))
                and all(tuple(v.shape) == shapes[k] for k, v in state.items())
            ):
                raise UsageError(
                    f"--ticket-from: {f} does not hold this run's tensors (names and shapes of "
                    f"{adapter.domain}/{adapter.task()})"
                )
            out[name] = state
        return out

    def load(self, name: str) -> StateDict:
        """A copy (the run may change it in place; the mapped file is never written)."""
        return {k: v.clone() for k, v in self.states[name].items()}


class ImpRunner:
    def __init__(
        self,
        adapter: Adapter,
        factory: AdapterFactory,
        imp: ImpConfig,
        options: RunOptions,
        preset: str = "",
        validated: bool = False,
    ) -> None:
        """`validated`: the caller (the CLI) has validated `imp` and the adapter's config already."""
        if not validated:
            imp.validate()
            adapter.config.validate()
        check_finite(adapter.config)
        check_options(options)
        check_out(options.out)
        EXECUTORS.check(options.executor)
        self.adapter, self.factory, self.imp, self.options, self.preset = adapter, factory, imp, options, preset
        self.metric = adapter.metric()
        self.budget = adapter.budget()
        self.rewind = imp.rewind_at(self.budget)
        model = build_checked(adapter, imp.seed)  # the one model built here: names, shapes, groups, architecture
        self.groups = adapter.prunable(model, imp.prune_biases)
        preset_imp = getattr(type(adapter), "presets", {}).get(preset)
        check_overrides(
            self.groups,
            imp.overrides(),
            set(parse_overrides(preset_imp.imp.get("rate_overrides", ""))) if preset_imp else set(),
        )
        self.shapes = {n: tuple(v.shape) for n, v in model.state_dict().items() if n in self.groups}
        empty = sorted(n for n, shape in self.shapes.items() if math.prod(shape) == 0)
        if empty or not self.shapes:
            raise UsageError(
                f"{adapter.domain}: the model of these settings has no weights to prune in "
                f"{', '.join(empty[:4]) or 'any layer'} (a width of 0?)"
            )
        self.arch_hash = architecture_hash(model)
        self.rates = resolve_rates(self.groups, imp.rate, imp.overrides())
        self.global_names = global_names(self.groups, imp.overrides())
        self.strategy, self.schedule, self.control_set = imp.make_strategy(), imp.make_schedule(), imp.make_controls()
        untrained = [lv for lv in range(1, imp.levels + 1) if self.schedule.source(lv).weights != "final"]
        if self.strategy.sums_gradients and untrained and not options.ticket_from:
            raise UsageError(
                f"strategy {imp.strategy!r} scores the training its mask is drawn from; schedule {imp.schedule!r} "
                "prunes before any training (use iterative or one_shot)"
            )
        for kind, name, part in imp.components():  # before the run folder exists: one line, nothing written
            for need in sorted(part.needs):
                adapter.require(need, f"the {kind} {name!r}")
            if getattr(part, "uses_scores", False) and type(self.strategy).scores is Strategy.scores:
                raise UsageError(f"the control {name!r} inverts the strategy's scores; {imp.strategy!r} exposes none")
            if getattr(part, "uses_scores", False) and options.ticket_from:
                raise UsageError(f"the control {name!r} needs the pruning step of its ticket; --ticket-from has none")
        self.families = families_for(adapter, model, [self.strategy, *self.control_set.values()])  # checked groups
        if imp.compact:
            check_compact(adapter, self.strategy, imp.strategy)
        self.costs = StructuredCosts(adapter, self.families)  # measured speed-ups of structured rows
        if self.schedule.watched(0, imp.levels) and self.strategy.needs:
            raise UsageError(f"--schedule {imp.schedule} draws masks in training; --strategy {imp.strategy} needs data")
        # the one input shape data-free criteria score on (a domain may refuse some of its tasks, in one line)
        self.input_shape = adapter.input_shape() if "input_shape" in self.strategy.needs else None
        del model
        self.controls = imp.control_names()
        self.source = TicketSource(options.ticket_from, adapter, imp, self.arch_hash) if options.ticket_from else None
        self.identity = run_identity(adapter.domain, imp, adapter.config, self.source.hash if self.source else None)
        self.hash = config_hash(self.identity)
        self.path = Path(options.out) / f"{adapter.domain}-{self.hash[:12]}"
        self.execution = execution(options, adapter.config)
        self.executions = check_execution(self.path, self.execution, options.allow_mixed_execution)

    # ---- metadata ----------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        return {
            "config_hash": self.hash,
            "identity": self.identity,
            "domain": self.adapter.domain,
            "task": self.adapter.task(),
            "preset": self.preset,
            "imp": full_dict(self.imp),
            "domain_config": full_dict(self.adapter.config),
            "options": full_dict(self.options),
            "seed": self.imp.seed,
            "metric": self.metric.__dict__,
            "budget": self.budget,
            "rewind_step": self.rewind,
            "execution": self.execution,
            "prunable": self.groups,
            "rates": self.rates,
            "architecture_hash": self.arch_hash,
            "versions": self.versions(),
            "git_commit": git_commit(),
            "ticket_from": {"path": self.options.ticket_from, "config_hash": self.source.hash} if self.source else None,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }

    def versions(self) -> dict[str, str]:
        """Versions of the engine's packages and of those the adapter declares (`Adapter.packages`)."""
        return versions(tuple(self.adapter.packages))

    # ---- weights and masks ---------------------------------------------------------------------
    def trial_seed(self, trial: int) -> int:
        return self.imp.seed + 1000 * trial

    def _prunable_weights(self, state: StateDict) -> StateDict:
        return {n: state[n] for n in self.groups}

    def full_mask(self) -> Mask:
        """Level 0's mask: every prunable entry kept (shapes from the model built once, at start)."""
        return Mask({n: torch.ones(shape, dtype=torch.bool) for n, shape in self.shapes.items()})

    def mask_for(self, store: RunStore, level: int, trial: int) -> Mask:
        name = store.mask_name(level, trial)
        if level == 0:
            return self.full_mask()
        if self.source is not None:
            return Mask({k: v.bool() for k, v in self.source.load(name).items()})
        saved = store.load_state(name)
        if saved is not None:
            return Mask({k: v.bool() for k, v in saved.items()})
        t0 = time.perf_counter()
        mask = self.strategy(self.prune_step(store, level, trial))
        seconds = time.perf_counter() - t0  # the step's weights read, the criterion scored, the mask drawn
        store.save_state(store.scoring_name(level, trial), {"seconds": torch.tensor(seconds, dtype=torch.float64)})
        store.save_state(name, mask.to_state())
        return mask

    def prune_step(self, store: RunStore, level: int, trial: int) -> PruneStep:
        """What level `level`'s strategy draws its mask from (again for a control that reads its scores)."""
        src, seed, caps = (
            self.schedule.source(level),
            derived_seed(self.imp.seed, level, trial),
            self.adapter.capabilities(),
        )
        score = (
            ScoringHook(
                self.adapter.build, self.adapter.training_loss, seed, self.input_shape, self.adapter.flow_output
            )
            if caps & {"training_loss", "input_shape"}
            else None
        )
        rewind = self.rewind_weights(store, trial) if self._has_rewind(store, trial) else None
        state = self.source_weights(store, src, trial, level)
        sums = store.load_state(store.grad_sums_name(src.level, trial)) if self.strategy.sums_gradients else None
        if self.strategy.sums_gradients and sums is None:
            raise RuntimeError(f"gradient sums of level {src.level} trial {trial} are missing")
        return PruneStep(
            weights=self._prunable_weights(state),
            mask=self.mask_for(store, src.mask_level, trial),
            rates=self.schedule.rates(level, self.rates),
            global_names=self.global_names,
            seed=seed,
            initial=self.init_weights(store, trial),
            rewind=rewind,
            score=score,
            state=state,
            families=self.families,
            grad_sums=sums,
        )

    def source_weights(self, store: RunStore, src: Source, trial: int, level: int = 0) -> StateDict:
        """The weights level `level`'s pruning step starts from."""
        if src.weights == "captured":
            kept = store.load_state(store.captured_name(level, trial))
            if kept is None:
                raise RuntimeError(f"weights captured for level {level} trial {trial} are missing")
            return kept
        if src.weights == "initial":
            return self.init_weights(store, trial)
        if src.weights == "rewind":
            return self.rewind_weights(store, trial)
        if src.weights != "final":
            raise RuntimeError(
                f"schedule {self.imp.schedule!r} asks for {src.weights!r} weights; the runner has 'final', "
                "'initial', 'rewind' and 'captured'"
            )
        trained = store.load_state(store.final_name(src.level, trial))
        if trained is None:
            raise RuntimeError(f"trained weights of level {src.level} trial {trial} are missing")
        return trained

    # ---- jobs ----------------------------------------------------------------------------------
    def _done(self, store: RunStore, key: str, needs: str | None) -> bool:
        """Finished: ok with the state it left, or failed/diverged with its tries spent (`--retries`)."""
        rec = store.record(key)
        if rec is None:
            return False
        if rec["row"]["status"] != "ok":
            return attempts(rec) > self.options.retries
        return needs is None or store.state_path(needs).exists() and store.load_state(needs) is not None

    def _ok(self, store: RunStore, key: str) -> bool:
        rec = store.record(key)
        return rec is not None and rec["row"]["status"] == "ok"

    def level_jobs(self, store: RunStore, level: int) -> list[Job]:
        jobs: list[Job] = []
        keep_final = self.source is None and self.schedule.keeps_final(level, self.imp.levels)
        sums = tuple(self.groups) if keep_final and self.strategy.sums_gradients else ()
        for t in range(self.imp.trials):
            seed = self.trial_seed(t)
            final_name = store.final_name(level, t) if keep_final else None
            if level == 0:
                job = Job(
                    level=0,
                    kind=DENSE,
                    trial=t,
                    seed=seed,
                    weights=self.init_weights(store, t),
                    mask=None,
                    budget=self.budget,
                    capture_steps=(self.rewind,),
                    keep_final_weights=keep_final,
                    early_bird=self.early_bird_spec(level, t),
                    grad_sums=sums,
                )
                if (
                    not self._done(store, job.key, final_name)
                    or self._ok(store, job.key)
                    and not (self._has_rewind(store, t) and self._has_captured(store, level, t))
                ):
                    jobs.append(job)
                continue
            if self.source is None and not self._level_done(store, level - 1, t):
                continue  # the ticket this level prunes from failed: this trial stops here
            mask = self.mask_for(store, level, t)
            rewind = self.rewind_weights(store, t)
            ticket = Job(
                level=level,
                kind=TICKET,
                trial=t,
                seed=seed,
                weights=rewind,
                mask=mask.to_state(),
                budget=self.budget,
                start_step=self.rewind,
                keep_final_weights=keep_final,
                keep=job_keep(self.families, mask) if self.imp.compact else None,
                grad_sums=sums,
            )
            if not self._done(store, ticket.key, final_name):
                jobs.append(ticket)
                self.costs.measure(ticket.key, mask, lambda: self.adapter.build(seed))
            for c in self.controls:
                key = store.job_key(level, c, t)
                if self._done(store, key, None):
                    continue
                weights, cmask = self.control_set[c](
                    ControlInput(
                        ticket_mask=mask,
                        rewind_weights=rewind,
                        fresh_weights=self.adapter.initial_weights,
                        seed=derived_seed(self.imp.seed, "control", c, level, t),
                        ranking=None if self.source is not None else self._ranking(store, level, t),
                        families=self.families,
                    )
                )
                self.costs.measure(key, cmask, lambda: self.adapter.build(seed))
                jobs.append(
                    Job(
                        level=level,
                        kind=c,
                        trial=t,
                        seed=seed,
                        weights=weights,
                        mask=cmask.to_state(),
                        budget=self.budget,
                        start_step=self.rewind,
                        keep=job_keep(self.families, cmask) if self.imp.compact else None,
                    )
                )
        return jobs

    def early_bird_spec(self, level: int, trial: int) -> EarlyBirdSpec | None:
        """The watch of the levels this training's weights are captured for (None where none is)."""
        watched = [] if self.source is not None else self.schedule.watched(level, self.imp.levels)
        if not watched:
            return None
        return EarlyBirdSpec(
            strategy=self.imp.strategy,
            params=dict(self.imp.params.get(self.imp.strategy, {})),
            names=tuple(self.shapes),
            global_names=self.global_names,
            targets=tuple(
                Target(n, self.schedule.rates(n, self.rates), derived_seed(self.imp.seed, n, trial)) for n in watched
            ),
            window=int(getattr(self.schedule, "window", 5)),
            epsilon=float(getattr(self.schedule, "epsilon", 0.1)),
        )

    def _has_captured(self, store: RunStore, level: int, trial: int) -> bool:
        names = [store.captured_name(n, trial) for n in self.schedule.watched(level, self.imp.levels)]
        return self.source is not None or all(store.state_path(n).exists() for n in names)

    def _ranking(self, store: RunStore, level: int, trial: int):
        """The ticket's step again, for controls that read its scores (drawn only when one asks)."""

        def ranking() -> tuple[Mask, dict[str, torch.Tensor]]:
            step = self.prune_step(store, level, trial)
            return step.mask, self.strategy.scores(step)

        return ranking

    def _level_done(self, store: RunStore, level: int, trial: int) -> bool:
        return self._ok(store, store.job_key(level, DENSE if level == 0 else TICKET, trial))

    def init_weights(self, store: RunStore, trial: int) -> StateDict:
        name = store.init_name(trial)
        if self.source is not None:
            return self.source.load(name)
        w = store.load_state(name)
        if w is None:
            w = self.adapter.initial_weights(self.trial_seed(trial))
            store.save_state(name, w)
        return w

    def _has_rewind(self, store: RunStore, trial: int) -> bool:
        return self.source is not None or store.state_path(store.rewind_name(trial)).exists()

    def rewind_weights(self, store: RunStore, trial: int) -> StateDict:
        src = self.source.load if self.source is not None else store.load_state
        w = src(store.rewind_name(trial))
        if w is None:
            raise RuntimeError(f"rewind weights of trial {trial} are missing")
        return w

    # ---- rows ----------------------------------------------------------------------------------
    def row(self, job: Job, out: Outcome) -> dict[str, Any]:
        mask = Mask(job.mask) if job.mask is not None else None
        row = {
            "domain": self.adapter.domain,
            "task": self.adapter.task(),
            "kind": job.kind,
            "level": job.level,
            "trial": job.trial,
            "density": mask.density if mask else 1.0,
            "metric": self.metric.name,
            "score": out.score,
            "early_stop_step": out.early_stop_step,
            "final_score": out.final_score,
            "higher_is_better": self.metric.higher_is_better,
            "seed": job.seed,
            "wall_seconds": round(out.wall_seconds, 3),
            "config_hash": self.hash,
            "status": out.status,
            "error": out.error,
            "val_metric": self.metric.val_name,
            "val_at_stop": out.val_at_stop,
            "steps": out.steps,
            "start_step": job.start_step,
            "kept": mask.num_kept if mask else None,
            "total": mask.num_total if mask else None,
            "preset": self.preset,
            **row_provenance(tuple(self.adapter.packages)),
            "config": json.dumps(self.identity, sort_keys=True, default=str),
            "execution": json.dumps(self.execution, sort_keys=True),
        }
        row.update(self.costs.columns(job.key))
        for k, v in out.extras.items():
            row.setdefault(k, v)
        return row

    def cost(self, store: RunStore, job: Job, out: Outcome, row: dict[str, Any]) -> dict[str, Any]:
        """The early-bird columns and what finding this row's ticket cost (lth_core/ticket_cost.py)."""
        per_step = self.adapter.step_flops(job.mask) if "step_flops" in self.adapter.capabilities() else None
        extra: dict[str, Any] = {"train_flops": None if per_step is None else per_step * out.steps}
        eb = out.early_bird
        if eb is not None:  # a watched training: where it stopped, and whether every level was declared
            extra["eb_declared"] = all(s is not None for s in eb.declared.values())
            extra["eb_step"] = (job.start_step + out.steps) if extra["eb_declared"] else None
        src = self.schedule.source(job.level) if job.level else None
        if src is not None and src.weights == "captured":
            watch = store.record(store.job_key(src.level, DENSE if src.level == 0 else TICKET, job.trial)) or {}
            at = watch.get("early_bird", {}).get("declared", {}).get(str(job.level))
            extra["eb_step"], extra["eb_declared"] = at, at is not None
        if self.source is not None or out.status != "ok":
            return {**extra, "discovery_steps": None, "discovery_flops": None}

        def level_row(level: int) -> dict[str, Any] | None:
            if level == job.level and job.kind in (DENSE, TICKET):
                return {**row, **extra}
            rec = store.record(store.job_key(level, DENSE if level == 0 else TICKET, job.trial))
            return None if rec is None else rec["row"]

        steps, flops = discovery(job.level, self.schedule, level_row, self.rewind, extra.get("eb_step"))
        return {**extra, "discovery_steps": steps, "discovery_flops": flops}

    def store_outcome(self, store: RunStore, job: Job, out: Outcome) -> None:
        """State first, record last: the record is the commit marker of a finished job."""
        if out.status == "ok":
            if job.grad_sums:  # before the final weights, whose file marks the source of the next level saved
                if out.grad_sums is None:
                    raise RuntimeError(f"adapter {self.adapter.domain!r} returned no gradient sums for {job.key}")
                store.save_state(store.grad_sums_name(job.level, job.trial), out.grad_sums)
            if job.keep_final_weights and out.final_weights is not None:
                store.save_state(store.final_name(job.level, job.trial), out.final_weights)
            if out.early_bird is not None:  # before the record: a kill between leaves the job to train again
                save_early_bird(store, job, out.early_bird)
            if job.kind == DENSE and self.source is None:
                rewind = out.captured.get(self.rewind, job.weights if self.rewind == 0 else None)
                if rewind is None:
                    raise RuntimeError(f"adapter did not capture the rewind weights at step {self.rewind}")
                store.save_state(store.rewind_name(job.trial), rewind)
        curve = [p.__dict__ for p in out.curve]
        prev = store.record(job.key)
        tries = attempts(prev) + 1 if prev is not None and prev["row"]["status"] != "ok" else 1
        row = self.row(job, out)
        row.update(self.cost(store, job, out, row))
        record: dict[str, Any] = {"row": {**row, "attempts": tries}, "curve": curve}
        if out.early_bird is not None:
            eb = out.early_bird
            record["early_bird"] = {"steps": eb.steps, "declared": {str(k): v for k, v in eb.declared.items()}}
        if job.kind == TICKET:  # the seconds its strategy spent drawing this mask (NaN: taken from --ticket-from)
            saved = store.load_state(store.scoring_name(job.level, job.trial))
            record["row"]["scoring_s"] = math.nan if saved is None else round(float(saved["seconds"]), 4)
        if job.mask is not None:  # kept / total per tensor: densities.csv, and layer collapse in the summary
            mask = Mask(job.mask)
            record["tensors"] = {n: [k, mask.sizes()[n]] for n, k in mask.kept().items()}
        store.write_record(job.key, record)

    # ---- the run -------------------------------------------------------------------------------
    def run(self) -> Path:
        # the executor first: its bad input (an unreachable Ray address) must leave nothing written
        executor = EXECUTORS.get(self.options.executor)(self.adapter, self.factory, self.options)
        try:
            store = RunStore(self.path).open(self.meta())
            if self.executions:
                store.update_meta(executions=self.executions, allow_mixed_execution=True)
            elif "execution" not in store.meta():  # a folder of the previous release: its execution, now named
                store.update_meta(execution=self.execution)
        except BaseException:
            executor.close()
            raise
        try:
            per_level = self.imp.trials * (1 + len(self.controls))
            total = self.imp.trials + self.imp.levels * per_level
            with tqdm(
                total=total,
                desc=f"{self.adapter.domain} {self.adapter.task()}",
                unit="job",
                disable=not self.options.progress,
                dynamic_ncols=True,
            ) as bar:
                for level in range(self.imp.levels + 1):
                    jobs = self.level_jobs(store, level)
                    expected = self.imp.trials if level == 0 else per_level
                    bar.update(expected - len(jobs))
                    bar.set_postfix_str(f"level {level}/{self.imp.levels}")
                    for job, outcome in executor.run(jobs):
                        self.store_outcome(store, job, outcome)
                        bar.update(1)
                    from lth_core.tables import write_tables  # here: the first job need not wait for pandas

                    write_tables(store, plots=level == self.imp.levels)
            store.update_meta(finished=time.strftime("%Y-%m-%dT%H:%M:%S"), recovered=store.recovered)
        finally:
            executor.close()
            store.close()
        return self.path
