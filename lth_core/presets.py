"""Named bundles of config values; a preset sets defaults, explicit CLI flags still win."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping

from lth_core.errors import UsageError


@dataclass(frozen=True)
class Preset:
    name: str
    help: str
    imp: Mapping[str, Any] = field(default_factory=dict)  # ImpConfig field -> value
    domain: Mapping[str, Any] = field(default_factory=dict)  # the domain Config's field -> value
    # `--smoke`: the domain fields that make one level of one trial run in minutes on a CPU (a budget scale,
    # generated data); SMOKE_IMP cuts the levels and trials. {} = the preset as it is, levels and trials cut.
    smoke: Mapping[str, Any] = field(default_factory=dict)


SMOKE_IMP: Mapping[str, Any] = {"levels": 1, "trials": 1}  # every --smoke: the dense network, one level, one trial


def apply(cfg: Any, values: Mapping[str, Any]) -> Any:
    names = {f.name for f in fields(cfg)}
    bad = sorted(set(values) - names)
    if bad:
        raise UsageError(f"preset sets unknown fields {bad}; valid: {sorted(names)}")
    return replace(cfg, **values)
