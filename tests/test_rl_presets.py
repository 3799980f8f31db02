"""Each RL preset starts and completes one tiny level through the real runner (dense, ticket, both controls),
Atari included (ale-py ships the ROMs, so this runs offline)."""

from __future__ import annotations

import pandas as pd
import pytest

pytest.importorskip("stable_baselines3")

from domains.rl.adapter import RLAdapter  # noqa: E402
from domains.rl.presets import PRESETS  # noqa: E402
from lth_core.config import ImpConfig, RunOptions  # noqa: E402
from lth_core.imp_runner import ImpRunner  # noqa: E402
from lth_core.presets import apply  # noqa: E402

# Only what makes the run tiny changes; algorithm, network, pruning and evaluation protocol stay the preset's.
TINY = {
    "yu2020-classic": {"budget_scale": 0.01, "eval_every": 50_000, "eval_episodes": 2},
    "yu2020-atari": {
        "budget_scale": 0.00002,
        "eval_every": 10_000_000,
        "eval_episodes": 1,
        "max_episode_steps": 200,
        "n_envs": 2,
        "job_progress": False,
    },
}


def run_one_level(name: str, tmp_path) -> pd.DataFrame:
    preset = PRESETS[name]
    if preset.domain.get("env", "").startswith("ALE/"):
        pytest.importorskip("ale_py")
        pytest.importorskip("cv2")
    imp = apply(apply(ImpConfig(), preset.imp), {"levels": 1, "trials": 1})
    adapter = RLAdapter(apply(apply(RLAdapter.Config(), preset.domain), TINY[name]))
    runner = ImpRunner(adapter, lambda: adapter, imp, RunOptions(out=str(tmp_path), progress=False), preset=name)
    path = runner.run()
    rows = pd.read_csv(path / "results.csv")
    assert sorted(rows["kind"]) == ["dense", "random_mask", "random_reinit", "ticket"]
    assert (rows["status"] == "ok").all(), rows[["kind", "status", "error"]]
    assert rows["score"].notna().all() and (rows.loc[rows.kind != "dense", "density"] < 1).all()
    assert (path / "summary.md").is_file()
    return rows


@pytest.mark.parametrize("name", ["yu2020-classic", "yu2020-atari"])
def test_yu2020_presets_complete_a_tiny_level(name, tmp_path):
    rows = run_one_level(name, tmp_path)
    assert (rows["metric"] == "return").all()
    ticket = rows[rows.kind == "ticket"].iloc[0]
    assert ticket["start_step"] > 0  # late rewinding
    assert "threshold_step" in rows.columns and "reward_threshold" in rows.columns


def test_quick_preset_shape():
    imp = apply(ImpConfig(), PRESETS["quick"].imp)
    cfg = apply(RLAdapter.Config(), PRESETS["quick"].domain)
    assert cfg.env == "CartPole-v1" and imp.levels + 1 >= 6 and imp.trials >= 2
    assert set(imp.control_names()) == {"random_reinit", "random_mask"}
