"""Helpers of the bad-input tests: a hand-written foreign run folder, and a byte-exact snapshot of a folder."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

EVIL = "<script>alert(1)</script>\"'&"


def foreign_run(
    folder: Path,
    domain: str = "toy",
    task: str = "blobs/mlp",
    metric: str = "accuracy",
    control: str = "random_reinit",
    meta: dict | None = None,
) -> Path:
    """A run folder as another tool (or a hostile user) might hand us: run.json and results.csv only."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for trial in range(2):
        for kind, level, density, score in (
            ("dense", 0, 1.0, 0.9),
            ("ticket", 1, 0.8, 0.88 + trial / 100),
            (control, 1, 0.8, 0.7 + trial / 50),
        ):
            rows.append(
                {
                    "domain": domain,
                    "task": task,
                    "kind": kind,
                    "level": level,
                    "trial": trial,
                    "density": density,
                    "metric": metric,
                    "score": score,
                    "early_stop_step": 10 * (1 + trial),
                    "final_score": score,
                    "higher_is_better": True,
                    "seed": trial,
                    "wall_seconds": 0.1,
                    "config_hash": "abc",
                    "status": "ok",
                    "error": "",
                    "config": json.dumps({"x": EVIL}),
                }
            )
    pd.DataFrame(rows).to_csv(folder / "results.csv", index=False)
    base = {
        "config_hash": "abc" * 8,
        "domain": domain,
        "task": task,
        "preset": EVIL,
        "git_commit": EVIL,
        "imp": {"levels": 1, "trials": 2, "rate": EVIL},
        "domain_config": {EVIL: EVIL},
        "versions": {"torch": EVIL},
        "prunable": {EVIL: "fc"},
        "rates": {EVIL: 0.2},
        "recovered": [EVIL],
        "ticket_from": {"path": EVIL},
        "created": EVIL,
        "budget": 100,
        "rewind_step": 0,
        "seed": 0,
        "architecture_hash": EVIL,
    }
    (folder / "run.json").write_text(json.dumps(base if meta is None else meta))
    return folder


def snapshot(folder: Path) -> dict[str, str]:
    """Every path below `folder` (folders, hidden and lock files included) -> the SHA-256 of its bytes."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out
