"""Which kernel trains a masked Linear weight: measured on this machine, never assumed from the density alone.

`--sparse auto` times the layer's forward, backward and update on random data of its shape at its mask's
density, masked dense against CSR (lth_core/sparse_kernels.py), interleaved, and keeps CSR where its fastest
step beats the dense one's (minima: on a shared machine noise only ever adds time). Calibrations are cached per
process by `Key` (shape, density, batch, threads, device, and whether the input arrives transposed: it does
after a CSR layer, which saves the CSR layer a copy), so the jobs of one IMP level, which share every layer's
density, pay once (tens of ms per layer). Layers are chosen in module order, taken as the forward order (true
of the MLPs and conv nets here); where it is not, only the estimate of a copy is off, never a result.
`never` keeps every layer dense (the default: auto's choice depends on the machine's timing, and the CSR path
equals the masked dense one within float tolerance, not bitwise); `always` takes CSR wherever it can.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lth_core.sparse_kernels import SparseLinear

MODES = ("never", "auto", "always")
REPS = 11  # timed steps of each kernel after a warm-up: ~10-40 ms a layer


@dataclass(frozen=True)
class Key:
    """What a calibration depends on; a layer with the same key reuses it."""

    out: int
    inn: int
    density: float  # kept / total, rounded to 1e-4
    batch: int
    threads: int
    device: str
    bias: bool
    transposed_input: bool = False  # the previous layer is a CSR one: its output is a transposed view

    @classmethod
    def of(cls, layer: nn.Linear, mask: Tensor, batch: int, transposed_input: bool = False) -> "Key":
        density = round(float(mask.to(torch.bool).sum()) / mask.numel(), 4)
        dev, threads = str(layer.weight.device), torch.get_num_threads()
        return cls(
            layer.out_features,
            layer.in_features,
            density,
            batch,
            threads,
            dev,
            layer.bias is not None,
            transposed_input,
        )


@dataclass(frozen=True)
class Calibration:
    kernel: str  # "dense" or "csr"
    ratio: float  # csr step time / dense step time, fastest of each
    dense_s: float  # fastest step times
    csr_s: float


CACHE: dict[Key, Calibration] = {}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def calibrate(key: Key, reps: int = REPS) -> Calibration:
    """Time one training step of the layer both ways (data and pattern from a fixed generator, global RNG
    untouched); the update is an SGD step on what each kernel trains (dense: the masked gradient)."""
    device = torch.device(key.device)
    g = torch.Generator().manual_seed(0)
    mask = (torch.rand(key.out, key.inn, generator=g) < key.density).to(device)
    with torch.random.fork_rng(devices=[]):  # nn.Linear's init draws from the global RNG: left as it was
        dense = nn.Linear(key.inn, key.out, bias=key.bias).to(device)
    with torch.no_grad():
        dense.weight.copy_(torch.randn(key.out, key.inn, generator=g).to(device) * mask)
    sparse = SparseLinear(dense, mask)
    x = torch.randn(key.batch, key.inn, generator=g).to(device)
    if key.transposed_input:
        x = x.t().contiguous().t()
    x.requires_grad_()
    gy = torch.randn(key.batch, key.out, generator=g).to(device)
    m = mask.to(dense.weight.dtype)

    def dense_step() -> None:
        dense.weight.grad = x.grad = None
        F.linear(x, dense.weight, dense.bias).backward(gy)
        with torch.no_grad():
            assert dense.weight.grad is not None
            dense.weight.grad.mul_(m)
            dense.weight.add_(dense.weight.grad, alpha=-1e-6)

    def csr_step() -> None:
        sparse.values.grad = x.grad = None
        sparse(x).backward(gy)
        with torch.no_grad():
            assert sparse.values.grad is not None
            sparse.values.add_(sparse.values.grad, alpha=-1e-6)

    def timed(fn) -> float:
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        return time.perf_counter() - t

    dense_step()  # warm-up
    csr_step()
    dense_s, csr_s = math.inf, math.inf
    for i in range(reps):  # interleaved, alternating which goes first, so slow spells hit both
        if i % 2:
            csr_s, dense_s = min(csr_s, timed(csr_step)), min(dense_s, timed(dense_step))
        else:
            dense_s, csr_s = min(dense_s, timed(dense_step)), min(csr_s, timed(csr_step))
    ratio = csr_s / dense_s
    return Calibration("csr" if ratio < 1.0 else "dense", ratio, dense_s, csr_s)


def calibration(key: Key) -> Calibration:
    """The cached calibration of `key`, measured on first use."""
    if key not in CACHE:
        CACHE[key] = calibrate(key)
    return CACHE[key]


@dataclass
class KernelChoice:
    """The per-layer chooser `swap_linears` calls, keeping what `auto` measured for the job's record."""

    mode: str
    batch: int
    calibrations: dict[str, Calibration] = field(default_factory=dict)
    _previous: str = "dense"  # the kernel of the layer chosen last (taken as this one's input)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"sparse mode {self.mode!r} is not one of {', '.join(MODES)}")

    def __call__(self, name: str, layer: nn.Linear, mask: Tensor) -> str:
        if self.mode == "never":
            return "dense"
        if self.mode == "always":
            return "csr"
        c = self.calibrations[name] = calibration(Key.of(layer, mask, self.batch, self._previous == "csr"))
        self._previous = c.kernel
        return c.kernel

    def describe(self, kernels: dict[str, str]) -> str:
        """'name=kernel' per masked Linear weight, with auto's measured csr/dense time ratio: a row's column."""
        parts = []
        for name, kernel in kernels.items():
            c = self.calibrations.get(name)
            parts.append(f"{name}={kernel}" + (f"({c.ratio:.2f})" if c is not None else ""))
        return ",".join(parts)
