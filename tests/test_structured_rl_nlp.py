"""Structured levels end to end in RL (policy neurons) and NLP (attention heads and FFN neurons): `l1_structured`
through the CLI writes masks that are exactly group masks, nested level to level, with the families' counts;
and each level's ticket trained as the compacted model (rewind weights cut to the kept groups, no mask)
reproduces the masked ticket's recorded training: the same validation curve and score, the same final weights
within float tolerance."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from benchmarks.run import main
from lth_core.job import Job
from lth_core.masks import Mask
from lth_core.structured import current_keeps, is_structured

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CLI = ["--strategy", "l1_structured", "--levels", "2", "--rate", "0.5", "--trials", "1", "--controls", "random_reinit"]


def run(tmp_path: Path, args: list[str]) -> tuple[Path, pd.DataFrame, dict]:
    assert main([*args, *CLI, "--out", str(tmp_path / "out"), "--noprogress"]) == 0
    (folder,) = list((tmp_path / "out").iterdir())
    rows = pd.read_csv(folder / "results.csv")
    assert (rows.status == "ok").all() and len(rows) == 5
    config = json.loads(rows.config[0])["domain_config"]
    config.pop("data_fingerprint", None)  # derived, not a field
    return folder, rows, config


def levels(adapter, folder: Path, counts):
    """Per level: the kept groups (checked against `counts(family)`: kept per level) and the compacted rewind
    weights."""
    fams = tuple(adapter.structure(adapter.build(0)))
    rewind = torch.load(folder / "state" / "rewind-t0.pt", weights_only=True)
    masks = [Mask.load(folder / "state" / f"mask-L{lv:02d}-t0.pt") for lv in (1, 2)]
    assert masks[1].is_subset_of(masks[0])
    out = []
    for lv, mask in enumerate(masks, start=1):
        assert is_structured(fams, mask)  # nothing but whole groups cut: the compacted model is the masked one
        keep = current_keeps(fams, mask)
        for fam in fams:
            assert int(keep[fam.name].sum()) == counts(fam)[lv - 1], fam.name
        model = adapter.build(0)
        model.load_state_dict({k: v * mask[k] if k in mask else v for k, v in rewind.items()})
        small = adapter.compact(model, keep)
        out.append((lv, keep, {k: v.detach().clone() for k, v in small.state_dict().items()}))
    return out


def recorded_curve(folder: Path, level: int) -> list[tuple[int, float]]:
    curve = json.loads((folder / "jobs" / f"L{level:02d}-ticket-t0.json").read_text())["curve"]
    return [(p["step"], p["val"]) for p in curve]


def compacted_ticket(adapter, rows: pd.DataFrame, level: int, weights: dict):
    row = rows[(rows.kind == "ticket") & (rows.level == level)].iloc[0]
    out = adapter.train(
        Job(level, "ticket", 0, int(row.seed), weights, None, adapter.budget(), keep_final_weights=True)
    )
    assert out.status == "ok"
    return row, out


@pytest.mark.parametrize("algo", ["a2c", "dqn"])
def test_rl_policy_neurons_structured_levels_end_to_end(tmp_path, algo):
    pytest.importorskip("stable_baselines3")
    from domains.rl.adapter import RLAdapter
    from domains.rl.config import RLConfig

    args = ["--domain", "rl", "--env", "CartPole-v1", "--algo", algo, "--net-arch", "16,8", "--timesteps", "640"]
    args += ["--eval-every", "320", "--eval-episodes", "2"]
    if algo == "dqn":  # the target network holds the Q-network's mask; compacted, it is cut with it
        args += ["--algo-kwargs", "learning_starts=64,train_freq=32,gradient_steps=4,target_update_interval=16"]
    folder, rows, config = run(tmp_path, args)
    adapter = RLAdapter(RLConfig(**config))
    for level, keep, small in levels(adapter, folder, lambda f: [8, 4] if f.name.endswith(".0") else [4, 2]):
        row, out = compacted_ticket(adapter, rows, level, small)
        assert [(p.step, p.val) for p in out.curve] == recorded_curve(folder, level)
        assert (out.score, out.final_score) == (row.score, row.final_score)
        if level == 1:  # the masked ticket's final weights, compacted, are the compacted training's
            final = adapter.build(0)
            final.load_state_dict(torch.load(folder / "state" / "final-L01-t0.pt", weights_only=True))
            cut = adapter.compact(final, keep).state_dict()
            for k, v in cut.items():
                torch.testing.assert_close(out.final_weights[k], v, atol=1e-5, rtol=0, msg=k)
            assert adapter.evaluate(dict(cut), "test") == {"return": row.final_score}


def test_nlp_heads_and_ffn_neurons_structured_levels_end_to_end(tmp_path):
    pytest.importorskip("fairseq")
    from domains.nlp.adapter import NLPAdapter
    from domains.nlp.config import NLPConfig

    args = ["--domain", "nlp", "--synthetic-size", "600", "--synthetic-eval-size", "24", "--vocab-size", "200"]
    args += ["--max-updates", "6", "--eval-every", "3", "--warmup", "2", "--lr", "3e-3", "--max-tokens", "512"]
    args += ["--dropout", "0", "--device", "cpu", "--cache-dir", str(tmp_path / "cache")]  # dropout: RNG by shape
    folder, rows, config = run(tmp_path, args)
    adapter = NLPAdapter(NLPConfig(**config))
    for level, keep, small in levels(adapter, folder, lambda f: [2, 1] if f.kind == "head" else [64, 32]):
        assert small["encoder.layers.0.self_attn.q_proj.weight"].shape == (64 // 2**level, 64)
        row, out = compacted_ticket(adapter, rows, level, small)
        want = recorded_curve(folder, level)
        assert [p.step for p in out.curve] == [s for s, _ in want]
        assert [p.val for p in out.curve] == pytest.approx([v for _, v in want], rel=1e-5)
        assert out.score == pytest.approx(row.score, abs=1e-6)
        if level == 1:
            final = adapter.build(0)
            final.load_state_dict(torch.load(folder / "state" / "final-L01-t0.pt", weights_only=True))
            cut = adapter.compact(final, keep).state_dict()
            for k, v in cut.items():  # Adam after 6 updates: ~4e-5 measured (the attention paths differ in rounding)
                torch.testing.assert_close(out.final_weights[k], v, atol=5e-4, rtol=0, msg=k)


RL_ARGS = ["--domain", "rl", "--env", "CartPole-v1", "--algo", "a2c", "--net-arch", "16,8", "--timesteps", "640"]
RL_ARGS += ["--eval-every", "320", "--eval-episodes", "2"]
NLP_ARGS = ["--domain", "nlp", "--synthetic-size", "600", "--synthetic-eval-size", "24", "--vocab-size", "200"]
NLP_ARGS += ["--max-updates", "6", "--eval-every", "3", "--warmup", "2", "--lr", "3e-3", "--max-tokens", "512"]
NLP_ARGS += ["--dropout", "0", "--device", "cpu"]


@pytest.mark.parametrize("domain", ["rl", "nlp"])
def test_compact_flag_trains_compacted_with_the_masked_runs_results(tmp_path, domain):
    """`--compact` in RL and NLP: the structured ticket trains as the smaller model (its row says so) and the
    run's rows equal the masked run's (RL exactly; NLP within fairseq's rounding of the two attention paths)."""
    pytest.importorskip("stable_baselines3" if domain == "rl" else "fairseq")
    args = RL_ARGS if domain == "rl" else [*NLP_ARGS, "--cache-dir", str(tmp_path / "cache")]
    rows = {}
    for name, extra in (("masked", []), ("compact", ["--compact"])):
        _, r, _ = run(tmp_path / name, [*args, *extra])
        rows[name] = r.set_index(["level", "kind"]).sort_index()
    masked, compact = rows["masked"], rows["compact"]
    assert list(masked.index) == list(compact.index)
    assert masked.density.equals(compact.density) and masked.kept.equals(compact.kept)
    was = compact["compacted"].fillna(False).astype(bool)
    assert was[(1, "ticket")] and was[(2, "ticket")] and not was[(0, "dense")]
    assert "compacted" not in masked.columns or not masked["compacted"].fillna(False).astype(bool).any()
    if domain == "rl":
        assert masked.score.equals(compact.score) and masked.val_at_stop.equals(compact.val_at_stop)
    else:
        torch.testing.assert_close(
            torch.tensor(compact.val_at_stop.values), torch.tensor(masked.val_at_stop.values), atol=1e-4, rtol=1e-4
        )
