"""benchmarks.report's instability section: an analysis folder among the sources (alone, or under a folder of
runs beside an IMP run) gets its barrier table, its two plots and its settings; the folders are only read."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pandas as pd
import pytest
from test_report import PNG, Page

from benchmarks import instability, report
from benchmarks.run_folders import find_runs

TABLE = {"toy": "toy_adapter:ToyAdapter"}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """A results folder as the tools leave it: an IMP run (found on the fly) and an analysis of its tickets."""
    out = tmp_path_factory.mktemp("results")
    args = ["--domain", "toy", "--levels", "0,2", "--rewind-steps", "0,10", "--alphas", "4", "--out", str(out)]
    assert instability.main(args, TABLE) == 0
    return out


def digest(folder: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def parsed(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text())
    return page


def test_a_folder_of_runs_reports_the_run_and_the_analysis(results, tmp_path):
    before = digest(results)
    assert report.main([str(results), "--out", str(tmp_path / "r.html")]) == 0
    assert digest(results) == before
    page = parsed(tmp_path / "r.html")
    assert "Instability (linear mode connectivity)" in page.headings
    assert any("Barrier" in h for h in page.headings) and any("Along the path" in h for h in page.headings)
    assert any(h.startswith("toy") for h in page.headings)  # the IMP run's own section is still there
    assert all(base64.b64decode(src.split(",", 1)[1]).startswith(PNG) for src in page.images)
    (folder,) = results.glob("instability-toy-*")
    rows = pd.read_csv(folder / "instability.csv")
    text = " ".join(page.text)
    for b in rows["barrier"]:
        assert f"{b:.4g}" in text  # every barrier of instability.csv is on the page


def test_an_analysis_folder_alone_is_a_report(results, tmp_path):
    (folder,) = results.glob("instability-toy-*")
    assert find_runs(folder) == []  # not an IMP run: no results.csv asked of it
    assert report.main([str(folder), "--out", str(tmp_path / "a.html")]) == 0
    page = parsed(tmp_path / "a.html")
    assert "Overview" not in page.headings and "Instability (linear mode connectivity)" in page.headings
    assert len(page.images) == 2  # barrier vs k, and the path


def test_out_inside_an_analysis_folder_is_refused(results, capsys):
    (folder,) = results.glob("instability-toy-*")
    with pytest.raises(SystemExit) as e:
        report.main([str(folder), "--out", str(folder / "r.html")])
    assert e.value.code == 2 and "only reads" in capsys.readouterr().err
    assert not (folder / "r.html").exists()
