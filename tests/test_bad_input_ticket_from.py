"""`--ticket-from` reads another run's folder and never changes it: damage there is one line naming the file,
exit 2, nothing written under --out, and the source byte-identical (every path, lock files included)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from bad_input_tools import snapshot

from benchmarks.run import main

TABLE = {"toy": "toy_adapter:ToyAdapter"}
SMALL = ["--domain", "toy", "--levels", "2", "--trials", "1", "--noprogress"]


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("src")
    assert main([*SMALL, "--out", str(out)], TABLE) == 0
    return next(out.iterdir())


def fresh(source: Path, tmp_path: Path) -> Path:
    import shutil

    dst = tmp_path / source.name
    shutil.copytree(source, dst)
    return dst


def transfer(capsys, src: Path, out: Path, *extra: str) -> tuple[int, str]:
    try:
        code = main([*SMALL, "--ticket-from", str(src), "--out", str(out), *extra], TABLE)
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err.strip()


def _truncate(src):
    f = src / "state" / "mask-L02-t0.pt"
    f.write_bytes(f.read_bytes()[:50])
    return "mask-L02-t0.pt"


def _garbage(src):
    (src / "state" / "rewind-t0.pt").write_bytes(b"not a zip")
    return "rewind-t0.pt"


def _missing(src):
    (src / "state" / "init-t0.pt").unlink()
    return "init-t0.pt"


def _wrong_shapes(src):
    torch.save({"net.0.weight": torch.zeros(3, 3)}, src / "state" / "rewind-t0.pt")
    return "rewind-t0.pt"


def _code_in_a_pt(src):
    torch.save({"w": Path("/")}, src / "state" / "mask-L01-t0.pt")  # not weights_only-loadable
    return "mask-L01-t0.pt"


def _run_json_a_list(src):
    (src / "run.json").write_text("[]")
    return "run.json"


def _run_json_torn(src):
    (src / "run.json").write_text('{"config_hash": ')
    return "run.json"


def _run_json_without_imp(src):
    meta = json.loads((src / "run.json").read_text())
    del meta["imp"]
    (src / "run.json").write_text(json.dumps(meta))
    return "run.json"


def _locked(src):
    (src / ".lock").write_text("")  # a source still running: its lock is neither taken nor broken
    (src / ".lock.owner").write_text(json.dumps({"pid": 1, "host": "elsewhere", "since": "now"}))
    return _truncate(src)


DAMAGE = {
    "truncated .pt": _truncate,
    "garbage .pt": _garbage,
    "missing .pt": _missing,
    "tensors of another shape": _wrong_shapes,
    "a pickle weights_only refuses": _code_in_a_pt,
    "run.json a list": _run_json_a_list,
    "run.json torn": _run_json_torn,
    "run.json without imp": _run_json_without_imp,
    "locked and truncated": _locked,
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_damage_in_the_source_is_one_line_and_the_source_is_untouched(source, tmp_path, capsys, damage):
    src = fresh(source, tmp_path)
    name = DAMAGE[damage](src)
    before = snapshot(src)
    code, err = transfer(capsys, src, tmp_path / "out")
    assert code == 2 and len(err.splitlines()) == 1 and name in err, err
    assert not (tmp_path / "out").exists()
    assert snapshot(src) == before and not (src / "corrupt").exists()


def test_another_rewind_step_is_refused_with_the_flag_that_matches(source, tmp_path, capsys):
    src = fresh(source, tmp_path)
    before = snapshot(src)
    code, err = transfer(capsys, src, tmp_path / "out", "--rewind-step", "5")
    assert code == 2 and "--rewind-step 0" in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists() and snapshot(src) == before


def test_a_damaged_job_record_in_the_source_is_not_read_and_not_moved(source, tmp_path, capsys):
    """The tickets come from state/ (a mask of level L exists only after level L-1 trained): records are not read."""
    src = fresh(source, tmp_path)
    rec = sorted((src / "jobs").glob("*.json"))[0]
    rec.write_text("[1, 2]")
    before = snapshot(src)
    code, err = transfer(capsys, src, tmp_path / "out")
    assert code == 0, err
    assert snapshot(src) == before


def test_a_sound_source_is_left_byte_identical_by_a_transfer(source, tmp_path, capsys):
    src = fresh(source, tmp_path)
    before = snapshot(src)
    assert transfer(capsys, src, tmp_path / "out")[0] == 0
    assert snapshot(src) == before
