"""Extension points that carry their own parameters: strategies, controls and schedules as registered classes.

Each is one class registered under a name. A component that is a dataclass has hyperparameters: its fields,
declared with `opt(...)`, so a new criterion needs no edit in the runner or the config.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Iterator, Mapping

from lth_core.errors import UsageError
from lth_core.registry import Registry


class Component:
    """Base of strategies, controls and schedules.

    `needs` names the optional adapter capabilities it calls (e.g. {"training_loss"}); the runner checks them
    with `adapter.require` before anything is written. `validate` raises UsageError on a bad parameter value.
    """

    needs: ClassVar[frozenset[str]] = frozenset()

    def validate(self) -> None:
        """One line naming the bad value (see `flag`) where a parameter is out of range."""


def flag(name: str, field: str) -> str:
    """The CLI flag of component `name`'s parameter `field`: `--<name>-<field>` with '_' -> '-'."""
    return f"--{name}-{field}".replace("_", "-")


class ComponentRegistry(Registry[type[Component]]):
    """Registered component classes; `get(name)` gives one with default parameters, `build` with given ones.

    Parameter scheme, shared by the three kinds: component `name`'s field `f` is the flag `--<name>-<f>`
    (underscores as dashes: strategy `snip`, field `batches` -> `--snip-batches`), the preset key
    `imp={"params": {name: {f: value}}}`, and the identity entry `params.<name>.<f>` of a run whose chosen
    strategy, schedule or controls have fields. Components without fields add nothing to the identity, so
    a run that picks none keeps the hash it had before parameters existed. Flags are namespaced by the name
    alone, so two components with fields may not share one name across kinds.
    """

    _namespaces: ClassVar[dict[str, str]] = {}  # name of a component with fields -> its kind
    all: ClassVar[list[ComponentRegistry]] = []

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        ComponentRegistry.all.append(self)

    def register(self, name: str):  # type: ignore[override]
        base = super().register(name)

        def deco(cls: type[Component]) -> type[Component]:
            if param_fields(cls):
                owner = ComponentRegistry._namespaces.setdefault(name, self.kind)
                if owner != self.kind:
                    raise ValueError(f"{self.kind} {name!r}: a {owner} of that name already owns flags --{name}-*")
            return base(cls)

        return deco

    def cls(self, name: str) -> type[Component]:
        return super().get(name)

    def get(self, name: str) -> Any:
        return self.build(name, {})

    def build(self, name: str, values: Mapping[str, Any]) -> Any:
        """An instance with these parameter values (the others default); unknown fields are a UsageError."""
        cls = self.cls(name)
        known = {f.name for f in param_fields(cls)}
        bad = sorted(set(values) - known)
        if bad:
            raise UsageError(
                f"{self.kind} {name!r} has no parameter {bad[0]!r}; "
                f"its parameters: {', '.join(sorted(known)) or 'none'}"
            )
        obj = cls(**values)
        obj.validate()
        return obj

    def parameterized(self) -> Iterator[tuple[str, type[Component]]]:
        """(name, class) of every registered component that has fields, by name."""
        for name in self.names():
            if param_fields(self.cls(name)):
                yield name, self.cls(name)


def param_fields(cls: type) -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(cls) if dataclasses.is_dataclass(cls) else ()


def param_values(obj: Component) -> dict[str, Any]:
    """A component's parameters as plain values (empty for one without fields)."""
    return {f.name: getattr(obj, f.name) for f in param_fields(type(obj))}


def overrides(obj: Component) -> dict[str, Any]:
    """The parameters of `obj` that differ from its class defaults (what a run's config records)."""
    default = param_values(type(obj)())
    return {k: v for k, v in param_values(obj).items() if v != default[k]}


def component_flags(parser: Any, preset: Mapping[str, Mapping[str, Any]]) -> dict[str, Component]:
    """A flag group `--<name>-<field>` per registered component with fields on a simple-parsing parser, its
    defaults set by the preset's `params`; returns name -> the default it was given."""
    groups: dict[str, Component] = {}
    for reg in ComponentRegistry.all:
        for name, cls in reg.parameterized():
            default = reg.build(name, preset.get(name, {}))
            parser.add_arguments(cls, dest=f"params_{name}", prefix=f"{name}-".replace("_", "-"), default=default)
            groups[name] = default
    unknown = sorted(set(preset) - set(groups))
    if unknown:
        raise UsageError(
            f"preset sets parameters of {unknown[0]!r}, which has none; with parameters: "
            f"{', '.join(sorted(groups)) or 'none'}"
        )
    return groups


def component_params(ns: Any, groups: Mapping[str, Component], chosen: set[str]) -> dict[str, dict[str, Any]]:
    """`ImpConfig.params` from parsed flags: the chosen components' values that differ from their class defaults,
    and whatever was typed for the others (so that validation names the flag that does not apply)."""
    out = {}
    for name, default in groups.items():
        value = getattr(ns, f"params_{name}")
        if name in chosen:
            out[name] = overrides(value)
        else:  # typed for a component this run does not use: kept, so that validation names the flag
            out[name] = {k: v for k, v in param_values(value).items() if v != getattr(default, k)}
    return {k: v for k, v in out.items() if v}
