"""benchmarks.compare reads run folders and never changes them: damage is one line naming the file, exit 2,
and every folder it read is byte-identical afterwards (lock files included)."""

from __future__ import annotations

import json

import pytest
from bad_input_tools import foreign_run, snapshot
from test_bad_input_report import DAMAGE

from benchmarks import compare


def run(capsys, *args) -> tuple[int, str, str]:
    try:
        code = compare.main([str(a) for a in args])
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
@pytest.mark.parametrize("side", ["baseline", "later"])
def test_a_damaged_side_is_one_line_naming_the_file_and_both_are_left_as_they_were(tmp_path, capsys, damage, side):
    a, b = foreign_run(tmp_path / "a"), foreign_run(tmp_path / "b")
    name = DAMAGE[damage](a if side == "baseline" else b)
    before = snapshot(tmp_path)
    code, out, err = run(capsys, a, b)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and name in err, err
    assert snapshot(tmp_path) == before


def test_sound_and_locked_folders_compare_and_stay_byte_identical(tmp_path, capsys):
    a, b = foreign_run(tmp_path / "a"), foreign_run(tmp_path / "b")
    (b / ".lock").write_text("")
    (b / ".lock.owner").write_text(json.dumps({"pid": 1, "host": "elsewhere", "since": "now"}))
    before = snapshot(tmp_path)
    code, _, err = run(capsys, a, b, "--format", "json")
    assert code == 0, err
    assert snapshot(tmp_path) == before
