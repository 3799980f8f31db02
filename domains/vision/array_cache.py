"""Generated datasets kept on disk between processes: MNIST-1D's generator (the mnist1d package over scipy)
costs seconds in every process that runs it (about a third of a small run's start-up), reading its arrays
back costs milliseconds, and they are the same arrays bit for bit.

The file is named by a hash of what determines its contents (the generator's name and version and its
arguments), written atomically, and read with pickles refused; an unreadable or unexpected file is generated
again and replaced. `$LTH_BENCH_CACHE` (else `$XDG_CACHE_HOME`/lth-bench, else ~/.cache/lth-bench) is where.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from lth_core.atomic import atomic_write

FORMAT = 1  # bump when the file's layout changes


def cache_root() -> Path:
    """The folder of the lth-bench caches (the NLP domain's prepared data lives beside it)."""
    if os.environ.get("LTH_BENCH_CACHE"):
        return Path(os.environ["LTH_BENCH_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lth-bench"


def cache_path(name: str, key: tuple) -> Path:
    digest = hashlib.sha256(repr((FORMAT, name, key)).encode()).hexdigest()[:20]
    return cache_root() / "vision" / f"{name}-{digest}.npz"


def _read(path: Path, count: int) -> tuple[np.ndarray, ...] | None:
    """The file's arrays a0..a{count-1}, or None for anything else (unreadable, truncated, pickled, foreign)."""
    try:
        f = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    if not isinstance(f, np.lib.npyio.NpzFile):  # a bare .npy array
        return None
    with f:
        if sorted(f.files) != sorted(f"a{i}" for i in range(count)):
            return None
        try:
            return tuple(f[f"a{i}"] for i in range(count))  # each member's CRC is checked as it is read
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            return None


def cached_arrays(name: str, key: tuple, count: int, make: Callable[[], tuple[np.ndarray, ...]]) -> tuple:
    """`make()`'s `count` arrays, from the cache file of (name, key) where it holds them, else made and stored."""
    path = cache_path(name, key)
    found = _read(path, count) if path.is_file() else None
    if found is not None:
        return found
    arrays = make()
    if len(arrays) != count:
        raise ValueError(f"{name}: made {len(arrays)} arrays, expected {count}")

    def write(p: Path) -> None:
        with open(p, "wb") as fh:
            np.savez(fh, **{f"a{i}": a for i, a in enumerate(arrays)})

    try:
        atomic_write(path, write)
    except OSError:  # a read-only or full home: generate in every process, as before
        pass
    return arrays
