"""What a researcher reads off an instability analysis' figures (lth_core/lmc_figures.py): the barrier against k,
one line per density (densest first) on a symmetric-log axis whose linear part ends at the smallest k > 0, the
threshold dashed; the metric along the path, one panel per density and one line per k; a PNG written and the
figure closed even when saving fails. Pure styling (marker, grid alpha, font sizes) is not pinned."""

from __future__ import annotations

import matplotlib
import matplotlib.figure
import pandas as pd
import pytest

from lth_core import lmc_figures
from lth_core.lmc_figures import barrier_plot, paths_plot

matplotlib.use("Agg")
CLOSE = lmc_figures.plt.close


@pytest.fixture
def drawn(monkeypatch):
    figs: list = []
    monkeypatch.setattr(lmc_figures.plt, "close", lambda fig=None: figs.append(fig))
    yield figs
    for f in figs:
        CLOSE(f)


@pytest.fixture
def saved(monkeypatch):
    """The options of every savefig call (the real one still writes the file)."""
    calls: list[dict] = []
    real = matplotlib.figure.Figure.savefig

    def spy(self, fname, **kw):
        calls.append(kw)
        return real(self, fname, **kw)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", spy)
    return calls


ROWS = pd.DataFrame(
    {
        "density": [0.8, 0.8, 0.8, 0.5, 0.5],
        "k": [100, 0, 10, 0, 10],
        "barrier": [0.01, 0.3, 0.1, 0.5, 0.4],
    }
)


def test_the_barrier_plot_has_one_line_per_density_against_k_and_the_threshold(tmp_path, drawn, saved):
    path = tmp_path / "barrier.png"
    barrier_plot(ROWS, path, "error", 0.02)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert saved == [{"format": "png", "dpi": 110, "bbox_inches": "tight"}]
    (fig,) = drawn
    (ax,) = fig.axes
    lines = {ln.get_label(): ln for ln in ax.lines}
    assert list(lines) == ["80% of weights", "50% of weights", "threshold 0.02"]
    assert list(lines["80% of weights"].get_xdata()) == [0, 10, 100]  # sorted by k
    assert list(lines["80% of weights"].get_ydata()) == [0.3, 0.1, 0.01]
    assert list(lines["50% of weights"].get_ydata()) == [0.5, 0.4]
    thr = lines["threshold 0.02"]
    assert list(thr.get_ydata()) == [0.02, 0.02] and thr.get_linestyle() == "--"
    assert ax.get_xscale() == "symlog" and ax.xaxis.get_transform().linthresh == 10.0
    assert ax.get_xlabel() == "k: step the two copies start from"
    assert ax.get_ylabel() == "error barrier (error, its own units)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(lines)


def test_a_barrier_plot_of_k_zero_only_has_a_linear_part_of_one(tmp_path, drawn):
    barrier_plot(ROWS[ROWS["k"] == 0], tmp_path / "b.png", "loss", 0.125)
    ax = drawn[0].axes[0]
    assert ax.xaxis.get_transform().linthresh == 1.0
    assert [ln.get_label() for ln in ax.lines][-1] == "threshold 0.125"


PATHS = pd.DataFrame(
    {
        "density": [0.5] * 4 + [1.0] * 2,
        "k": [0, 0, 10, 10, 0, 0],
        "alpha": [0.0, 1.0, 0.0, 1.0, 0.0, 1.0],
        "error": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
    }
)


def test_the_paths_plot_has_one_panel_per_density_and_one_line_per_k(tmp_path, drawn):
    path = tmp_path / "paths.png"
    paths_plot(PATHS, path, "error")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (fig,) = drawn
    assert [a.get_title() for a in fig.axes] == ["100% of weights", "50% of weights"]
    assert fig.get_size_inches().tolist() == [9.0, 3.6]
    dense, half = fig.axes
    assert [ln.get_label() for ln in half.lines] == ["k=0", "k=10"]
    assert [list(ln.get_ydata()) for ln in half.lines] == [[0.1, 0.2], [0.3, 0.4]]
    assert [list(ln.get_xdata()) for ln in dense.lines] == [[0.0, 1.0]]
    for a in fig.axes:
        assert a.get_xlabel() == "alpha (0 = copy a, 1 = copy b)" and a.get_ylabel() == "error"
        assert [t.get_text() for t in a.get_legend().get_texts()] == [ln.get_label() for ln in a.lines]


def test_a_failed_save_still_closes_the_figure(tmp_path, drawn, monkeypatch):
    def fail(path, fn):
        raise OSError("disk full")

    monkeypatch.setattr(lmc_figures, "atomic_write", fail)
    with pytest.raises(OSError, match="disk full"):
        paths_plot(PATHS, tmp_path / "p.png", "error")
    assert len(drawn) == 1 and drawn[0] is not None
