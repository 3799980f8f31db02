"""A masked Linear layer trained on its mask's pattern only: CSR products forward and backward (torch.sparse).

Why: at low density most of a masked dense product's arithmetic multiplies zeros. `SparseLinear` stores only the
kept weights, as one Parameter (`values`, one entry per kept weight in row-major order), so gradients and every
optimizer state exist for kept entries only and a pruned entry cannot move: written back, it is exactly zero.
Forward y^T = W x^T (CSR x dense), backward dx^T = W^T dy^T (the transposed pattern, precomputed) and dW on
the pattern only (`sampled_addmm`, an SDDMM). Activations pass between layers transposed (a layer returns the
transposed view of a contiguous (out, batch) product), so the next sparse layer reads its operand without a
copy; dense layers and elementwise ops take such views as they are. `state_dict()` and `load_state_dict()` speak
the dense layer's keys and shapes, so captures, best states and saved weights stay ordinary dense state dicts.
Dead inputs and neurons (fully pruned columns / rows) cost nothing here: CSR's work is proportional to the kept
entries, an empty row or a never-referenced column adds no arithmetic.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch
from torch import Tensor, nn

# torch warns once per process that its CSR support is "in beta"; the operations used here are covered by tests
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")


class Pattern:
    """The kept entries of an (out, in) mask as CSR indices of W and of W^T, and their flat dense positions."""

    def __init__(self, mask: Tensor) -> None:
        mask = mask.detach().to(torch.bool)
        out, inn = mask.shape
        self.shape = (out, inn)
        rows, cols = mask.nonzero(as_tuple=True)  # row-major: the order of `values`
        index = torch.int32 if mask.numel() < 2**31 else torch.int64
        self.flat = rows * inn + cols
        self.crow = _offsets(rows, out).to(index)
        self.col = cols.to(index)
        self.perm = torch.argsort(cols * out + rows)  # values[perm] is W^T's values in its row-major order
        self.crow_t = _offsets(cols, inn).to(index)
        self.col_t = rows[self.perm].to(index)
        self.nnz = int(rows.numel())

    def to(self, device: torch.device) -> "Pattern":
        for name in ("flat", "crow", "col", "perm", "crow_t", "col_t"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def csr(self, values: Tensor) -> Tensor:
        return torch.sparse_csr_tensor(self.crow, self.col, values, self.shape, check_invariants=False)

    def csr_t(self, values: Tensor) -> Tensor:
        t = values.index_select(0, self.perm)
        return torch.sparse_csr_tensor(self.crow_t, self.col_t, t, self.shape[::-1], check_invariants=False)

    def dense(self, values: Tensor) -> Tensor:
        w = values.new_zeros(self.shape[0] * self.shape[1])
        w[self.flat] = values
        return w.view(self.shape)


def _offsets(rows: Tensor, n: int) -> Tensor:
    out = torch.zeros(n + 1, dtype=torch.int64, device=rows.device)
    out[1:] = torch.bincount(rows, minlength=n).cumsum(0)
    return out


def _t_contiguous(x: Tensor) -> Tensor:
    """x^T as a contiguous tensor: free when x is already a transposed view (the previous sparse layer's output)."""
    t = x.t()
    return t if t.is_contiguous() else t.contiguous()


class CsrLinearFn(torch.autograd.Function):
    """y = x W^T + b with W = pattern.csr(values); gradients for x, the kept values and the bias."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, values: Tensor, bias: Tensor | None, pattern: Pattern) -> Tensor:
        xt = _t_contiguous(x)
        w = pattern.csr(values)
        if bias is None:  # into a fresh buffer: torch.sparse.mm would zero one and copy it over
            yt = xt.new_empty(pattern.shape[0], xt.shape[1])
            torch.addmm(yt, w, xt, beta=0.0, out=yt)
        else:
            yt = torch.addmm(bias.unsqueeze(1), w, xt)
        ctx.save_for_backward(xt, values)
        ctx.pattern, ctx.w, ctx.has_bias = pattern, w, bias is not None  # w: values' own storage, for its pattern
        return yt.t()

    @staticmethod
    def backward(ctx: Any, gy: Tensor) -> tuple[Tensor | None, ...]:
        xt, values = ctx.saved_tensors
        p: Pattern = ctx.pattern
        gyt = _t_contiguous(gy)
        gx = gv = gb = None
        if ctx.needs_input_grad[0]:
            gxt = gyt.new_empty(p.shape[1], gyt.shape[1])
            gx = torch.addmm(gxt, p.csr_t(values), gyt, beta=0.0, out=gxt).t()
        if ctx.needs_input_grad[1]:
            gv = torch.sparse.sampled_addmm(ctx.w, gyt, xt.t(), beta=0.0).values()
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = gyt.sum(1)
        return gx, gv, gb, None


class SparseLinear(nn.Module):
    """A stand-in for a masked `nn.Linear` during training: its kept weights only, its bias Parameter itself."""

    def __init__(self, linear: nn.Linear, mask: Tensor) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        w = linear.weight.detach()
        self.pattern = Pattern(mask.to(w.device))
        self.values = nn.Parameter(w.reshape(-1)[self.pattern.flat].clone())
        self.bias = linear.bias  # the same Parameter: its own mask (if any) is held by the loop as before

    def forward(self, x: Tensor) -> Tensor:
        lead = x.shape[:-1]
        y = CsrLinearFn.apply(x.reshape(-1, self.in_features), self.values, self.bias, self.pattern)
        return y if len(lead) == 1 else y.reshape(*lead, self.out_features)

    def dense_weight(self) -> Tensor:
        return self.pattern.dense(self.values.detach())

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        destination[prefix + "weight"] = self.dense_weight()
        if self.bias is not None:
            destination[prefix + "bias"] = self.bias if keep_vars else self.bias.detach()

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ) -> None:
        own: dict[str, tuple[int, ...]] = {"weight": (self.out_features, self.in_features)}
        if self.bias is not None:
            own["bias"] = (self.out_features,)
        for name, shape in own.items():
            key = prefix + name
            if key not in state_dict:
                missing_keys.append(key)
                continue
            value = state_dict[key]
            if tuple(value.shape) != shape:
                error_msgs.append(f"size mismatch for {key}: {tuple(value.shape)} in the checkpoint, {shape} here")
                continue
            with torch.no_grad():
                if name == "weight":
                    self.values.copy_(value.reshape(-1).to(self.values.device)[self.pattern.flat])
                else:
                    self.bias.copy_(value)  # type: ignore[union-attr]
        if strict:
            unexpected_keys += [k for k in state_dict if k.startswith(prefix) and k[len(prefix) :] not in own]


Chooser = Callable[[str, nn.Linear, Tensor], str]  # (weight name, layer, its mask) -> kernel name


@dataclass
class SparseSwap:
    """The Linear layers swapped for `SparseLinear` in a model, and which kernel every masked Linear weight got."""

    model: nn.Module
    kernels: dict[str, str]
    swapped: dict[str, tuple[nn.Linear, SparseLinear]] = field(default_factory=dict)

    @torch.no_grad()
    def restore(self) -> None:
        """Put the original layers back, their dense weights holding the trained kept values (pruned = 0)."""
        for name, (linear, sparse) in self.swapped.items():
            linear.weight.copy_(sparse.dense_weight())
            _set_module(self.model, name, linear)
        self.swapped.clear()


def swap_linears(model: nn.Module, mask: Mapping[str, Tensor], choose: Chooser) -> SparseSwap:
    """Swap every masked, untied Linear whose kernel `choose` names 'csr' (others stay dense, their choice kept)."""
    uses: dict[int, int] = {}
    for _, p in model.named_parameters(remove_duplicate=False):
        uses[id(p)] = uses.get(id(p), 0) + 1
    swap = SparseSwap(model, {})
    for name, module in list(model.named_modules()):
        key = f"{name}.weight"
        if not name or type(module) is not nn.Linear or key not in mask:
            continue
        if uses[id(module.weight)] > 1:  # a tied weight trains dense: one Parameter, several layers
            swap.kernels[key] = "dense"
            continue
        kernel = choose(key, module, mask[key])
        swap.kernels[key] = kernel
        if kernel == "csr":
            sparse = SparseLinear(module, mask[key])
            _set_module(model, name, sparse)
            swap.swapped[name] = (module, sparse)
    return swap


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, attr, module)
