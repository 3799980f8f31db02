"""Schedules: how the levels of a run follow each other, as registered `Schedule` classes.

Level 0 trains the dense network. For each level L >= 1 the schedule says where its pruning step starts
(`source`: which weights, and which level's mask it prunes further) and at which rates (`rates`); from that
the runner knows which levels' trained weights must be kept (`keeps_final`). A schedule that prunes from the
initial weights (`at_init`) is one class returning `Source("initial")`; one that prunes from weights taken
during a training (`early_bird`, lth_core/early_bird_schedule.py) returns `Source("captured")`.
As a dataclass a schedule's `opt(...)` fields are its parameters (flags `--<name>-<field>`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from lth_core.components import Component, ComponentRegistry

SOURCES = ("final", "initial", "rewind", "captured")  # the weight kinds the runner resolves


@dataclass(frozen=True)
class Source:
    """Where level L's pruning step starts."""

    weights: str  # "final": the trained weights of `level`; "initial" / "rewind": the trial's initial / rewind weights;
    # "captured": the weights the training of `level` had where this level's early-bird mask was declared
    level: int = 0  # whose trained weights, for "final"
    mask_level: int = 0  # the level whose mask is pruned further (0 = the full mask)


class Schedule(Component):
    def source(self, level: int) -> Source:
        raise NotImplementedError

    def rates(self, level: int, base: Mapping[str, float]) -> dict[str, float]:
        """This level's fraction to remove per tensor, from the per-level rates `base` of the config."""
        raise NotImplementedError

    def keeps_final(self, level: int, levels: int) -> bool:
        """Whether the trained weights of `level` are pruned from by a later level of a run of `levels`."""
        later = (self.source(n) for n in range(level + 1, levels + 1))
        return any(s.weights == "final" and s.level == level for s in later)

    def watched(self, level: int, levels: int) -> list[int]:
        """The later levels whose ticket is drawn from weights captured during the training of `level`."""
        return [n for n in range(level + 1, levels + 1) if self.source(n) == Source("captured", level, 0)]


SCHEDULES = ComponentRegistry("schedule")


@SCHEDULES.register("iterative")
class Iterative(Schedule):
    """Prune a fraction p of what remains from the trained ticket of the level before (F&C 2019)."""

    def source(self, level: int) -> Source:
        return Source("final", level - 1, level - 1)

    def rates(self, level: int, base: Mapping[str, float]) -> dict[str, float]:
        return dict(base)


@SCHEDULES.register("one_shot")
class OneShot(Schedule):
    """Prune the dense network's trained weights straight to level L's density, 1 - (1 - p)^L."""

    def source(self, level: int) -> Source:
        return Source("final", 0, 0)

    def rates(self, level: int, base: Mapping[str, float]) -> dict[str, float]:
        return {n: 1.0 - (1.0 - r) ** level for n, r in base.items()}


@SCHEDULES.register("at_init")
class AtInit(Schedule):
    """Pruning at initialization: each level's mask drawn from the rewind weights (the initial ones at rewind step 0),
    before any training of that level, straight from the full mask to the density 1 - (1 - p)^L (Frankle et al.
    2021). No trained weights are pruned from; the dense level still trains, as the reference (and to reach a later
    rewind point). Iterative criteria (SynFlow) iterate inside the level."""

    def source(self, level: int) -> Source:
        return Source("rewind", 0, 0)

    def rates(self, level: int, base: Mapping[str, float]) -> dict[str, float]:
        return {n: 1.0 - (1.0 - r) ** level for n, r in base.items()}
