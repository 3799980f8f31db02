"""Boolean masks over named tensors: exact density accounting, nesting checks, plain-tensor persistence."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

import torch
from torch import Tensor


@dataclass(frozen=True)
class Mask:
    """One boolean tensor per prunable tensor name (True = kept)."""

    tensors: Mapping[str, Tensor]

    @classmethod
    def ones_like(cls, weights: Mapping[str, Tensor]) -> "Mask":
        return cls({n: torch.ones_like(w, dtype=torch.bool) for n, w in weights.items()})

    def __getitem__(self, name: str) -> Tensor:
        return self.tensors[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.tensors)

    def __len__(self) -> int:
        return len(self.tensors)

    def names(self) -> list[str]:
        return list(self.tensors)

    def kept(self) -> dict[str, int]:
        return {n: int(m.sum()) for n, m in self.tensors.items()}

    def sizes(self) -> dict[str, int]:
        return {n: m.numel() for n, m in self.tensors.items()}

    @property
    def num_kept(self) -> int:
        return sum(self.kept().values())

    @property
    def num_total(self) -> int:
        return sum(self.sizes().values())

    @property
    def density(self) -> float:
        """Fraction of prunable entries kept, over all masked tensors together."""
        return self.num_kept / max(self.num_total, 1)

    def is_subset_of(self, other: "Mask") -> bool:
        """True when every entry kept here is kept in `other` (later IMP levels nest in earlier ones)."""
        if set(self.tensors) != set(other.tensors):
            return False
        return all(bool((self[n] & ~other[n]).sum() == 0) for n in self.tensors)

    def to_state(self) -> dict[str, Tensor]:
        return {n: m.detach().cpu().clone() for n, m in self.tensors.items()}

    def save(self, path: Path) -> None:
        from lth_core.atomic import atomic_torch_save

        atomic_torch_save(self.to_state(), path)

    @classmethod
    def load(cls, path: Path) -> "Mask":
        state = torch.load(path, map_location="cpu", weights_only=True)
        return cls({n: t.bool() for n, t in state.items()})
