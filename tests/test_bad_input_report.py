"""benchmarks.report on foreign run folders: every string from them is escaped, and they are never written."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
from bad_input_tools import EVIL, foreign_run, snapshot

from benchmarks import report


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def run(capsys, *args) -> tuple[int, str]:
    try:
        code = report.main([str(a) for a in args])
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


def test_hostile_strings_from_a_run_folder_appear_only_escaped(tmp_path, capsys):
    src = foreign_run(tmp_path / "src", domain=EVIL, task=EVIL, metric=EVIL, control=EVIL)
    before = snapshot(src)
    out = tmp_path / "page.html"
    code, err = run(capsys, src, "--out", out)
    assert code == 0, err
    text = out.read_text()
    assert "<script" not in text.lower() and "alert(1)</" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    page = Tags()
    page.feed(text)
    assert "script" not in page.tags
    shown = "".join(page.text)
    assert shown.count(EVIL) >= 8  # domain, task, metric, kind, preset, commit, config keys and values: as text
    assert snapshot(src) == before


def test_the_default_page_is_not_written_into_the_run_folder(tmp_path, capsys, monkeypatch):
    src = foreign_run(tmp_path / "src")
    before = snapshot(src)
    monkeypatch.chdir(tmp_path)
    assert run(capsys, src)[0] == 0 and (tmp_path / "report.html").is_file()
    assert snapshot(src) == before


def _damage_run_json_type(src):
    (src / "run.json").write_text(json.dumps([1, 2]))
    return "run.json"


def _damage_results(src):
    (src / "results.csv").write_bytes(b"\xff\xfe\x00garbage")
    return "results.csv"


def _missing_results(src):
    (src / "results.csv").unlink()
    return "results.csv"


def _truncated_run_json(src):
    (src / "run.json").write_text((src / "run.json").read_text()[:40])
    return "run.json"


def _run_json_field_of_the_wrong_type(src):
    meta = json.loads((src / "run.json").read_text())
    (src / "run.json").write_text(json.dumps({**meta, "versions": "torch 2"}))
    return "run.json"


def _density_not_a_number(src):
    (src / "results.csv").write_text((src / "results.csv").read_text().replace(",0.8,", ",eighty,", 1))
    return "results.csv"


DAMAGE = {
    "run.json of the wrong JSON type": _damage_run_json_type,
    "results.csv not text": _damage_results,
    "results.csv missing": _missing_results,
    "run.json truncated": _truncated_run_json,
    "run.json field of the wrong type": _run_json_field_of_the_wrong_type,
    "density not a number": _density_not_a_number,
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_a_damaged_source_is_one_line_naming_the_file_and_left_as_it_was(tmp_path, capsys, damage):
    src = foreign_run(tmp_path / "src")
    name = DAMAGE[damage](src)
    before = snapshot(src)
    out = tmp_path / "page.html"
    code, err = run(capsys, src, "--out", out)
    assert code == 2 and len(err.strip().splitlines()) == 1 and name in err, err
    assert not out.exists() and snapshot(src) == before


def test_a_locked_source_in_progress_is_read_and_its_lock_left_alone(tmp_path, capsys):
    src = foreign_run(tmp_path / "src")
    (src / ".lock").write_text("")
    (src / ".lock.owner").write_text(json.dumps({"pid": 1, "host": "elsewhere", "since": "now"}))
    before = snapshot(src)
    assert run(capsys, src, "--out", tmp_path / "page.html")[0] == 0
    assert snapshot(src) == before


@pytest.mark.parametrize("where", ["inside", "file-parent"])
def test_an_out_inside_a_run_folder_or_under_a_file_is_refused(tmp_path, capsys, where):
    src = foreign_run(tmp_path / "src")
    before = snapshot(src)
    out = src / "report.html" if where == "inside" else src / "results.csv" / "x.html"
    code, err = run(capsys, src, "--out", out)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--out" in err, err
    assert snapshot(src) == before
