"""Bad input from the command line: one line naming the value and the choices, exit 2, nothing written."""
import pytest

from benchmarks.run import main
from lth_core.config import ImpConfig, config_hash
from lth_core.presets import apply
from lth_core.runner import run_identity
from toy_adapter import ToyAdapter, ToyConfig

TABLE = {"toy": "toy_adapter:ToyAdapter"}

BAD = [
    (["--domain", "nope"], "unknown domain 'nope'"),
    (["--rate", "1.5"], "--rate 1.5 must be in (0, 1)"),
    (["--rate", "0"], "--rate 0.0 must be in (0, 1)"),
    (["--levels", "-1"], "--levels -1 must be >= 0"),
    (["--trials", "0"], "--trials 0 must be >= 1"),
    (["--strategy", "biggest"], "invalid choice: 'biggest'"),
    (["--schedule", "twice"], "invalid choice: 'twice'"),
    (["--controls", "ticket,shuffle"], "unknown control 'ticket'"),
    (["--executor", "cloud"], "invalid choice: 'cloud'"),
    (["--preset", "huge"], "unknown preset 'huge'"),
    (["--rate-overrides", "output:0.1"], "GROUP_OR_PATTERN=RATE"),
    (["--rewind-step", "-3"], "--rewind-step '-3'"),
    (["--rewind-step", "1.5"], "fraction of the budget"),
    (["--optimizer", "lbfgs"], "unknown optimizer 'lbfgs'"),
    (["--levels", "many"], "invalid int value: 'many'"),
    (["--ticket-from", "{tmp}/missing"], "is not a run folder"),
]


@pytest.mark.parametrize("argv,expected", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, argv, expected):
    out = tmp_path / "out"
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    args = (["--domain", "toy"] if "--domain" not in argv else []) + argv + ["--out", str(out), "--noprogress"]
    with pytest.raises(SystemExit) as e:
        main(args, TABLE)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err, err
    assert "valid choices" in err or "choose from" in err or "must" in err or "not" in err or "invalid" in err
    assert not out.exists()


def test_ticket_from_with_another_architecture_is_refused_before_writing(tmp_path, capsys):
    main(["--domain", "toy", "--levels", "1", "--trials", "1", "--out", str(tmp_path / "a"), "--noprogress"], TABLE)
    src = next((tmp_path / "a").iterdir())
    with pytest.raises(SystemExit) as e:
        main(["--domain", "toy", "--levels", "1", "--trials", "1", "--hidden", "8", "--ticket-from", str(src),
              "--out", str(tmp_path / "b"), "--noprogress"], TABLE)
    assert e.value.code == 2 and "architecture differs" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_help_lists_choices_from_the_registries(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--domain", "toy", "--help"], TABLE)
    assert e.value.code == 0
    text = capsys.readouterr().out
    for choice in ("magnitude_layerwise", "magnitude_global", "random", "one_shot", "local", "quick"):
        assert choice in text


def test_rerun_resumes_and_flags_override_the_preset(tmp_path, capsys):
    args = ["--domain", "toy", "--levels", "1", "--trials", "1", "--out", str(tmp_path), "--noprogress"]
    main(args, TABLE)
    first = {p.name: p.stat().st_mtime_ns for p in next(tmp_path.iterdir()).glob("jobs/*.json")}
    main(args, TABLE)
    again = {p.name: p.stat().st_mtime_ns for p in next(tmp_path.iterdir()).glob("jobs/*.json")}
    assert first == again and len(first) == 4  # nothing retrained
    assert len(list(tmp_path.iterdir())) == 1


# The identity of a run is its folder: a change of these hashes renames every existing run.
# Change a pin only for a deliberate change of what a config means, and say so in the commit.
PINNED = {
    ("toy", "quick"): "32f64eed10dde7f7ad14b77f5e325c357594388b853e7814567238fbff219bc0",
}


def preset_hash(cls, name):
    preset = cls.presets[name]
    return config_hash(run_identity(cls.domain, apply(ImpConfig(), preset.imp), apply(cls.Config(), preset.domain)))


def test_preset_hashes_are_pinned():
    assert preset_hash(ToyAdapter, "quick") == PINNED[("toy", "quick")]
    assert preset_hash(ToyAdapter, "quick") != config_hash(run_identity("toy", ImpConfig(), ToyConfig(hidden=33)))
    # fields outside the identity leave the hash alone
    assert config_hash(run_identity("toy", ImpConfig(), ToyConfig(device="cuda"))) == \
        config_hash(run_identity("toy", ImpConfig(), ToyConfig()))
