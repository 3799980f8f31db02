"""`--smoke`: one level of one trial of every paper preset, on generated data, in minutes with evaluation a small
share of each job; what a budget scale below 1 does to evaluation, and that the run's identity records it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmarks.run import parse
from benchmarks.smoke import run_smoke, smoke_presets
from domains import domain_names
from domains.rl.config import RLConfig
from domains.vision.config import VisionConfig

ROOT = Path(__file__).resolve().parents[1]
SMOKES = [(d, p) for d in domain_names() for p in smoke_presets(d)]
SMOKE_LINE = re.compile(r"python -m benchmarks\.run --domain (\w+) --preset ([\w-]+) --smoke\b")


def test_every_paper_preset_declares_a_smoke():
    assert {p for d, p in SMOKES if d == "vision"} >= {"frankle2019-lenet", "stabilizing-vgg19", "morcos2019-transfer"}
    assert {p for d, p in SMOKES if d == "rl"} == {"yu2020-classic", "yu2020-atari"}
    assert {p for d, p in SMOKES if d == "nlp"} == {"multi30k", "yu2020-wmt14", "yu2020-wikitext2"}


def test_readme_smoke_lines_are_the_smokes_the_slow_test_runs():
    lines = set()
    for domain in ("vision", "rl", "nlp"):
        text = (ROOT / "domains" / domain / "README.md").read_text()
        lines |= {(d, p) for d, p in SMOKE_LINE.findall(text)}
        assert all(d == domain for d, _ in SMOKE_LINE.findall(text))
    assert lines == set(SMOKES)


def test_smoke_cuts_levels_and_trials_and_uses_generated_data():
    plan = parse(["--smoke"], "vision", "stabilizing-resnet20", smoke=True)
    assert (plan.imp.levels, plan.imp.trials) == (1, 1)
    assert plan.config.dataset == "cifar10-generated" and plan.config.model == "resnet20"
    assert plan.config.batch_size == 128 and plan.config.eval_examples == 100
    plan = parse(["--smoke", "--levels", "2"], "nlp", "yu2020-wikitext2", smoke=True)
    assert plan.imp.levels == 2 and plan.config.dataset == "synthetic"  # explicit flags still win


def test_a_scale_below_one_bounds_evaluation_points_and_sizes():
    c = RLConfig(budget_scale=0.001, eval_every=250_000, eval_episodes=10)
    assert c.eval_cadence_for(10_000) == 2500  # 4 points, not the 40 that 250 steps would give
    assert c.eval_size("eval_episodes") == 1
    full = RLConfig(eval_every=250_000, eval_episodes=10)
    assert full.eval_cadence_for(10_000_000) == 250_000 and full.eval_size("eval_episodes") == 10
    v = VisionConfig(budget_scale=0.01)
    assert v.eval_size("eval_examples", 5000) == 100 and v.eval_size("eval_examples", 50) == 50
    assert VisionConfig(budget_scale=0.5).eval_size("eval_examples", 5000) == 2500


def test_the_identity_records_what_a_scale_below_one_did_to_evaluation():
    assert "scaled_evaluation" not in VisionConfig().identity_extras()
    rec = VisionConfig(budget_scale=0.01).identity_extras()["scaled_evaluation"]
    assert rec["eval_points"] == 4 and "eval_examples" in rec
    a, b = RLConfig(budget_scale=0.01), RLConfig(budget_scale=0.01, eval_points=2)
    assert a.identity_extras() != b.identity_extras()  # eval_points is not an identity field, but acts here


@pytest.mark.slow
@pytest.mark.parametrize("domain,preset", SMOKES, ids=[f"{d}-{p}" for d, p in SMOKES])
def test_smoke_runs_in_minutes_with_evaluation_a_small_share(domain, preset, tmp_path):
    result = run_smoke(domain, preset, tmp_path)
    assert result.ok and result.jobs == 4  # dense, ticket, random_reinit, random_mask
    assert max(result.eval_share) < 0.25, result.row()
    assert result.cpu_s < 2 * 180, result.row()  # three minutes of two cores (wall time is the machine's share)
