"""Each criterion through each domain's own training, end to end on a tiny budget: `benchmarks.run --domain D
--strategy C --schedule at_init` (movement: iterative, it scores a training), and what R is for SynFlow in RL."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from gymnasium import spaces

from benchmarks.run import main
from domains.rl.algos import ALGOS
from domains.rl.policy import flow_output, make_policy
from lth_core.masks import Mask

SCALE = {"vision": "0.05", "rl": "0.02", "nlp": "0.02"}
CASES = [  # those test_at_init.py and test_movement.py do not run already
    ("vision", "grasp"),
    ("vision", "synflow"),
    ("vision", "snip_iterative"),
    ("rl", "grasp"),
    ("rl", "synflow"),
    ("rl", "snip_iterative"),
    ("rl", "movement"),
    ("nlp", "snip"),
    ("nlp", "snip_iterative"),
    ("nlp", "movement"),
]


@pytest.mark.parametrize("domain,strategy", CASES)
def test_criterion_runs_end_to_end(tmp_path, domain, strategy):
    schedule = "iterative" if strategy == "movement" else "at_init"
    out = tmp_path / "out"
    flags = ["--domain", domain, "--preset", "quick", "--trials", "1", "--levels", "1", "--noprogress"]
    flags += ["--strategy", strategy, "--schedule", schedule, "--budget-scale", SCALE[domain], "--out", str(out)]
    flags += ["--controls", "inverted"] + (["--snip-iterative-rounds", "3"] if strategy == "snip_iterative" else [])
    flags += ["--synflow-rounds", "5"] if strategy == "synflow" else []
    assert main(flags) == 0
    (folder,) = out.iterdir()
    rows = pd.read_csv(folder / "results.csv")
    meta = json.loads((folder / "run.json").read_text())
    assert (rows.status == "ok").all() and set(rows.kind) == {"dense", "ticket", "inverted"}
    ticket = rows[rows.kind == "ticket"].iloc[0]
    assert ticket.scoring_s > 0 and ticket.density < 1
    mask = Mask({k: v.bool() for k, v in torch.load(folder / "state" / "mask-L01-t0.pt").items()})
    assert set(mask.names()) == set(meta["prunable"]) and mask.num_kept == ticket.kept
    if strategy == "movement":  # pruned by the sums of the dense training it prunes from
        assert (folder / "state" / "gradsums-L00-t0.pt").exists()


@pytest.mark.parametrize("algo", ["a2c", "ppo", "dqn"])
def test_rl_synflow_sums_the_policy_and_value_heads_on_an_all_ones_observation(algo):
    spec = ALGOS.get(algo)
    obs_space, act_space = spaces.Box(-1, 1, (4,)), spaces.Discrete(3)
    policy = make_policy(spec, obs_space, act_space, {"net_arch": [8, 8]}, 0)
    obs = torch.ones(1, 4)
    with torch.no_grad():
        out = flow_output(policy, obs)
        if algo == "dqn":
            assert torch.allclose(out, policy.q_net(obs), atol=1e-6)  # SB3's own Q-values
        else:  # SB3's own logits (raw: Categorical keeps them normalized) and value
            assert torch.allclose(out[:, :3].log_softmax(1), policy.get_distribution(obs).distribution.logits)
            assert torch.allclose(out[:, 3:], policy.predict_values(obs), atol=1e-6) and out.shape == (1, 4)
    double = make_policy(spec, obs_space, act_space, {"net_arch": [8, 8]}, 0).double()
    assert flow_output(double, torch.ones(1, 4, dtype=torch.float64)).dtype == torch.float64  # no float32 cast
