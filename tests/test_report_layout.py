"""The report fits its page: every table scrolls inside it, and the cross-task plot's density labels never overlap.

Without a browser (the first two tests) the page's structure and the figure's rendered text extents are checked;
with Chromium on PATH the third loads the page and measures it (benchmarks/report_browser.py).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from itertools import combinations
from pathlib import Path

import matplotlib
import pandas as pd
import pytest
from test_compare import toy_runs  # noqa: F401  (the shared session fixture of small real runs)

from benchmarks import report, report_browser
from benchmarks.falloff import falloffs
from benchmarks.run_folders import Run
from lth_core.tables import summarize

matplotlib.use("Agg")


class Parents(HTMLParser):
    """Each <table>'s enclosing element (tag and class)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, str]] = []
        self.table_parents: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.table_parents.append(self.stack[-1])
        self.stack.append((tag, dict(attrs).get("class") or ""))

    def handle_endtag(self, tag):
        while self.stack and self.stack.pop()[0] != tag:
            pass


def test_every_table_sits_in_a_horizontal_scroller(toy_runs, tmp_path):
    out = report.write_report(
        report.ReportConfig(runs=[str(toy_runs["base"]), str(toy_runs["rate"])], out=str(tmp_path / "r.html"))
    )
    page = out.read_text()
    parents = Parents()
    parents.feed(page)
    assert len(parents.table_parents) >= 5
    assert set(parents.table_parents) == {("div", "scroll")}
    css = re.search(r"<style>(.*?)</style>", page, re.S).group(1)
    rule = re.search(r"\.scroll\{([^}]*)\}", css).group(1)
    assert "overflow-x:auto" in rule and "max-width:100%" in rule


def rows(domain: str, task: str, densities: list[float], higher: bool) -> list[dict]:
    base = {"domain": domain, "task": task, "metric": "m", "early_stop_step": 1, "higher_is_better": higher}
    out = [
        {**base, "kind": "dense", "level": 0, "trial": t, "density": 1.0, "score": 10.0 + t, "status": "ok"}
        for t in (0, 1)
    ]
    for level, d in enumerate(densities, start=1):
        for kind, bonus in (("ticket", 0.5), ("random_reinit", 0.0), ("random_mask", -0.2)):
            for t in (0, 1):
                out.append(
                    {
                        **base,
                        "kind": kind,
                        "level": level,
                        "trial": t,
                        "density": d,
                        "score": 10 + bonus - level * 0.1 + t,
                        "status": "ok",
                    }
                )
    return [{**r, "final_score": r["score"]} for r in out]


def views() -> list[report.TaskView]:
    """Three tasks of three domains whose densities nearly coincide (0.41 / 0.405 / 0.4, 1.01% / 1%)."""
    grids = {
        ("vision", "mnist/lenet_300_100"): [
            0.8,
            0.64,
            0.512,
            0.41,
            0.405,
            0.33,
            0.26,
            0.21,
            0.168,
            0.134,
            0.0101,
            0.01,
        ],
        ("rl", "CartPole-v1/a2c-mlp128x128x128"): [0.8, 0.64, 0.51, 0.41, 0.4, 0.3],
        ("nlp", "synthetic/transformer_vaswani_wmt_en_de_big"): [0.5, 0.25, 0.125, 0.0625, 0.0622],
    }
    out = []
    for (domain, task), dens in grids.items():
        df = pd.DataFrame(rows(domain, task, dens, higher=domain != "nlp"))
        s = summarize(df)
        run = Run(Path(f"/runs/{domain}-0123456789ab"), {}, df)  # a folder's contents in memory: nothing is read
        out.append(report.TaskView(run, domain, task, s, df, falloffs(s, df, 0.02)))
    return out


def test_cross_task_density_labels_never_overlap():
    fig = report.advantage_figure(views())
    assert fig is not None and len(fig.axes) == 3  # one axis per task: each labels its own densities
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = []
    for ax in fig.axes:
        labels = [t for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]
        assert len(labels) >= 3
        boxes += [t.get_window_extent(renderer) for t in labels]
        boxes.append(ax.title.get_window_extent(renderer))
    for a, b in combinations(boxes, 2):
        assert not a.overlaps(b), (a, b)
    matplotlib.pyplot.close(fig)


def test_spaced_ticks_drop_the_second_of_two_close_densities():
    ticks = report.spaced_ticks([80.0, 41.0, 40.5, 1.01, 1.0])
    assert 41.0 in ticks and 40.5 not in ticks and 1.01 in ticks and 1.0 not in ticks


@pytest.mark.skipif(
    report_browser.browser() is None, reason="no Chromium on PATH (apt-get install chromium-headless-shell)"
)
@pytest.mark.parametrize("width", [1280, 700])
def test_report_fits_the_window_in_chromium(toy_runs, tmp_path, width):
    seen = report_browser.check(
        report_browser.BrowserCheck(
            runs=[str(toy_runs["base"]), str(toy_runs["rate"])], width=width, screenshot=str(tmp_path / "page.png")
        )
    )
    assert seen["fits"], seen
    assert seen["tables"] >= 5 and seen["scrollers"] == seen["tables"]
    assert (tmp_path / "page.png").read_bytes().startswith(b"\x89PNG")
