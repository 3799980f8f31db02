"""config.py outside the run identity, by exact values: what `opt()` declares (help, identity, choices, a fresh
default per instance), the one-line refusals of bad numbers (each bound on both sides, each message as the user
reads it), the scaled budget and evaluation, rewind steps, rate overrides and the chosen components' parameters."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields

import pytest

from lth_core.components import Component
from lth_core.config import (
    MAX_THREADS,
    SEED_LIMIT,
    DomainConfig,
    ImpConfig,
    RunOptions,
    _declared,
    check_finite,
    check_imp_numbers,
    check_options,
    fields_by_name,
    full_dict,
    opt,
    parse_overrides,
)
from lth_core.controls import CONTROLS
from lth_core.errors import UsageError
from lth_core.strategies import STRATEGIES


def _refused(fn, *args) -> str:
    with pytest.raises(UsageError) as e:
        fn(*args)
    return str(e.value)


def _declared_class() -> type:
    """Declared at call time: a class body run at import (as the library's are) would call `opt` before a test
    (or a mutant) could see it."""

    @dataclass
    class Declared:
        plain: int = opt(3, "a plain field")
        hidden: str = opt("x", "kept out of the hash", identity=False, cadence=True)
        picked: str = opt("magnitude_layerwise", "a registry's name", choices=STRATEGIES)
        many: list = opt([1, 2], "a list default")
        table: dict = opt({"a": 1}, "a dict default", eval_floor=4)

    return Declared


def test_opt_declares_help_identity_choices_and_extra_metadata():
    Declared = _declared_class()
    f = fields_by_name(Declared)
    assert dict(f["plain"].metadata) == {"help": "a plain field", "identity": True}
    assert dict(f["hidden"].metadata) == {"help": "kept out of the hash", "identity": False, "cadence": True}
    assert dict(f["picked"].metadata) == {
        "help": "a registry's name",
        "identity": True,
        "custom_args": {"choices": STRATEGIES},
    }
    assert f["plain"].default == 3 and f["hidden"].default == "x"
    assert list(fields_by_name(Declared)) == ["plain", "hidden", "picked", "many", "table"]
    assert _declared(Declared, "cadence") == ["hidden"] and _declared(Declared, "eval_floor") == ["table"]


def test_a_mutable_default_is_a_fresh_copy_of_its_type_per_instance():
    Declared = _declared_class()
    a, b = Declared(), Declared()
    assert a.many == [1, 2] and a.table == {"a": 1} and type(a.many) is list and type(a.table) is dict
    a.many.append(3)
    a.table["b"] = 2
    assert b.many == [1, 2] and b.table == {"a": 1}
    assert fields_by_name(Declared)["many"].default is dataclasses.MISSING

    @dataclass
    class WithSet:
        s: set = opt({1}, "a set default")

    assert WithSet().s == {1} and type(WithSet().s) is set and WithSet().s is not WithSet().s


def test_full_dict_is_every_field_by_name():
    assert full_dict(_declared_class()()) == {
        "plain": 3,
        "hidden": "x",
        "picked": "magnitude_layerwise",
        "many": [1, 2],
        "table": {"a": 1},
    }


def test_rate_overrides_parse_and_refuse_each_bad_item_by_name():
    assert parse_overrides(" output = 0.1 ,,conv=0, fc.*=0.999 ") == {"output": 0.1, "conv": 0.0, "fc.*": 0.999}
    assert parse_overrides("") == {}
    for item in ("a", "=0.1", "a=1", "a=1.5", "a=x", "a=-0.1", "a=nan"):
        msg = _refused(parse_overrides, f"ok=0.5,{item}")
        assert msg == f"--rate-overrides item {item!r} must be GROUP_OR_PATTERN=RATE with 0 <= RATE < 1"
    assert ImpConfig(rate_overrides="a=0.25").overrides() == {"a": 0.25}


def test_a_non_finite_float_field_is_refused_by_its_flag():
    @dataclass
    class F:
        some_rate: float = 0.5
        count: int = 1

    check_finite(F(), F(some_rate=1e300))
    assert _refused(check_finite, F(), F(some_rate=math.nan)) == "--some-rate nan must be a finite number"
    assert _refused(check_finite, F(some_rate=-math.inf)) == "--some-rate -inf must be a finite number"


@pytest.mark.parametrize(
    "kw, msg",
    [
        ({"cpus_per_job": 0.0}, f"--cpus-per-job 0.0 must be in (0, {MAX_THREADS}]"),
        ({"cpus_per_job": MAX_THREADS + 1.0}, f"--cpus-per-job {MAX_THREADS + 1.0} must be in (0, {MAX_THREADS}]"),
        ({"cpus_per_job": math.nan}, "--cpus-per-job nan must be a finite number"),
        ({"gpus_per_job": -0.5}, f"--gpus-per-job -0.5 must be in [0, {MAX_THREADS}]"),
        ({"gpus_per_job": MAX_THREADS + 1.0}, f"--gpus-per-job {MAX_THREADS + 1.0} must be in [0, {MAX_THREADS}]"),
        ({"workers": -1}, f"--workers -1 must be in [0, {MAX_THREADS}] (0 = one per core)"),
        ({"workers": MAX_THREADS + 1}, f"--workers {MAX_THREADS + 1} must be in [0, {MAX_THREADS}] (0 = one per core)"),
        ({"retries": -1}, "--retries -1 must be >= 0"),
    ],
)
def test_run_options_out_of_range_are_refused_in_one_line(kw, msg):
    assert _refused(check_options, RunOptions(**kw)) == msg


def test_run_options_at_their_bounds_pass():
    check_options(RunOptions(cpus_per_job=MAX_THREADS, gpus_per_job=MAX_THREADS, workers=MAX_THREADS, retries=0))
    check_options(RunOptions(cpus_per_job=0.5, gpus_per_job=0.0, workers=0))
    assert MAX_THREADS == 1024 and SEED_LIMIT == 2**32


def test_imp_numbers_rewind_and_every_trials_seed():
    check_imp_numbers(ImpConfig(rewind_step="abc"))  # not a number at all: rewind_at says so, not this check
    check_imp_numbers(ImpConfig(seed=SEED_LIMIT - 1001, trials=2))  # last seed SEED_LIMIT - 1
    check_imp_numbers(ImpConfig(seed=SEED_LIMIT - 1, trials=0))  # trials < 1: one seed (validate refuses it)
    for text in ("inf", "-inf", "nan", "1e999"):
        assert _refused(check_imp_numbers, ImpConfig(rewind_step=text)) == (
            f"--rewind-step {text!r} must be a finite step count or fraction of the budget"
        )
    assert _refused(check_imp_numbers, ImpConfig(seed=SEED_LIMIT - 1000, trials=2)) == (
        f"--seed {SEED_LIMIT - 1000}: every trial's seed (seed + 1000 x trial, up to {SEED_LIMIT}) "
        f"must be in [0, {SEED_LIMIT})"
    )
    assert _refused(check_imp_numbers, ImpConfig(seed=-1, trials=1)) == (
        f"--seed -1: every trial's seed (seed + 1000 x trial, up to -1) must be in [0, {SEED_LIMIT})"
    )
    assert _refused(check_imp_numbers, ImpConfig(rate=math.inf)) == "--rate inf must be a finite number"


@dataclass
class Scaled(DomainConfig):
    every: int = opt(10, "steps between evaluations", cadence=True)
    val_size: int = opt(0, "validation items (0 = all)", eval_floor=10)
    test_size: int = opt(1000, "test items", eval_floor=20)


def test_scaled_steps_are_rounded_and_at_least_one():
    assert Scaled().scaled(7) == 7 and Scaled(budget_scale=0.5).scaled(5) == 2  # round half to even
    assert Scaled(budget_scale=0.5).scaled(7) == 4 and Scaled(budget_scale=0.01).scaled(10) == 1
    assert Scaled(budget_scale=2.0).scaled(3) == 6
    assert not Scaled().scaling_down() and Scaled(budget_scale=0.99).scaling_down()
    assert not Scaled(budget_scale=1.5).scaling_down()


def test_the_evaluation_cadence_widens_to_at_most_eval_points_under_a_scale_below_one():
    assert Scaled().eval_cadence_for(1000) == 10  # full scale: the declared cadence however long the budget
    assert Scaled(budget_scale=2.0).eval_cadence_for(1000) == 20
    assert Scaled(budget_scale=0.5).eval_cadence_for(100) == 25  # ceil(100 / 4) > 5
    assert Scaled(budget_scale=0.5).eval_cadence_for(101) == 26
    assert Scaled(budget_scale=0.5).eval_cadence_for(8) == 5  # the scaled cadence is already wider
    assert Scaled(budget_scale=0.5, eval_points=0).eval_cadence_for(100) == 5  # 0 = no bound
    assert Scaled(budget_scale=0.5, eval_points=1).eval_cadence_for(100) == 100


def test_an_evaluation_size_scales_down_to_its_floor_and_never_past_the_full_value():
    assert Scaled().eval_size("test_size") == 1000 and Scaled().eval_size("val_size", 500) == 500
    assert Scaled().eval_size("val_size") == 0  # all, its size known only from the data
    assert Scaled(budget_scale=0.5).eval_size("test_size") == 500
    assert Scaled(budget_scale=0.0105).eval_size("test_size") == 20  # ceil(10.5) = 11 < the floor 20
    assert Scaled(budget_scale=0.0255).eval_size("test_size") == 26  # ceil(25.5)
    assert Scaled(budget_scale=0.5).eval_size("val_size", 31) == 16  # ceil(15.5), of the full value
    assert Scaled(budget_scale=0.5, val_size=10).eval_size("val_size") == 10  # at the floor: kept
    assert Scaled(budget_scale=0.5, val_size=8).eval_size("val_size") == 8  # below the floor: never raised
    assert Scaled(budget_scale=0.5, val_size=11).eval_size("val_size") == 10


def test_a_smoke_evaluates_two_points_at_every_declared_floor():
    assert Scaled.smoke_evaluation() == {"eval_points": 2, "val_size": 10, "test_size": 20}
    assert DomainConfig.smoke_evaluation() == {"eval_points": 2}


@pytest.mark.parametrize(
    "kw, msg",
    [
        ({"budget_scale": 0.0}, "--budget-scale 0.0 must be > 0"),
        ({"budget_scale": -1.0}, "--budget-scale -1.0 must be > 0"),
        ({"budget_scale": math.inf}, "--budget-scale inf must be > 0"),
        ({"eval_points": -1}, "--eval-points -1 must be >= 0 (0 = no bound)"),
        ({"threads": -1}, f"--threads -1 must be in [0, {MAX_THREADS}]"),
        ({"threads": MAX_THREADS + 1}, f"--threads {MAX_THREADS + 1} must be in [0, {MAX_THREADS}]"),
    ],
)
def test_a_domain_configs_bad_number_is_refused_in_one_line(kw, msg):
    assert _refused(Scaled(**kw).validate) == msg


def test_a_domain_configs_edge_values_pass():
    Scaled(budget_scale=1e-9, eval_points=0, threads=0).validate()
    Scaled(threads=MAX_THREADS).validate()
    assert [f.name for f in fields(DomainConfig)] == ["budget_scale", "eval_points", "device", "threads"]


def test_rewind_at_reads_a_step_or_a_fraction_of_the_budget():
    assert ImpConfig(rewind_step=" 7 ").rewind_at(10) == 7
    assert ImpConfig(rewind_step="0").rewind_at(10) == 0 and ImpConfig(rewind_step="9").rewind_at(10) == 9
    assert ImpConfig(rewind_step="0.25").rewind_at(10) == 2  # floor of 2.5
    assert ImpConfig(rewind_step="5e-1").rewind_at(10) == 5 and ImpConfig(rewind_step="5E-1").rewind_at(10) == 5
    assert ImpConfig(rewind_step="0.0").rewind_at(10) == 0 and ImpConfig(rewind_step="0.999").rewind_at(1000) == 999


@pytest.mark.parametrize(
    "text, msg",
    [
        ("x", "--rewind-step 'x' is not a step count or a fraction of the budget"),
        ("1.0", "--rewind-step '1.0': a fraction of the budget must be in [0, 1)"),
        ("-0.1", "--rewind-step '-0.1': a fraction of the budget must be in [0, 1)"),
        ("1e0", "--rewind-step '1e0': a fraction of the budget must be in [0, 1)"),
        ("-1", "--rewind-step '-1': a step must be >= 0 (a count of steps, or a fraction in [0, 1))"),
        ("10", "--rewind-step '10': a step must be in [0, 10) for this budget"),
    ],
)
def test_a_bad_rewind_step_is_refused_in_one_line(text, msg):
    assert _refused(ImpConfig(rewind_step=text).rewind_at, 10) == msg


@pytest.mark.parametrize(
    "kw, msg",
    [
        ({"levels": -1}, "--levels -1 must be >= 0"),
        ({"rate": 0.0}, "--rate 0.0 must be in (0, 1)"),
        ({"rate": 1.0}, "--rate 1.0 must be in (0, 1)"),
        ({"trials": 0}, "--trials 0 must be >= 1"),
        ({"controls": "random_mask, random_mask"}, "--controls 'random_mask, random_mask' names a control twice"),
        (
            {"params": {"snip": {"batches": 2, "abc": 1}}},
            "--snip-abc is set but 'snip' is not the chosen strategy, schedule or a control",
        ),
        ({"rewind_step": "nan"}, "--rewind-step 'nan' must be a finite step count or fraction of the budget"),
        ({"seed": -5}, f"--seed -5: every trial's seed (seed + 1000 x trial, up to 995) must be in [0, {SEED_LIMIT})"),
        ({"rate_overrides": "a"}, "--rate-overrides item 'a' must be GROUP_OR_PATTERN=RATE with 0 <= RATE < 1"),
        ({"rewind_step": "1.5"}, "--rewind-step '1.5': a fraction of the budget must be in [0, 1)"),
        ({"rewind_step": "-3"}, "--rewind-step '-3': a step must be >= 0 (a count of steps, or a fraction in [0, 1))"),
    ],
)
def test_a_bad_imp_config_is_refused_in_one_line(kw, msg):
    assert _refused(ImpConfig(**kw).validate) == msg


def test_imp_configs_at_their_edges_pass():
    ImpConfig(levels=0, trials=1, controls="").validate()
    ImpConfig(rewind_step="999999999999", params={"snip": {}, "random_mask": {}}).validate()  # empty: not set
    ImpConfig(schedule="early_bird", params={"early_bird": {"window": 3}}).validate()
    with pytest.raises(UsageError):  # an unknown strategy: components() refuses it
        ImpConfig(strategy="nope").validate()


def test_the_chosen_components_are_built_with_their_own_parameters():
    imp = ImpConfig(
        strategy="snip",
        schedule="early_bird",
        controls="random_mask,inverted",
        params={"snip": {"batches": 3}, "early_bird": {"window": 4}},
    )
    kinds = [(kind, name) for kind, name, _ in imp.components()]
    assert kinds == [
        ("strategy", "snip"),
        ("schedule", "early_bird"),
        ("control", "random_mask"),
        ("control", "inverted"),
    ]
    built = {name: obj for _, name, obj in imp.components()}
    assert built["snip"].batches == 3 and built["early_bird"].window == 4
    assert imp.make_strategy().batches == 3 and type(imp.make_strategy()) is type(built["snip"])
    assert imp.make_schedule().window == 4 and imp.make_schedule().epsilon == 0.1
    controls = imp.make_controls()
    assert list(controls) == ["random_mask", "inverted"]
    assert [type(c) for c in controls.values()] == [type(built["random_mask"]), type(built["inverted"])]
    assert ImpConfig().make_strategy().__class__.__name__ == "MagnitudeLayerwise"
    assert ImpConfig(schedule="early_bird").make_schedule().window == 5
    assert ImpConfig(strategy="snip").make_strategy().batches != 3


def test_an_item_with_two_equals_signs_is_refused():
    msg = _refused(parse_overrides, "a=b=0.1")
    assert msg == "--rate-overrides item 'a=b=0.1' must be GROUP_OR_PATTERN=RATE with 0 <= RATE < 1"


def test_validate_refuses_a_rewind_step_no_budget_reaches():
    """validate() checks the step against a budget of 10**12 steps, before any budget is known."""
    ImpConfig(rewind_step=str(10**12 - 1)).validate()
    assert _refused(ImpConfig(rewind_step=str(10**12)).validate) == (
        f"--rewind-step '{10**12}': a step must be in [0, {10**12}) for this budget"
    )


@dataclass
class Probe(Component):
    """A control with a parameter (none of the built-in ones has one)."""

    strength: int = opt(1, "how strong")


def test_a_controls_own_parameters_reach_it(monkeypatch):
    monkeypatch.setitem(CONTROLS._items, "probe", Probe)
    imp = ImpConfig(controls="probe,random_mask", params={"probe": {"strength": 3}})
    assert imp.make_controls()["probe"].strength == 3
    assert [obj.strength for kind, name, obj in imp.components() if name == "probe"] == [3]
