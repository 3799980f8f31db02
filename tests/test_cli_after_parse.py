"""Bad input found after the flags have parsed (the runner's source check, the run folder's lock and its run.json):
the same one exact line on stderr, exit 2, and the folder left as it was."""

from __future__ import annotations

import json

import pytest
from bad_input_tools import snapshot
from filelock import FileLock

from benchmarks.run import main

TABLE = {"toy": "toy_adapter:ToyAdapter"}


def cli(out, *flags):
    return ["--domain", "toy", "--levels", "1", "--trials", "1", "--out", str(out), "--noprogress", *flags]


def fails(argv, capsys) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(argv, TABLE)
    assert e.value.code == 2
    return capsys.readouterr().err


@pytest.fixture
def finished(tmp_path, capsys):
    assert main(cli(tmp_path / "a"), TABLE) == 0
    (folder,) = (tmp_path / "a").iterdir()
    return folder


def test_another_architecture_names_both_and_writes_nothing(finished, tmp_path, capsys):
    err = fails(cli(tmp_path / "b", "--hidden", "8", "--ticket-from", str(finished)), capsys)
    there = json.loads((finished / "run.json").read_text())["architecture_hash"]
    assert err.startswith(f"error: --ticket-from {str(finished)!r}: architecture differs (toy/blobs/mlp {there} vs ")
    assert err.count("\n") == 1 and err.endswith(")\n") and there not in err[err.index(" vs ") :], err
    assert not (tmp_path / "b").exists()


def test_a_locked_run_folder_is_one_line_naming_its_holder(finished, tmp_path, capsys):
    before = snapshot(tmp_path / "a")
    with FileLock(str(finished / ".lock"), timeout=0):
        err = fails(cli(tmp_path / "a"), capsys)
    owner = json.loads((finished / ".lock.owner").read_text())
    holder = f"pid {owner['pid']} on {owner['host']} (since {owner['since']})"
    assert err == f"error: run folder {finished} is locked by {holder}; wait for it to finish or stop it\n"
    assert snapshot(tmp_path / "a") == before


def test_a_run_json_of_another_config_is_refused_after_the_folder_opens(finished, tmp_path, capsys):
    meta = json.loads((finished / "run.json").read_text())
    mine = meta["config_hash"]
    meta["config_hash"] = "f" * 64
    (finished / "run.json").write_text(json.dumps(meta))
    before = snapshot(tmp_path / "a")
    err = fails(cli(tmp_path / "a"), capsys)
    assert err == f"error: {finished / 'run.json'} belongs to config {'f' * 12}, not {mine[:12]}\n"
    after = snapshot(tmp_path / "a")
    assert {k: v for k, v in after.items() if ".lock" not in str(k)} == {
        k: v for k, v in before.items() if ".lock" not in str(k)
    }
