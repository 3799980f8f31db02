"""Jobs and their outcomes: pure data, so they can cross a process or a cluster boundary."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torch import Tensor

if TYPE_CHECKING:
    from lth_core.early_bird import EarlyBirdResult, EarlyBirdSpec

StateDict = dict[str, Tensor]


@dataclass
class Job:
    """Everything one training needs: start weights, mask, seed, budget, and what to capture."""

    level: int
    kind: str  # "dense", "ticket" or a control name
    trial: int
    seed: int  # data order and any randomness of the training itself
    weights: StateDict  # full state dict the training starts from
    mask: dict[str, Tensor] | None  # None = dense
    budget: int  # total training steps of the schedule (in the adapter's own step unit)
    start_step: int = 0  # > 0 when rewound to step k: train from k to budget
    capture_steps: tuple[int, ...] = ()  # steps at which to return a copy of the weights (rewind points)
    keep_final_weights: bool = False  # tickets feed the next level's pruning
    data_seed: int | None = None  # data order / augmentation / exploration; None = `seed` (the default)
    keep: dict[str, Tensor] | None = None  # group keeps of a structured mask: train compacted (--compact)
    early_bird: EarlyBirdSpec | None = None  # watch the masks of later levels; stop once they are declared
    grad_sums: tuple[str, ...] = ()  # tensors whose sum of g * w over the training comes back (movement pruning)

    @property
    def order_seed(self) -> int:
        """The seed of the training's own randomness (data order, augmentation, exploration), separate from
        the initialization, so two trainings from one start can differ only in SGD noise (instability)."""
        return self.seed if self.data_seed is None else self.data_seed

    @property
    def key(self) -> str:
        from lth_core.store import job_key  # the run store spells the names of its records

        return job_key(self.level, self.kind, self.trial)


@dataclass
class EvalPoint:
    step: int
    val: float  # the selection signal (validation split only)
    test: float | None = None  # the reported metric on the test split, if evaluated at this point
    extras: dict[str, float] = field(default_factory=dict)


@dataclass
class Outcome:
    """What a training returns. `score` is the test metric at `early_stop_step` (chosen on validation)."""

    score: float
    final_score: float
    early_stop_step: int
    val_at_stop: float
    steps: int
    curve: list[EvalPoint] = field(default_factory=list)
    final_weights: StateDict | None = None
    captured: dict[int, StateDict] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"  # "ok" | "diverged" | "failed"
    wall_seconds: float = 0.0  # set by the executor around the whole training
    error: str = ""
    early_bird: EarlyBirdResult | None = None  # the watch's masks distances, declared steps and weights
    grad_sums: StateDict | None = None  # sum_t g_t * w_t per tensor named in Job.grad_sums (lth_core.mask_hold)

    @classmethod
    def failed(cls, status: str, error: str) -> "Outcome":
        nan = math.nan
        return cls(score=nan, final_score=nan, early_stop_step=-1, val_at_stop=nan, steps=0, status=status, error=error)
