"""The claim of the `quick` preset, end to end: at its three lowest densities the ticket's mean test accuracy
beats both controls' means. Minutes of CPU, so `slow`, as is the check that the dense
network's validation loss bottoms out well inside the budget (so early stopping bites: issue 19); the default
suite checks the preset's shape."""

from __future__ import annotations

import pandas as pd
import pytest

from benchmarks.run import main
from domains.vision.adapter import VisionAdapter
from lth_core.config import ImpConfig
from lth_core.presets import apply


def test_quick_preset_shape():
    p = VisionAdapter.presets["quick"]
    imp = apply(ImpConfig(), p.imp)
    assert imp.levels >= 8 and imp.trials >= 2
    assert set(imp.control_names()) == {"random_reinit", "random_mask"}
    assert p.domain["dataset"] in ("mnist1d", "digits")  # embedded: runs with no files


@pytest.mark.slow
def test_quick_dense_stops_early_well_inside_the_budget(tmp_path):
    """One dense training of the preset (~13 CPU-seconds with start-up, so slow): its validation minimum is at most
    60% of the budget. At the old Adam 1e-3 dense stopped at 2,433-2,700 of 3,000 and most kinds below 30% density
    at the budget; at 3e-3 dense stops near 1,400."""
    args = ["--domain", "vision", "--preset", "quick", "--levels", "0", "--trials", "1", "--noprogress"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    (folder,) = list(tmp_path.iterdir())
    (row,) = pd.read_csv(folder / "results.csv").to_dict("records")
    budget = VisionAdapter.presets["quick"].domain["iterations"]
    assert 0 < row["early_stop_step"] <= 0.6 * budget, row["early_stop_step"]


@pytest.mark.slow
def test_quick_ticket_beats_both_controls_at_the_three_lowest_densities(tmp_path):
    assert (
        main(
            ["--domain", "vision", "--preset", "quick", "--out", str(tmp_path), "--executor", "process", "--noprogress"]
        )
        == 0
    )
    (folder,) = list(tmp_path.iterdir())
    rows = pd.read_csv(folder / "results.csv")
    assert (rows.status == "ok").all()
    means = rows[rows.level > 0].pivot_table(index="level", columns="kind", values="score", aggfunc="mean")
    assert len(means) + 1 >= 9  # >= 8 pruned densities besides dense
    lowest = means.tail(3)
    assert (lowest.ticket > lowest.random_reinit).all() and (lowest.ticket > lowest.random_mask).all(), lowest
