"""The whole-IMP-run benchmark of `python -m benchmarks.imp_run_speed`, for regression tracking: LeNet-300-100, 15
levels at 20%, 2,000 iterations per training, ticket + random_reinit + random_mask, one trial, generated MNIST
data, local executor. Minutes long, so marked slow: `pytest benchmarks --benchmark-only -m slow -k imp_run`.
`extra_info` carries every level's wall and training seconds and density, and the total. One run per value of
the vision loop's `--sparse` this build has (only `never` before the sparse path exists), side by side.
"""

from __future__ import annotations

from dataclasses import fields

import pytest

from benchmarks.imp_run_speed import ImpRunSpeedConfig, time_run
from domains.vision.config import VisionConfig

SPARSE = ["never", "auto"] if "sparse" in {f.name for f in fields(VisionConfig)} else ["never"]


@pytest.mark.slow
@pytest.mark.parametrize("sparse", SPARSE)
def test_whole_imp_run(benchmark, sparse):
    result: dict = {}
    benchmark.pedantic(lambda: result.update(time_run(ImpRunSpeedConfig(sparse=sparse))), rounds=1, iterations=1)
    levels = result["levels"]
    assert len(levels) == 16 and all(lv["ok"] for lv in levels)
    benchmark.extra_info.update(
        {
            "sparse": sparse,
            "total_s": result["total_s"],
            "setup_s": result["setup_s"],
            "level_wall_s": [round(lv["wall_s"], 3) for lv in levels],
            "level_train_s": [round(lv["train_s"], 3) for lv in levels],
            "density": [lv["density"] for lv in levels],
        }
    )
