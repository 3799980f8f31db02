"""What a researcher reads off a run's figures (lth_core/figures.py): figure1's panels per task (titles, axis
labels, the log density axis decreasing to the right), one curve per kind starting at the dense point with its
trials' standard deviation as error bars, the ticket solid and the controls dashed, the dense reference line,
the legend; layer_densities' one curve per tensor, emptied tensors drawn as crosses on the floor; the PNG's size.
Pure styling beyond that (marker sizes, grid alpha, font sizes) is not pinned."""

from __future__ import annotations

import struct
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

from lth_core import figures
from lth_core.figures import figure1, layer_densities

matplotlib.use("Agg")
CLOSE = figures.plt.close


@pytest.fixture
def drawn(monkeypatch):
    """The figures the functions close, kept open to be read."""
    figs: list = []
    monkeypatch.setattr(figures.plt, "close", lambda fig=None: figs.append(fig))
    yield figs
    for f in figs:
        CLOSE(f)


@pytest.fixture
def unsaved(monkeypatch):
    """Figures drawn but not rendered to PNG (the slow part): the path each would be written to."""
    paths: list[Path] = []
    monkeypatch.setattr(figures, "atomic_write", lambda path, write: paths.append(path))
    return paths


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def _s(task, kind, level, density, score, std, es, es_std, n=2, higher=True, metric="acc"):
    return {
        "domain": "d",
        "task": task,
        "metric": metric,
        "higher_is_better": higher,
        "kind": kind,
        "level": level,
        "density": density,
        "n": n,
        "score_mean": score,
        "score_std": std,
        "early_stop_step_mean": es,
        "early_stop_step_std": es_std,
    }


NAN = float("nan")
SUMMARY = pd.DataFrame(
    [
        _s("t", "dense", 0, 1.0, 0.9, 0.01, 300.0, 10.0),
        _s("t", "zeta", 1, 0.8, 0.7, NAN, 50.0, NAN, n=1),
        _s("t", "zeta", 2, 0.64, 0.6, 0.05, 40.0, 4.0),
        _s("t", "ticket", 2, 0.64, 0.85, 0.02, 100.0, 5.0),
        _s("t", "ticket", 1, 0.8, 0.88, 0.03, 200.0, 20.0),
        _s("u", "ticket", 1, 0.5, 1.5, 0.1, 20.0, 1.0, higher=False, metric="loss"),
        _s("u", "dense", 0, 1.0, 2.0, 0.2, 10.0, 2.0, higher=False, metric="loss"),
        _s("w", "ticket", 1, 0.5, NAN, NAN, NAN, NAN, n=0),  # nothing trained: no panel
    ]
)


def _curves(ax) -> dict[str, dict]:
    out = {}
    for c in ax.containers:
        line, caps, (bars,) = c.lines
        out[c.get_label()] = {
            "x": list(line.get_xdata()),
            "y": list(line.get_ydata()),
            "err": [round(float(s[1, 1] - s[0, 1]) / 2, 9) for s in bars.get_segments()],
            "style": (line.get_linestyle(), line.get_marker(), line.get_linewidth(), line.get_color()),
            "cap": caps[0].get_markersize() if caps else None,
        }
    return out


def test_figure1_has_two_panels_per_trained_task_with_a_curve_per_kind_from_the_dense_point(tmp_path, drawn):
    path = tmp_path / "figure1.png"
    figure1(SUMMARY, path)
    assert _png_size(path) == (11 * 110, 2 * 4 * 110)  # two tasks with trained rows, at 110 dpi
    (fig,) = drawn
    axes = fig.axes
    assert len(axes) == 4
    assert [a.get_title() for a in axes] == ["d · t", "when validation was best", "d · u", "when validation was best"]
    assert [a.get_ylabel() for a in axes] == [
        "acc (↑) at early stop",
        "early-stop step (validation)",
        "loss (↓) at early stop",
        "early-stop step (validation)",
    ]
    for a in axes:
        assert a.get_xlabel() == "percent of weights remaining" and a.get_xscale() == "log"
        assert a.xaxis_inverted()
    score, steps = _curves(axes[0]), _curves(axes[1])
    assert list(score) == ["ticket", "zeta"]  # the ticket first, the dense network only as the reference line
    assert score["ticket"]["x"] == [100.0, 80.0, 64.0] and score["ticket"]["y"] == [0.9, 0.88, 0.85]
    assert score["ticket"]["err"] == [0.01, 0.03, 0.02]
    assert score["zeta"]["x"] == [100.0, 80.0, 64.0] and score["zeta"]["y"] == [0.9, 0.7, 0.6]
    assert score["zeta"]["err"] == [0.01, 0.0, 0.05]  # one trial: no spread
    assert score["ticket"]["style"] == ("-", "o", 1.8, "C0") and score["zeta"]["style"] == ("--", "s", 1.2, "C1")
    assert score["ticket"]["cap"] == 2 * 2.5
    assert steps["ticket"]["y"] == [300.0, 200.0, 100.0] and steps["zeta"]["err"] == [10.0, 0.0, 4.0]
    ref = [ln for ln in axes[0].lines if ln.get_label() == "dense"]
    assert len(ref) == 1 and list(ref[0].get_ydata()) == [0.9, 0.9] and ref[0].get_linestyle() == ":"
    assert ref[0].get_color() == "gray" and ref[0].get_linewidth() == 1
    assert [ln.get_ydata()[0] for ln in axes[1].lines if ln.get_label() == "dense"] == [300.0]
    legend = axes[0].get_legend()
    assert sorted(t.get_text() for t in legend.get_texts()) == ["dense", "ticket", "zeta"]
    assert axes[1].get_legend() is None and axes[2].get_legend() is not None
    assert list(axes[0].get_xticks()) == [100.0, 80.0, 64.0]
    assert axes[0].xaxis.get_major_formatter()(64.0, 0) == "64"
    assert axes[0].xaxis.get_major_formatter()(51.2345, 0) == "51.2"
    assert axes[0].xaxis.get_minor_formatter()(64.0, 0) == ""
    u = _curves(axes[2])
    assert list(u) == ["ticket"] and u["ticket"]["x"] == [100.0, 50.0] and u["ticket"]["y"] == [2.0, 1.5]


def test_figure1_without_a_dense_row_draws_the_curves_alone_and_thins_many_ticks(tmp_path, drawn, unsaved):
    rows = [_s("t", "ticket", lv, 0.8**lv, 0.9 - lv / 100, 0.01, 100.0, 1.0) for lv in range(1, 18)]
    figure1(pd.DataFrame(rows), tmp_path / "f.png")
    assert unsaved == [tmp_path / "f.png"]
    (fig,) = drawn
    ax = fig.axes[0]
    c = _curves(ax)["ticket"]
    assert len(c["x"]) == 17 and c["x"][0] == pytest.approx(80.0)
    assert not [ln for ln in ax.lines if ln.get_label() == "dense"]
    ticks = sorted((0.8 ** np.arange(1, 18) * 100).tolist(), reverse=True)
    np.testing.assert_allclose(ax.get_xticks(), ticks[::2])  # 17 densities: every second one (17 // 8)


def test_figure1_of_nothing_trained_writes_no_file(tmp_path, drawn):
    figure1(SUMMARY[SUMMARY["task"] == "w"], tmp_path / "f.png")
    assert not (tmp_path / "f.png").exists() and drawn == []


DENSITIES = pd.DataFrame(
    {
        "kind": ["ticket"] * 8 + ["dense", "mask"],
        "level": [1, 1, 2, 2, 1, 1, 2, 2, 0, 1],
        "trial": [0, 0, 0, 0, 1, 1, 1, 1, 0, 0],
        "tensor": ["b", "a", "b", "a"] * 2 + ["a", "a"],
        "density": [0.5, 0.8, 0.0, 0.6, 0.3, 0.8, 0.0, 0.4, 1.0, 0.001],
    }
)


def test_layer_densities_draw_one_curve_per_tensor_and_emptied_tensors_as_crosses_on_the_floor(tmp_path, drawn):
    path = tmp_path / "densities.png"
    layer_densities(DENSITIES, path, "t · magnitude")
    assert _png_size(path) == (6 * 120, 4 * 120)
    (fig,) = drawn
    (ax,) = fig.axes
    lines = {ln.get_label(): ln for ln in ax.lines}
    assert list(lines) == ["a", "b"]
    assert list(lines["a"].get_xdata()) == [1, 2] and list(lines["a"].get_ydata()) == pytest.approx([80.0, 50.0])
    floor = 0.5 * 0.4  # half the smallest positive mean density (b at level 1)
    assert list(lines["b"].get_ydata()) == pytest.approx([40.0, floor * 100])  # emptied: drawn at the floor
    assert lines["a"].get_marker() == "o" and [lines[k].get_color() for k in "ab"] == ["C0", "C1"]
    (cross,) = ax.collections
    np.testing.assert_allclose(cross.get_offsets(), [[2, floor * 100]])
    assert ax.get_title() == "t · magnitude  (x: tensor emptied)"
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "level"
    assert ax.get_ylabel() == "ticket density of the tensor (%)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]


def test_layer_densities_without_an_emptied_tensor_or_a_title(tmp_path, drawn, unsaved):
    layer_densities(DENSITIES[DENSITIES["density"] > 0], tmp_path / "d.png")
    assert unsaved == [tmp_path / "d.png"]
    (fig,) = drawn
    ax = fig.axes[0]
    assert ax.get_title() == "per-tensor density" and not ax.collections
    drawn.clear()
    layer_densities(DENSITIES.assign(density=0.0), tmp_path / "e.png", "x")
    ax = drawn[0].axes[0]
    assert ax.get_title() == "x  (x: tensor emptied)"
    assert [list(ln.get_ydata()) for ln in ax.lines] == [[1e-2, 1e-2], [1e-2, 1e-2]]  # the floor 1e-4 of nothing
    drawn.clear()
    layer_densities(DENSITIES.assign(density=0.0), tmp_path / "e.png")
    assert drawn[0].axes[0].get_title() == "per-tensor density  (x: tensor emptied)"


def test_layer_densities_without_tickets_writes_no_file(tmp_path, drawn):
    layer_densities(DENSITIES[DENSITIES["kind"] != "ticket"], tmp_path / "d.png")
    assert not (tmp_path / "d.png").exists() and drawn == []
