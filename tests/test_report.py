"""benchmarks.report: one self-contained HTML page, parsed back; and the fall-off definition it reports."""

from __future__ import annotations

import base64
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats
from test_compare import toy_runs  # noqa: F401  (the shared session fixture of small real runs)

from benchmarks import report
from benchmarks.falloff import falloffs
from lth_core.tables import summarize

PNG = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """What a browser would load: every tag, image source, link, table and heading text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.images: list[str] = []
        self.links: list[str] = []
        self.headings: list[str] = []
        self._in_heading = False
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "img":
            self.images.append(a.get("src", ""))
        for key in ("href", "src"):
            if key in a and tag != "img":
                self.links.append(a[key])
        self._in_heading = tag in ("h1", "h2", "h3", "h4")

    def handle_endtag(self, tag):
        if tag in ("h1", "h2", "h3", "h4"):
            self._in_heading = False

    def handle_data(self, data):
        self.text.append(data)
        if self._in_heading and data.strip():
            self.headings.append(data.strip())


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def run_report(capsys, *args) -> tuple[int, str, str]:
    try:
        code = report.main([str(a) for a in args])
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_self_contained(page: Page) -> None:
    assert "script" not in page.tags and "link" not in page.tags and "iframe" not in page.tags
    assert all(link.startswith("#") for link in page.links), page.links  # only in-page anchors
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG)


def test_one_run_lands_in_the_current_folder_with_figure_tables_and_config(toy_runs, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # never in the run folder: report only reads it
    code, out, err = run_report(capsys, toy_runs["base"])
    assert code == 0, err
    path = Path("report.html")
    assert not (toy_runs["base"] / "report.html").exists()
    assert out.strip() == f"report: {path}" and path.is_file()
    page = parse(path)
    assert_self_contained(page)
    assert len(page.images) >= 1  # the Figure-1 pair of the task
    assert page.tags.count("table") >= 4  # overview, scores, early-stop steps, fall-off (+ config)
    text = " ".join(page.text)
    for needle in (
        "Where each kind falls off",
        "Welch",
        "random_reinit",
        "random_mask",
        "git commit",
        "package versions",
        "torch",
        toy_runs["base"].name,
    ):
        assert needle in text, needle


def test_several_runs_share_one_page_with_an_overview(toy_runs, tmp_path, capsys):
    out = tmp_path / "sub" / "all.html"
    code, _, err = run_report(capsys, toy_runs["base"], toy_runs["rate"].parent, "--out", out)
    assert code == 0, err
    page = parse(out)
    assert_self_contained(page)
    assert len(page.images) == 3  # the cross-task advantage plot + one Figure-1 pair per run
    assert page.headings.count("toy · blobs/mlp") == 2
    anchors = [link[1:] for link in page.links]
    html_text = out.read_text()
    assert len(anchors) == 2 and all(f'id="{a}"' in html_text for a in anchors)


@pytest.mark.parametrize(
    "args", [["{missing}"], ["{base}", "--out", "{folder}"], ["{base}", "--falloff-tolerance", "1.5"]]
)
def test_bad_input_is_one_line_and_exit_2(toy_runs, tmp_path, capsys, args):
    paths = {"missing": tmp_path / "nope", "base": toy_runs["base"], "folder": tmp_path}
    code, out, err = run_report(capsys, *[a.format(**paths) for a in args])
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("*.html"))


def curve(kind: str, means: dict[float, list[float]], higher: bool = True) -> list[dict]:
    return [
        {
            "domain": "d",
            "task": "t",
            "kind": kind,
            "level": i,
            "trial": j,
            "density": d,
            "metric": "m",
            "score": v,
            "early_stop_step": 1,
            "final_score": v,
            "higher_is_better": higher,
            "status": "ok",
        }
        for i, (d, vals) in enumerate(means.items())
        for j, v in enumerate(vals)
    ]


def test_falloff_is_the_first_exit_from_the_band_around_dense():
    rows = pd.DataFrame(
        curve("dense", {1.0: [0.90, 0.90]})
        + curve("ticket", {0.8: [0.90, 0.91], 0.5: [0.89, 0.89], 0.2: [0.80, 0.81]})
        + curve("random_reinit", {0.8: [0.89, 0.89], 0.5: [0.70, 0.72], 0.2: [0.89, 0.88]})
        + curve("random_mask", {0.8: [0.5, 0.6], 0.5: [0.4, 0.4], 0.2: [0.3, 0.3]})
    )
    fo = {f.kind: f for f in falloffs(summarize(rows), rows, rel_tol=0.02)}  # band: >= 0.882
    assert fo["ticket"].matches_down_to == 0.5 and fo["ticket"].falls_off_at == 0.2
    assert fo["random_reinit"].falls_off_at == 0.5  # the first exit counts, though it re-enters at 20%
    # Welch's t at the fall-off density against dense: (0.71 - 0.90) / sqrt(0.0002 / 2 + 0) = -19 on one d.o.f.
    welch = stats.ttest_ind([0.70, 0.72], [0.90, 0.90], equal_var=False)
    vs = fo["random_reinit"].vs_dense
    assert (
        vs.why == ""
        and vs.t == pytest.approx(-19.0)
        and vs.p == pytest.approx(welch.pvalue) == pytest.approx(0.0335, abs=1e-4)
    )
    assert fo["random_mask"].matches_down_to is None and fo["random_mask"].falls_off_at == 0.8
    assert fo["ticket"].threshold == pytest.approx(0.882)


def test_falloff_for_lower_is_better_and_never_falling_off():
    rows = pd.DataFrame(
        curve("dense", {1.0: [20.0, 20.4]}, higher=False)
        + curve("ticket", {0.5: [19.0, 19.5], 0.25: [20.3, 20.2]}, higher=False)
        + curve("random_reinit", {0.5: [20.2, 20.3], 0.25: [25.0, 26.0]}, higher=False)
    )
    fo = {f.kind: f for f in falloffs(summarize(rows), rows, rel_tol=0.02)}  # band: <= 20.604
    assert fo["ticket"].falls_off_at is None and fo["ticket"].matches_down_to == 0.25
    assert fo["random_reinit"].falls_off_at == 0.25 and fo["random_reinit"].vs_dense.significant(0.05)
