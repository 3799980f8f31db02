"""The bad-input suite from the command line, across run (toy, vision, RL, NLP), compare, report and speed: each
mistake exits 2 with one line on stderr naming the bad value, creates nothing under --out (nor anywhere else in
the test's folder) and leaves every foreign folder byte-identical. Every value fails fast (before any training)."""

from __future__ import annotations

import gzip

import pytest
from bad_input_tools import foreign_run, snapshot

from benchmarks.fake_vision_files import write_mnist

TOY = {"toy": "toy_adapter:ToyAdapter"}
RUN = ["--levels", "1", "--trials", "1", "--noprogress", "--out", "{out}"]
VISION = ["--domain", "vision", *RUN]
RL = ["--domain", "rl", "--budget-scale", "0.01", *RUN]
NLP = ["--domain", "nlp", "--budget-scale", "0.01", *RUN]
ENGINE = ["--domain", "toy", *RUN]

# (tool, argv, what stderr must name)
CASES = {
    # ---- run, vision
    "vision lr nan": ("run", [*VISION, "--lr", "nan"], "--lr nan"),
    "vision momentum 1.5": ("run", [*VISION, "--momentum", "1.5"], "--momentum 1.5"),
    "vision val-size -1": ("run", [*VISION, "--val-size", "-1"], "--val-size -1"),
    "vision dataset unknown": ("run", [*VISION, "--dataset", "mnist2"], "'mnist2'"),
    "vision model unknown": ("run", [*VISION, "--model", "lenet9"], "'lenet9'"),
    "vision batch-size 0": ("run", [*VISION, "--batch-size", "0"], "--batch-size 0"),
    "vision budget-scale 2": ("run", [*VISION, "--budget-scale", "2"], "--budget-scale 2.0"),
    "vision lr-milestones text": ("run", [*VISION, "--lr-milestones", "x,y"], "lr-milestones"),
    "vision preset unknown": ("run", [*VISION, "--preset", "slow"], "'slow'"),
    "vision weight-decay -inf": ("run", [*VISION, "--weight-decay=-inf"], "--weight-decay -inf"),
    "vision mnist files of zeros": (
        "run",
        [*VISION, "--dataset", "mnist", "--model", "lenet_300_100", "--data-dir", "{zeros}", "--val-size", "20"],
        "train-images-idx3-ubyte",
    ),
    "vision mnist data-dir missing": ("run", [*VISION, "--dataset", "mnist", "--data-dir", "{nowhere}"], "nowhere"),
    # ---- run, rl
    "rl algo-kwargs ent_coef string": ("run", [*RL, "--algo-kwargs", 'ent_coef="x"'], 'ent_coef="x"'),
    "rl algo-kwargs n_steps 0": ("run", [*RL, "--algo-kwargs", "n_steps=0"], "n_steps=0"),
    "rl algo-kwargs inf": ("run", [*RL, "--algo-kwargs", "ent_coef=1e999"], "ent_coef=1e999"),
    "rl algo-kwargs reserved": ("run", [*RL, "--algo-kwargs", "seed=3"], "--algo-kwargs seed"),
    "rl algo-kwargs unknown key": ("run", [*RL, "--algo-kwargs", "ent_cof=0.1"], "ent_cof"),
    "rl seed -1": ("run", [*RL, "--seed", "-1"], "--seed -1"),
    "rl env unknown": ("run", [*RL, "--env", "CartPool-v1"], "'CartPool-v1'"),
    "rl algo unknown": ("run", [*RL, "--algo", "a3c"], "'a3c'"),
    "rl dqn on a continuous env": ("run", [*RL, "--algo", "dqn", "--env", "Pendulum-v1"], "Pendulum-v1"),
    "rl n-envs huge": ("run", [*RL, "--n-envs", "100000000"], "--n-envs 100000000"),
    "rl timesteps negative": ("run", [*RL, "--timesteps", "-5"], "--timesteps -5"),
    "rl net-arch text": ("run", [*RL, "--net-arch", "a,b"], "'a,b'"),
    "rl eval-episodes 0": ("run", [*RL, "--eval-episodes", "0"], "--eval-episodes 0"),
    "rl learning-rate inf": ("run", [*RL, "--learning-rate", "inf"], "--learning-rate inf"),
    # ---- run, nlp
    "nlp truncated gz": ("run", [*NLP, "--data-dir", "{nlp_gz}"], "train.en.gz"),
    "nlp not utf-8": ("run", [*NLP, "--data-dir", "{nlp_latin1}"], "train.en"),
    "nlp data-dir a file": ("run", [*NLP, "--data-dir", "{file}"], "a-file"),
    "nlp test-split unknown": ("run", [*NLP, "--data-dir", "{nlp_ok}", "--test-split", "test9"], "'test9'"),
    "nlp task unknown": ("run", [*NLP, "--task", "summarize"], "'summarize'"),
    "nlp budget-scale nan": ("run", [*NLP, "--budget-scale", "nan"], "--budget-scale nan"),
    # ---- run, the engine's own flags (toy domain)
    "engine control twice": ("run", [*ENGINE, "--controls", "random_mask,random_mask"], "random_mask,random_mask"),
    "engine control unknown": ("run", [*ENGINE, "--controls", "random_flip"], "'random_flip'"),
    "engine strategy unknown": ("run", [*ENGINE, "--strategy", "magnitude"], "'magnitude'"),
    "engine levels -1": ("run", [*ENGINE, "--levels", "-1"], "--levels -1"),
    "engine trials 0": ("run", [*ENGINE, "--trials", "0"], "--trials 0"),
    "engine retries -1": ("run", [*ENGINE, "--retries", "-1"], "--retries -1"),
    "engine rate nan": ("run", [*ENGINE, "--rate", "nan"], "--rate nan"),
    "engine rewind fraction 1.5": ("run", [*ENGINE, "--rewind-step", "1.5"], "'1.5'"),
    "engine rewind text": ("run", [*ENGINE, "--rewind-step", "early"], "'early'"),
    "engine override without rate": ("run", [*ENGINE, "--rate-overrides", "output"], "'output'"),
    "engine ticket-from not a run": ("run", [*ENGINE, "--ticket-from", "{nowhere}"], "nowhere"),
    "engine ticket-from foreign of another architecture": ("run", [*ENGINE, "--ticket-from", "{foreign}"], "foreign"),
    # ---- compare
    "compare density-rtol nan": ("compare", ["{foreign}", "{foreign2}", "--density-rtol", "nan"], "--density-rtol nan"),
    "compare alpha nan": ("compare", ["{foreign}", "{foreign2}", "--alpha", "nan"], "--alpha nan"),
    "compare tolerance inf": ("compare", ["{foreign}", "{foreign2}", "--tolerance", "inf"], "--tolerance inf"),
    "compare rel-tolerance -1": ("compare", ["{foreign}", "{foreign2}", "--rel-tolerance", "-1"], "--rel-tolerance"),
    "compare format unknown": ("compare", ["{foreign}", "{foreign2}", "--format", "xml"], "'xml'"),
    "compare a run that is not there": ("compare", ["{foreign}", "{nowhere}"], "nowhere"),
    # ---- report
    "report alpha 1": ("report", ["{foreign}", "--out", "{out}/r.html", "--alpha", "1"], "--alpha 1.0"),
    "report falloff nan": ("report", ["{foreign}", "--out", "{out}/r.html", "--falloff-tolerance", "nan"], "nan"),
    "report out inside the run": ("report", ["{foreign}", "--out", "{foreign}/r.html"], "r.html"),
    "report a run that is not there": ("report", ["{nowhere}", "--out", "{out}/r.html"], "nowhere"),
    # ---- speed
    "speed jobs 0": ("speed", ["--jobs", "0"], "--jobs 0"),
    "speed batch-size beyond the data": ("speed", ["--batch-size", "100000"], "--batch-size 100000"),
    "speed iterations -3": ("speed", ["--iterations", "-3"], "--iterations -3"),
    "speed ceiling-size huge": ("speed", ["--ceiling-size", "10000000"], "--ceiling-size 10000000"),
    "speed repeats text": ("speed", ["--repeats", "x"], "'x'"),
}


def _nlp_folder(folder, damage=None):
    folder.mkdir()
    for split in ("train", "valid", "test"):
        (folder / f"{split}.en").write_text("a b c\nd e f\n")
        (folder / f"{split}.de").write_text("x y z\nu v w\n")
    if damage == "gz":
        blob = gzip.compress((folder / "train.en").read_bytes())
        (folder / "train.en").unlink()
        (folder / "train.en.gz").write_bytes(blob[: len(blob) // 2])
    elif damage == "latin1":
        (folder / "train.en").write_bytes("caf\u00e9 au lait\nd e f\n".encode("latin-1"))
    return folder


@pytest.fixture
def places(tmp_path):
    """Every folder and file a case may name; all but --out exist, and --out must stay uncreated."""
    zeros = write_mnist(tmp_path / "zeros")
    f = zeros / "MNIST" / "raw" / "train-images-idx3-ubyte"
    f.write_bytes(b"\x00" * f.stat().st_size)
    (tmp_path / "a-file").write_text("mine")
    return {
        "out": tmp_path / "out",
        "file": tmp_path / "a-file",
        "nowhere": tmp_path / "nowhere",
        "zeros": zeros,
        "foreign": foreign_run(tmp_path / "foreign"),
        "foreign2": foreign_run(tmp_path / "foreign2"),
        "nlp_gz": _nlp_folder(tmp_path / "nlp_gz", "gz"),
        "nlp_latin1": _nlp_folder(tmp_path / "nlp_latin1", "latin1"),
        "nlp_ok": _nlp_folder(tmp_path / "nlp_ok"),
    }


def _main(tool: str):
    if tool == "run":
        from benchmarks.run import main

        return lambda argv: main(argv, TOY) if "toy" in argv else main(argv)
    if tool == "compare":
        from benchmarks.compare import main
    elif tool == "report":
        from benchmarks.report import main
    else:
        from benchmarks.speed import main
    return main


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_mistake_is_one_line_exit_2_and_nothing_written(tmp_path, places, capsys, monkeypatch, case):
    tool, argv, names = CASES[case]
    if case.startswith("rl"):
        pytest.importorskip("stable_baselines3")
    if case.startswith("nlp"):
        pytest.importorskip("fairseq")
    monkeypatch.chdir(tmp_path)  # a tool that writes beside itself would show up in the snapshot
    argv = [a.format(**places) for a in argv]
    before = snapshot(tmp_path)
    with pytest.raises(SystemExit) as e:
        _main(tool)(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and names.format(**places) in err, err
    assert "Traceback" not in err
    assert not places["out"].exists()
    assert snapshot(tmp_path) == before  # the foreign folders, the data folders, the file: byte-identical


def test_the_suite_has_at_least_40_cases_across_every_tool_and_domain():
    assert len(CASES) >= 40
    assert {c.split()[0] for c in CASES} == {"vision", "rl", "nlp", "engine", "compare", "report", "speed"}
