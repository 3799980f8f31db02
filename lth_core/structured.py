"""Structured strategies: remove whole groups (neurons, filters, channels, heads) of the adapter's `structure()`.

A structured step works on group keeps, one [count] bool tensor per `GroupFamily`, read from the step's mask
(`current_keeps`: group i is kept while every masked member still keeps an entry of it) and written back as
the element mask of every masked member (`keeps_to_mask`, intersected with the step's mask, so masks nest).

Rates: family F is pruned at the rate of its first member that is masked (its producing weight, e.g.
`fc1.weight` or `conv2.weight`), so `--rate` and `--rate-overrides` keyed by that tensor's name or group apply;
a reader-only tensor such as the output layer is never a family's first member, so its override does not
prune groups. Each family loses round(rate * remaining groups), ties by position, and always keeps at least
one group. `scope=global` ranks the groups of the families whose first member has no override together (one
threshold, as network slimming does on |gamma|), the highest-scored group of each family protected.

Group scores are per element (mean |w| for l1, root-mean-square for l2, over the masked weights of every
masked member), so groups of families of different sizes compare in a global ranking; layerwise, that is the
ranking of the group's L1 / L2 norm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import torch
from torch import Tensor, nn

from lth_core.adapter import Adapter
from lth_core.components import Component, flag
from lth_core.config import opt
from lth_core.controls import CONTROLS, Control, ControlInput
from lth_core.errors import UsageError
from lth_core.job import StateDict
from lth_core.masks import Mask
from lth_core.strategies import STRATEGIES, PruneStep, Strategy, lowest
from lth_core.structure import GroupFamily

SCOPES = ("layerwise", "global")
SCOPE_HELP = (
    "layerwise: each family loses its own rate of its remaining groups; global: one ranking of the groups of "
    "every family without a rate override (each family keeps its best group)"
)


def families_for(adapter: Adapter, model: nn.Module, parts: list[Component]) -> tuple[GroupFamily, ...] | None:
    """The model's group families where the strategy or a control asks for them (`needs` has 'structure'),
    checked against the model's tensors; None otherwise. Called by the runner before anything is written."""
    if not any("structure" in p.needs for p in parts):
        return None
    strategy = parts[0]
    fams = tuple(adapter.structure(model))
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    for fam in fams:
        fam.check(shapes)
    check = getattr(strategy, "check_structure", None)
    if check is not None:
        check(fams)
    return fams


def _masked(fam: GroupFamily, mask: Mask):
    return [m for m in fam.members if m.tensor in mask]


def _grouped(t: Tensor, dim: int, count: int) -> Tensor:
    """`t` as [count, entries of one group] (a member's group i = `width` consecutive entries along `dim`)."""
    return t.movedim(dim, 0).reshape(count, -1)


def current_keeps(families: tuple[GroupFamily, ...], mask: Mask) -> dict[str, Tensor]:
    """Per family: group i is kept while every masked member keeps at least one entry of it."""
    out = {}
    for fam in families:
        keep = torch.ones(fam.count, dtype=torch.bool)
        for m in _masked(fam, mask):
            keep &= _grouped(mask[m.tensor], m.dim, fam.count).any(1)
        out[fam.name] = keep
    return out


def keeps_to_mask(families: tuple[GroupFamily, ...], keep: Mapping[str, Tensor], mask: Mask) -> Mask:
    """`mask` with the entries of every removed group cleared in every masked member (other tensors as they are)."""
    out = {n: t.clone() for n, t in mask.tensors.items()}
    for fam in families:
        for m in _masked(fam, mask):
            out[m.tensor] &= fam.member_mask(m, keep[fam.name], tuple(out[m.tensor].shape))
    return Mask(out)


def is_structured(families: tuple[GroupFamily, ...], mask: Mask) -> bool:
    """Whether `mask` is exactly the group mask of its own keeps on every family member (no other entry cut),
    i.e. whether the compacted model is the masked one."""
    full = Mask({n: torch.ones_like(t) for n, t in mask.tensors.items()})
    want = keeps_to_mask(families, current_keeps(families, mask), full)
    return all(torch.equal(want[n], mask[n]) for n in mask)


def job_keep(families: tuple[GroupFamily, ...] | None, mask: Mask) -> dict[str, Tensor] | None:
    """The keeps a job trains compacted with (`--compact`): those of a structured mask, None for any other."""
    if families is None or not is_structured(families, mask):
        return None
    return current_keeps(families, mask)


def check_compact(adapter: Adapter, strategy: Strategy, name: str) -> None:
    """`--compact` needs a structured strategy and a domain that can build the smaller model (one line, early)."""
    if "structure" not in strategy.needs:
        raise UsageError(f"--compact trains structured tickets; --strategy {name!r} prunes no groups")
    adapter.require("compact", "--compact")


class StructuredCosts:
    """The measured cost (`Adapter.cost`) of every structured job's compacted model, once per distinct mask, in
    the runner's process between levels (so no training of this run competes with the timing): row columns."""

    def __init__(self, adapter: Adapter, families: tuple[GroupFamily, ...] | None) -> None:
        self.adapter, self.families = adapter, families
        self.on = families is not None and {"compact", "cost"} <= adapter.capabilities()
        self._by_key: dict[str, dict[str, float]] = {}
        self._by_mask: dict[bytes, dict[str, float]] = {}

    def measure(self, key: str, mask: Mask, build: Callable[[], nn.Module]) -> None:
        keep = job_keep(self.families, mask) if self.on else None
        if keep is None:
            return
        digest = b"|".join(keep[f].numpy().tobytes() for f in sorted(keep))
        if digest not in self._by_mask:
            self._by_mask[digest] = self.adapter.cost(build(), keep)
        self._by_key[key] = self._by_mask[digest]

    def columns(self, key: str) -> dict[str, float]:
        return dict(self._by_key.get(key, {}))


def family_rate(fam: GroupFamily, mask: Mask, rates: Mapping[str, float]) -> float:
    """The rate of the family's first masked member (0 = untouched, also for a family with no masked member)."""
    first = _masked(fam, mask)
    return rates[first[0].tensor] if first else 0.0


def _n_remove(remaining: int, rate: float) -> int:
    return max(0, min(remaining - 1, int(round(rate * remaining))))


def _drop(scores: Tensor, keep: Tensor, n: int) -> Tensor:
    """Clear the `n` kept groups of lowest score (earlier position first on ties)."""
    idx = torch.nonzero(keep).flatten()
    out = keep.clone()
    out[idx[lowest(scores[idx].double(), n)]] = False
    return out


def prune_groups(step: PruneStep, scores: Mapping[str, Tensor], scope: str) -> Mask:
    """The next mask: each family loses its rate of its remaining groups, lowest `scores` first."""
    fams = step_families(step)
    keep = current_keeps(fams, step.mask)
    first = {f.name: _masked(f, step.mask) for f in fams}
    ranked = [f for f in fams if scope == "global" and first[f.name] and first[f.name][0].tensor in step.global_names]
    new = dict(keep)
    for fam in fams:
        if fam not in ranked:
            n = _n_remove(int(keep[fam.name].sum()), family_rate(fam, step.mask, step.rates))
            new[fam.name] = _drop(scores[fam.name], keep[fam.name], n)
    if ranked:
        rate = max(family_rate(f, step.mask, step.rates) for f in ranked)
        flat = torch.cat([scores[f.name].double() for f in ranked]).clone()
        alive = torch.cat([keep[f.name] for f in ranked])
        n = int(round(rate * int(alive.sum())))
        flat[~alive] = float("inf")
        offset = 0
        for f in ranked:  # each family's best remaining group is never removed globally
            here = torch.nonzero(keep[f.name]).flatten() + offset
            flat[here[torch.argmax(flat[here])]] = float("inf")
            offset += f.count
        n = min(n, int((flat < float("inf")).sum()))
        alive[lowest(flat, n)] = False
        for f, part in zip(ranked, torch.split(alive, [f.count for f in ranked])):
            new[f.name] = part
    return keeps_to_mask(fams, new, step.mask)


def step_families(step: PruneStep) -> tuple[GroupFamily, ...]:
    if step.families is None:
        raise RuntimeError("a structured strategy needs the model's group families; the PruneStep carries none")
    return step.families


def masked_weight(step: PruneStep, name: str) -> Tensor:
    return step.weights[name].detach().cpu().double() * step.mask[name].double()


class StructuredStrategy(Strategy):
    """Removes whole groups by a per-group score (`group_scores`), layerwise or in one global ranking."""

    needs = frozenset({"structure"})
    scope: str = "layerwise"

    def validate(self) -> None:
        name = next(n for n in STRATEGIES.names() if STRATEGIES.cls(n) is type(self))
        if self.scope not in SCOPES:
            raise UsageError(f"{flag(name, 'scope')} {self.scope!r}: choose from {', '.join(SCOPES)}")

    def check_structure(self, families: tuple[GroupFamily, ...]) -> None:
        """One line before anything is written where the model's families do not suit this criterion."""

    def __call__(self, step: PruneStep) -> Mask:
        return prune_groups(step, self.group_scores(step), self.scope)

    def group_scores(self, step: PruneStep) -> dict[str, Tensor]:
        raise NotImplementedError


def _norm_scores(step: PruneStep, p: int) -> dict[str, Tensor]:
    """Per family: mean |w| (p=1) or root-mean-square w (p=2) of each group over its masked members' entries."""
    out = {}
    for fam in step_families(step):
        total, entries = torch.zeros(fam.count, dtype=torch.float64), 0
        for m in _masked(fam, step.mask):
            g = _grouped(masked_weight(step, m.tensor), m.dim, fam.count).abs().pow(p)
            total += g.sum(1)
            entries += g.shape[1]
        out[fam.name] = total / max(entries, 1) if p == 1 else (total / max(entries, 1)).sqrt()
    return out


@STRATEGIES.register("l1_structured")
@dataclass(frozen=True)
class L1Structured(StructuredStrategy):
    """Remove the groups of smallest L1 norm over all their (masked) member weights (Li et al. 2017's filter
    pruning, extended to the next layer's inputs)."""

    scope: str = opt("layerwise", SCOPE_HELP)

    def group_scores(self, step: PruneStep) -> dict[str, Tensor]:
        return _norm_scores(step, 1)


@STRATEGIES.register("l2_structured")
@dataclass(frozen=True)
class L2Structured(StructuredStrategy):
    """Remove the groups of smallest L2 norm over all their (masked) member weights."""

    scope: str = opt("layerwise", SCOPE_HELP)

    def group_scores(self, step: PruneStep) -> dict[str, Tensor]:
        return _norm_scores(step, 2)


def bn_gammas(fam: GroupFamily) -> list[str]:
    """The BatchNorm scale tensors among a family's members (a `X.weight` beside a `X.running_mean`)."""
    names = {m.tensor for m in fam.members}
    return [
        m.tensor
        for m in fam.members
        if m.tensor.endswith(".weight") and m.tensor[: -len("weight")] + "running_mean" in names and m.dim == 0
    ]


@STRATEGIES.register("bn_slimming")
@dataclass(frozen=True)
class BnSlimming(StructuredStrategy):
    """Network slimming (Liu et al. 2017): a channel's importance is |gamma| of its BatchNorm (the mean over
    the BatchNorms a residual stream ties). Pair it with a domain's L1 penalty on those scales during training
    (the paper's sparsity penalty)."""

    scope: str = opt("global", SCOPE_HELP)

    def check_structure(self, families: tuple[GroupFamily, ...]) -> None:
        bare = [f.name for f in families if not bn_gammas(f)]
        if bare:
            raise UsageError(f"bn_slimming: the group family {bare[0]!r} has no BatchNorm (choose l1_structured)")

    def group_scores(self, step: PruneStep) -> dict[str, Tensor]:
        state = step.state if step.state is not None else step.rewind
        if state is None:
            raise RuntimeError("bn_slimming reads BatchNorm scales: the PruneStep carries no full state dict")
        out = {}
        for fam in step_families(step):
            gammas = [state[t].detach().cpu().double().abs() for t in bn_gammas(fam)]
            out[fam.name] = torch.stack(gammas).mean(0)
        return out


@STRATEGIES.register("random_structured")
@dataclass(frozen=True)
class RandomStructured(StructuredStrategy):
    """Remove remaining groups uniformly at random at the families' counts (the structured pruning baseline)."""

    scope: str = opt("layerwise", SCOPE_HELP)

    def group_scores(self, step: PruneStep) -> dict[str, Tensor]:
        g = torch.Generator().manual_seed(step.seed)
        return {f.name: torch.rand(f.count, generator=g, dtype=torch.float64) for f in step_families(step)}


@CONTROLS.register("random_groups")
class RandomGroups(Control):
    """Random groups at the ticket's per-family group counts, on the ticket's rewind weights: the structured
    counterpart of `random_mask` (a random architecture of the ticket's widths). Tensors outside every family
    keep the ticket's mask."""

    needs = frozenset({"structure"})

    def __call__(self, c: ControlInput) -> tuple[StateDict, Mask]:
        if c.families is None:
            raise RuntimeError("random_groups needs the model's group families; the runner gave none")
        g = torch.Generator().manual_seed(c.seed)
        keep = {}
        for fam, k in current_keeps(c.families, c.ticket_mask).items():
            out = torch.zeros_like(k)
            out[torch.randperm(k.numel(), generator=g)[: int(k.sum())]] = True
            keep[fam] = out
        full = Mask({n: torch.ones_like(m) for n, m in c.ticket_mask.tensors.items()})
        mask = keeps_to_mask(c.families, keep, full)
        outside = {m.tensor for f in c.families for m in f.members}
        return c.rewind_weights, Mask({n: c.ticket_mask[n] if n not in outside else mask[n] for n in mask})
