"""Pruning criteria beyond trained magnitude: SNIP (one-shot, iterative), GraSP, SynFlow, movement, magnitude at init.

Each is a registered strategy with its own parameters (flags `--<name>-<field>`). It scores the weights of its
`PruneStep` (under the at_init schedule: the rewind weights, the very weights the ticket then trains from) with
the step's mask applied, and removes the lowest-ranked remaining entries with exact counts, ties by position
(`prune_lowest` / `prune_global`), so a pruned entry never revives. `scores(step)` is the ranking (lowest removed
first) that the `inverted` control inverts. Gradient criteria call the domain's training loss through
`step.score`; SynFlow needs no data, only the shape of one input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import torch
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from lth_core.components import flag
from lth_core.config import opt
from lth_core.errors import UsageError
from lth_core.masks import Mask
from lth_core.strategies import STRATEGIES, PruneStep, ScoringHook, Strategy, prune_global, prune_lowest

SCOPES = ("global", "layerwise")
SCOPE_HELP = (
    "global: one ranking across the tensors without a rate override (no tensor protected, so a layer can collapse; "
    "Frankle et al. 2021); layerwise: each tensor at its own rate"
)


def _check_scope(name: str, scope: str) -> None:
    if scope not in SCOPES:
        raise UsageError(f"{flag(name, 'scope')} {scope!r}: choose from {', '.join(SCOPES)}")


def _check_positive(name: str, field: str, value: int) -> None:
    if value < 1:
        raise UsageError(f"{flag(name, field)} {value} must be >= 1")


def masked_state(step: PruneStep, mask: Mask | None = None) -> dict[str, Tensor]:
    """The full state dict the step scores (its source weights, else its rewind/initial ones) with `mask` (by
    default the step's) applied."""
    state = step.state if step.state is not None else (step.rewind if step.rewind is not None else step.initial)
    if state is None:
        raise RuntimeError("this criterion scores a model: the PruneStep carries no full state dict")
    mask = step.mask if mask is None else mask
    out = {k: v.detach().clone() for k, v in state.items()}
    for n in mask:
        out[n] = step.weights[n].detach().to(out[n].dtype) * mask[n].to(out[n].dtype)
    return out


def _hook(step: PruneStep) -> ScoringHook:
    if step.score is None:
        raise RuntimeError("this criterion needs the domain's scoring hook; the runner gave none")
    return step.score


def _params(model: nn.Module, names) -> list[nn.Parameter]:
    return [model.get_parameter(n) for n in names]


class Criterion(Strategy):
    """A strategy that is its scores: removes the lowest `scores(step)`, layerwise or in one global ranking."""

    scope: str = "global"

    def __call__(self, step: PruneStep) -> Mask:
        return self.prune(step, self.scores(step))

    def prune(self, step: PruneStep, scores: Mapping[str, Tensor]) -> Mask:
        return prune_lowest(step, scores) if self.scope == "layerwise" else prune_global(step, scores, protect=False)

    def iterate(self, step: PruneStep, rounds: int, score: Callable[[Mask], Mapping[str, Tensor]]) -> Mask:
        """`rounds` re-scorings inside one level: round k prunes the mask left by round k-1, re-scored by
        `score(mask)`, to the density d^(k/rounds) of the step's mask (d its target), with exact counts."""
        mask, start = step.mask, {n: int(step.mask[n].sum()) for n in step.mask}
        for k in range(1, rounds + 1):
            rates = {n: 1.0 - (1.0 - r) ** (k / rounds) for n, r in step.rates.items()}  # of the step's mask
            now = {n: int(mask[n].sum()) for n in mask}  # the same, as a fraction of what remains now
            rel = {n: 0.0 if now[n] == 0 else max(0.0, 1.0 - (1.0 - rates[n]) * start[n] / now[n]) for n in mask}
            if self.scope == "global":
                ranked = [n for n in mask if n in step.global_names]
                total_start, total_now = sum(start[n] for n in ranked), sum(now[n] for n in ranked)
                keep = (1.0 - max([rates[n] for n in ranked], default=0.0)) * total_start
                share = 0.0 if total_now == 0 else max(0.0, 1.0 - keep / total_now)
                rel.update({n: share for n in ranked})
            mask = self.prune(PruneStep(step.weights, mask, rel, step.global_names, step.seed), score(mask))
        return mask


@STRATEGIES.register("snip")
@dataclass(frozen=True)
class Snip(Criterion):
    """Connection sensitivity |g * w| of the step's weights on training batches (Lee et al. 2019)."""

    needs = frozenset({"training_loss"})
    batches: int = opt(1, "training batches the loss (and so the gradient) is averaged over")
    scope: str = opt("global", SCOPE_HELP)

    def validate(self) -> None:
        _check_positive("snip", "batches", self.batches)
        _check_scope("snip", self.scope)

    def scores(self, step: PruneStep) -> dict[str, Tensor]:
        return _snip_scores(step, step.mask, self.batches)


def _snip_scores(step: PruneStep, mask: Mask, batches: int) -> dict[str, Tensor]:
    """|g * w| of the step's weights under `mask`, g the gradient of the loss on `batches` batches (seeded)."""
    hook, names = _hook(step), mask.names()
    model = hook.model(masked_state(step, mask))
    with torch.random.fork_rng(devices=[]):  # dropout inside the loss: seeded, global RNG left as it was
        torch.manual_seed(step.seed)
        params = _params(model, names)
        grads = torch.autograd.grad(hook(model, batches), params, allow_unused=True)
    return {n: _grad(g, p).mul(p.detach()).abs().cpu() for n, g, p in zip(names, grads, params)}


@STRATEGIES.register("snip_iterative")
@dataclass(frozen=True)
class SnipIterative(Criterion):
    """Iterative SNIP (de Jorge et al. 2021, "Progressive Skeletonization"): SNIP's |g * w| re-scored on the
    masked model over `rounds` rounds inside one level, densities d^(k/rounds), pruned entries never revive (their
    FORCE variant lets them; the engine's masks nest). Every round reads the same seeded batches. `scores(step)`
    (what `inverted` inverts) is the first round's, i.e. one-shot SNIP on the step's mask."""

    needs = frozenset({"training_loss"})
    rounds: int = opt(100, "re-scoring rounds inside one level (exponential density schedule)")
    batches: int = opt(1, "training batches each round's loss (and so its gradient) is averaged over")
    scope: str = opt("global", SCOPE_HELP)

    def validate(self) -> None:
        _check_positive("snip_iterative", "rounds", self.rounds)
        _check_positive("snip_iterative", "batches", self.batches)
        _check_scope("snip_iterative", self.scope)

    def __call__(self, step: PruneStep) -> Mask:
        return self.iterate(step, self.rounds, lambda mask: _snip_scores(step, mask, self.batches))

    def scores(self, step: PruneStep) -> dict[str, Tensor]:
        return _snip_scores(step, step.mask, self.batches)


@STRATEGIES.register("grasp")
@dataclass(frozen=True)
class Grasp(Criterion):
    """Gradient signal preservation (Wang et al. 2020): S = -w * (H g), H g by double backprop of the training loss.

    GraSP removes the weights of *highest* S (their removal reduces the gradient flow least), so the ranking
    (lowest removed first) is -S = w * (H g): signed, and inverted by rank, never by a reciprocal.
    The paper's temperature on the logits is left out: the loss is the domain's own.
    """

    needs = frozenset({"training_loss"})
    batches: int = opt(1, "training batches of the gradient and of the Hessian-gradient product")
    scope: str = opt("global", SCOPE_HELP)

    def validate(self) -> None:
        _check_positive("grasp", "batches", self.batches)
        _check_scope("grasp", self.scope)

    def scores(self, step: PruneStep) -> dict[str, Tensor]:
        hook, names = _hook(step), step.mask.names()
        model = hook.model(masked_state(step))
        with torch.random.fork_rng(devices=[]), sdpa_kernel(SDPBackend.MATH):  # fused attention has no 2nd derivative
            torch.manual_seed(step.seed)
            params = _params(model, names)
            grads = torch.autograd.grad(hook(model, self.batches), params, create_graph=True, allow_unused=True)
            used = [(g, p) for g, p in zip(grads, params) if g is not None]
            hg: tuple = ()
            if used:
                z = torch.stack([(g.detach() * g).sum() for g, _ in used]).sum()
                hg = torch.autograd.grad(z, [p for _, p in used], allow_unused=True)
        by_param = {id(p): h for (_, p), h in zip(used, hg)}
        return {n: _grad(by_param.get(id(p)), p).mul(p.detach()).cpu() for n, p in zip(names, params)}


@STRATEGIES.register("synflow")
@dataclass(frozen=True)
class SynFlow(Criterion):
    """Iterative synaptic flow (Tanaka et al. 2020), data-free: R = sum of the network's output on an all-ones input
    with every weight at |w| (float64, BatchNorm in eval mode), scores |dR/dw * w|, re-scored over `rounds` with
    the density of round k = d^(k/rounds), d the step's target. `scores(step)` (what `inverted` inverts) is the
    first round's, on the step's own mask."""

    needs = frozenset({"input_shape"})
    rounds: int = opt(100, "pruning rounds inside one level (exponential density schedule)")
    scope: str = opt("global", SCOPE_HELP)

    def validate(self) -> None:
        _check_positive("synflow", "rounds", self.rounds)
        _check_scope("synflow", self.scope)

    def __call__(self, step: PruneStep) -> Mask:
        hook = _hook(step)
        model = _linearized(hook, masked_state(step))
        return self.iterate(step, self.rounds, lambda mask: _synflow_scores(model, hook, mask))

    def scores(self, step: PruneStep) -> dict[str, Tensor]:
        hook = _hook(step)
        return _synflow_scores(_linearized(hook, masked_state(step)), hook, step.mask)


def _linearized(hook: ScoringHook, state: Mapping[str, Tensor]) -> nn.Module:
    """The model in float64 and eval mode with every floating tensor of its state at its absolute value."""
    model = hook.model(state).double().eval()
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.abs_()
    return model


def _synflow_scores(model: nn.Module, hook: ScoringHook, mask: Mask) -> dict[str, Tensor]:
    """|dR/dw * w| at the masked |w| of `model` (its weights of the pruned entries set to zero, in place)."""
    if hook.input_shape is None:
        raise RuntimeError("synflow needs the input shape; the scoring hook carries none")
    names = mask.names()
    params = _params(model, names)
    with torch.no_grad():
        for n, p in zip(names, params):
            p.mul_(mask[n].to(p.device, p.dtype))
    device = params[0].device if params else torch.device("cpu")
    x = torch.ones((1, *hook.input_shape), dtype=torch.float64, device=device)
    r = (hook.output(model, x) if hook.output is not None else model(x)).sum()
    grads = torch.autograd.grad(r, params, allow_unused=True)
    out = {n: _grad(g, p).mul(p.detach()).abs().cpu() for n, g, p in zip(names, grads, params)}
    if not all(torch.isfinite(s).all() for s in out.values()):
        raise UsageError(
            "synflow: the synaptic flow overflows even in float64 for this network (too deep for an all-ones input)"
        )
    return out


def _grad(g: Tensor | None, p: Tensor) -> Tensor:
    return torch.zeros_like(p) if g is None else g.detach()


@STRATEGIES.register("magnitude_init")
@dataclass(frozen=True)
class MagnitudeInit(Criterion):
    """|w| of the rewind weights (the initial ones at rewind step 0) whatever the schedule's source: magnitude
    pruning at initialization (Frankle et al. 2021)."""

    scope: str = opt("global", SCOPE_HELP)

    def validate(self) -> None:
        _check_scope("magnitude_init", self.scope)

    def scores(self, step: PruneStep) -> dict[str, Tensor]:
        at = step.rewind if step.rewind is not None else step.initial
        if at is None:
            raise RuntimeError("magnitude_init: the PruneStep carries neither rewind nor initial weights")
        return {n: at[n].detach().abs().cpu() for n in step.mask}


@STRATEGIES.register("movement")
@dataclass(frozen=True)
class Movement(Criterion):
    """Movement pruning (Sanh et al. 2020): S = -sum_t g_t * w_t over the training the mask is drawn from (the
    paper's first-order score, each gradient times the weight it was taken at), lowest removed first: weights
    moving away from zero are kept. The training sums it (`Job.grad_sums`, `lth_core.mask_hold.GradSums`);
    iterative and one_shot schedules only (at_init has no training to sum over)."""

    sums_gradients = True
    scope: str = opt("global", SCOPE_HELP)

    def validate(self) -> None:
        _check_scope("movement", self.scope)

    def scores(self, step: PruneStep) -> dict[str, Tensor]:
        if step.grad_sums is None:
            raise RuntimeError("movement: the PruneStep carries no gradient sums of its source training")
        return {n: step.grad_sums[n].detach().cpu().neg() for n in step.mask}
