"""benchmarks.compare's input checks run: a bad --density-rtol or an empty --regression-kinds is one line, exit 2."""

from __future__ import annotations

import pytest

from benchmarks import compare
from benchmarks.compare import CompareConfig
from lth_core.errors import UsageError


@pytest.mark.parametrize(
    "field,value,expected",
    [
        ("density_rtol", 0.5, "--density-rtol 0.5 must be in [0, 0.5)"),
        ("density_rtol", -0.1, "--density-rtol -0.1 must be in [0, 0.5)"),
        ("regression_kinds", " , ", "--regression-kinds is empty"),
    ],
)
def test_validate_refuses(field, value, expected):
    with pytest.raises(UsageError, match=expected.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        CompareConfig(runs=["a"], **{field: value}).validate()


@pytest.mark.parametrize(
    "args,expected",
    [
        (["--density-rtol", "0.9"], "--density-rtol 0.9 must be in [0, 0.5)"),
        (["--regression-kinds", ""], "--regression-kinds is empty"),
    ],
)
def test_cli_refuses_before_reading_any_run(tmp_path, capsys, args, expected):
    with pytest.raises(SystemExit) as e:
        compare.main([str(tmp_path / "a"), str(tmp_path / "b"), *args])
    assert e.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1 and expected in captured.err
