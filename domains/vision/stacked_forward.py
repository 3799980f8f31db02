"""Forward passes over J jobs' stacked weights, one registered function per model class.

`torch.func.vmap(functional_call)` batches any model, but on a CPU it pays twice for it: the module is
re-entered with swapped parameters on every call, and a vmapped `linear` computes weight gradients in
the transposed layout of the stacked [J, out, in] weight, so each step adds a strided copy into `.grad`
and a strided mask multiply (measured: ~300 against ~380 job-iterations/s for 4 LeNet-300-100 jobs).
A class registered here is instead run as plain batched matrix products on weights stored [J, in, out],
where every gradient lands contiguous. Anything not registered falls back to vmap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

from domains.vision.models import MLP

Params = dict[str, Tensor]


@dataclass(frozen=True)
class StackedForward:
    """How to run one model class stacked: which 2-D weights are stored transposed, and the forward."""

    transposed: Callable[[nn.Module], set[str]]  # names of weights kept as [J, in, out]
    forward: Callable[[nn.Module, Params, Tensor, bool], Tensor]  # (model, params, x, shared_input) -> [J, B, C]


STACKED: dict[type[nn.Module], StackedForward] = {}


def stacked(cls: type[nn.Module]):
    def add(spec: StackedForward) -> StackedForward:
        STACKED[cls] = spec
        return spec

    return add


def _linear(h: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """h [J, B, in] (or [B, in], shared by every job) @ w [J, in, out] + b [J, out]."""
    if h.dim() == 2:  # one product for all jobs: [B, in] @ [in, J * out]
        n_jobs, _, out = w.shape
        y = torch.addmm(b.reshape(1, n_jobs * out), h, w.transpose(0, 1).reshape(h.shape[1], n_jobs * out))
        return y.view(h.shape[0], n_jobs, out).transpose(0, 1)
    return torch.baddbmm(b.unsqueeze(1), h, w)


def _mlp_forward(model: MLP, params: Params, x: Tensor, shared: bool) -> Tensor:
    h = x.flatten(1) if shared else x.flatten(2)
    for i in range(len(model.hidden)):
        h = _linear(h, params[f"hidden.{i}.weight"], params[f"hidden.{i}.bias"]).relu_()
    return _linear(h, params["fc.weight"], params["fc.bias"])


stacked(MLP)(
    StackedForward(
        transposed=lambda model: {n for n, p in model.named_parameters() if p.dim() == 2},
        forward=_mlp_forward,
    )
)


def stacked_forward(model: nn.Module) -> StackedForward | None:
    return STACKED.get(type(model))
