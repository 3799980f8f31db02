"""Generated stand-ins for MNIST and CIFAR-10: their shapes, classes and normalisation, made in memory.

Why: a smoke of a paper preset (`--smoke`) runs its model and protocol on data of the right shape without the
real files or a network. Class-dependent bright stripes on noise, so a model learns something; fixed seeds.
Never a substitute for the real sets' scores.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import numpy as np
import torch

from domains.vision.config import VisionConfig
from domains.vision.data import DATASETS, Raw

N_TRAIN, N_TEST = 6000, 1000


@lru_cache(maxsize=2)
def _images(channels: int, side: int, seed: int) -> Raw:
    rng = np.random.default_rng(seed)
    out = []
    for n in (N_TRAIN, N_TEST):
        y = rng.integers(0, 10, n)
        x = rng.integers(0, 80, (n, channels, side, side)).astype(np.uint8)
        for i, label in enumerate(y):
            row = 2 + (side - 6) * int(label) // 9
            x[i, int(label) % channels, row : row + 3, :] = 240
        out += [torch.from_numpy(x), torch.from_numpy(y).long()]
    return Raw(*out)


def _loader(channels: int, side: int, seed: int):
    def load(c: VisionConfig) -> Raw:
        return _images(channels, side, seed)

    return load


GENERATED = (("mnist-generated", "mnist", (1, 28), 11), ("cifar10-generated", "cifar10", (3, 32), 12))

for name, real, (channels, side), seed in GENERATED:
    spec = DATASETS.get(real)
    DATASETS.add(
        name,
        replace(
            spec,
            load=_loader(channels, side, seed),
            val_size=1000,
            files=(),
            layout="",
            help=f"{real}'s shape, classes and normalisation, generated in memory ({N_TRAIN:,} train, "
            f"{N_TEST:,} test): for smoke runs, never a score",
        ),
    )
