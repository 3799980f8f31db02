"""Preflight checks of a run: everything the user's input decides, tried before the run folder exists, each a
one-line UsageError (the runner calls them; `benchmarks.instability` reuses `check_out`)."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from torch import nn

from lth_core.adapter import Adapter
from lth_core.config import DomainConfig, RunOptions
from lth_core.errors import UsageError
from lth_core.store import RunStore


def architecture_hash(model: nn.Module) -> str:
    """What must match for a ticket to move between runs: the hash of the state dict's names and shapes."""
    blob = json.dumps({k: list(v.shape) for k, v in model.state_dict().items()}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def check_out(out: str) -> None:
    """--out must be a folder this process can create or write in (checked before anything is written)."""
    path = Path(out)
    for q in (path, *path.parents):
        if q.exists():
            if not q.is_dir():
                raise UsageError(f"--out {out!r}: {q} is a file, not a folder")
            if not os.access(q, os.W_OK | os.X_OK):
                raise UsageError(f"--out {out!r}: {q} is not writable here")
            return


EXECUTION_FLAGS = {
    "executor": "--executor",
    "cpus_per_job": "--cpus-per-job",
    "threads": "--threads",
    "device": "--device",
}


def execution(options: RunOptions, config: DomainConfig) -> dict[str, Any]:
    """What changes a run's numbers but not its question: recorded per row and in run.json, checked on resume."""
    return {
        "executor": options.executor,
        "cpus_per_job": options.cpus_per_job,
        "threads": config.threads,
        "device": config.device,
    }


def recorded_execution(meta: dict[str, Any]) -> dict[str, Any] | None:
    """A run folder's execution; a folder of the previous release has it in its `options` and `domain_config`."""
    if isinstance(meta.get("execution"), dict):
        return meta["execution"]
    opts, dom = meta.get("options"), meta.get("domain_config")
    if not (isinstance(opts, dict) and isinstance(dom, dict)):
        return None
    return {
        "executor": opts.get("executor"),
        "cpus_per_job": opts.get("cpus_per_job"),
        "threads": dom.get("threads"),
        "device": dom.get("device"),
    }


def check_execution(path: Path, here: dict[str, Any], allow_mixed: bool) -> list[dict[str, Any]]:
    """Refuse to resume `path` under another execution unless allowed; returns the executions its rows mix."""
    try:
        meta = RunStore.foreign(path).meta() if (path / "run.json").is_file() else None
    except UsageError:
        return []  # a damaged run.json: opening the folder rebuilds it from this command's config
    there = recorded_execution(meta) if meta is not None else None
    if meta is None or there is None or there == here:
        return []
    seen = [e for e in meta.get("executions", [there]) if isinstance(e, dict)]
    if allow_mixed:
        return seen + ([here] if here not in seen else [])
    name = next(k for k in EXECUTION_FLAGS if there.get(k) != here.get(k))
    raise UsageError(
        f"run folder {path} was run with {EXECUTION_FLAGS[name]} {there.get(name)}, this command asks "
        f"{EXECUTION_FLAGS[name]} {here.get(name)}: pass {EXECUTION_FLAGS[name]} {there.get(name)} to resume it "
        "alike, or --allow-mixed-execution to mix rows of both"
    )


def build_checked(adapter: Adapter, seed: int) -> nn.Module:
    """The model, or one line when the domain's settings describe one that cannot exist (a negative width, more
    memory than there is): the preflight's answer, before anything is written."""
    try:
        return adapter.build(seed)
    except (RuntimeError, ValueError, MemoryError, OverflowError) as e:
        why = " ".join(str(e).split())[:200]
        raise UsageError(
            f"{adapter.domain}: the model of these settings cannot be built ({type(e).__name__}: {why})"
        ) from None


def check_overrides(groups: dict[str, str], overrides: dict[str, float], preset_keys: set[str]) -> None:
    """A --rate-overrides key must name a group or match a tensor name: a typo is an error, not a no-op.

    A preset's own keys may match nothing in one architecture (RL presets name the heads of every algorithm)."""
    for key in overrides:
        if key not in preset_keys and not any(key == g or fnmatch.fnmatchcase(n, key) for n, g in groups.items()):
            names = list(groups)
            shown = ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")
            raise UsageError(
                f"--rate-overrides key {key!r} matches no group and no tensor name; valid groups: "
                f"{', '.join(sorted(set(groups.values())))}; tensors: {shown} (or a pattern like 'fc*')"
            )
