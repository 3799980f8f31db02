"""`python -m benchmarks.rl_restart_jolt [K SEEDS TRAJECTORY VARIANTS]`: why CartPole copies restarted from k > 0 end
far below those from k = 0 (benchmarks.instability, issue 15). Hypothesis: SB3's A2C builds a fresh RMSprop whose
square averages start at 0 (torch's RMSprop has no bias correction), so its first steps are ~lr / sqrt(1 - 0.99^t) *
sign(g), up to 10x the learning rate per weight, which jolts a policy that was already trained.

Test: one dense trajectory (the rl quick setting at 20k env steps) to k; then copies from k with the order seeds
given, (a) as benchmarks.instability trains them (weights only, a fresh optimizer) and (b) the same with the
trajectory's RMSprop state at k loaded; plus the trajectory continued uninterrupted, and copies from k = 0. Per
copy: how far the first 10 updates move the weights, the validation return right after them, the final test return.
"""

from __future__ import annotations

import statistics
import sys

import torch

from domains.rl.adapter import RLAdapter
from domains.rl.config import RLConfig
from domains.rl.evaluation import TEST_SEED, VAL_SEED, EvalSplit
from domains.rl.presets import PRESETS
from domains.rl.train import build_algorithm
from lth_core.presets import apply

BUDGET, FIRST = 20_000, 800  # env steps; FIRST = 10 A2C updates of 16 envs x 5 steps


def flat(policy: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten().clone() for p in policy.parameters()])


def main(argv: list[str]) -> int:
    k = int(argv[0]) if argv else 5000
    seeds = [int(s) for s in argv[1].split(",")] if len(argv) > 1 else [11, 12]
    trajectory = int(argv[2]) if len(argv) > 2 else 0  # the dense trajectory's order seed (its init: seed 0)
    variants = argv[3].split(",") if len(argv) > 3 else ["init", "fresh", "state"]
    torch.set_num_threads(1)
    adapter = RLAdapter(apply(RLConfig(), {**PRESETS["quick"].domain, "timesteps": BUDGET}))
    setup = adapter.setup
    val = EvalSplit(adapter.info, setup.eval_episodes, VAL_SEED, setup.max_episode_steps)
    test = EvalSplit(adapter.info, setup.eval_episodes, TEST_SEED, setup.max_episode_steps)
    ref = build_algorithm(setup, trajectory)
    ref.policy.load_state_dict(adapter.initial_weights(0))
    ref.learn(total_timesteps=k)
    k_real = ref.num_timesteps
    w_k = {n: v.clone() for n, v in ref.policy.state_dict().items()}
    opt_k = ref.policy.optimizer.state_dict()
    print(f"trajectory (order seed {trajectory}) at k = {k_real}: val return {val.mean_return(ref):.1f}")
    rows = []
    init = adapter.initial_weights(0)
    names = {"init": "from k = 0 (the init)", "fresh": "fresh RMSprop (as now)", "state": "RMSprop state of k"}
    for variant in (names[v] for v in variants):
        for seed in seeds:
            m = build_algorithm(setup, seed)
            m.policy.load_state_dict(init if variant.startswith("from k = 0") else w_k)
            if variant == "RMSprop state of k":
                m.policy.optimizer.load_state_dict(opt_k)
            before = flat(m.policy)
            m.num_timesteps = 0 if variant.startswith("from k = 0") else k_real
            m.learn(total_timesteps=FIRST, reset_num_timesteps=False)
            moved = float((flat(m.policy) - before).norm() / before.norm())
            early = val.mean_return(m)
            m.learn(total_timesteps=BUDGET - m.num_timesteps, reset_num_timesteps=False)
            rows.append((variant, seed, moved, early, test.mean_return(m)))
            m.get_env().close()
    ref.learn(total_timesteps=BUDGET - ref.num_timesteps, reset_num_timesteps=False)
    print(f"trajectory continued to {ref.num_timesteps} without a restart: test return {test.mean_return(ref):.1f}")
    print("| copy from k | order seed | weights moved by the first 10 updates | val return after them | final test |")
    print("|---|---|---|---|---|")
    for variant, seed, moved, early, final in rows:
        print(f"| {variant} | {seed} | {moved:.4f} | {early:.1f} | {final:.1f} |")
    for variant in dict.fromkeys(r[0] for r in rows):
        finals = [r[4] for r in rows if r[0] == variant]
        moves = [r[2] for r in rows if r[0] == variant]
        print(
            f"{variant}: median moved {statistics.median(moves):.4f}, median final test {statistics.median(finals):.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
