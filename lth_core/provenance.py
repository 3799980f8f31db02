"""What every row and run.json carries so a number can be traced: package versions and the git commit.

The engine names only its own packages; each adapter declares the domain's (`Adapter.packages`)."""

from __future__ import annotations

import json
import platform
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path

CORE_PACKAGES = ("lth-bench", "torch", "numpy")


@lru_cache(maxsize=None)
def versions(packages: tuple[str, ...] = ()) -> dict[str, str]:
    """Python's version and those of the engine's packages and `packages` that are installed."""
    out = {"python": platform.python_version()}
    for name in dict.fromkeys((*CORE_PACKAGES, *packages)):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def row_provenance(packages: tuple[str, ...] = ()) -> dict[str, str]:
    """The two columns every result row carries: the commit, and the versions as sorted JSON (one CSV cell)."""
    return {"git_commit": git_commit(), "versions": json.dumps(versions(packages), sort_keys=True)}


@lru_cache(maxsize=1)
def git_commit() -> str:
    """The commit of the checkout the code runs from ('+dirty' when it has uncommitted changes)."""
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
