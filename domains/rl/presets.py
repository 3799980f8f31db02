"""Named settings of the RL domain: a quick CPU check and the Yu et al. 2020 (ICLR) settings.

Heads: every preset names `action_head`/`value_head`/`q_head` in its rate overrides, which keeps them
out of global magnitude ranking (see domains.rl.policy) and prunes them layerwise at the rate given.
"""

from __future__ import annotations

from lth_core.presets import Preset

HEADS_AT = "action_head={r},value_head={r},q_head={r}"
# Biases start at 0 in SB3 and stay an order smaller than weights: one global threshold would take them
# first. Naming them ranks them layerwise, each layer's biases at the given rate.
BIASES_AT = "*.bias={r}"

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "quick",
            "CartPole-v1, A2C with 16 envs, MLP 64x64, 40k env steps, 7 densities down to ~5%, ticket + both "
            "controls, 2 trials (a CPU run of several minutes)",
            imp={
                "levels": 6,
                "rate": 0.4,
                "strategy": "magnitude_layerwise",
                "prune_biases": False,
                "rate_overrides": HEADS_AT.format(r=0.2),
                "trials": 2,
                "rewind_step": "0",
                "controls": "random_reinit,random_mask",
            },
            domain={
                "env": "CartPole-v1",
                "algo": "a2c",
                "n_envs": 16,
                "net_arch": "64,64",
                "timesteps": 40_000,
                "eval_every": 5_000,
                "eval_episodes": 10,
            },
        ),
        Preset(
            "yu2020-classic",
            "Yu et al. 2020 classic control: A2C, MLP 128x3 (CartPole) / 256x3 (Acrobot, LunarLander: pass --env), "
            "global magnitude pruning of weights and biases, 20% per level for 20 levels, late rewinding",
            imp={
                "levels": 20,
                "rate": 0.2,
                "strategy": "magnitude_global",
                "prune_biases": True,
                "rate_overrides": f"{BIASES_AT.format(r=0.2)},{HEADS_AT.format(r=0.1)}",
                "trials": 3,
                "rewind_step": "0.05",
                "controls": "random_reinit,random_mask",
            },
            domain={
                "env": "CartPole-v1",
                "algo": "a2c",
                "net_arch": "env",
                "timesteps": 0,
                "eval_every": 10_000,
                "eval_episodes": 20,
            },
            smoke={"budget_scale": 0.2},  # 20,000 env steps of CartPole
        ),
        Preset(
            "yu2020-atari",
            "Yu et al. 2020 Atari: A2C with SB3's CNN policy (NatureCNN, 4 stacked frames), 10M env steps, "
            "global pruning of weights and biases at 20% per level, late rewinding; ALE/Pong-v5 by default, "
            "other games with --env; a GPU run (on a CPU: --smoke; an evaluation is a whole game, ~900 steps, so a "
            "small --budget-scale needs few --eval-points, e.g. 0.001 and 1)",
            imp={
                "levels": 20,
                "rate": 0.2,
                "strategy": "magnitude_global",
                "prune_biases": True,
                "rate_overrides": f"{BIASES_AT.format(r=0.2)},{HEADS_AT.format(r=0.1)}",
                "trials": 2,
                "rewind_step": "0.05",
                "controls": "random_reinit,random_mask",
            },
            domain={
                "env": "ALE/Pong-v5",
                "algo": "a2c",
                "net_arch": "",
                "timesteps": 10_000_000,
                "eval_every": 250_000,
                "eval_episodes": 10,
                "job_progress": True,
            },
            # 12,000 env steps of Pong (ale-py's ROM), one torch thread. An evaluation stays a whole game (~900
            # steps, the CPU of ~1,300 training steps), so the smoke evaluates once, at the end: one validation, one
            # test. Two threads took 6x the CPU-seconds of one on a loaded machine (measured, rl README).
            smoke={"budget_scale": 0.0012, "eval_points": 1, "job_progress": False},
        ),
    )
}
PRESETS["earlybird-quick"] = Preset(
    "earlybird-quick",
    "early-bird tickets (You et al. 2020) on the `quick` CartPole A2C: the dense training watched every 2,000 env "
    "steps for each level's layerwise magnitude mask at density 0.6^L, declared when the last 5 masks differ by "
    "<= 10%, stopped once every level is; 3 trials. --schedule iterative gives IMP on the same grid",
    imp={**PRESETS["quick"].imp, "schedule": "early_bird", "trials": 3},
    domain={**PRESETS["quick"].domain, "eval_every": 2_000},
)
