"""Provenance by exact values (lth_core/provenance.py): the versions every row records (Python's, the engine's
packages', the domain's, none twice, none made up) and the commit, with '+dirty' for uncommitted changes to
tracked files only, or 'unknown' where git cannot tell (run against real git in throwaway repositories)."""

from __future__ import annotations

import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import pytest

import lth_core.provenance as provenance
from lth_core.provenance import CORE_PACKAGES, git_commit, row_provenance, versions


def test_versions_are_pythons_and_each_installed_package_once_in_order():
    got = versions.__wrapped__(("pandas", "torch", "no-such-distribution-lth"))
    assert list(got) == ["python", "lth-bench", "torch", "numpy", "pandas"]
    assert got == {"python": platform.python_version(), **{n: metadata.version(n) for n in list(got)[1:]}}
    assert CORE_PACKAGES == ("lth-bench", "torch", "numpy")
    assert list(versions.__wrapped__()) == ["python", "lth-bench", "torch", "numpy"]


def test_a_rows_provenance_is_the_commit_and_the_versions_as_sorted_json():
    row = row_provenance(("pandas",))
    assert list(row) == ["git_commit", "versions"] and row["git_commit"] == git_commit()
    assert row["versions"] == json.dumps(versions(("pandas",)), sort_keys=True)
    assert row["versions"].index('"numpy"') < row["versions"].index('"pandas"') < row["versions"].index('"python"')


RUN = subprocess.run  # the real one, for the tests' own git calls


def git(repo: Path, *args: str) -> str:
    return RUN(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A real git repository with one commit; provenance's git calls are run in it (not in this checkout), and
    the folder they were asked to run in is recorded."""
    r = tmp_path / "repo"
    r.mkdir()
    git(r, "init", "-q")
    (r / "a.txt").write_text("a\n")
    git(r, "add", "a.txt")
    git(r, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    real, asked = subprocess.run, []

    def run_in_repo(cmd, cwd=None, **kw):
        asked.append(cwd)
        return real(cmd, cwd=r, **kw)

    monkeypatch.setattr(provenance.subprocess, "run", run_in_repo)
    return r, asked


def test_a_clean_checkout_is_its_commit(repo):
    repo, asked = repo
    assert git_commit.__wrapped__() == git(repo, "rev-parse", "HEAD")
    assert asked == [Path(provenance.__file__).resolve().parents[1]] * 2  # the checkout the code runs from


def test_untracked_files_do_not_make_it_dirty_but_changed_tracked_files_do(repo):
    repo, _ = repo
    (repo / "new.txt").write_text("x\n")
    assert git_commit.__wrapped__() == git(repo, "rev-parse", "HEAD")
    (repo / "a.txt").write_text("changed\n")
    assert git_commit.__wrapped__() == git(repo, "rev-parse", "HEAD") + "+dirty"


def test_not_a_checkout_is_unknown(repo):
    repo, _ = repo
    (repo / ".git").rename(repo / "git-was-here")
    assert git_commit.__wrapped__() == "unknown"


@pytest.mark.parametrize("error", [OSError("no git"), subprocess.TimeoutExpired("git", 10)])
def test_no_git_or_a_git_that_hangs_is_unknown(monkeypatch, error):
    def fail(*a, **k):
        raise error

    monkeypatch.setattr(provenance.subprocess, "run", fail)
    assert git_commit.__wrapped__() == "unknown"
