"""Named instability analyses (--lmc-preset): what each sets, explicit flags winning, one line for misuse, and
the CPU vision preset end to end at a tiny budget (its tickets found on the fly)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from benchmarks import instability
from benchmarks.fake_vision_files import write_cifar10, write_digits_as_mnist
from benchmarks.instability_presets import LMC_PRESETS
from lth_core.store import RunStore


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_cifar10(root)
    return write_digits_as_mnist(root)


def parsed(args: list[str], out: Path) -> list:
    found = instability.parse_all([*args, "--out", str(out)])
    for _, adapter in found:
        adapter.close()
    return [a for a, _ in found]


def test_frankle2020_lmc_names_three_tasks_k_to_5000_and_tickets_on_the_fly(tmp_path, data):
    out = tmp_path / "out"
    found = parsed(["--lmc-preset", "frankle2020-lmc", "--data-dir", str(data)], out)
    assert [a.adapter.task() for a in found] == ["mnist/lenet_300_100", "cifar10/resnet20", "cifar10/vgg16"]
    assert [a.budget for a in found] == [24000, 63000, 63000]
    assert all([k for _, k in a.ks][0] == 0 and [k for _, k in a.ks][-1] == 5000 for a in found)
    assert [a.levels for a in found] == [[0, 7, 12, 16], [0, 8], [0, 19]]
    assert all(a.finder is not None and a.lmc_preset == "frankle2020-lmc" for a in found)
    assert found[0].finder.imp.levels == 16 and found[0].finder.imp.controls == ""
    assert not out.exists()  # parsing writes nothing


@pytest.mark.parametrize(
    "name, domain, budget", [("instability-quick-rl", "rl", 20000), ("instability-quick-nlp", "nlp", 300)]
)
def test_rl_and_nlp_quick_variants(tmp_path, name, domain, budget):
    (a,) = parsed(["--lmc-preset", name], tmp_path)
    assert a.adapter.domain == domain and a.budget == budget and a.levels == [0, 2] and a.a.alphas == 11


def test_explicit_flags_win_over_the_preset(tmp_path):
    (a,) = parsed(["--lmc-preset", "instability-quick", "--rewind-steps", "0,7", "--iterations", "50"], tmp_path)
    assert a.ks == [("0", 0), ("7", 7)] and a.budget == 50 and a.levels == [0, 4]


@pytest.mark.parametrize(
    "args, says",
    [
        (["--lmc-preset", "nope"], "unknown instability preset 'nope'"),
        (["--lmc-preset", "instability-quick", "--domain", "rl"], "sets --domain"),
        (["--lmc-preset", "instability-quick", "--preset=quick"], "sets --preset"),
    ],
)
def test_misuse_is_one_line_exit_2(tmp_path, capsys, args, says):
    with pytest.raises(SystemExit) as e:
        instability.main([*args, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and says in err
    assert not (tmp_path / "out").exists()


def test_instability_quick_tiny_budget_end_to_end(tmp_path):
    pytest.importorskip("mnist1d")
    args = ["--lmc-preset", "instability-quick", "--budget-scale", "0.02", "--rewind-steps", "0,0.1", "--alphas", "3"]
    assert instability.main([*args, "--out", str(tmp_path)]) == 0
    (folder,) = tmp_path.glob("instability-vision-*")
    (run,) = tmp_path.glob("vision-*")  # the IMP run that found the level-4 ticket
    assert RunStore.foreign(folder).meta()["lmc_preset"] == "instability-quick"
    assert RunStore.foreign(run).meta()["imp"]["levels"] == 4
    table = pd.read_csv(folder / "instability.csv")
    assert set(table["level"]) == {0, 4} and (table["status"] == "ok").all() and len(table) == 4


def test_every_preset_is_documented():
    assert set(LMC_PRESETS.names()) == {
        "frankle2020-lmc",
        "instability-quick",
        "instability-quick-rl",
        "instability-quick-nlp",
    }
    assert all(LMC_PRESETS.get(n).help for n in LMC_PRESETS)
