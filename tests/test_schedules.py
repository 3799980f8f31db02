"""Schedules are registered classes: the built-ins keep the runner's old rules, and a new one is one class."""

import json
from dataclasses import dataclass

import pandas as pd
import pytest

from benchmarks.run import main
from lth_core.config import opt
from lth_core.schedules import SCHEDULES, Schedule, Source

TABLE = {"toy": "toy_adapter:ToyAdapter"}


@pytest.mark.parametrize("levels", range(5))
def test_builtins_keep_the_final_weights_the_runner_kept_before(levels):
    for level in range(levels + 1):
        assert SCHEDULES.get("iterative").keeps_final(level, levels) == (level < levels)
        assert SCHEDULES.get("one_shot").keeps_final(level, levels) == (level < levels and level == 0)


def test_builtin_sources_and_rates():
    base = {"a": 0.2, "b": 0.1}
    assert SCHEDULES.get("iterative").source(3) == Source("final", 2, 2)
    assert SCHEDULES.get("iterative").rates(3, base) == base
    assert SCHEDULES.get("one_shot").source(3) == Source("final", 0, 0)
    assert SCHEDULES.get("one_shot").rates(3, base) == {"a": 1 - 0.8**3, "b": 1 - 0.9**3}


@SCHEDULES.register("anchored")
@dataclass(frozen=True)
class Anchored(Schedule):
    """Iterative masks, but pruned by the trained weights of level `anchor` once the run is past it."""

    anchor: int = opt(0, "level whose trained weights rank every later level's pruning step")

    def source(self, level: int) -> Source:
        return Source("final", min(self.anchor, level - 1), level - 1)

    def rates(self, level, base):
        return dict(base)


def test_a_schedule_of_one_class_with_a_flag_runs_and_joins_the_hash(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--domain", "toy", "--help"], TABLE)
    assert "--anchored-anchor int" in " ".join(capsys.readouterr().out.split())
    assert Anchored(anchor=1).keeps_final(1, 3) and not Anchored(anchor=1).keeps_final(2, 3)
    metas = {}
    for anchor in ("0", "1"):
        out = tmp_path / anchor
        main(
            [
                "--domain",
                "toy",
                "--levels",
                "3",
                "--trials",
                "1",
                "--controls",
                "",
                "--schedule",
                "anchored",
                "--anchored-anchor",
                anchor,
                "--out",
                str(out),
                "--noprogress",
            ],
            TABLE,
        )
        (folder,) = out.iterdir()
        metas[anchor] = json.loads((folder / "run.json").read_text())
        df = pd.read_csv(folder / "results.csv")
        tickets = df[df.kind == "ticket"].sort_values("level")
        assert (tickets.status == "ok").all() and list(tickets.level) == [1, 2, 3]
        assert tickets.density.tolist() == pytest.approx([0.8, 0.64, 0.512], abs=0.01)
    assert metas["1"]["identity"]["imp"]["params"] == {"anchored": {"anchor": 1}}
    assert metas["0"]["config_hash"] != metas["1"]["config_hash"]
