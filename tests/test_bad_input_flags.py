"""Preflight of numbers, seeds, --out and --rate-overrides: one line naming the value, exit 2, nothing written."""

from __future__ import annotations

import pytest

from benchmarks.run import main
from lth_core.config import SEED_LIMIT

TABLE = {"toy": "toy_adapter:ToyAdapter"}

BAD = [
    (["--cpus-per-job", "nan"], "--cpus-per-job nan must be a finite number"),
    (["--cpus-per-job", "inf"], "--cpus-per-job inf must be a finite number"),
    (["--gpus-per-job", "nan"], "--gpus-per-job nan"),
    (["--lr", "nan"], "--lr nan must be a finite number"),  # the toy domain's own float, checked by the engine
    (["--lr=-inf"], "--lr -inf"),
    (["--rewind-step", "nan"], "--rewind-step 'nan' must be a finite"),
    (["--rewind-step", "inf"], "--rewind-step 'inf' must be a finite"),
    (["--seed", "-1"], "--seed -1"),
    (["--seed", str(2**64)], f"--seed {2**64}"),
    (["--seed", str(10**30)], f"--seed {10**30}"),
    (["--seed", str(SEED_LIMIT - 1), "--trials", "2"], "up to"),  # the second trial's seed overflows
    (["--rate-overrides", "outptu=0.1"], "'outptu' matches no group and no tensor name; valid groups: "),
    (["--rate-overrides", "output=0.1,*.bais=0.2"], "'*.bais'"),
    (["--out", "{file}"], "is a file, not a folder"),
    (["--out", "{file}/below"], "is a file, not a folder"),
]


@pytest.mark.parametrize("argv,expected", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_a_bad_number_seed_out_or_override_is_one_line_and_nothing_written(tmp_path, capsys, argv, expected):
    file = tmp_path / "a-file"
    file.write_text("mine")
    argv = [a.replace("{file}", str(file)) for a in argv]
    out = tmp_path / "out"
    args = ["--domain", "toy", "--levels", "1", "--trials", "1", *argv, "--noprogress"]
    if "--out" not in argv:
        args += ["--out", str(out)]
    with pytest.raises(SystemExit) as e:
        main(args, TABLE)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and expected in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"] and file.read_text() == "mine"


def test_the_override_error_lists_the_groups_and_tensors(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--domain", "toy", "--rate-overrides", "outptu=0.1", "--out", str(tmp_path / "o"), "--noprogress"], TABLE)
    err = capsys.readouterr().err
    assert "output" in err and "0.weight" in err


@pytest.mark.parametrize(
    "argv",
    [["--seed", str(SEED_LIMIT - 1)], ["--rate-overrides", "output=0.1,*.weight=0.3"], ["--cpus-per-job", "1.0"]],
)
def test_edge_values_that_are_valid_run(tmp_path, argv):
    assert (
        main(
            ["--domain", "toy", "--levels", "1", "--trials", "1", *argv, "--out", str(tmp_path), "--noprogress"], TABLE
        )
        == 0
    )


@pytest.mark.parametrize("domain", ["rl", "vision"])
def test_every_presets_own_overrides_pass_the_check(tmp_path, domain):
    """RL presets name action_head, value_head and q_head for every algorithm; none of them has all three."""
    from benchmarks.run import parse
    from domains import load_adapter_class
    from lth_core.imp_runner import ImpRunner

    cls = load_adapter_class(domain)
    for name, preset in cls.presets.items():
        if (
            "rate_overrides" not in preset.imp
            or preset.domain.get("dataset", "mnist1d") not in ("mnist1d", None)
            and domain == "vision"
        ):
            continue  # vision presets on files need --data-dir; their keys (conv, fc, output) are the same
        plan = parse(["--out", str(tmp_path)], domain, name)
        adapter = plan.factory()()
        try:
            ImpRunner(adapter, plan.factory(), plan.imp, plan.options, name, validated=True)
        finally:
            adapter.close()
    assert not list(tmp_path.iterdir())
