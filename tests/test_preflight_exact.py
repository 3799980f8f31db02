"""Preflight checks by exact behaviour, in process (lth_core/preflight.py): each refusal and the one line the user
reads, what passes, the execution recorded and compared on resume, and the architecture hash a transfer checks
(the CLI's bad-input tests pin these through whole commands, too slow for mutation testing)."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
import torch
from toy_adapter import ToyAdapter, ToyConfig

from lth_core.config import RunOptions
from lth_core.errors import UsageError
from lth_core.preflight import (
    EXECUTION_FLAGS,
    architecture_hash,
    build_checked,
    check_execution,
    check_out,
    check_overrides,
    execution,
    recorded_execution,
)

HERE = {"executor": "local", "cpus_per_job": 1.0, "threads": 0, "device": "cpu"}


def test_the_architecture_hash_is_the_names_and_shapes_only():
    a = ToyAdapter(ToyConfig())
    model = a.build(0)
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    blob = json.dumps(shapes, sort_keys=True).encode()
    assert architecture_hash(model) == hashlib.sha256(blob).hexdigest()[:16] == "4b45bdd231ee5ae2"
    assert architecture_hash(a.build(1)) == architecture_hash(model)  # the weights do not count
    assert architecture_hash(ToyAdapter(ToyConfig(hidden=16)).build(0)) != architecture_hash(model)
    renamed = torch.nn.Sequential(*list(model.children())[1:])  # other names (and shapes)
    assert architecture_hash(renamed) != architecture_hash(model)


def test_out_may_be_a_new_folder_under_a_writable_one_or_a_writable_folder(tmp_path):
    check_out(str(tmp_path / "a" / "b" / "c"))
    check_out(str(tmp_path))


def test_out_under_a_file_is_refused_naming_the_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(UsageError) as e:
        check_out(str(tmp_path / "f" / "out"))
    assert str(e.value) == f"--out {str(tmp_path / 'f' / 'out')!r}: {tmp_path / 'f'} is a file, not a folder"
    with pytest.raises(UsageError, match="is a file, not a folder"):
        check_out(str(tmp_path / "f"))


def deny(monkeypatch, where, bit):
    """This process may not `bit` (os.W_OK or os.X_OK) in `where` (as a non-root user sees a read-only folder)."""
    real = os.access

    def access(path, mode, *a, **k):
        return not (str(path) == str(where) and mode & bit) and real(path, mode, *a, **k)

    monkeypatch.setattr(os, "access", access)


@pytest.mark.parametrize("bit", [os.W_OK, os.X_OK])
def test_out_in_a_folder_this_process_cannot_write_or_enter_is_refused(tmp_path, monkeypatch, bit):
    deny(monkeypatch, tmp_path, bit)
    with pytest.raises(UsageError) as e:
        check_out(str(tmp_path / "new"))
    assert str(e.value) == f"--out {str(tmp_path / 'new')!r}: {tmp_path} is not writable here"


def test_only_the_nearest_existing_folder_decides(tmp_path, monkeypatch):
    (tmp_path / "mine").mkdir()
    deny(monkeypatch, tmp_path, os.W_OK)
    check_out(str(tmp_path / "mine" / "new"))  # the parent's parent is not writable: no matter


def test_the_execution_is_the_four_settings_that_change_numbers_not_the_question():
    cfg = ToyConfig(threads=2, device="cpu")
    opts = RunOptions(executor="process", cpus_per_job=3.0, workers=4)
    assert execution(opts, cfg) == {"executor": "process", "cpus_per_job": 3.0, "threads": 2, "device": "cpu"}
    assert EXECUTION_FLAGS == {
        "executor": "--executor",
        "cpus_per_job": "--cpus-per-job",
        "threads": "--threads",
        "device": "--device",
    }


def test_a_recorded_execution_is_read_from_run_json_or_from_an_older_folders_settings():
    assert recorded_execution({"execution": HERE, "options": {"executor": "ray"}}) == HERE
    old = {
        "options": {"executor": "ray", "cpus_per_job": 2.0, "x": 1},
        "domain_config": {"threads": 1, "device": "cuda"},
    }
    assert recorded_execution(old) == {"executor": "ray", "cpus_per_job": 2.0, "threads": 1, "device": "cuda"}
    assert recorded_execution({"execution": "local", **old})["executor"] == "ray"  # not a dict: the older form
    assert recorded_execution({"options": {}, "domain_config": {}}) == dict.fromkeys(HERE)
    assert recorded_execution({"options": {"executor": "ray"}}) is None
    assert recorded_execution({"domain_config": {"threads": 1}}) is None
    assert recorded_execution({"options": [], "domain_config": {}}) is None
    assert recorded_execution({}) is None


def run_folder(tmp_path, **meta):
    (tmp_path / "run.json").write_text(json.dumps({"config_hash": "c" * 64, **meta}))
    return tmp_path


def test_a_new_damaged_or_same_execution_folder_resumes_with_nothing_to_mix(tmp_path):
    assert check_execution(tmp_path / "none", HERE, False) == []
    (tmp_path / "a").mkdir()
    assert check_execution(run_folder(tmp_path / "a"), HERE, False) == []  # no execution recorded
    (tmp_path / "b").mkdir()
    assert check_execution(run_folder(tmp_path / "b", execution=HERE), HERE, False) == []
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "run.json").write_text("{")
    assert check_execution(tmp_path / "c", HERE, False) == []
    assert (tmp_path / "c" / "run.json").read_text() == "{"  # only read here
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "run.json").write_text("[1]")
    assert check_execution(tmp_path / "d", HERE, False) == []
    (tmp_path / "e" / "run.json").mkdir(parents=True)  # not a file: not a run folder's record, nothing to check
    assert check_execution(tmp_path / "e", HERE, False) == []


def test_another_execution_is_refused_naming_the_first_flag_that_differs(tmp_path):
    there = {**HERE, "cpus_per_job": 2.0, "device": "cuda"}
    with pytest.raises(UsageError) as e:
        check_execution(run_folder(tmp_path, execution=there), HERE, False)
    assert str(e.value) == (
        f"run folder {tmp_path} was run with --cpus-per-job 2.0, this command asks --cpus-per-job 1.0: pass "
        "--cpus-per-job 2.0 to resume it alike, or --allow-mixed-execution to mix rows of both"
    )
    with pytest.raises(UsageError, match="was run with --device cuda, this command asks --device cpu: pass --device"):
        check_execution(run_folder(tmp_path, execution={**HERE, "device": "cuda"}), HERE, False)


def test_mixing_is_allowed_and_lists_every_execution_once(tmp_path):
    there = {**HERE, "executor": "process"}
    assert check_execution(run_folder(tmp_path, execution=there), HERE, True) == [there, HERE]
    third = {**HERE, "threads": 4}
    folder = run_folder(tmp_path, execution=there, executions=[there, HERE, "junk"])
    assert check_execution(folder, HERE, True) == [there, HERE]
    assert check_execution(folder, third, True) == [there, HERE, third]


class Unbuildable(ToyAdapter):
    def __init__(self, config, error):
        super().__init__(config)
        self.error = error

    def build(self, seed):
        if self.error is not None:
            raise self.error
        return super().build(seed)


def test_a_model_that_cannot_be_built_is_one_line_naming_the_domain_and_why():
    with pytest.raises(UsageError) as e:
        build_checked(ToyAdapter(ToyConfig(hidden=-1)), 0)
    assert str(e.value) == (
        "toy: the model of these settings cannot be built (RuntimeError: Trying to create tensor with negative "
        "dimension -1: [-1, 10])"
    )
    assert e.value.__cause__ is None and e.value.__suppress_context__
    for error in (ValueError("a\n  b\tc"), MemoryError("m" * 300), OverflowError("o")):
        with pytest.raises(UsageError) as e:
            build_checked(Unbuildable(ToyConfig(), error), 0)
        why = " ".join(str(error).split())[:200]
        assert str(e.value) == f"toy: the model of these settings cannot be built ({type(error).__name__}: {why})"
    with pytest.raises(UsageError) as e:
        build_checked(Unbuildable(ToyConfig(), ValueError("a\n  b\tc")), 0)
    assert str(e.value).endswith("(ValueError: a b c)")  # one line
    with pytest.raises(UsageError) as e:
        build_checked(Unbuildable(ToyConfig(), MemoryError("m" * 300)), 0)
    assert str(e.value).endswith("(MemoryError: " + "m" * 200 + ")")  # cut at 200 characters
    with pytest.raises(TypeError):  # a bug, not a setting: not a usage error
        build_checked(Unbuildable(ToyConfig(), TypeError("bug")), 0)
    model = build_checked(Unbuildable(ToyConfig(), None), 3)
    assert torch.equal(model[0].weight, ToyAdapter(ToyConfig()).build(3)[0].weight)


GROUPS = {"0.weight": "fc", "2.weight": "fc", "4.weight": "output"}


def test_an_override_may_name_a_group_a_tensor_a_pattern_or_a_preset_key():
    check_overrides(GROUPS, {"fc": 0.1, "output": 0.2, "2.weight": 0.3, "4.*": 0.1, "*": 0.5}, set())
    check_overrides(GROUPS, {"conv": 0.1}, {"conv"})
    check_overrides({}, {}, set())


def test_an_override_that_matches_nothing_is_one_line_listing_what_there_is():
    with pytest.raises(UsageError) as e:
        check_overrides(GROUPS, {"fc": 0.1, "fcc": 0.2}, {"conv"})
    assert str(e.value) == (
        "--rate-overrides key 'fcc' matches no group and no tensor name; valid groups: fc, output; "
        "tensors: 0.weight, 2.weight, 4.weight (or a pattern like 'fc*')"
    )
    many = {f"l{i}.weight": "fc" for i in range(9)}
    with pytest.raises(UsageError) as e:
        check_overrides(many, {"conv": 0.1}, set())
    assert ", l7.weight, ... (9 in all) (or a pattern" in str(e.value) and "l8.weight" not in str(e.value)
    eight = {f"l{i}.weight": "fc" for i in range(8)}
    with pytest.raises(UsageError) as e:
        check_overrides(eight, {"conv": 0.1}, set())
    assert "tensors: l0.weight, l1.weight, l2.weight, l3.weight, l4.weight, l5.weight, l6.weight, l7.weight (or" in str(
        e.value
    )
    with pytest.raises(UsageError, match="'fc.weight'"):
        check_overrides({"fc.bias": "fc"}, {"fc.weight": 0.1}, set())  # a key equal to no group, no name
