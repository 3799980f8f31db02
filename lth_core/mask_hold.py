"""Holding a mask under a training loop we do not own.

Mechanism: pruned entries are zeroed once, in place, on the model's own Parameters, and a gradient
hook on each masked Parameter multiplies its gradient by the mask. Every torch optimizer's update of
an entry whose value and whole gradient history are zero is zero (SGD with momentum/Nesterov/weight
decay, Adam, AdamW's decoupled decay, RMSprop, Adagrad ...: each term is a product with the gradient,
its running moments or the weight itself), and gradient clipping only rescales. So pruned weights stay
exactly zero in every forward pass, whichever optimizer a foreign loop builds and whenever it builds it,
without renaming state-dict keys (as parametrizations do) and without untying shared Parameters (a
hook sits on the Parameter, so a tied tensor has one hook). `reapply()` is the belt to those braces:
loops call it after anything that writes weights outside an optimizer (a checkpoint load, a target
network copy). `assert_held()` is what the tests and adapters check at the end of a training.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

from lth_core.job import Job
from lth_core.masks import Mask


def unique_parameters(model: nn.Module, names: list[str]) -> dict[str, nn.Parameter]:
    """Parameters by name, each Parameter once (the first name wins: tied weights are one tensor)."""
    out: dict[str, nn.Parameter] = {}
    seen: set[int] = set()
    for name in names:
        p = model.get_parameter(name)
        if id(p) in seen:
            continue
        seen.add(id(p))
        out[name] = p
    return out


class MaskHold:
    """Keeps `mask` applied to `model`'s Parameters until `release()` (or the end of a `with` block)."""

    def __init__(
        self, model: nn.Module, mask: Mask, mirrors: Mapping[str, Sequence[Tensor]] | None = None, hooks: bool = True
    ) -> None:
        """`hooks=False` is for a loop that owns its optimizer: it calls `mask_grads()` after each backward,
        which masks in place (no allocation per tensor per step) instead of through gradient hooks."""
        self.model = model
        self.mask = mask
        self.params = unique_parameters(model, mask.names())
        if len(self.params) != len(mask):
            missing = sorted(set(mask.names()) - set(self.params))
            raise ValueError(f"mask names tensors that are tied or absent in the model: {missing}")
        self._m: dict[str, Tensor] = {}
        self._handles = []
        for name, p in self.params.items():
            m = mask[name].to(device=p.device, dtype=p.dtype)
            if m.shape != p.shape:
                raise ValueError(f"mask {name} has shape {tuple(m.shape)}, parameter has {tuple(p.shape)}")
            self._m[name] = m
            if hooks:
                self._handles.append(p.register_hook(self._grad_hook(m)))
        # Tensors copied from masked ones but never stepped (e.g. DQN's target network): zeroed on reapply.
        self.mirrors = {n: list(ts) for n, ts in (mirrors or {}).items()}
        self.reapply()

    @staticmethod
    def _grad_hook(m: Tensor):
        def hook(grad: Tensor) -> Tensor:
            return grad * m

        return hook

    @torch.no_grad()
    def mask_grads(self) -> None:
        """Zero the pruned entries of the gradients in place (for `hooks=False`, after backward, before the step)."""
        pairs = [(p.grad, self._m[n]) for n, p in self.params.items() if p.grad is not None]
        if pairs:
            torch._foreach_mul_([g for g, _ in pairs], [m for _, m in pairs])

    @torch.no_grad()
    def reapply(self) -> None:
        """Zero pruned entries in place (keeps identity, ties and state-dict keys)."""
        for name, p in self.params.items():
            p.mul_(self._m[name])
        for name, tensors in self.mirrors.items():
            for t in tensors:
                t.mul_(self._m[name])

    def violations(self) -> dict[str, int]:
        """Number of pruned entries that are not exactly zero, per tensor (empty when the mask holds)."""
        bad = {}
        for name, p in self.params.items():
            n = int(((p.detach() != 0) & (self._m[name] == 0)).sum())
            if n:
                bad[name] = n
        return bad

    def assert_held(self) -> None:
        bad = self.violations()
        if bad:
            raise AssertionError(f"pruned weights revived: {bad}")

    def release(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def __enter__(self) -> "MaskHold":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class GradSums:
    """Sum over every backward pass of a training of g * w per tensor (movement pruning's score, Sanh et al.
    2020: S = -sum_t g_t * w_t, w_t the weight the gradient g_t was taken at), for `Job.grad_sums`.

    Gradient hooks on the model's own Parameters, beside any MaskHold and independent of it, so every loop
    (a domain's own or a library's) is covered without changing it: a hook sees the gradient as backward produces it,
    before any masking, clipping or rescaling by the loop, and the weight before the optimizer's step. A pruned
    entry's weight is zero, so its sum stays zero. Sums are kept in float32 at least (float64 for float64 weights).
    """

    def __init__(self, model: nn.Module, names: Sequence[str]) -> None:
        self.params = unique_parameters(model, list(names))
        self.sums: dict[str, Tensor] = {}
        self._handles = []
        for name, p in self.params.items():
            acc = torch.zeros(p.shape, device=p.device, dtype=torch.promote_types(p.dtype, torch.float32))
            self.sums[name] = acc
            self._handles.append(p.register_hook(self._hook(p, acc)))

    @classmethod
    def for_job(cls, model: nn.Module, job: Job) -> "GradSums | None":
        """The accumulator `job` asks for, or None when it asks for none."""
        return cls(model, job.grad_sums) if job.grad_sums else None

    @staticmethod
    def _hook(p: Tensor, acc: Tensor):
        def hook(grad: Tensor) -> None:
            with torch.no_grad():
                acc.addcmul_(grad.to(acc.dtype), p.detach().to(acc.dtype))

        return hook

    def take(self) -> dict[str, Tensor]:
        """Stop accumulating; the sums as detached CPU tensors (the Outcome's `grad_sums`)."""
        for h in self._handles:
            h.remove()
        self._handles.clear()
        return {n: t.detach().cpu() for n, t in self.sums.items()}
