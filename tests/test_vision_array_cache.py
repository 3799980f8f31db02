"""Generated datasets cached on disk: the same arrays as generating them, made once, and a damaged or foreign
file made again rather than trusted."""

from __future__ import annotations

import numpy as np
import pytest

from domains.vision import data
from domains.vision.array_cache import cache_path, cached_arrays


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LTH_BENCH_CACHE", str(tmp_path))
    return tmp_path


def _maker(calls: list[int]):
    def make():
        calls.append(1)
        rng = np.random.default_rng(3)
        return rng.normal(size=(5, 4)), rng.integers(0, 9, 5)

    return make


def test_made_once_then_read_back_equal(cache):
    calls: list[int] = []
    first = cached_arrays("toy", ("v1", 5), 2, _maker(calls))
    again = cached_arrays("toy", ("v1", 5), 2, _maker(calls))
    assert calls == [1] and cache_path("toy", ("v1", 5)).is_file()
    for a, b in zip(first, again):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    cached_arrays("toy", ("v2", 5), 2, _maker(calls))  # another key (a new package version): made again
    assert calls == [1, 1]


@pytest.mark.parametrize("damage", ["truncated", "pickled", "other arrays"])
def test_a_damaged_or_foreign_file_is_made_again(cache, damage):
    calls: list[int] = []
    good = cached_arrays("toy", ("v1", 5), 2, _maker(calls))
    path = cache_path("toy", ("v1", 5))
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "pickled":
        with open(path, "wb") as f:
            np.savez(f, a0=np.array([{"x": 1}], dtype=object), a1=np.zeros(2))
    else:
        with open(path, "wb") as f:
            np.savez(f, a0=np.zeros(2))
    again = cached_arrays("toy", ("v1", 5), 2, _maker(calls))
    assert calls == [1, 1]
    assert all(np.array_equal(a, b) for a, b in zip(good, again))
    assert all(np.array_equal(a, b) for a, b in zip(good, cached_arrays("toy", ("v1", 5), 2, _maker(calls))))
    assert calls == [1, 1]  # the file was replaced by a good one


def test_mnist1d_from_the_cache_is_the_generators(cache):
    pytest.importorskip("mnist1d")
    data._mnist1d_arrays.cache_clear()
    try:
        cached = data._mnist1d_arrays(400)
        data._mnist1d_arrays.cache_clear()
        read = data._mnist1d_arrays(400)
    finally:
        data._mnist1d_arrays.cache_clear()
    made = data._make_mnist1d(400)
    assert len(list(cache.glob("vision/mnist1d-*.npz"))) == 1
    for a, b, c in zip(cached, read, made):
        assert a.dtype == b.dtype == c.dtype and np.array_equal(a, c) and np.array_equal(b, c)
