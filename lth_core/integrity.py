"""A check of every file of a run folder when a run (re)opens it, so no damage goes unnoticed.

A file that cannot be read is moved to `corrupt/` and noted in run.json's `recovered` list; the runner then
recomputes what is missing: job records by training the job again, masks and initial weights from their
seeds, derived tables and the figure from the job records. A write cut short by a kill (a `.*.tmp` file) was
never committed, so it is removed (and noted). Contents are not checksummed: this catches truncated, empty,
half-written and garbage files, which is what kills, full disks and careless copies leave behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

import torch

if TYPE_CHECKING:
    from lth_core.store import RunStore

PNG_HEAD = b"\x89PNG\r\n\x1a\n"
PNG_TAIL = b"IEND\xaeB`\x82"


def _text(file: Path) -> str | None:
    """Why a derived text file is unreadable, or None if it reads: UTF-8, ending in a newline."""
    try:
        text = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8 text"
    return None if text.endswith("\n") else "cut short (no final newline)"


def _csv(file: Path) -> str | None:
    why = _text(file)
    if why is not None or not file.read_text().strip():
        return why
    import pandas as pd

    try:
        pd.read_csv(file)
    except (ValueError, pd.errors.ParserError) as e:
        return f"unparseable CSV: {str(e).splitlines()[0]}"
    return None


def _png(file: Path) -> str | None:
    data = file.read_bytes()
    return None if data.startswith(PNG_HEAD) and data.endswith(PNG_TAIL) else "not a complete PNG"


DERIVED: dict[str, Callable[[Path], str | None]] = {
    "results.csv": _csv,
    "summary.csv": _csv,
    "summary.md": _text,
    "figure1.png": _png,
}


def check_run_folder(store: RunStore) -> None:
    """Quarantine every unreadable file of an opened (locked) run folder; the runner rebuilds what it needs."""
    for tmp in sorted(p for d in (store.path, store.jobs_dir, store.state_dir) if d.is_dir() for p in d.glob(".*.tmp")):
        tmp.unlink()
        store.note(f"{tmp.relative_to(store.path)} (a write cut short by a kill) removed")
    for f in sorted(store.jobs_dir.glob("*.json")):
        store.record(f.stem)  # quarantines what it cannot read
    for f in sorted(store.state_dir.glob("*.pt")):
        try:
            torch.load(f, map_location="cpu", weights_only=True, mmap=True)
        except Exception as e:  # truncated zip, garbage, empty file
            store.quarantine(f, f"unreadable tensors: {type(e).__name__}")
    for name, check in DERIVED.items():
        f = store.path / name
        why = check(f) if f.is_file() else None
        if why is not None:
            store.quarantine(f, f"{why}; rebuilt from the job records")
