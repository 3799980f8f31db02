"""Typed configs: the one declaration behind CLI flags, help text, defaults, presets and the run's identity.

A field is part of the run's identity (its hash and folder) unless its metadata says `identity=False`
(where results land, how jobs are executed, which device): those change where and how fast, not what.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, fields
from typing import Any, Iterable, Mapping

from lth_core.components import Component, ComponentRegistry, flag, param_fields, param_values
from lth_core.controls import CONTROLS
from lth_core.errors import UsageError
from lth_core.executors import EXECUTORS
from lth_core.schedules import SCHEDULES
from lth_core.strategies import STRATEGIES

HASH_FORMAT = 1  # bump only on a deliberate change of identity; tests/test_cli.py pins the hashes


def opt(default: Any, help: str, identity: bool = True, choices: Iterable[str] | None = None, **metadata: Any) -> Any:
    """A config field with its help text; `identity=False` keeps it out of the run hash.

    `choices` may be a Registry: the CLI then lists and checks its names at parse time, so a strategy
    or model registered anywhere appears in `--help` without touching this declaration.
    """
    md = {"help": help, "identity": identity, **metadata}
    if choices is not None:
        md["custom_args"] = {"choices": choices}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=md)
    return dataclasses.field(default=default, metadata=md)


def identity_dict(cfg: Any) -> dict[str, Any]:
    """The identity fields of a config dataclass as plain JSON values, sorted."""
    out = {}
    for f in fields(cfg):
        if f.metadata.get("identity", True):
            v = getattr(cfg, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
    return dict(sorted(out.items()))


def full_dict(cfg: Any) -> dict[str, Any]:
    return {f.name: getattr(cfg, f.name) for f in fields(cfg)}


def config_hash(parts: Mapping[str, Any]) -> str:
    blob = json.dumps({"format": HASH_FORMAT, **parts}, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def parse_overrides(text: str) -> dict[str, float]:
    """'output=0.1,conv=0.1' -> {'output': 0.1, 'conv': 0.1} (keys are tensor groups or name patterns)."""
    out: dict[str, float] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, sep, val = item.partition("=")
        try:
            rate = float(val)
        except ValueError:
            rate = math.nan
        if not sep or not key or not (0.0 <= rate < 1.0):
            raise UsageError(f"--rate-overrides item {item!r} must be GROUP_OR_PATTERN=RATE with 0 <= RATE < 1")
        out[key.strip()] = rate
    return out


MAX_THREADS = 1024  # torch threads of one training: far beyond any machine's cores, short of exhausting them
SEED_LIMIT = 2**32  # numpy's legacy seeding, which RL and data libraries use, takes seeds in [0, 2**32) only


def check_finite(*cfgs: Any) -> None:
    """Every float field finite: NaN passes every `<`/`>` range check, so it is refused here once, by type."""
    for cfg in cfgs:
        for f in fields(cfg):
            v = getattr(cfg, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                raise UsageError(f"--{f.name.replace('_', '-')} {v} must be a finite number")


def check_options(options: "RunOptions") -> None:
    """The executor's numbers: finite, and thread and worker counts a machine can have."""
    check_finite(options)
    if not 0 < options.cpus_per_job <= MAX_THREADS:
        raise UsageError(f"--cpus-per-job {options.cpus_per_job} must be in (0, {MAX_THREADS}]")
    if not 0 <= options.gpus_per_job <= MAX_THREADS:
        raise UsageError(f"--gpus-per-job {options.gpus_per_job} must be in [0, {MAX_THREADS}]")
    if not 0 <= options.workers <= MAX_THREADS:
        raise UsageError(f"--workers {options.workers} must be in [0, {MAX_THREADS}] (0 = one per core)")
    if options.retries < 0:
        raise UsageError(f"--retries {options.retries} must be >= 0")


def check_imp_numbers(imp: "ImpConfig") -> None:
    """Floats finite, the rewind step a finite number, and every trial's seed in [0, SEED_LIMIT)."""
    check_finite(imp)
    try:
        finite = math.isfinite(float(imp.rewind_step))
    except ValueError:
        finite = True  # not a number at all: rewind_at says so
    if not finite:
        raise UsageError(f"--rewind-step {imp.rewind_step!r} must be a finite step count or fraction of the budget")
    last = imp.seed + 1000 * (max(imp.trials, 1) - 1)
    if imp.seed < 0 or last >= SEED_LIMIT:
        raise UsageError(
            f"--seed {imp.seed}: every trial's seed (seed + 1000 x trial, up to {last}) must be in [0, {SEED_LIMIT})"
        )


def fields_by_name(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in fields(cls)}


def _declared(cls: type, key: str) -> list[str]:
    """Names of the fields whose `opt(...)` declaration carries `key` (e.g. cadence=True, eval_floor=F)."""
    return [f.name for f in fields(cls) if key in f.metadata]


@dataclass
class DomainConfig:
    """Base of each domain's config: what every domain has (a budget scale, a device, torch threads).

    Subclasses add their flags with `opt(...)`, extend `validate` (calling this one) and may redeclare a field
    here to give it their own default or help (its name and meaning stay). The engine applies `threads`.
    """

    budget_scale: float = opt(
        1.0, "multiply the training budget and evaluation cadence by this (e.g. 0.01 for a smoke run)"
    )
    eval_points: int = opt(
        4,
        "under --budget-scale < 1: at most this many evaluation points per training (the cadence widens to fit), "
        "so evaluation shrinks with the budget; 0 = every scaled cadence step",
        identity=False,  # its effect joins the identity through identity_extras (scaled_evaluation)
    )
    device: str = opt("auto", "device: auto (a GPU when one is visible), cpu, cuda or cuda:N", identity=False)
    threads: int = opt(
        0, "torch CPU threads per training (0 = leave it to the executor's --cpus-per-job)", identity=False
    )

    def scaled(self, n: int) -> int:
        """A step count under --budget-scale (at least 1)."""
        return max(1, int(round(n * self.budget_scale)))

    def scaling_down(self) -> bool:
        return self.budget_scale < 1.0

    def eval_cadence_for(self, budget: int) -> int:
        """Steps between evaluation points: the field declared `opt(..., cadence=True)` x --budget-scale; under a
        scale < 1 widened so that a training of `budget` steps has at most `eval_points` points (evaluation
        then costs a share of the budget, not a fixed count of points however small the budget)."""
        every = self.scaled(getattr(self, _declared(type(self), "cadence")[0]))
        if self.scaling_down() and self.eval_points > 0:
            every = max(every, math.ceil(budget / self.eval_points))
        return every

    def eval_size(self, name: str, full: int | None = None) -> int:
        """How many items one evaluation reads (in the domain's own unit) under --budget-scale: the field `name`,
        declared `opt(..., eval_floor=F)` (`full` where the field is 0 = all), x the scale when it is < 1, never
        below F nor above the full value."""
        value = getattr(self, name) or (full if full is not None else 0)
        floor = fields_by_name(type(self))[name].metadata["eval_floor"]
        if not self.scaling_down() or value <= floor:
            return value
        return max(floor, math.ceil(value * self.budget_scale))

    @classmethod
    def smoke_evaluation(cls) -> dict[str, Any]:
        """A smoke's evaluation: two points (one to stop early at, one at the end) and every declared evaluation
        size at its floor (a smoke checks that a preset runs, not what it scores: the least that still evaluates)."""
        floors = {name: fields_by_name(cls)[name].metadata["eval_floor"] for name in _declared(cls, "eval_floor")}
        return {"eval_points": 2, **floors}

    def scaled_evaluation(self) -> dict[str, Any]:
        """What a scale < 1 did to evaluation, for the run's identity and run.json: the points' bound and each
        declared evaluation size (its value, or the rule where the size is only known from the data)."""
        if not self.scaling_down():
            return {}
        sizes: dict[str, Any] = {}
        for name in _declared(type(self), "eval_floor"):
            floor = fields_by_name(type(self))[name].metadata["eval_floor"]
            sizes[name] = self.eval_size(name) if getattr(self, name) else f"max({floor}, ceil(n x scale)) of n"
        return {"scaled_evaluation": {"eval_points": self.eval_points, **sizes}}

    def validate(self) -> None:
        """Raise UsageError with one line naming the bad value and the valid choices; never change a field."""
        if not (self.budget_scale > 0 and math.isfinite(self.budget_scale)):
            raise UsageError(f"--budget-scale {self.budget_scale} must be > 0")
        if self.eval_points < 0:
            raise UsageError(f"--eval-points {self.eval_points} must be >= 0 (0 = no bound)")
        if not 0 <= self.threads <= MAX_THREADS:
            raise UsageError(f"--threads {self.threads} must be in [0, {MAX_THREADS}]")

    def identity_extras(self) -> dict[str, Any]:
        """Values resolved from outside the fields that join the run's identity beside them (e.g. a hash of the
        data files the run reads, so the hash follows the data, not the folder's path). Called after `validate`.
        This base part records what a --budget-scale < 1 did to evaluation; subclasses add theirs to it."""
        return self.scaled_evaluation()


@dataclass
class ImpConfig:
    """How tickets are found: the iterative-magnitude-pruning protocol, independent of any domain."""

    levels: int = opt(8, "pruning levels after the dense level 0")
    rate: float = opt(0.2, "fraction of the remaining weights pruned per level, in (0, 1)")
    rate_overrides: str = opt("", "per-group or per-name rates, e.g. 'output=0.1,conv=0.1' (0 = never pruned)")
    strategy: str = opt("magnitude_layerwise", "pruning strategy", choices=STRATEGIES)
    schedule: str = opt(
        "iterative",
        choices=SCHEDULES,
        help="how levels follow each other: iterative (rate p of what "
        "remains, per level) or one_shot (straight to the level's density from the dense weights)",
    )
    prune_biases: bool = opt(False, "also prune biases of the prunable layers")
    compact: bool = opt(
        False,
        "train the tickets and controls whose masks are structured (a structured --strategy) as the physically "
        "smaller model, the removed neurons / channels / heads dropped; rows and densities as for masked runs",
        identity=False,  # joins identity() only when set: runs without it keep their hash
    )
    controls: str = opt("random_reinit,random_mask", "comma list of controls trained beside each ticket ('' for none)")
    trials: int = opt(2, "independent replicates (each its own init, dense run and tickets)")
    rewind_step: str = opt("0", "rewind to this step: an integer step, or a fraction of the budget like 0.05")
    seed: int = opt(0, "base seed; trial t uses seed + 1000 * t")
    # joins the identity through `identity()`: only the chosen components' values, only where they have fields
    params: dict[str, dict[str, Any]] = opt(
        {},
        "parameters of the chosen strategy, schedule and controls, {name: {field: value}}; flags --<name>-<field>",
        identity=False,
        cmd=False,
    )

    def control_names(self) -> list[str]:
        return [c.strip() for c in self.controls.split(",") if c.strip()]

    def canonical_controls(self) -> str:
        """The controls in the registry's order (the order they train in does not change what a run asks)."""
        order = {name: i for i, name in enumerate(CONTROLS.registered())}
        return ",".join(sorted(dict.fromkeys(self.control_names()), key=lambda c: (order.get(c, len(order)), c)))

    def canonical_rewind(self) -> str:
        """'00' -> '0', '0.00' -> '0.0', '5e-2' -> '0.05': one spelling per step count and per fraction."""
        text = self.rewind_step.strip()
        try:
            if "." in text or "e" in text.lower():
                return repr(float(text))
            return str(int(text))
        except (ValueError, OverflowError):
            return text  # not a number: validate() refuses it

    def _chosen(self) -> list[tuple[ComponentRegistry, str]]:
        return [(STRATEGIES, self.strategy), (SCHEDULES, self.schedule)] + [(CONTROLS, c) for c in self.control_names()]

    def components(self) -> list[tuple[str, str, Component]]:
        """(kind, name, instance with its parameters) of the chosen strategy, schedule and each control."""
        return [(reg.kind, name, reg.build(name, self.params.get(name, {}))) for reg, name in self._chosen()]

    def make_strategy(self) -> Any:
        return STRATEGIES.build(self.strategy, self.params.get(self.strategy, {}))

    def make_schedule(self) -> Any:
        return SCHEDULES.build(self.schedule, self.params.get(self.schedule, {}))

    def make_controls(self) -> dict[str, Any]:
        return {c: CONTROLS.build(c, self.params.get(c, {})) for c in self.control_names()}

    def identity(self) -> dict[str, Any]:
        """The identity fields, plus `params` of the chosen components that have fields (absent where none has)."""
        out = {**identity_dict(self), "controls": self.canonical_controls(), "rewind_step": self.canonical_rewind()}
        params = {name: param_values(obj) for _, name, obj in self.components() if param_fields(type(obj))}
        if params:
            out["params"] = dict(sorted(params.items()))
        if self.compact:
            out["compact"] = True
        return out

    def overrides(self) -> dict[str, float]:
        return parse_overrides(self.rate_overrides)

    def rewind_at(self, budget: int) -> int:
        text = self.rewind_step.strip()
        try:
            value = float(text)
        except ValueError:
            raise UsageError(f"--rewind-step {text!r} is not a step count or a fraction of the budget") from None
        if "." in text or "e" in text.lower():
            if not 0.0 <= value < 1.0:
                raise UsageError(f"--rewind-step {text!r}: a fraction of the budget must be in [0, 1)")
            return int(value * budget)
        if value < 0:
            raise UsageError(f"--rewind-step {text!r}: a step must be >= 0 (a count of steps, or a fraction in [0, 1))")
        if value >= budget:
            raise UsageError(f"--rewind-step {text!r}: a step must be in [0, {budget}) for this budget")
        return int(value)

    def validate(self) -> None:
        if self.levels < 0:
            raise UsageError(f"--levels {self.levels} must be >= 0")
        if not 0.0 < self.rate < 1.0:
            raise UsageError(f"--rate {self.rate} must be in (0, 1)")
        if self.trials < 1:
            raise UsageError(f"--trials {self.trials} must be >= 1")
        names = self.control_names()
        if len(set(names)) < len(names):
            raise UsageError(f"--controls {self.controls!r} names a control twice")
        self.components()  # unknown names, unknown parameters, out-of-range values
        chosen = {name for _, name in self._chosen()}
        for name, values in sorted(self.params.items()):
            if values and name not in chosen:
                raise UsageError(
                    f"{flag(name, min(values))} is set but {name!r} is not the chosen strategy, schedule or a control"
                )
        check_imp_numbers(self)
        self.overrides()
        self.rewind_at(10**12)


@dataclass
class RunOptions:
    """Where and how a run executes; none of it changes the run's identity."""

    out: str = opt("results", "folder that holds run folders (one per config hash)", identity=False)
    executor: str = opt("local", "how the jobs of a level are executed", identity=False, choices=EXECUTORS)
    workers: int = opt(0, "worker processes/actors for parallel executors (0 = one per core)", identity=False)
    ray_address: str = opt("", "Ray cluster to join: 'auto', HOST:PORT, or '' for a local instance", identity=False)
    cpus_per_job: float = opt(
        1.0, "torch threads each job trains with, whichever executor (Ray reserves as many CPUs)", identity=False
    )
    gpus_per_job: float = opt(0.0, "Ray GPUs reserved per job", identity=False)
    ticket_from: str = opt(
        "",
        "a run folder whose tickets (masks + rewind weights) are trained here instead of pruning (ticket transfer)",
        identity=False,
    )
    progress: bool = opt(True, "show progress bars", identity=False)
    retries: int = opt(
        2, "times a failed or diverged job is trained again, one try per resume (every kind alike)", identity=False
    )
    allow_mixed_execution: bool = opt(
        False,
        "resume a run folder under another executor, --cpus-per-job, --threads or --device (run.json records it)",
        identity=False,
    )


from lth_core import criteria as _criteria  # noqa: E402,F401  (registers SNIP, GraSP, SynFlow, magnitude_init)
from lth_core import early_bird_schedule as _early_bird  # noqa: E402,F401  (registers the early_bird schedule)
from lth_core import structured as _structured  # noqa: E402,F401  (registers the structured strategies)
