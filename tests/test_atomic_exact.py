"""Atomic writes by exact behaviour (lth_core/atomic.py): a write cut short leaves the old file and no temp file,
the temp file is a hidden `.NAME.*.tmp` beside the target (what the integrity check removes after a kill), the
result is readable by other users (0644), and the JSON text is the sorted, indented form every reader diffs."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import torch

from lth_core.atomic import atomic_torch_save, atomic_write, atomic_write_json, atomic_write_text


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / "rec.json"
    target.write_text("old\n")

    def half(p: Path) -> None:
        p.write_text("new, half writ")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half)
    assert target.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["rec.json"]


def test_an_interrupt_midway_also_leaves_no_temp_file(tmp_path):
    """KeyboardInterrupt is a BaseException, not an Exception: a Ctrl-C mid-write must clean up too."""

    def interrupted(p: Path) -> None:
        p.write_text("x")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "a.txt", interrupted)
    assert list(tmp_path.iterdir()) == []


def test_a_write_that_removed_its_temp_file_itself_still_raises_its_own_error(tmp_path):
    def gone(p: Path) -> None:
        p.unlink()
        raise ValueError("mine")

    with pytest.raises(ValueError, match="mine"):
        atomic_write(tmp_path / "a.txt", gone)
    assert list(tmp_path.iterdir()) == []


def test_the_temp_file_is_a_hidden_sibling_named_for_the_target(tmp_path):
    seen: list[Path] = []

    def spy(p: Path) -> None:
        seen.append(p)
        assert isinstance(p, Path) and p.is_file()
        p.write_text("new\n")

    atomic_write(tmp_path / "deep" / "er" / "summary.md", spy)  # missing parents are created
    (tmp,) = seen
    assert tmp.parent == tmp_path / "deep" / "er"
    assert tmp.name.startswith(".summary.md.") and tmp.name.endswith(".tmp") and len(tmp.name) > len(".summary.md..tmp")
    assert not tmp.exists() and (tmp_path / "deep" / "er" / "summary.md").read_text() == "new\n"


def test_the_file_is_readable_by_other_users_and_an_existing_folder_is_fine(tmp_path, monkeypatch):
    old = os.umask(0o077)  # even under a strict umask: chmod is explicit
    try:
        atomic_write_text(tmp_path / "a.txt", "one\n")
        atomic_write_text(tmp_path / "a.txt", "two\n")  # the folder exists now: no error
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
    assert (tmp_path / "a.txt").read_text() == "two\n"


def test_the_string_path_is_accepted(tmp_path):
    atomic_write_text(str(tmp_path / "s.txt"), "s")  # type: ignore[arg-type]
    assert (tmp_path / "s.txt").read_text() == "s"


def test_json_is_sorted_indented_with_a_final_newline_and_paths_as_text(tmp_path):
    atomic_write_json(tmp_path / "r.json", {"b": 1, "a": {"d": Path("x/y"), "c": [1]}})
    assert (tmp_path / "r.json").read_text() == (
        '{\n  "a": {\n    "c": [\n      1\n    ],\n    "d": "x/y"\n  },\n  "b": 1\n}\n'
    )
    assert json.loads((tmp_path / "r.json").read_text())["a"]["d"] == "x/y"


def test_torch_save_round_trips_tensors(tmp_path):
    t = {"w": torch.arange(6.0).reshape(2, 3)}
    atomic_torch_save(t, tmp_path / "s" / "w.pt")
    assert torch.equal(torch.load(tmp_path / "s" / "w.pt", weights_only=True)["w"], t["w"])
    assert [p.name for p in (tmp_path / "s").iterdir()] == ["w.pt"]
