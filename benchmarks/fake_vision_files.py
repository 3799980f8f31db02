"""Synthetic MNIST / Fashion-MNIST / CIFAR files in torchvision's on-disk layout: offline tests and speed runs."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np


def _idx(path: Path, array: np.ndarray) -> None:
    """Write an IDX (ubyte) file as LeCun distributes MNIST: magic, dims (big-endian int32), raw bytes."""
    magic = 0x0800 | array.ndim  # 0x08 = unsigned byte
    with open(path, "wb") as f:
        f.write(struct.pack(">I", magic))
        for d in array.shape:
            f.write(struct.pack(">I", d))
        f.write(array.astype(np.uint8).tobytes())


def write_mnist(root: Path, folder: str = "MNIST", n_train: int = 600, n_test: int = 200, seed: int = 0) -> Path:
    """Class-dependent blobs so a model can learn something; every image is distinct."""
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        y = rng.integers(0, 10, n).astype(np.uint8)
        x = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(y):
            x[i, 2 + 2 * label : 6 + 2 * label, 4:24] = 250
        _idx(raw / f"{prefix}-images-idx3-ubyte", x)
        _idx(raw / f"{prefix}-labels-idx1-ubyte", y)
    return root


def write_cifar10(root: Path, per_batch: int = 120, n_test: int = 200, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)

    def batch(n: int) -> dict:
        y = rng.integers(0, 10, n)
        x = rng.integers(0, 80, (n, 3, 32, 32)).astype(np.uint8)
        for i, label in enumerate(y):
            x[i, label % 3, 3 * label : 3 * label + 3, :] = 240
        return {"data": x.reshape(n, -1), "labels": [int(v) for v in y]}

    for i in range(1, 6):
        with open(folder / f"data_batch_{i}", "wb") as f:
            pickle.dump(batch(per_batch), f)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump(batch(n_test), f)
    return root


def write_cifar100(root: Path, n_train: int = 300, n_test: int = 100, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", n_train), ("test", n_test)):
        with open(folder / name, "wb") as f:
            pickle.dump(
                {
                    "data": rng.integers(0, 256, (n, 3072)).astype(np.uint8),
                    "fine_labels": [int(v) for v in rng.integers(0, 100, n)],
                },
                f,
            )
    return root


def write_digits_as_mnist(root: Path, folder: str = "MNIST") -> Path:
    """scikit-learn's real 8x8 handwritten digits in MNIST's layout: each image upscaled (bilinear) to 20x20 and
    centred in 28x28, as MNIST boxes its digits; its fixed 20% test split (the `digits` dataset's) as t10k."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0).unsqueeze(1)
    big = F.pad(F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False), (4, 4, 4, 4))
    images = (big.squeeze(1).clamp(0, 1) * 255).round().numpy().astype(np.uint8)
    order = torch.randperm(len(d.target), generator=torch.Generator().manual_seed(1)).numpy()
    n_test = len(order) // 5
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, idx in (("train", np.sort(order[n_test:])), ("t10k", np.sort(order[:n_test]))):
        _idx(raw / f"{prefix}-images-idx3-ubyte", images[idx])
        _idx(raw / f"{prefix}-labels-idx1-ubyte", d.target[idx].astype(np.uint8))
    return root
