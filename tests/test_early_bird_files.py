"""What a watched training leaves in its run folder (lth_core/early_bird_files.py), exactly: the captured weights
per level, the distance matrices as csv (steps as labels), and the heatmaps as the reader sees them (titles, the
declared point marked, tick labels, sizes)."""

from __future__ import annotations

import struct

import matplotlib.pyplot as plt
import pytest
import torch

from lth_core.early_bird import EarlyBirdResult
from lth_core.early_bird_files import plot, read_matrix, save_early_bird, write_matrix
from lth_core.job import Job
from lth_core.store import RunStore


def test_a_matrix_is_written_with_steps_as_labels_and_read_back(tmp_path):
    path = tmp_path / "sub" / "m.csv"
    write_matrix(path, [0, 10], [[0.0, 1 / 3], [1 / 3, 0.0]])
    assert path.read_bytes() == b"step,0,10\r\n0,0,0.333333\r\n10,0.333333,0\r\n"
    steps, dist = read_matrix(path)
    assert steps == [0, 10] and dist == [[0.0, 0.333333], [0.333333, 0.0]]
    assert all(type(s) is int for s in steps) and all(type(d) is float for r in dist for d in r)


def png_size(path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


@pytest.fixture
def figures(monkeypatch):
    """The figures `plot` closes, kept open to be read."""
    kept = []
    monkeypatch.setattr(plt, "close", kept.append)
    yield kept
    monkeypatch.undo()
    for fig in kept:
        plt.close(fig)


def result(levels: dict[int, int | None], n: int) -> EarlyBirdResult:
    steps = [5 * i for i in range(n)]
    dist = {lv: [[abs(i - j) / (n + lv) for j in range(n)] for i in range(n)] for lv in levels}
    weights = {lv: {"w": torch.full((2,), float(lv))} for lv in levels}
    return EarlyBirdResult(steps, dist, dict(levels), weights)


def test_the_heatmaps_title_mark_and_label_each_level(tmp_path, figures):
    eb = result({2: 15, 1: None}, 12)
    plot(tmp_path / "f.png", "L00-dense-t0", eb)
    (fig,) = figures
    assert tuple(fig.get_size_inches()) == pytest.approx((6.4, 3.0))
    assert png_size(tmp_path / "f.png") == (704, 330)  # 110 dpi
    assert fig._suptitle.get_text() == (
        "L00-dense-t0: normalized Hamming distance between the masks at evaluation steps"
    )
    assert fig._suptitle.get_fontsize() == 9
    one, two = fig.axes[:2]
    assert one.get_title() == "level 1: never declared" and two.get_title() == "level 2: declared at 15"
    assert one.title.get_fontsize() == 8 and two.title.get_fontsize() == 8
    assert len(one.lines) == 0 and len(two.lines) == 2  # the declared point: row and column 3 (step 15)
    h, v = two.lines
    assert list(h.get_ydata()) == [3, 3] and list(v.get_xdata()) == [3, 3]
    assert all(ln.get_color() == "red" and ln.get_linewidth() == 0.8 for ln in (h, v))
    for ax, lv in ((one, 1), (two, 2)):
        (im,) = ax.images
        assert im.get_array().tolist() == eb.distances[lv] and im.get_cmap().name == "viridis"
        assert im.norm.vmin == 0.0 and im.origin == "upper"
        ticks = [0, 2, 4, 6, 8, 10]  # every 12 // 6 = 2nd point
        assert list(ax.get_xticks()) == ticks and list(ax.get_yticks()) == ticks
        assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "10", "20", "30", "40", "50"]
        assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "10", "20", "30", "40", "50"]
        assert all(t.get_fontsize() == 6 for t in ax.get_xticklabels() + ax.get_yticklabels())
        assert all(t.get_rotation() == 45 for t in ax.get_xticklabels())
        assert all(t.get_rotation() == 0 for t in ax.get_yticklabels())
    assert len(fig.axes) == 4  # two heatmaps and their colorbars
    for ax, bar in ((one, fig.axes[2]), (two, fig.axes[3])):  # a thin bar beside its own heatmap
        assert bar.get_position().width / ax.get_position().width == pytest.approx(0.046 / (1 - 0.046 - 0.05))
        assert bar.get_position().x0 > ax.get_position().x1 and ax.images[0].colorbar.ax is bar  # the image's


def test_the_heatmap_is_viridis_from_the_top_whatever_the_users_style(tmp_path, figures):
    with plt.rc_context({"image.cmap": "gray", "image.origin": "lower"}):
        plot(tmp_path / "f.png", "t", result({1: None}, 3))
    ((im,),) = [ax.images for ax in figures[0].axes[:1]]
    assert im.get_cmap().name == "viridis" and im.origin == "upper"


def test_at_most_four_heatmaps_a_row_the_rest_blank(tmp_path, figures):
    eb = result({lv: None for lv in range(1, 6)}, 7)
    plot(tmp_path / "f.png", "t", eb)
    (fig,) = figures
    assert tuple(fig.get_size_inches()) == pytest.approx((12.8, 6.0))
    assert png_size(tmp_path / "f.png") == (1408, 660)
    grid = fig.axes[:8]
    assert [ax.axison for ax in grid] == [True] * 5 + [False] * 3
    assert [ax.get_title() for ax in grid[:5]] == [f"level {lv}: never declared" for lv in range(1, 6)]
    assert list(grid[0].get_xticks()) == list(range(7))  # fewer than 12 points: every one


def test_one_level_is_one_heatmap(tmp_path, figures):
    plot(tmp_path / "f.png", "t", result({1: 0}, 2))
    (fig,) = figures
    assert png_size(tmp_path / "f.png") == (352, 330) and len(fig.axes) == 2
    assert fig.axes[0].get_title() == "level 1: declared at 0" and list(fig.axes[0].get_xticks()) == [0, 1]


def test_save_writes_each_levels_weights_matrix_and_one_heatmap(tmp_path, figures):
    store = RunStore(tmp_path / "run")
    job = Job(0, "dense", 3, 0, {}, None, 100)
    eb = result({1: 5, 2: None}, 3)
    save_early_bird(store, job, eb)
    for lv in (1, 2):
        kept = store.load_state(store.captured_name(lv, 3))
        assert kept is not None and torch.equal(kept["w"], eb.weights[lv]["w"])
        assert read_matrix(store.path / store.distances_name("L00-dense-t3", lv)) == (eb.steps, eb.distances[lv])
    assert png_size(store.path / "early_bird" / "L00-dense-t3.png") == (704, 330)
    assert figures[0]._suptitle.get_text().startswith("L00-dense-t3: ")  # titled by the job
    empty = RunStore(tmp_path / "empty")
    save_early_bird(empty, job, EarlyBirdResult([], {1: []}, {1: None}, {}))
    assert read_matrix(empty.path / empty.distances_name("L00-dense-t3", 1)) == ([], [])
    assert not (empty.path / "early_bird" / "L00-dense-t3.png").exists()  # no point: no heatmap
    assert not empty.state_path(empty.captured_name(1, 3)).exists()
