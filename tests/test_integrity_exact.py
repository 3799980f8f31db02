"""The run folder check by exact verdicts (lth_core/integrity.py), in process: which damaged file is moved to
`corrupt/` and with which note, which readable file is left alone, and the `.*.tmp` leftovers of a kill removed in
each of the three folders (the kill and corruption tests that pin this run whole CLI commands, too slow here)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from lth_core.integrity import PNG_HEAD, PNG_TAIL, _csv, _png, _text
from lth_core.store import RunStore

META = {"config_hash": "b" * 64, "seed": 0}
ROW = {"kind": "ticket", "level": 1, "trial": 0, "status": "ok"}


class Pickled:
    """Not a tensor: a state file holding it must not load with weights_only."""


def notes_of(run: Path) -> list[str]:
    return json.loads((run / "run.json").read_text())["recovered"]


def test_text_verdicts(tmp_path):
    f = tmp_path / "summary.md"
    f.write_bytes(b"# ok\n")
    assert _text(f) is None
    f.write_bytes(b"# cut")
    assert _text(f) == "cut short (no final newline)"
    f.write_bytes(b"\xff\xfe x\n")
    assert _text(f) == "not UTF-8 text"
    f.write_bytes("é\n".encode())  # UTF-8, not ASCII
    assert _text(f) is None


def test_csv_verdicts(tmp_path):
    f = tmp_path / "results.csv"
    f.write_text("a,b\n1,2\n")
    assert _csv(f) is None
    f.write_text("\n")  # blank: nothing to parse, nothing wrong
    assert _csv(f) is None
    f.write_text("a,b\n1,2")
    assert _csv(f) == "cut short (no final newline)"
    f.write_bytes(b"a,b\n\xff,2\n")
    assert _csv(f) == "not UTF-8 text"
    f.write_text("a,b\n1,2\n1,2,3\n")
    assert _csv(f) == "unparseable CSV: Error tokenizing data. C error: Expected 2 fields in line 3, saw 3"
    f.write_text('a,b\n"1,2\n')  # an unclosed quote: pandas' message spans lines, the first is kept
    why = _csv(f)
    assert why is not None and why.startswith("unparseable CSV: ") and "\n" not in why


def test_png_verdicts(tmp_path):
    f = tmp_path / "figure1.png"
    for data, ok in [
        (PNG_HEAD + b"body" + PNG_TAIL, True),
        (PNG_HEAD + b"body", False),
        (b"body" + PNG_TAIL, False),
        (b"", False),
    ]:
        f.write_bytes(data)
        assert _png(f) == (None if ok else "not a complete PNG"), data
    assert PNG_HEAD == b"\x89PNG\r\n\x1a\n" and PNG_TAIL == b"IEND\xaeB`\x82"


def test_leftover_temp_files_are_removed_in_each_folder_and_noted(tmp_path):
    run = tmp_path / "run"
    (run / "jobs").mkdir(parents=True)
    (run / "state").mkdir()
    for rel in (".run.json.a1.tmp", "jobs/.L00-dense-t0.json.b2.tmp", "state/.init-t0.pt.c3.tmp"):
        (run / rel).write_text("half")
    (run / "state" / "keep.tmp").write_text("not hidden: not ours")
    store = RunStore(run).open(META)
    try:
        assert sorted(str(p.relative_to(run)) for p in run.rglob("*.tmp")) == ["state/keep.tmp"]
        assert (
            notes_of(run)
            == store.recovered
            == [
                ".run.json.a1.tmp (a write cut short by a kill) removed",
                "jobs/.L00-dense-t0.json.b2.tmp (a write cut short by a kill) removed",
                "state/.init-t0.pt.c3.tmp (a write cut short by a kill) removed",
            ]
        )  # sorted by path
    finally:
        store.close()


def test_each_damaged_file_is_moved_aside_with_why_and_readable_ones_stay(tmp_path):
    run = tmp_path / "run"
    store = RunStore(run).open(META)
    store.write_record("L01-ticket-t0", {"row": ROW})
    (run / "jobs" / "L02-ticket-t0.json").write_text('{"kind": ')
    store.save_state("init-t0", {"w": torch.ones(2)})
    (run / "state" / "rewind-t0.pt").write_bytes(b"garbage")
    torch.save({"w": Pickled()}, run / "state" / "mask-L01-t0.pt")
    (run / "results.csv").write_text("a,b\n1,2\n1,2,3\n")
    (run / "summary.csv").write_text("a,b\n1,2\n")
    (run / "summary.md").write_text("# cut")
    (run / "figure1.png").write_bytes(PNG_HEAD)
    store.close()
    store = RunStore(run).open(META)
    try:
        left = sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file() and "corrupt" not in p.parts)
        assert left == [
            ".lock",
            ".lock.owner",
            "jobs/L01-ticket-t0.json",
            "run.json",
            "state/init-t0.pt",
            "summary.csv",
        ]
        notes = [n.split(" -> corrupt/")[0] for n in notes_of(run)]
        assert notes == [
            "jobs/L02-ticket-t0.json (unreadable JSON: Expecting value: line 1 column 10 (char 9))",
            "state/mask-L01-t0.pt (unreadable tensors: UnpicklingError)",
            "state/rewind-t0.pt (unreadable tensors: RuntimeError)",
            "results.csv (unparseable CSV: Error tokenizing data. C error: Expected 2 fields in line 3, saw 3; "
            "rebuilt from the job records)",
            "summary.md (cut short (no final newline); rebuilt from the job records)",
            "figure1.png (not a complete PNG; rebuilt from the job records)",
        ]
        assert sorted(p.name.rsplit(".", 1)[0] for p in (run / "corrupt").iterdir()) == [
            "L02-ticket-t0.json",
            "figure1.png",
            "mask-L01-t0.pt",
            "results.csv",
            "rewind-t0.pt",
            "summary.md",
        ]
    finally:
        store.close()


def test_an_empty_state_file_and_a_bad_summary_csv_are_moved_aside(tmp_path):
    run = tmp_path / "run"
    store = RunStore(run).open(META)
    (run / "state" / "final-L01-t0.pt").write_bytes(b"")
    (run / "summary.csv").write_bytes(b"\xff\n")
    store.close()
    store = RunStore(run).open(META)
    try:
        assert [n.split(" -> ")[0] for n in notes_of(run)] == [
            "state/final-L01-t0.pt (unreadable tensors: RuntimeError)",
            "summary.csv (not UTF-8 text; rebuilt from the job records)",
        ]
    finally:
        store.close()


def test_a_folder_without_derived_files_or_state_is_left_as_it_is(tmp_path):
    run = tmp_path / "run"
    RunStore(run).open(META).close()
    store = RunStore(run).open(META)
    try:
        assert notes_of(run) == [] and not (run / "corrupt").exists()
    finally:
        store.close()
