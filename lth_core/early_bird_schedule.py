"""The `early_bird` schedule (You et al. 2020): levels drawn from the dense training's weights at each level's
early-bird point. Its own module because its parameters are `opt(...)` fields (lth_core/config.py imports it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from lth_core.components import flag
from lth_core.config import opt
from lth_core.errors import UsageError
from lth_core.schedules import SCHEDULES, Schedule, Source


@SCHEDULES.register("early_bird")
@dataclass(frozen=True)
class EarlyBird(Schedule):
    """Early-bird tickets (You et al. 2020): the dense training is watched at each evaluation point for the mask
    the strategy would draw at each level's density 1 - (1 - p)^L; a level's mask is declared at the first point
    where it differs from each of the `window` - 1 masks before it in at most a fraction `epsilon` of entries.
    The dense training stops once every level is declared; each level is pruned from the weights at its own
    declared point (at the end where it never was) and rewound as configured."""

    window: int = opt(5, "masks in the window: the latest is compared with the window - 1 before it")
    epsilon: float = opt(0.1, "largest normalized Hamming distance within the window at the declared point")

    def validate(self) -> None:
        if self.window < 2:
            raise UsageError(f"{flag('early_bird', 'window')} {self.window} must be >= 2")
        if not 0.0 <= self.epsilon < 1.0:
            raise UsageError(f"{flag('early_bird', 'epsilon')} {self.epsilon} must be in [0, 1)")

    def source(self, level: int) -> Source:
        return Source("captured", 0, 0)

    def rates(self, level: int, base: Mapping[str, float]) -> dict[str, float]:
        return {n: 1.0 - (1.0 - r) ** level for n, r in base.items()}
