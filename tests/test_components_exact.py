"""Registries and components (lth_core/registry.py, lth_core/components.py, lth_core/presets.py) exactly: the
one-line errors a user reads, names in sorted and registration order, the flag scheme `--<name>-<field>`, which
parameters a run's config records, and presets applied to a config."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import simple_parsing

import lth_core.config  # noqa: F401  (registers every built-in component)
from lth_core.components import (
    Component,
    ComponentRegistry,
    component_flags,
    component_params,
    flag,
    overrides,
    param_fields,
    param_values,
)
from lth_core.config import opt
from lth_core.errors import Diverged, UsageError
from lth_core.presets import SMOKE_IMP, Preset, apply
from lth_core.registry import Registry
from lth_core.schedules import SCHEDULES
from lth_core.strategies import STRATEGIES


def test_a_registry_lists_sorted_or_in_registration_order_and_names_the_valid_choices():
    r: Registry[int] = Registry("colour")
    assert r.register("red")(3) == 3 and r.add("blue", 5) == 5 and r.add("green", 4) == 4
    assert r.get("red") == 3 and r.check("blue") == "blue"
    assert r.names() == ["blue", "green", "red"] and list(r) == ["blue", "green", "red"]
    assert r.registered() == ["red", "blue", "green"]
    assert "red" in r and "pink" not in r
    with pytest.raises(UsageError, match=r"^unknown colour 'pink'; valid choices: blue, green, red$") as e:
        r.get("pink")
    assert e.value.__cause__ is None and e.value.__suppress_context__
    with pytest.raises(UsageError, match="^unknown colour 'pink'"):
        r.check("pink")
    with pytest.raises(ValueError, match=r"^colour 'red' registered twice$"):
        r.add("red", 6)
    assert r.get("red") == 3


def test_errors_are_exceptions_the_cli_catches():
    assert issubclass(UsageError, Exception) and issubclass(Diverged, Exception)
    assert not issubclass(UsageError, Diverged) and not issubclass(Diverged, UsageError)


@dataclass(frozen=True)
class Scaled(Component):
    scale: float = opt(1.0, "a scale")
    mode: str = opt("plain", "a mode")

    def validate(self) -> None:
        if self.scale < 0:
            raise UsageError(f"{flag('scaled_x', 'scale')} {self.scale} must be >= 0")


class Bare(Component):
    pass


@pytest.fixture
def registries():
    made: list[ComponentRegistry] = []

    def new(kind: str) -> ComponentRegistry:
        made.append(ComponentRegistry(kind))
        return made[-1]

    yield new
    ComponentRegistry.all[:] = [r for r in ComponentRegistry.all if r not in made]
    for name in ("scaled_x", "shared_x"):
        ComponentRegistry._namespaces.pop(name, None)


def test_component_registries_build_with_given_parameters_and_refuse_unknown_ones(registries):
    reg = registries("widget")
    assert reg in ComponentRegistry.all
    assert reg.register("scaled_x")(Scaled) is Scaled and reg.register("bare_x")(Bare) is Bare
    assert reg.cls("scaled_x") is Scaled and reg.get("scaled_x") == Scaled()
    assert reg.build("scaled_x", {"scale": 2.0}) == Scaled(2.0, "plain")
    assert isinstance(reg.get("bare_x"), Bare)
    with pytest.raises(UsageError, match=r"^widget 'scaled_x' has no parameter 'mo'; its parameters: mode, scale$"):
        reg.build("scaled_x", {"mo": 1, "zz": 2, "scale": 1.0})
    with pytest.raises(UsageError, match=r"^widget 'bare_x' has no parameter 'a'; its parameters: none$"):
        reg.build("bare_x", {"b": 1, "a": 2})
    with pytest.raises(UsageError, match=r"^--scaled-x-scale -1\.0 must be >= 0$"):  # built, then validated
        reg.build("scaled_x", {"scale": -1.0})
    with pytest.raises(UsageError, match=r"^unknown widget 'nope'; valid choices: bare_x, scaled_x$"):
        reg.get("nope")
    assert [n for n, _ in reg.parameterized()] == ["scaled_x"]
    assert list(reg.parameterized()) == [("scaled_x", Scaled)]


def test_a_name_with_fields_owns_its_flags_across_kinds(registries):
    a, b, c = registries("widget"), registries("gadget"), registries("widget")
    a.register("shared_x")(Scaled)
    with pytest.raises(
        ValueError, match=r"^gadget 'shared_x': a widget of that name already owns flags --shared_x-\*$"
    ):
        b.register("shared_x")(Scaled)
    assert "shared_x" not in b
    c.register("shared_x")(Scaled)  # the same kind: its flags are the same ones
    b.register("bare_x")(Bare)
    a.register("bare_x")(Bare)  # no fields, no flags: any kind may use the name
    assert ComponentRegistry._namespaces.get("bare_x") is None


def test_flags_params_and_overrides():
    assert flag("snip_iterative", "max_rounds") == "--snip-iterative-max-rounds"
    assert Component.needs == frozenset() and Component().validate() is None
    assert param_fields(Bare) == () and [f.name for f in param_fields(Scaled)] == ["scale", "mode"]
    assert param_values(Bare()) == {} and param_values(Scaled(2.0)) == {"scale": 2.0, "mode": "plain"}
    assert overrides(Scaled()) == {} and overrides(Scaled(2.0)) == {"scale": 2.0}
    assert overrides(Scaled(1.0, "fancy")) == {"mode": "fancy"} and overrides(Bare()) == {}


def parser_and_groups(preset):
    parser = simple_parsing.ArgumentParser()
    return parser, component_flags(parser, preset)


def test_every_component_with_fields_gets_its_flag_group_with_the_presets_defaults():
    everyone = sorted(n for r in ComponentRegistry.all for n, _ in r.parameterized())
    parser, groups = parser_and_groups({"snip": {"batches": 3}})
    assert sorted(groups) == everyone and "early_bird" in groups and "snip" in groups
    assert groups["snip"] == STRATEGIES.build("snip", {"batches": 3})
    assert groups["early_bird"] == SCHEDULES.get("early_bird") and groups["grasp"] == STRATEGIES.get("grasp")
    ns = parser.parse_args(["--snip-iterative-rounds", "7", "--early-bird-window", "9"])
    assert ns.params_snip.batches == 3 and ns.params_snip_iterative.rounds == 7 and ns.params_early_bird.window == 9
    assert ns.params_grasp == STRATEGIES.get("grasp")
    # chosen: what differs from the class defaults; not chosen: what differs from the flag's (preset) default
    params = component_params(ns, groups, {"snip_iterative", "snip"})
    assert params == {"snip_iterative": {"rounds": 7}, "snip": {"batches": 3}, "early_bird": {"window": 9}}
    assert component_params(ns, groups, {"grasp"}) == {"snip_iterative": {"rounds": 7}, "early_bird": {"window": 9}}
    ns = parser.parse_args(["--snip-batches", "1"])
    assert component_params(ns, groups, {"snip"}) == {}
    assert component_params(ns, groups, {"grasp"}) == {"snip": {"batches": 1}}  # typed against the preset's 3


def test_a_preset_setting_parameters_of_a_component_without_any_is_refused():
    with pytest.raises(UsageError) as e:
        parser_and_groups({"random": {"x": 1}, "magnitude_global": {}})
    everyone = ", ".join(sorted(n for r in ComponentRegistry.all for n, _ in r.parameterized()))
    assert str(e.value) == f"preset sets parameters of 'magnitude_global', which has none; with parameters: {everyone}"
    with pytest.raises(UsageError, match=r"^strategy 'snip' has no parameter 'b'; its parameters: batches, scope$"):
        parser_and_groups({"snip": {"b": 1}})


@dataclass(frozen=True)
class Cfg:
    a: int = 1
    b: str = "x"


def test_a_preset_replaces_the_fields_it_names_and_refuses_unknown_ones():
    cfg = Cfg()
    assert apply(cfg, {"b": "y"}) == Cfg(1, "y") and cfg == Cfg() and apply(cfg, {}) == cfg
    with pytest.raises(UsageError, match=r"^preset sets unknown fields \['c', 'd'\]; valid: \['a', 'b'\]$"):
        apply(cfg, {"d": 1, "c": 2, "a": 3})
    p = Preset("p", "help")
    assert (p.imp, p.domain, p.smoke) == ({}, {}, {})
    assert SMOKE_IMP == {"levels": 1, "trials": 1}


def test_without_any_component_with_parameters_the_refusal_says_none(monkeypatch):
    monkeypatch.setattr(ComponentRegistry, "all", [])
    with pytest.raises(UsageError) as e:
        parser_and_groups({"x": {}})
    assert str(e.value) == "preset sets parameters of 'x', which has none; with parameters: none"
    assert parser_and_groups({})[1] == {}
