"""Bad input from the command line: one line naming the value and the choices, exit 2, nothing written."""

import pytest
from toy_adapter import ToyAdapter, ToyConfig

from benchmarks.run import main
from lth_core.config import ImpConfig, config_hash
from lth_core.controls import CONTROLS
from lth_core.imp_runner import run_identity
from lth_core.presets import apply
from lth_core.schedules import SCHEDULES
from lth_core.strategies import STRATEGIES as STRATEGY_REGISTRY

TABLE = {"toy": "toy_adapter:ToyAdapter"}

# the whole line each mistake prints: the flag, the bad value and, for a choice, every valid choice
# ({strategies}, {schedules}, {controls}: the registries' choices when the test runs, so a component registered
# elsewhere, e.g. by the recipe tests, does not break the pin of the line's form)


def choices() -> dict[str, str]:
    return {
        "strategies": ", ".join(repr(n) for n in STRATEGY_REGISTRY.names()),
        "schedules": ", ".join(repr(n) for n in SCHEDULES.names()),
        "controls": ", ".join(CONTROLS.names()),
    }


BAD = [
    (["--domain", "nope"], "unknown domain 'nope'; valid choices: toy, all"),
    (["--rate", "1.5"], "--rate 1.5 must be in (0, 1)"),
    (["--rate", "0"], "--rate 0.0 must be in (0, 1)"),
    (["--levels", "-1"], "--levels -1 must be >= 0"),
    (["--trials", "0"], "--trials 0 must be >= 1"),
    (["--strategy", "biggest"], "argument --strategy: invalid choice: 'biggest' (choose from {strategies})"),
    (
        ["--schedule", "twice"],
        "argument --schedule: invalid choice: 'twice' (choose from {schedules})",
    ),
    (
        ["--controls", "ticket,shuffle"],
        "unknown control 'ticket'; valid choices: {controls}",
    ),
    (
        ["--executor", "cloud"],
        "argument --executor: invalid choice: 'cloud' (choose from 'batched', 'local', 'process', 'ray')",
    ),
    (["--preset", "huge"], "unknown preset 'huge' for domain 'toy'; valid choices: quick"),
    (
        ["--rate-overrides", "output:0.1"],
        "--rate-overrides item 'output:0.1' must be GROUP_OR_PATTERN=RATE with 0 <= RATE < 1",
    ),
    (["--rewind-step", "-3"], "--rewind-step '-3': a step must be >= 0 (a count of steps, or a fraction in [0, 1))"),
    (["--rewind-step", "1.5"], "--rewind-step '1.5': a fraction of the budget must be in [0, 1)"),
    # raised by the domain config's validate(), after argparse has parsed every flag
    (["--optimizer", "lbfgs"], "unknown optimizer 'lbfgs'; valid choices: sgd, adam, adamw, rmsprop"),
    (["--levels", "many"], "argument --levels: invalid int value: 'many'"),
    (["--ticket-from", "{tmp}/missing"], "--ticket-from '{tmp}/missing' is not a run folder (no run.json there)"),
]


@pytest.mark.parametrize("argv,expected", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, argv, expected):
    out = tmp_path / "out"
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    args = (["--domain", "toy"] if "--domain" not in argv else []) + argv + ["--out", str(out), "--noprogress"]
    with pytest.raises(SystemExit) as e:
        main(args, TABLE)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err == f"error: {expected.replace('{tmp}', str(tmp_path)).format(**choices())}\n"
    assert not out.exists()


def test_ticket_from_with_another_architecture_is_refused_before_writing(tmp_path, capsys):
    main(["--domain", "toy", "--levels", "1", "--trials", "1", "--out", str(tmp_path / "a"), "--noprogress"], TABLE)
    src = next((tmp_path / "a").iterdir())
    with pytest.raises(SystemExit) as e:
        main(
            [
                "--domain",
                "toy",
                "--levels",
                "1",
                "--trials",
                "1",
                "--hidden",
                "8",
                "--ticket-from",
                str(src),
                "--out",
                str(tmp_path / "b"),
                "--noprogress",
            ],
            TABLE,
        )
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
    # the toy's config gained DomainConfig's budget_scale (an identity field): its hash moved from 32f64eed10dd
    ("toy", "quick"): "28d306d7fdbf4140e55439f79d668b361661a2ebc48947568adce34285ca2c3f",
    ("vision", "frankle2019-conv2"): "356d0424f38b1fee6a7b9141fed020f417e50dce439c5a6c0a4609b08abb7f71",
    ("vision", "frankle2019-conv4"): "6c6f5927e2fa2d6238e69b4ba9e5af82c301a28b4d6a52879bf04c017937cc7e",
    ("vision", "frankle2019-conv6"): "61b29ac4d23c140c97b2bd9d69418da7466d62a779a6cd1fc022116e3825b09d",
    ("vision", "frankle2019-lenet"): "5518a66cf87cd0a824423e7196cca03ce0322c19da288d10b0e6d32adae91e21",
    ("vision", "morcos2019-transfer"): "5518a66cf87cd0a824423e7196cca03ce0322c19da288d10b0e6d32adae91e21",
    # issue 19 retuned `quick` (Adam 3e-3: early stopping bites inside the budget); was 77f11e07dd56
    ("vision", "quick"): "3e849214a46ef6ec9f5bcca797f41dee935c96995259887156900c0511d039a8",
    (
        "vision",
        "criteria-quick",
    ): "31de45ccc23236d078023ea88b406f357ddde131cf58b83af69d4d3af8139271",  # controls hashed in registry order
    ("vision", "structured-quick"): "92f95ae1aba3e0c0e17b8292cd13fd1ac44b6b406a89c5249167d2a0e29115a4",
    ("vision", "liu2019-rethinking"): "a6ec9a6ec3db30ccd70d1ea8fdc01fbf5540becd816428bf5c3b6f0247cc9582",
    ("vision", "frankle2021-pai"): "9fbd18c9bba99381b54df4b5723fa51d146e1ababe4b0e9074d080ce3f6fd678",
    ("vision", "frankle2021-pai-vgg16"): "8f036642eb82c7ce69d8c576386cd94801f0ddd463e4a1827a4dd6bf42f20d29",
    ("vision", "stabilizing-resnet20"): "02ebc1f93936e7b2face5f8544a4cef77dc1a55258cd79f6cba564d602c75158",
    ("vision", "stabilizing-vgg19"): "0742014b79507f9c5ea474331afc590c7456c9374505afe3ec85ed9155b5545d",
    ("rl", "quick"): "99ab2181d4859896d5d409da4348f5e9b9e94d8731ee96ede0ae9ace5d6bd161",
    ("rl", "yu2020-atari"): "1b8d7a527a2187856ce1618143e48aeb94d0e6292ed366c5140079e0d95419ba",
    # --timesteps 0 (the env's recommended budget) now hashes as the budget it resolves to (issue 17): the one pin
    # that had to move (was 659e6dfd2dc4); yu2020-atari spells its budget out, so no rule could keep both
    ("rl", "yu2020-classic"): "30ce481dec52612c965ab169d7e8e98057f74dde97b9e023ce75bc33b41c8e74",
    # NLP's identity holds the data fingerprint (`identity_extras`): the pins are the hashes the CLI writes,
    # multi30k's with --data-dir ../shared/data/multi30k (the hash follows the files' content, not their path)
    ("nlp", "multi30k"): "9d9108d5786693ed621c4c94f440cd4ef6edca85028f67957b5709ea8329c859",
    # issue 19 retuned `quick` (600 updates at 6e-3: the dense net converges); was 20867a980a4c
    ("nlp", "quick"): "3ee364612b35099b3538ae7a78b6781050b93ff002b72e6758ddf1b794c57a45",
    ("nlp", "yu2020-wikitext2"): "a0c71747b1c0e819f5e50f156bfd787491a6852551efcd41cd7cbd833d7c51d0",
    ("nlp", "yu2020-wmt14"): "09052ac71a31c5eed7183831b776efcc5467f32ca60aa28ac2d2320eeefe96d2",
    # the early-bird presets (issue 16), new: the vision and rl ones are the folders of the measured runs
    ("vision", "earlybird-quick"): "ee7da16e0b4907ca8cf17a67263e377c4786cb8c55a233becfa6a80f16c619bb",
    ("vision", "you2020-earlybird"): "a8b1b161d41b2828812d397b37aac63e5cfb36d955342803233ca4af4e72fb21",
    ("rl", "earlybird-quick"): "c9908e5915aa98abc645a9ec9a8ccea8cbeddbd0e7c3029904e4fbc7d3d8bad4",
    ("nlp", "earlybird-quick"): "e4cac7b07786f513147bd37a44f92a680c344a84e343cbe60c91f4dda6de33d8",
}


def preset_hash(cls, name, **flags):
    """The hash the CLI writes for `--preset name` (and `flags`): the runner's identity of the parsed configs."""
    preset = cls.presets[name]
    return config_hash(
        run_identity(cls.domain, apply(ImpConfig(), preset.imp), apply(cls.Config(), {**preset.domain, **flags}))
    )


NEEDS_DATA = {("nlp", "multi30k"): "multi30k"}  # presets whose identity reads a data folder of ../shared/data


@pytest.mark.parametrize("domain,preset", [k for k in PINNED if k[0] != "toy"])
def test_domain_preset_hashes_are_pinned(domain, preset, request):
    from domains import load_adapter_class

    flags = {}
    if (domain, preset) in NEEDS_DATA:
        flags["data_dir"] = str(request.getfixturevalue("shared_data") / NEEDS_DATA[(domain, preset)])
    assert preset_hash(load_adapter_class(domain), preset, **flags) == PINNED[(domain, preset)]


def test_pinned_hashes_are_the_ones_the_cli_writes(tmp_path, capsys):
    """A real run through the CLI lands in the folder named by the pinned hash."""
    main(["--domain", "toy", "--levels", "0", "--trials", "1", "--out", str(tmp_path), "--noprogress"], TABLE)
    (folder,) = tmp_path.iterdir()
    cls = ToyAdapter
    ident = run_identity("toy", ImpConfig(levels=0, trials=1), apply(cls.Config(), cls.presets["quick"].domain))
    assert folder.name == f"toy-{config_hash(ident)[:12]}"


def test_every_preset_is_pinned():
    from domains import domain_names, load_adapter_class

    for d in domain_names():
        assert {(d, p) for p in load_adapter_class(d).presets} <= set(PINNED), d


def test_preset_hashes_are_pinned():
    assert preset_hash(ToyAdapter, "quick") == PINNED[("toy", "quick")]
    assert preset_hash(ToyAdapter, "quick") != config_hash(run_identity("toy", ImpConfig(), ToyConfig(hidden=33)))
    # fields outside the identity leave the hash alone
    assert config_hash(run_identity("toy", ImpConfig(), ToyConfig(device="cuda"))) == config_hash(
        run_identity("toy", ImpConfig(), ToyConfig())
    )


def test_nlp_quick_pin_is_what_the_cli_parses_and_validates():
    """The CLI's own parse (flags, preset, validate) gives the pinned identity; validate changes no field."""
    pytest.importorskip("fairseq")
    import dataclasses

    from benchmarks.run import parse

    plan = parse(["--domain", "nlp", "--preset", "quick"], "nlp", "quick")
    fields_after = dataclasses.asdict(plan.config)
    plan.config.validate()
    assert dataclasses.asdict(plan.config) == fields_after
    assert config_hash(run_identity("nlp", plan.imp, plan.config)) == PINNED[("nlp", "quick")]
