"""The IMP runner end to end on the toy adapter: rewinding, controls, resume, transfer."""

import json

import pandas as pd
import pytest
import torch
from toy_adapter import ToyAdapter, ToyConfig

from lth_core.config import ImpConfig, RunOptions
from lth_core.errors import UsageError
from lth_core.imp_runner import ImpRunner
from lth_core.masks import Mask
from lth_core.store import RunStore

VOLATILE = ["wall_seconds", "scoring_s", "git_commit"]


def run(tmp, imp=None, cfg=None, adapter=None, **opts):
    cfg = cfg or ToyConfig()
    adapter = adapter or ToyAdapter(cfg)
    runner = ImpRunner(
        adapter,
        lambda: ToyAdapter(cfg),
        imp or ImpConfig(levels=2, trials=2),
        RunOptions(out=str(tmp), progress=False, **opts),
    )
    return runner.run(), adapter


def table(path):
    return pd.read_csv(path / "results.csv").drop(columns=VOLATILE)


def test_contract_files_and_columns(tmp_path):
    path, _ = run(tmp_path)
    for f in ("results.csv", "summary.csv", "summary.md", "figure1.png", "run.json"):
        assert (path / f).is_file(), f
    df = pd.read_csv(path / "results.csv")
    for col in [
        "domain",
        "task",
        "kind",
        "level",
        "trial",
        "density",
        "metric",
        "score",
        "early_stop_step",
        "final_score",
        "higher_is_better",
        "seed",
        "wall_seconds",
        "config_hash",
        "git_commit",
        "versions",
        "config",
    ]:
        assert col in df.columns, col
    assert len(df) == 2 + 2 * 2 * 3
    assert set(df[df.level == 0].kind) == {"dense"} and (df[df.level == 0].density == 1.0).all()
    meta = json.loads((path / "run.json").read_text())
    assert path.name.endswith(meta["config_hash"][:12]) and "torch" in meta["versions"]
    densities = df.groupby("level").density.unique()
    assert densities[1][0] == pytest.approx(0.8, abs=0.01) and densities[2][0] == pytest.approx(0.64, abs=0.01)


def test_rewind_to_step_k_uses_the_weights_captured_in_the_dense_run(tmp_path):
    path, _ = run(tmp_path, ImpConfig(levels=1, trials=1, rewind_step="20"))
    store = RunStore(path)
    init, rewind = store.load_state("init-t0"), store.load_state("rewind-t0")
    assert any(not torch.equal(init[k], rewind[k]) for k in init)
    # recompute step 20 of the dense job independently
    a = ToyAdapter(ToyConfig())
    from lth_core.job import Job

    out = a.train(Job(level=0, kind="dense", trial=0, seed=0, weights=init, mask=None, budget=60, capture_steps=(20,)))
    assert all(torch.equal(out.captured[20][k], rewind[k]) for k in rewind)
    df = pd.read_csv(path / "results.csv")
    assert (df[df.level == 1].start_step == 20).all()
    fraction, _ = run(tmp_path / "f", ImpConfig(levels=1, trials=1, rewind_step="0.25"))
    assert json.loads((fraction / "run.json").read_text())["rewind_step"] == 15


def test_controls_really_differ_from_the_ticket(tmp_path):
    path, _ = run(tmp_path, ImpConfig(levels=1, trials=1))
    df = pd.read_csv(path / "results.csv").set_index("kind")
    assert df.loc["ticket", "kept"] == df.loc["random_mask", "kept"] == df.loc["random_reinit", "kept"]
    assert (
        len({df.loc[k, "score"] for k in ("ticket", "random_mask", "random_reinit")}) > 1
        or len({df.loc[k, "val_at_stop"] for k in ("ticket", "random_mask", "random_reinit")}) == 3
    )


class Crash(BaseException):
    """Stands for a kill: not an Exception, so no executor turns it into a row."""


class CrashingAdapter(ToyAdapter):
    def __init__(self, cfg, crash_at):
        super().__init__(cfg)
        self.crash_at = crash_at

    def train(self, job):
        if self.calls + 1 == self.crash_at:
            raise Crash()
        return super().train(job)


@pytest.mark.parametrize("crash_at", [1, 4, 7, 12])
def test_resume_after_a_kill_mid_level_gives_the_same_table(tmp_path, crash_at):
    ref, _ = run(tmp_path / "ref")
    with pytest.raises(Crash):
        run(tmp_path / "crash", adapter=CrashingAdapter(ToyConfig(), crash_at))
    resumed, adapter = run(tmp_path / "crash")
    assert adapter.calls == 14 - (crash_at - 1)  # no finished job trained twice
    pd.testing.assert_frame_equal(table(ref), table(resumed))


def test_one_shot_prunes_from_the_dense_weights(tmp_path):
    path, _ = run(tmp_path, ImpConfig(levels=3, trials=1, schedule="one_shot"))
    df = pd.read_csv(path / "results.csv")
    t = df[df.kind == "ticket"].sort_values("level")
    assert list(t.density.round(3)) == [0.8, 0.64, 0.512]
    store = RunStore(path)
    assert not store.state_path("final-L01-t0").exists()  # one-shot levels never feed each other


def test_ticket_transfer_trains_the_source_tickets_under_another_config(tmp_path):
    src, _ = run(tmp_path / "src", ImpConfig(levels=2, trials=1))
    dst, _ = run(
        tmp_path / "dst", ImpConfig(levels=2, trials=1), cfg=ToyConfig(optimizer="sgd", lr=0.05), ticket_from=str(src)
    )
    for level in (1, 2):
        a = Mask.load(RunStore(src).state_path(f"mask-L{level:02d}-t0"))
        df = pd.read_csv(dst / "results.csv")
        assert df[(df.level == level) & (df.kind == "ticket")].kept.iloc[0] == a.num_kept
    meta = json.loads((dst / "run.json").read_text())
    assert meta["ticket_from"]["config_hash"] == json.loads((src / "run.json").read_text())["config_hash"]
    with pytest.raises(UsageError, match="architecture differs"):
        run(tmp_path / "bad", ImpConfig(levels=1, trials=1), cfg=ToyConfig(hidden=16), ticket_from=str(src))
    with pytest.raises(UsageError, match="levels"):
        run(tmp_path / "bad", ImpConfig(levels=5, trials=1), ticket_from=str(src))


def test_diverged_training_is_a_row_and_the_run_goes_on(tmp_path):
    path, _ = run(tmp_path, ImpConfig(levels=1, trials=1), cfg=ToyConfig(nan_at=5))
    df = pd.read_csv(path / "results.csv")
    assert (df.status == "diverged").all() and df.score.isna().all()
    summary = pd.read_csv(path / "summary.csv")
    assert summary.diverged.sum() == 1  # the dense job; the trial stops there
