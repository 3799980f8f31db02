"""Pruning at initialization end to end: `--schedule at_init` draws each level's mask from the rewind weights, the
very weights the ticket then trains from, straight to the level's density, in vision, RL and NLP."""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
import pytest
import torch

from benchmarks.run import main
from domains.vision.adapter import VisionAdapter
from domains.vision.config import VisionConfig
from lth_core.config import parse_overrides
from lth_core.imp_runner import derived_seed
from lth_core.masks import Mask
from lth_core.schedules import SCHEDULES, Source
from lth_core.strategies import STRATEGIES, PruneStep, ScoringHook, resolve_rates


def run(tmp_path, domain: str, *flags: str):
    out = tmp_path / domain
    assert (
        main(["--domain", domain, "--preset", "quick", "--trials", "1", "--out", str(out), "--noprogress", *flags]) == 0
    )
    (folder,) = out.iterdir()
    return folder, pd.read_csv(folder / "results.csv"), json.loads((folder / "run.json").read_text())


def test_at_init_prunes_the_rewind_weights_straight_to_each_levels_density():
    s = SCHEDULES.get("at_init")
    assert s.source(3) == Source("rewind", 0, 0)
    assert s.rates(3, {"a": 0.2}) == {"a": pytest.approx(1 - 0.8**3)}
    assert not any(s.keeps_final(level, 4) for level in range(5))  # no trained weights are pruned from


def test_vision_snip_at_init_scores_the_weights_the_ticket_trains(tmp_path):
    flags = ("--strategy", "snip", "--schedule", "at_init", "--levels", "2", "--budget-scale", "0.05")
    folder, rows, meta = run(tmp_path, "vision", *flags, "--controls", "layer_shuffle,inverted", "--rewind-step", "50")
    assert (rows.status == "ok").all() and len(rows) == 1 + 2 * 3
    assert not list((folder / "state").glob("final*"))  # nothing trained is kept to prune from
    rewind = torch.load(folder / "state" / "rewind-t0.pt", weights_only=True)
    init = torch.load(folder / "state" / "init-t0.pt", weights_only=True)
    assert any(not torch.equal(rewind[k], init[k]) for k in init)  # rewind step 50: trained a little
    adapter = VisionAdapter(VisionConfig(**meta["domain_config"]))
    rates = resolve_rates(meta["prunable"], 0.36, parse_overrides("output=0.18"))
    for level in (1, 2):
        mask = Mask({k: v.bool() for k, v in torch.load(folder / "state" / f"mask-L0{level}-t0.pt").items()})
        step = PruneStep(
            weights={n: rewind[n] for n in mask},
            mask=Mask({n: torch.ones_like(m) for n, m in mask.tensors.items()}),
            rates=SCHEDULES.get("at_init").rates(level, rates),
            global_names=frozenset(n for n, g in meta["prunable"].items() if g != "output"),
            seed=derived_seed(0, level, 0),
            initial=init,
            rewind=rewind,
            score=ScoringHook(adapter.build, adapter.training_loss, derived_seed(0, level, 0), adapter.input_shape()),
            state=rewind,
        )
        again = STRATEGIES.get("snip")(step)
        assert all(torch.equal(again[n], mask[n]) for n in mask)  # the rewind weights, not the initial ones
        at_init = STRATEGIES.get("snip")(replace(step, weights={n: init[n] for n in mask}, state=init))
        assert any(not torch.equal(at_init[n], mask[n]) for n in mask)
        out = mask["fc.weight"]  # the output layer: layerwise at its override, exact count
        assert int(out.sum()) == out.numel() - round((1 - 0.82**level) * out.numel())
    lv = rows[rows.level > 0].set_index(["level", "kind"])
    for level in (1, 2):
        assert lv.loc[(level, "inverted"), "kept"] == lv.loc[(level, "ticket"), "kept"]
        assert lv.loc[(level, "layer_shuffle"), "kept"] == lv.loc[(level, "ticket"), "kept"]


def test_rl_snip_at_init_runs_end_to_end(tmp_path):
    _, rows, _ = run(
        tmp_path, "rl", "--strategy", "snip", "--schedule", "at_init", "--levels", "1", "--budget-scale", "0.02"
    )
    assert (rows.status == "ok").all() and set(rows.kind) == {"dense", "ticket", "random_reinit", "random_mask"}


def test_nlp_grasp_at_init_runs_end_to_end(tmp_path):
    flags = ("--strategy", "grasp", "--schedule", "at_init", "--levels", "1", "--budget-scale", "0.02")
    _, rows, _ = run(tmp_path, "nlp", *flags, "--controls", "inverted")
    assert (rows.status == "ok").all() and set(rows.kind) == {"dense", "ticket", "inverted"}


@pytest.mark.parametrize(
    "domain,flags,expected",
    [
        ("nlp", ["--strategy", "synflow"], "cannot input shape, which the strategy 'synflow' needs: its inputs are"),
        ("vision", ["--strategy", "snip_iterative", "--snip-iterative-rounds", "0"], "rounds 0 must be >= 1"),
        ("rl", ["--strategy", "movement", "--schedule", "at_init"], "prunes before any training"),
        ("vision", ["--strategy", "snip", "--snip-batches", "0"], "--snip-batches 0 must be >= 1"),
    ],
)
def test_what_cannot_run_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, domain, flags, expected):
    with pytest.raises(SystemExit) as e:
        main(["--domain", domain, "--preset", "quick", "--out", str(tmp_path / "out"), "--noprogress", *flags])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and expected in err, err
    assert not (tmp_path / "out").exists()


def test_criteria_quick_is_pruning_at_init_on_embedded_data_down_to_half_a_percent():
    p = VisionAdapter.presets["criteria-quick"]
    # embedded data, CPU: quick's model and data, with the training quick had before issue 19 (frozen, so the
    # criteria tables keep their identity)
    assert p.imp["schedule"] == "at_init" and p.domain == {**VisionAdapter.presets["quick"].domain, "lr": 1e-3}
    assert p.domain["dataset"] == "mnist1d" and p.domain["threads"] == 1
    assert set(p.imp["controls"].split(",")) == {"layer_shuffle", "random_reinit"} and p.imp["trials"] == 3
    assert (1 - p.imp["rate"]) ** p.imp["levels"] == pytest.approx(0.0053, abs=5e-4)
