"""Early-bird tickets (You et al. 2020): the mask a strategy would draw, watched at each evaluation point of a
training, declared when it has stopped moving; the training stops there and the next tickets are pruned from
the weights of that point.

Following the authors' code (GATECH-EIC/Early-Bird-Tickets, `EarlyBird`): a window of the last K masks, the
latest compared with each of the K-1 before it; the point is declared when every one of those normalized
Hamming distances (differing entries / all entries, over all tensors together) is <= epsilon. Unlike that code
the count pruned is the strategy's exact one (theirs keeps entries strictly above the value at index
int(n * p), one more pruned and ties with it), any tensor kind works (theirs: BatchNorm scales only), and the
training stops at the declared point instead of running on. One watch follows several target levels at once
(one per later level pruned from this training); each is declared on its own, and the training stops once all
are, and once its rewind captures are taken.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import torch

from lth_core.job import StateDict
from lth_core.masks import Mask


@dataclass(frozen=True)
class Target:
    """One later level whose ticket is drawn from this training: its per-tensor rates and its strategy's seed."""

    level: int
    rates: Mapping[str, float]
    seed: int


@dataclass(frozen=True)
class EarlyBirdSpec:
    """What a Job carries to be watched, plain data (crosses process boundaries): the strategy by registry name
    and parameters, the mask the training runs under (None = every prunable entry of `names`), the targets."""

    strategy: str
    params: Mapping[str, Any]
    names: tuple[str, ...]
    global_names: frozenset[str]
    targets: tuple[Target, ...]
    window: int = 5
    epsilon: float = 0.1
    mask: Mapping[str, torch.Tensor] | None = None


@dataclass
class EarlyBirdResult:
    """What a watched training returns: per target level, the evaluation steps, their pairwise mask distances,
    the declared step (None: never stabilized) and the weights kept there (the last point's when never)."""

    steps: list[int] = field(default_factory=list)
    distances: dict[int, list[list[float]]] = field(default_factory=dict)
    declared: dict[int, int | None] = field(default_factory=dict)
    weights: dict[int, StateDict] = field(default_factory=dict)


def mask_distance(a: Mask, b: Mask) -> float:
    """Normalized Hamming distance: the fraction of entries, over all tensors together, kept in one mask only."""
    differ = sum(int((a[n] != b[n]).sum()) for n in a.names())
    return differ / max(a.num_total, 1)


def declared_at(dist: list[list[float]], steps: list[int], window: int, epsilon: float) -> int | None:
    """The first step i (index >= window-1) where every distance from mask i to the window-1 masks before it
    is <= epsilon; None when no point satisfies it. `dist` is the full pairwise matrix."""
    for i in range(window - 1, len(steps)):
        if all(dist[i][j] <= epsilon for j in range(i - window + 1, i)):
            return steps[i]
    return None


_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)


class EarlyBirdWatch:
    """Draws each target's mask at every evaluation point and keeps the matrix of distances between them."""

    def __init__(self, spec: EarlyBirdSpec, initial: StateDict | None = None) -> None:
        from lth_core.strategies import STRATEGIES  # (strategies import nothing of the protocol)

        self.spec, self.initial = spec, initial
        self.strategy = STRATEGIES.build(spec.strategy, dict(spec.params))
        self.base = Mask({n: v.bool() for n, v in spec.mask.items()}) if spec.mask is not None else None
        self.result = EarlyBirdResult()
        self.packed: dict[int, list[np.ndarray]] = {t.level: [] for t in spec.targets}
        self.result.distances = {t.level: [] for t in spec.targets}
        self.result.declared = {t.level: None for t in spec.targets}

    @property
    def done(self) -> bool:
        """Every target declared."""
        return all(s is not None for s in self.result.declared.values())

    def masks(self, weights: StateDict) -> dict[int, Mask]:
        """The mask each target's strategy draws from these weights."""
        from lth_core.strategies import PruneStep

        mask = self.base or Mask({n: torch.ones_like(weights[n], dtype=torch.bool) for n in self.spec.names})
        prunable = {n: weights[n] for n in self.spec.names}
        return {
            t.level: self.strategy(
                PruneStep(
                    weights=prunable,
                    mask=mask,
                    rates=t.rates,
                    global_names=self.spec.global_names,
                    seed=t.seed,
                    initial=self.initial,
                    state=weights,
                )
            )
            for t in self.spec.targets
        }

    def observe(self, step: int, weights: StateDict, may_declare: bool = True) -> list[int]:
        """Add the masks at `step`; returns the target levels declared here (their weights kept). Not before the
        caller allows it (`may_declare`: its rewind captures are taken), so the declared step is the first
        allowed point where the window condition holds."""
        self.result.steps.append(step)
        new = []
        for level, mask in self.masks(weights).items():
            flat = torch.cat([mask[n].flatten() for n in self.spec.names]).numpy()
            bits, n = np.packbits(flat), flat.size
            past = self.packed[level]
            row = [float(_POPCOUNT[np.bitwise_xor(bits, p)].sum()) / max(n, 1) for p in past] + [0.0]
            past.append(bits)
            dist = self.result.distances[level]
            for i, r in enumerate(dist):
                r.append(row[i])
            dist.append(row)
            i, k = len(row) - 1, self.spec.window
            if self.result.declared[level] is None:
                if not may_declare or i < k - 1 or any(row[j] > self.spec.epsilon for j in range(i - k + 1, i)):
                    self.result.weights[level] = weights  # the latest point's: what a never-declared target gets
                    continue
                self.result.declared[level] = step
                self.result.weights[level] = weights
                new.append(level)
        return new
