"""Recipe: a new control with a parameter of its own, in this one file and nowhere else.

Registering the class is all it takes: `--controls ...,shuffled_survivors` trains it beside each ticket, its
rows land in results.csv, and its field is the flag `--shuffled-survivors-share` that joins the run's hash.
"""

import json
from dataclasses import dataclass

import pandas as pd
import pytest
import torch

from benchmarks.run import main
from lth_core.config import opt
from lth_core.controls import CONTROLS, Control, ControlInput
from lth_core.job import StateDict
from lth_core.masks import Mask

TABLE = {"toy": "toy_adapter:ToyAdapter"}
CALLS: list[tuple[ControlInput, StateDict]] = []


@CONTROLS.register("shuffled_survivors")
@dataclass(frozen=True)
class ShuffledSurvivors(Control):
    """The ticket's mask on its rewind weights with surviving values permuted within each tensor: does a ticket
    need its weights in place, or only their distribution per layer?"""

    share: float = opt(1.0, "fraction of each tensor's surviving entries whose values are permuted among them")

    def __call__(self, c: ControlInput) -> tuple[StateDict, Mask]:
        g = torch.Generator().manual_seed(c.seed)
        weights = dict(c.rewind_weights)
        for name, m in c.ticket_mask.tensors.items():
            kept = torch.nonzero(m.flatten()).flatten()
            pick = kept[torch.randperm(kept.numel(), generator=g)[: round(self.share * kept.numel())]]
            flat = weights[name].flatten().clone()
            flat[pick] = flat[pick[torch.randperm(pick.numel(), generator=g)]]
            weights[name] = flat.view_as(weights[name])
        CALLS.append((c, weights))
        return weights, c.ticket_mask


def run(out, *flags: str):
    CALLS.clear()
    main(
        [
            "--domain",
            "toy",
            "--levels",
            "2",
            "--trials",
            "1",
            "--controls",
            "random_mask,shuffled_survivors",
            "--out",
            str(out),
            "--noprogress",
            *flags,
        ],
        TABLE,
    )
    (folder,) = out.iterdir()
    return json.loads((folder / "run.json").read_text()), pd.read_csv(folder / "results.csv")


def test_its_rows_appear_in_results_beside_the_ticket(tmp_path):
    meta, df = run(tmp_path / "a", "--shuffled-survivors-share", "0.5")
    rows = df[df.kind == "shuffled_survivors"].sort_values("level")
    assert list(rows.level) == [1, 2] and (rows.status == "ok").all()
    tickets = df[df.kind == "ticket"].sort_values("level")
    assert list(rows.density) == list(tickets.density) and list(rows.kept) == list(tickets.kept)
    assert meta["identity"]["imp"]["params"] == {"shuffled_survivors": {"share": 0.5}}
    for c, weights in CALLS:  # each surviving tensor holds the same values, partly moved
        for name, m in c.ticket_mask.tensors.items():
            before, after = c.rewind_weights[name][m], weights[name][m]
            assert torch.equal(before.sort().values, after.sort().values) and not torch.equal(before, after)
            assert torch.equal(weights[name][~m], c.rewind_weights[name][~m])


def test_its_parameter_is_a_flag_and_changes_the_hash(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--domain", "toy", "--help"], TABLE)
    text = " ".join(capsys.readouterr().out.split())
    assert "--shuffled-survivors-share float" in text and "whose values are permuted among them" in text
    half, _ = run(tmp_path / "half", "--shuffled-survivors-share", "0.5")
    full, _ = run(tmp_path / "full")
    assert full["identity"]["imp"]["params"] == {"shuffled_survivors": {"share": 1.0}}
    assert half["config_hash"] != full["config_hash"]
