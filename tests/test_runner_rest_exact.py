"""The runner's start and its run on tiny toy runs (tables not drawn): each refusal before anything is written, by
its exact line; run.json as written; what `run` does around the jobs (tables per level, progress, a folder of the
previous release, mixed executions); the cost columns and the early-bird watch it hands the dense job
(mutation testing of lth_core/imp_runner.py, the parts outside its rows and jobs)."""

from __future__ import annotations

import json
import re

import pytest
import torch
from toy_adapter import ToyAdapter, ToyConfig

from lth_core import tables
from lth_core.adapter import Adapter
from lth_core.config import ImpConfig, RunOptions, full_dict
from lth_core.controls import CONTROLS, ControlInput
from lth_core.early_bird import EarlyBirdSpec, Target
from lth_core.errors import UsageError
from lth_core.imp_runner import ImpRunner, derived_seed
from lth_core.masks import Mask
from lth_core.presets import Preset
from lth_core.provenance import git_commit
from lth_core.store import RunStore
from lth_core.strategies import Strategy

CFG = ToyConfig(hidden=4, steps=6, eval_every=3)
NAMES = ("0.weight", "2.weight", "4.weight")
KEPT = {"0.weight": 32, "2.weight": 13, "4.weight": 10}  # level 1 at rate 0.2


class Flops(ToyAdapter):
    """The toy domain counting a step's FLOPs as 6 per kept weight (dense: 68), so the cost columns have values."""

    presets = {"over": Preset("over", "names a head no toy has", imp={"rate_overrides": "head=0.1"}, domain={})}

    def step_flops(self, mask):
        return 6.0 * (sum(int(m.sum()) for m in mask.values()) if mask is not None else 68)


class Blind(Strategy):
    """A strategy exposing no scores (every registered one does)."""

    def __call__(self, step):
        return step.mask


class Counted(Flops):
    pass


class NoLoss(ToyAdapter):
    training_loss = Adapter.training_loss  # type: ignore[assignment]


class Shaped(ToyAdapter):
    def input_shape(self):
        return (10,)


def runner(out, imp=None, cfg=CFG, adapter=None, preset="", validated=False, **opts) -> ImpRunner:
    a = adapter or Flops(cfg)
    opts.setdefault("progress", False)
    return ImpRunner(
        a,
        lambda: type(a)(cfg),
        imp or ImpConfig(levels=1, trials=1, controls="", rewind_step="3", seed=7),
        RunOptions(out=str(out), **opts),
        preset=preset,
        validated=validated,
    )


@pytest.fixture
def no_tables(monkeypatch):
    drawn = []
    monkeypatch.setattr(tables, "write_tables", lambda store, plots: drawn.append(plots))
    return drawn


def refused(match: str, out, **kw) -> None:
    with pytest.raises(UsageError, match=match):
        runner(out, **kw)
    assert not any(out.iterdir())


def test_each_refusal_is_one_line_before_anything_is_written(tmp_path):
    imp = lambda **k: ImpConfig(**{"levels": 1, "trials": 1, "controls": "", **k})  # noqa: E731
    refused(r"^--rate 1.5 must be in \(0, 1\)$", tmp_path, imp=imp(rate=1.5))
    refused("^unknown optimizer 'nope'", tmp_path, cfg=ToyConfig(optimizer="nope"))
    runner(tmp_path, cfg=ToyConfig(optimizer="nope"), validated=True)  # the caller validated: not again
    refused(
        r"^toy: the model of these settings has no weights to prune in 0\.weight, 2\.weight, 4\.weight \(a width "
        r"of 0\?\)$",
        tmp_path,
        cfg=ToyConfig(hidden=0),
    )
    refused(
        r"^strategy 'movement' scores the training its mask is drawn from; schedule 'at_init' prunes before any "
        r"training \(use iterative or one_shot\)$",
        tmp_path,
        imp=imp(strategy="movement", schedule="at_init"),
    )
    refused(
        "^--ticket-from 'nowhere' is not a run folder",
        tmp_path,
        ticket_from="nowhere",
        imp=imp(strategy="movement", schedule="at_init"),
    )  # a transfer prunes nothing: not refused for that
    refused(
        r"^domain 'toy' cannot training loss, which the strategy 'snip' needs$",
        tmp_path,
        imp=imp(strategy="snip"),
        adapter=NoLoss(CFG),
    )
    blind = imp(strategy="random", controls="inverted")
    blind.make_strategy = lambda: Blind()  # type: ignore[method-assign]  # a strategy that exposes no scores
    refused(r"^the control 'inverted' inverts the strategy's scores; 'random' exposes none$", tmp_path, imp=blind)
    refused(
        r"^the control 'inverted' needs the pruning step of its ticket; --ticket-from has none$",
        tmp_path,
        imp=imp(controls="inverted"),
        ticket_from="nowhere",
    )
    refused(
        r"^--compact trains structured tickets; --strategy 'magnitude_layerwise' prunes no groups$",
        tmp_path,
        imp=imp(compact=True),
    )
    refused(
        r"^--schedule early_bird draws masks in training; --strategy snip needs data$",
        tmp_path,
        imp=imp(schedule="early_bird", strategy="snip"),
    )
    refused("^--rate-overrides key 'head' matches no group", tmp_path, imp=imp(rate_overrides="head=0.1"))
    refused("^unknown executor 'nope'; valid choices: batched, local, process, ray$", tmp_path, executor="nope")
    runner(tmp_path, imp=imp(rate_overrides="head=0.1"), preset="over")  # a preset's own key may match nothing
    assert not any(tmp_path.iterdir())


def test_what_the_runner_resolves_at_start(tmp_path):
    imp = ImpConfig(levels=2, trials=1, rate_overrides="output=0.1", controls="random_mask", rewind_step="0.5")
    r = runner(tmp_path, imp=imp)
    assert (r.budget, r.rewind, r.controls, r.input_shape) == (6, 3, ["random_mask"], None)
    assert r.shapes == {"0.weight": (4, 10), "2.weight": (4, 4), "4.weight": (3, 4)}
    assert r.rates == {"0.weight": 0.2, "2.weight": 0.2, "4.weight": 0.1}
    assert r.groups == {"0.weight": "fc", "2.weight": "fc", "4.weight": "output"} and r.preset == ""
    assert r.path == tmp_path / f"toy-{r.hash[:12]}" and r.executions == [] and r.source is None
    assert runner(tmp_path, imp=ImpConfig(levels=1, strategy="synflow"), adapter=Shaped(CFG)).input_shape == (10,)


def test_run_json_as_written(tmp_path, no_tables):
    r = runner(tmp_path, preset="over", imp=ImpConfig(levels=1, trials=1, controls="", rate_overrides="head=0.1"))
    meta = json.loads((r.run() / "run.json").read_text())
    created, finished = meta.pop("created"), meta.pop("finished")
    stamp = r"20\d\d-[01]\d-[0-3]\dT[0-2]\d:[0-5]\d:[0-5]\d"
    assert re.fullmatch(stamp, created) and re.fullmatch(stamp, finished) and created <= finished
    assert meta == json.loads(
        json.dumps(
            {
                "config_hash": r.hash,
                "identity": r.identity,
                "domain": "toy",
                "task": "blobs/mlp",
                "preset": "over",
                "imp": full_dict(r.imp),
                "domain_config": full_dict(CFG),
                "options": full_dict(r.options),
                "seed": 0,
                "metric": {
                    "name": "accuracy",
                    "higher_is_better": True,
                    "val_name": "val_loss",
                    "val_higher_is_better": False,
                },
                "budget": 6,
                "rewind_step": 0,
                "execution": r.execution,
                "prunable": r.groups,
                "rates": r.rates,
                "architecture_hash": r.arch_hash,
                "versions": r.versions(),
                "git_commit": git_commit(),
                "ticket_from": None,
                "recovered": [],
            }
        )
    )
    assert "torch" in meta["versions"] and meta["git_commit"] == git_commit()


def test_run_draws_tables_per_level_plots_at_the_end_and_shows_its_progress(tmp_path, no_tables, capsys):
    imp = ImpConfig(levels=2, trials=1, controls="random_mask", rewind_step="3", seed=7)
    path = runner(tmp_path, imp=imp, progress=True).run()
    assert no_tables == [False, False, True]
    err = capsys.readouterr().err
    assert "toy blobs/mlp" in err and "5/5" in err and "level 2/2" in err and re.search(r"\d(job/s|s/job)", err)
    runner(tmp_path, imp=imp, progress=True).run()  # everything done: the bar is full at once
    assert no_tables == [False, False, True, False, False, True] and "5/5" in capsys.readouterr().err
    # a folder of the previous release (no `execution` in run.json): it is named there on resume
    meta = json.loads((path / "run.json").read_text())
    del meta["execution"]
    (path / "run.json").write_text(json.dumps(meta))
    capsys.readouterr()
    runner(tmp_path, imp=imp).run()
    assert json.loads((path / "run.json").read_text())["execution"] == runner(tmp_path, imp=imp).execution
    assert "toy blobs/mlp" not in capsys.readouterr().err  # --no-progress: no bar


def test_a_resume_under_another_execution_records_both_where_allowed(tmp_path, no_tables):
    imp = ImpConfig(levels=0, trials=1, controls="")
    path = runner(tmp_path, imp=imp).run()
    first = json.loads((path / "run.json").read_text())["execution"]
    with pytest.raises(UsageError, match="--cpus-per-job"):
        runner(tmp_path, imp=imp, cpus_per_job=2.0)
    r = runner(tmp_path, imp=imp, cpus_per_job=2.0, allow_mixed_execution=True)
    r.run()
    meta = json.loads((path / "run.json").read_text())
    assert meta["executions"] == [first, r.execution] and meta["allow_mixed_execution"] is True
    assert meta["execution"] == first


def test_cost_columns_sum_the_trainings_a_ticket_took_to_find(tmp_path, no_tables):
    imp = ImpConfig(levels=2, trials=1, controls="random_mask", rewind_step="3", seed=7)
    path = runner(tmp_path, imp=imp).run()
    store = RunStore(path)
    rows = {k: store.record(k)["row"] for k in ("L00-dense-t0", "L01-ticket-t0", "L01-random_mask-t0", "L02-ticket-t0")}
    dense, t1, c1, t2 = rows.values()
    assert (dense["train_flops"], dense["discovery_steps"], dense["discovery_flops"]) == (
        6 * 6 * 68.0,
        6.0,
        6 * 6 * 68.0,
    )
    assert t1["train_flops"] == 3 * 6.0 * 55 and c1["train_flops"] == 3 * 6.0 * 55
    assert (t1["discovery_steps"], t1["discovery_flops"]) == (6.0, 6 * 6 * 68.0)
    assert (c1["discovery_steps"], c1["discovery_flops"]) == (6.0, 6 * 6 * 68.0)  # its ticket's, read back
    assert (t2["discovery_steps"], t2["discovery_flops"]) == (9.0, 6 * 6 * 68.0 + 3 * 6.0 * 55)
    assert all("eb_step" not in r and "eb_declared" not in r for r in rows.values())


def test_a_failed_or_transferred_row_has_no_discovery_cost(tmp_path, no_tables):
    path = runner(tmp_path / "nan", cfg=ToyConfig(hidden=4, steps=6, eval_every=3, nan_at=1)).run()
    row = RunStore(path).record("L00-dense-t0")["row"]
    assert row["status"] == "diverged" and (row["discovery_steps"], row["discovery_flops"]) == (None, None)
    src = runner(tmp_path / "src").run()
    dst = runner(tmp_path / "dst", cfg=ToyConfig(hidden=4, steps=6, eval_every=3, lr=0.05), ticket_from=str(src)).run()
    for key in ("L00-dense-t0", "L01-ticket-t0"):
        row = RunStore(dst).record(key)["row"]
        assert row["status"] == "ok" and (row["discovery_steps"], row["discovery_flops"]) == (None, None), key
        assert row["train_flops"] is not None
    again = Counted(ToyConfig(hidden=4, steps=6, eval_every=3, lr=0.05))
    assert runner(tmp_path / "dst", ticket_from=str(src), adapter=again).run() == dst
    assert again.calls == 0  # a finished transfer is finished: its dense run needs no captured weights
    assert json.loads((dst / "run.json").read_text())["ticket_from"] == {
        "path": str(src),
        "config_hash": json.loads((src / "run.json").read_text())["config_hash"],
    }


def test_an_early_bird_run_hands_the_dense_job_its_watch_and_writes_where_it_stopped(tmp_path, no_tables):
    seen = {}

    class Watched(Flops):
        def train(self, job):
            seen[job.key] = job
            return super().train(job)

    cfg = ToyConfig(hidden=4, steps=6, eval_every=1)
    imp = ImpConfig(
        levels=2,
        trials=1,
        controls="",
        schedule="early_bird",
        seed=7,
        params={"early_bird": {"window": 2, "epsilon": 0.5}},
    )
    r = runner(tmp_path, imp=imp, cfg=cfg, adapter=Watched(cfg))
    store = RunStore(r.run())
    spec = seen["L00-dense-t0"].early_bird
    rates = {"0.weight": 0.2, "2.weight": 0.2, "4.weight": 0.2}
    assert spec == EarlyBirdSpec(
        strategy="magnitude_layerwise",
        params={},
        names=NAMES,
        global_names=r.global_names,
        targets=tuple(Target(n, {k: 1 - 0.8**n for k in rates}, derived_seed(7, n, 0)) for n in (1, 2)),
        window=2,
        epsilon=0.5,
    )
    assert all(seen[k].early_bird is None for k in seen if k != "L00-dense-t0")
    dense = store.record("L00-dense-t0")
    at = dense["early_bird"]["declared"]
    assert dense["early_bird"]["steps"] == [p["step"] for p in dense["curve"]]
    assert set(at) == {"1", "2"} and all(v is not None for v in at.values())
    d = dense["row"]
    assert d["eb_declared"] is True and d["eb_step"] == d["steps"] == max(at.values())
    # a dense run whose captured weights are gone trains again (its tickets, recorded, do not)
    store.state_path("captured-L02-t0").unlink()
    seen.clear()
    runner(tmp_path, imp=imp, cfg=cfg, adapter=Watched(cfg)).run()
    assert list(seen) == ["L00-dense-t0"] and store.state_path("captured-L02-t0").is_file()
    seen.clear()
    runner(tmp_path, imp=imp, cfg=cfg, adapter=Watched(cfg)).run()
    assert seen == {}  # and with every captured file there, nothing
    for level in (1, 2):
        t = store.record(f"L{level:02d}-ticket-t0")["row"]
        assert (t["eb_step"], t["eb_declared"]) == (at[str(level)], True)
        assert (t["discovery_steps"], t["discovery_flops"]) == (float(at[str(level)]), at[str(level)] * 6 * 68.0)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A finished source run (levels 1, trials 1, rewound to step 3) for the transfer refusals."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tables, "write_tables", lambda store, plots: None)
        return runner(tmp_path_factory.mktemp("src")).run()


def copy(source, tmp_path):
    import shutil

    return shutil.copytree(source, tmp_path / source.name)


def test_a_transfer_refuses_a_source_that_is_not_this_runs_in_one_line(source, tmp_path):
    out = tmp_path / "out"
    out.mkdir()

    def bad(match, src, **kw):
        with pytest.raises(UsageError, match=match):
            runner(out, ticket_from=str(src), **kw)
        assert not any(out.iterdir())

    bad(f"^--ticket-from '{tmp_path}' is not a run folder \\(no run.json there\\)$", tmp_path)
    bad(r"architecture differs \(toy/blobs/mlp \w+ vs toy/blobs/mlp \w+\)$", source, cfg=ToyConfig(hidden=8))

    class Other(ToyAdapter):
        domain = "other"

    bad(r"architecture differs \(toy/blobs/mlp", source, adapter=Other(CFG))
    bad(r"has 1 levels x 1 trials; asked for 2 x 1$", source, imp=ImpConfig(levels=2, trials=1, rewind_step="3"))
    bad(r"has 1 levels x 1 trials; asked for 1 x 2$", source, imp=ImpConfig(levels=1, trials=2, rewind_step="3"))
    bad(
        r"rewound its tickets to step 3, this run to step 0; pass --rewind-step 3 to train them from where they were "
        r"rewound$",
        source,
        imp=ImpConfig(levels=1, trials=1, controls=""),
    )
    r = runner(out, imp=ImpConfig(levels=0, trials=1, controls=""), ticket_from=str(source))  # level 0: no rewind
    assert set(r.source.states) == {"init-t0"}
    for field in ("imp", "config_hash", "rewind_step"):
        broken = copy(source, tmp_path / field)
        meta = json.loads((broken / "run.json").read_text())
        del meta[field]
        (broken / "run.json").write_text(json.dumps(meta))
        bad("lacks imp.levels, imp.trials, config_hash or rewind_step", broken)
    for name, state in (
        ("init-t0", None),
        ("rewind-t0", None),
        ("mask-L01-t0", None),
        ("rewind-t0", b"garbage"),
        ("init-t0", {"0.weight": torch.zeros(4, 10)}),
        ("rewind-t0", {**{n: torch.zeros(1) for n in NAMES}}),
        ("mask-L01-t0", {"9.weight": torch.ones(4, 10)}),
        ("mask-L01-t0", {"0.weight": torch.ones(4, 9)}),
        ("mask-L01-t0", [torch.ones(4, 10)]),
    ):
        broken = copy(source, tmp_path / f"{name}-{len(str(state))}")
        f = broken / "state" / f"{name}.pt"
        if state is None:
            f.unlink()
            bad(f"missing {name}.pt in state/ \\(run it to the end first\\)$", broken)
        elif isinstance(state, bytes):
            f.write_bytes(state)
            bad(
                f"^--ticket-from: {re.escape(str(f))} is unreadable \\(\\w+Error\\); that folder is only read",
                broken,
            )
        else:
            torch.save(state, f)
            bad(
                f"^--ticket-from: {re.escape(str(f))} does not hold this run's tensors \\(names and shapes of "
                r"toy/blobs/mlp\)$",
                broken,
            )
    bare = copy(source, tmp_path / "values")
    torch.save({"0.weight": 1.0}, bare / "state" / "mask-L01-t0.pt")
    bad("does not hold this run's tensors", bare)


def test_a_transfer_reads_every_file_it_takes_at_start_and_hands_out_copies(source, tmp_path):
    imp = ImpConfig(levels=1, trials=1, controls="", rewind_step="3", seed=7)
    r = runner(tmp_path, imp=imp, ticket_from=str(source))
    assert (
        set(r.source.states) == {"init-t0", "rewind-t0", "mask-L01-t0"}
        and r.source.hash == json.loads((source / "run.json").read_text())["config_hash"]
    )
    a = r.source.load("rewind-t0")
    a["0.weight"].add_(1.0)
    assert torch.equal(r.source.load("rewind-t0")["0.weight"], RunStore(source).load_state("rewind-t0")["0.weight"])
    mask = Mask({k: v.bool() for k, v in r.source.load("mask-L01-t0").items()})
    assert mask.kept() == KEPT


def test_the_inverted_control_ranks_by_the_tickets_own_pruning_step(tmp_path, no_tables):
    """`_ranking`: the step the ticket was drawn with again (the mask it pruned from, the strategy's scores)."""
    seen = {}

    class Kept(Flops):
        def train(self, job):
            seen[job.key] = job
            return super().train(job)

    imp = ImpConfig(levels=1, trials=1, controls="inverted", strategy="magnitude_global", rewind_step="3", seed=7)
    store = RunStore(runner(tmp_path, imp=imp, adapter=Kept(CFG)).run())
    final, rewind = store.load_state("final-L00-t0"), store.load_state("rewind-t0")
    full = Mask({n: torch.ones_like(final[n], dtype=torch.bool) for n in NAMES})
    ticket = Mask(seen["L01-ticket-t0"].mask)
    seed = derived_seed(7, "control", "inverted", 1, 0)
    scores = {n: final[n].abs() for n in NAMES}
    inp = ControlInput(ticket, rewind, ToyAdapter(CFG).initial_weights, seed, lambda: (full, scores))
    _, want = CONTROLS.build("inverted", {})(inp)
    got = Mask(seen["L01-inverted-t0"].mask)
    assert all(torch.equal(got[n], want[n]) for n in NAMES) and got.kept() == ticket.kept()
