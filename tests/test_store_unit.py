"""RunStore by exact values, in process: names, the lock and its holder, run.json, repairs noted where they happen,
record caching, tensors (mutation testing: the corruption and resume tests that pin these run whole CLI
commands, too slow for the mutation subset)."""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch

from lth_core.errors import UsageError
from lth_core.store import RunStore, job_key

META = {"config_hash": "a" * 64, "seed": 0}
ROW = {"kind": "ticket", "level": 1, "trial": 0, "status": "ok"}


def test_names():
    s = RunStore
    assert job_key(2, "ticket", 1) == s.job_key(2, "ticket", 1) == "L02-ticket-t1"
    assert (s.init_name(3), s.rewind_name(3), s.mask_name(4, 3), s.final_name(4, 3)) == (
        "init-t3",
        "rewind-t3",
        "mask-L04-t3",
        "final-L04-t3",
    )
    assert (s.captured_name(4, 3), s.scoring_name(4, 3), s.grad_sums_name(4, 3)) == (
        "captured-L04-t3",
        "scoring-L04-t3",
        "gradsums-L04-t3",
    )
    assert s.distances_name("L01-ticket-t0", 2) == "early_bird/L01-ticket-t0-L02.csv"
    store = RunStore(os.path.join("x", "run"))
    assert (
        store.record_path("k") == store.path / "jobs" / "k.json"
        and store.state_path("n") == store.path / "state" / "n.pt"
    )
    assert store.read_only is False


def test_open_writes_the_folder_the_owner_and_run_json_and_holds_the_lock(tmp_path):
    store = RunStore(tmp_path / "run").open(META)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [".lock", ".lock.owner", "jobs", "run.json", "state"]
    assert json.loads((tmp_path / "run" / "run.json").read_text()) == {**META, "recovered": []}
    owner = json.loads((tmp_path / "run" / ".lock.owner").read_text())
    assert (owner["pid"], owner["host"]) == (os.getpid(), socket.gethostname()) and len(owner["since"]) == 19
    with pytest.raises(UsageError, match=rf"is locked by pid {os.getpid()} on {socket.gethostname()} \(since "):
        RunStore(tmp_path / "run").open(META)
    store.close()
    assert store._lock is None
    RunStore(tmp_path / "run").open(META).close()  # released: it opens again


def test_a_lock_whose_owner_file_is_unreadable_names_another_process(tmp_path):
    store = RunStore(tmp_path / "run").open(META)
    (tmp_path / "run" / ".lock.owner").write_text("{")
    with pytest.raises(UsageError, match="is locked by another process; wait"):
        RunStore(tmp_path / "run").open(META)
    store.close()


def test_a_folder_of_another_config_is_refused_and_left_unlocked(tmp_path):
    RunStore(tmp_path / "run").open(META).close()
    other = RunStore(tmp_path / "run")
    with pytest.raises(UsageError, match=r"run.json belongs to config aaaaaaaaaaaa, not bbbbbbbbbbbb$"):
        other.open({"config_hash": "b" * 64})
    assert other._lock is None
    RunStore(tmp_path / "run").open(META).close()


def test_an_unreadable_run_json_is_moved_aside_and_rewritten_with_the_note(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text("{oops")
    store = RunStore(tmp_path / "run").open(META)
    meta = store.meta()
    assert {k: meta[k] for k in META} == META and len(meta["recovered"]) == 1
    assert meta["recovered"][0].startswith(
        "run.json (unreadable JSON; rewritten from this command's config) -> corrupt/"
    )
    assert [p.name.split(".")[:2] for p in (tmp_path / "run" / "corrupt").iterdir()] == [["run", "json"]]
    store.close()


def test_meta_of_a_folder_without_or_with_a_wrong_run_json(tmp_path):
    with pytest.raises(UsageError, match="is not a run folder"):
        RunStore(tmp_path).meta()
    (tmp_path / "run.json").write_text("[1]")
    with pytest.raises(UsageError, match=r"run.json holds a JSON list, not a run's record \(an object\)$"):
        RunStore(tmp_path).meta()
    (tmp_path / "run.json").write_text("{")
    with pytest.raises(UsageError, match=r"run.json is corrupt \(.*\); remove it to start this run afresh$"):
        RunStore(tmp_path).meta()


def test_update_meta_adds_to_recovered_and_notes_reach_run_json_only_while_locked(tmp_path):
    store = RunStore(tmp_path / "run").open(META)
    store.update_meta(recovered=["a", "b"], extra=1)
    store.update_meta(recovered=["b", "c"])
    assert store.meta()["recovered"] == ["a", "b", "c"] and store.meta()["extra"] == 1
    store.note("d")
    assert store.meta()["recovered"] == ["a", "b", "c", "d"] and store.recovered == ["d"]
    store.close()
    store.note("e")
    assert store.meta()["recovered"] == ["a", "b", "c", "d"] and store.recovered == ["d", "e"]


def test_records_are_cached_as_a_reader_sees_them_and_listed_in_key_order(tmp_path):
    store = RunStore(tmp_path / "run").open(META)
    store.write_record("L01-ticket-t0", {"row": ROW, "curve": [], "when": tmp_path})
    store.write_record("L00-dense-t0", {"row": {**ROW, "kind": "dense", "level": 0}})
    assert store.record("L01-ticket-t0")["when"] == str(tmp_path)
    assert list(store.record("L01-ticket-t0")) == ["curve", "row", "when"]  # key order as the file has it
    assert list(store.record("L01-ticket-t0")["row"]) == sorted(ROW)
    store.record_path("L01-ticket-t0").write_text("{")  # cached: the file is not read again
    assert [r["row"]["kind"] for r in store.records()] == ["dense", "ticket"]
    fresh = RunStore(tmp_path / "run")
    assert fresh.record("L02-ticket-t0") is None and fresh.records()[0]["row"]["kind"] == "dense"
    assert len(fresh.records()) == 1 and fresh.recovered[0].startswith("jobs/L01-ticket-t0.json (unreadable JSON: ")
    store.close()


def test_a_record_of_the_wrong_shape_is_moved_aside_and_forgotten(tmp_path):
    store = RunStore(tmp_path / "run").open(META)
    store.write_record("L01-ticket-t0", {"row": ROW})
    store.record_path("L01-ticket-t0").write_text(json.dumps({"row": {**ROW, "level": "1"}}))
    fresh = RunStore(tmp_path / "run")
    fresh._lock = store._lock  # the holder's view: its note reaches run.json
    assert fresh.record("L01-ticket-t0") is None and not fresh.record_path("L01-ticket-t0").exists()
    note = "jobs/L01-ticket-t0.json (record of the wrong shape: row.level is '1') -> corrupt/L01-ticket-t0.json."
    assert fresh.recovered[0].startswith(note) and fresh.meta()["recovered"] == fresh.recovered
    store.record_path("L01-ticket-t0").write_text("{}")
    store._quarantine(store.record_path("L01-ticket-t0"), "test")
    assert "L01-ticket-t0" not in store._records
    store.close()


def test_a_foreign_folder_is_never_changed_by_damage(tmp_path):
    RunStore(tmp_path / "run").open(META).close()
    (tmp_path / "run" / "jobs" / "L01-ticket-t0.json").write_text("{")
    foreign = RunStore.foreign(tmp_path / "run")
    with pytest.raises(UsageError, match=r"L01-ticket-t0.json is damaged \(unreadable JSON: .*\); that folder is only"):
        foreign.records()
    (tmp_path / "run" / "run.json").write_text("{")
    with pytest.raises(UsageError, match=r"run.json is damaged \(unreadable JSON"):
        foreign.meta()
    assert not (tmp_path / "run" / "corrupt").exists()


def test_state_is_saved_detached_on_cpu_and_unreadable_state_is_moved_aside(tmp_path):
    store = RunStore(tmp_path / "run").open(META)
    w = torch.ones(2, requires_grad=True)
    store.save_state("s", {"w": w * 2})
    back = store.load_state("s")
    assert list(back) == ["w"] and back["w"].tolist() == [2.0, 2.0] and not back["w"].requires_grad
    assert store.load_state("absent") is None
    store.state_path("s").write_bytes(b"not a zip")
    assert store.load_state("s") is None and not store.state_path("s").exists()
    assert (
        store.recovered[0].startswith("state/s.pt (unreadable tensors: ") and "-> corrupt/s.pt." in store.recovered[0]
    )
    store.close()


def test_opening_makes_missing_parents_reopens_and_checks_every_file(tmp_path):
    where = tmp_path / "a" / "b" / "run"
    RunStore(where).open(META).close()
    (where / "jobs" / "L01-ticket-t0.json").write_text("{")
    store = RunStore(where).open(META)  # reopened: its folders exist, its damaged record is found at once
    assert not (where / "jobs" / "L01-ticket-t0.json").exists() and len(store.recovered) == 1
    assert store.meta()["recovered"] == store.recovered
    store.close()


class Pickled:
    """Not a tensor: a state file holding it is refused (weights_only), never unpickled into the run."""


def test_a_state_file_holding_a_pickled_object_is_refused_and_moved_aside(tmp_path):
    store = RunStore(tmp_path / "run").open(META)
    torch.save({"w": Pickled()}, store.state_path("s"))
    assert store.load_state("s") is None and not store.state_path("s").exists()
    assert store.recovered[0].startswith("state/s.pt (unreadable tensors: UnpicklingError) -> corrupt/s.pt.")
    store.close()


def test_a_record_read_is_kept_and_a_missing_one_is_looked_for_again(tmp_path):
    store = RunStore(tmp_path / "run").open(META)
    reader = RunStore(tmp_path / "run")
    assert reader.record("L01-ticket-t0") is None
    store.write_record("L01-ticket-t0", {"row": ROW})
    assert reader.record("L01-ticket-t0") == {"row": ROW}  # written since: found
    store.record_path("L01-ticket-t0").write_text(json.dumps({"row": {**ROW, "trial": 5}}))
    assert reader.record("L01-ticket-t0") == {"row": ROW}  # read once: kept
    store.close()


def test_recovered_joins_a_run_json_of_the_previous_release_that_has_none(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps(META))
    RunStore(tmp_path).update_meta(recovered=["a"])
    assert RunStore(tmp_path).meta() == {**META, "recovered": ["a"]}


def test_a_second_opener_is_refused_at_once_and_a_store_never_opened_holds_nothing(tmp_path):
    store = RunStore(tmp_path / "run").open(META)
    other = RunStore(tmp_path / "run")
    with pytest.raises(UsageError, match="is locked by"):
        other.open(META)
    assert other._lock is not None and other._lock.timeout == 0  # refused, never waited for
    store.close()
    reader = RunStore(tmp_path / "run")
    reader.note("seen")  # not the holder: noted here only, run.json untouched
    reader.close()
    assert reader.recovered == ["seen"] and RunStore(tmp_path / "run").meta()["recovered"] == []


def test_a_run_json_without_a_hash_is_refused_naming_it_unknown(tmp_path):
    (tmp_path / "run.json").write_text("{}")
    with pytest.raises(UsageError, match=r"run.json belongs to config \?, not bbbbbbbbbbbb$"):
        RunStore(tmp_path).open({"config_hash": "b" * 64})
