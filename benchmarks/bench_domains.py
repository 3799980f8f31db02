"""What the benchmark suite needs to know of each domain: how to shrink its quick preset, how long to time it.

The only domain knowledge of the suite, kept in one table (`DOMAIN_BENCH`). A domain that does not import
here (its extra is not installed) is skipped; the domain-free toy adapter of the tests always runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from domains import DOMAINS, load_adapter_class
from lth_core.adapter import Adapter
from lth_core.config import ImpConfig
from lth_core.errors import UsageError
from lth_core.job import Job
from lth_core.masks import Mask
from lth_core.presets import apply
from lth_core.strategies import STRATEGIES, PruneStep

ADAPTERS = {"toy": "toy_adapter:ToyAdapter", **DOMAINS}


@dataclass(frozen=True)
class DomainBench:
    """How to benchmark one domain's quick preset."""

    unit: str  # what one step of the budget is
    span: int  # steps of the timed masked training
    short: int  # steps of the untimed reference job (set-up + evaluation cost, to subtract)
    tiny: dict[str, Any] = field(default_factory=dict)  # config overrides for one IMP level at a tiny budget
    rounds: int = 3


DOMAIN_BENCH: dict[str, DomainBench] = {
    "toy": DomainBench("iterations", span=60, short=1, tiny={"steps": 60}),
    "vision": DomainBench("iterations", span=300, short=1, tiny={"budget_scale": 0.02}),
    "rl": DomainBench("env steps", span=4000, short=40, tiny={"budget_scale": 0.05, "eval_episodes": 2}),
    "nlp": DomainBench("updates", span=10, short=1, tiny={"budget_scale": 0.02, "synthetic_size": 2000}, rounds=2),
}


def adapter_class(domain: str) -> type[Adapter]:
    try:
        return load_adapter_class(domain, ADAPTERS)
    except (UsageError, ModuleNotFoundError, ImportError) as e:
        pytest.skip(f"domain {domain} not importable here: {e}")


def quick_config(domain: str, tiny: bool) -> tuple[type[Adapter], Any, ImpConfig]:
    """The domain's quick preset (domain config and IMP config), shrunk to a tiny budget when asked."""
    cls = adapter_class(domain)
    preset = cls.presets["quick"]
    cfg = apply(cls.Config(), preset.domain)
    if tiny:
        cfg = apply(cfg, DOMAIN_BENCH[domain].tiny)
    if hasattr(cfg, "threads"):  # comparable from run to run: one CPU thread per training
        cfg = apply(cfg, {"threads": 1})
    cfg.validate()
    return cls, cfg, apply(ImpConfig(), preset.imp)


def masked_job(adapter: Adapter, density_rate: float, start_step: int, seed: int = 0) -> Job:
    """A ticket-like job: the init weights under a one-shot magnitude mask of the given pruning rate."""
    weights = adapter.initial_weights(seed)
    groups = adapter.prunable(adapter.build(seed), False)
    prunable = {n: weights[n] for n in groups}
    mask = STRATEGIES.get("magnitude_layerwise")(
        PruneStep(
            weights=prunable,
            mask=Mask.ones_like(prunable),
            rates={n: density_rate for n in groups},
            global_names=frozenset(),
        )
    )
    return Job(
        level=1,
        kind="ticket",
        trial=0,
        seed=seed,
        weights=weights,
        mask=mask.to_state(),
        budget=adapter.budget(),
        start_step=start_step,
    )
