"""The run store: one folder per config hash, one atomically written record per finished job.

Layout of a run folder:
  run.json              config, hash, seed, versions, commit (written once, checked on resume)
  jobs/<key>.json       one record per finished job: the row plus its evaluation curve (the source of truth)
  state/*.pt            plain tensors: rewind weights per trial, ticket masks and trained ticket weights per level
  results.csv, densities.csv, summary.csv, summary.md, figure1.png   derived from jobs/ — rebuilt on each write
A record is written only after the state it points to, so a kill at any moment loses at most the job in flight.
A file that cannot be read is moved aside to `corrupt/` (never silently dropped), noted in run.json's `recovered`
list, and recomputed; every file is checked when a run opens its folder (lth_core/integrity.py).
The store alone spells the names of jobs and state files (`job_key`, `mask_name`, ...), and keeps the records it
has read or written, so tables rebuilt after each level read no record file twice (one writer holds the folder).

A folder opened with `RunStore.foreign` (another run's, read by --ticket-from, compare, report) is only read:
damage there is a one-line UsageError naming the file, and nothing in it is moved, written or locked.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock, Timeout

from lth_core.atomic import atomic_torch_save, atomic_write_json
from lth_core.errors import UsageError


def job_key(level: int, kind: str, trial: int) -> str:
    """The name of a job's record, e.g. 'L02-ticket-t1' (also `Job.key`)."""
    return f"L{level:02d}-{kind}-t{trial}"


ROW_FIELDS: dict[str, type | tuple[type, ...]] = {"kind": str, "level": int, "trial": int, "status": str}


def record_shape_error(rec: Any) -> str | None:
    """Why a parsed job record is not one this store writes (None if it is): an object with a `row` object whose
    kind, level, trial and status have their types, and a list `curve` where present."""
    if not isinstance(rec, dict):
        return f"a JSON {type(rec).__name__}, not an object"
    row = rec.get("row")
    if not isinstance(row, dict):
        return "no row object"
    for name, typ in ROW_FIELDS.items():
        v = row.get(name)
        if not isinstance(v, typ) or isinstance(v, bool):
            return f"row.{name} is {v!r}"
    if "attempts" in row and (not isinstance(row["attempts"], int) or row["attempts"] < 1):
        return f"row.attempts is {row['attempts']!r}"
    if not isinstance(rec.get("curve", []), list):
        return "curve is not a list"
    return None


class RunStore:
    def __init__(self, path: Path, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.jobs_dir = self.path / "jobs"
        self.state_dir = self.path / "state"
        self._lock: FileLock | None = None
        self.recovered: list[str] = []  # files found corrupt and moved aside this session (run.json: all sessions)
        self._records: dict[str, dict] = {}  # key -> record, as read or written by this store

    # ---- names ---------------------------------------------------------------------------
    job_key = staticmethod(job_key)

    @staticmethod
    def init_name(trial: int) -> str:
        """Initial weights of a trial (its dense job starts there)."""
        return f"init-t{trial}"

    @staticmethod
    def rewind_name(trial: int) -> str:
        """The dense run's weights at the rewind step, where every ticket and control of the trial starts."""
        return f"rewind-t{trial}"

    @staticmethod
    def mask_name(level: int, trial: int) -> str:
        return f"mask-L{level:02d}-t{trial}"

    @staticmethod
    def final_name(level: int, trial: int) -> str:
        """Trained weights of a level's ticket (or dense run), which the next level prunes."""
        return f"final-L{level:02d}-t{trial}"

    @staticmethod
    def captured_name(level: int, trial: int) -> str:
        """The weights level `level`'s ticket is pruned from, taken during an earlier training (early bird)."""
        return f"captured-L{level:02d}-t{trial}"

    @staticmethod
    def distances_name(key: str, level: int) -> str:
        """The mask-distance matrix of training `key`'s evaluation points, for level `level`'s mask (csv)."""
        return f"early_bird/{key}-L{level:02d}.csv"

    @staticmethod
    def scoring_name(level: int, trial: int) -> str:
        """The seconds the strategy spent drawing that mask (saved before it: the `scoring_s` column)."""
        return f"scoring-L{level:02d}-t{trial}"

    @staticmethod
    def grad_sums_name(level: int, trial: int) -> str:
        """Sum of g * w over that training (`Job.grad_sums`), saved before its final weights, for movement."""
        return f"gradsums-L{level:02d}-t{trial}"

    @classmethod
    def foreign(cls, path: Path) -> "RunStore":
        """Another run's folder, only read: never locked, written or repaired."""
        return cls(path, read_only=True)

    # ---- lifecycle -------------------------------------------------------------------------
    def open(self, meta: dict[str, Any]) -> "RunStore":
        """Create or reopen the folder, take its lock, and write or check run.json."""
        if self.read_only:
            raise RuntimeError(f"{self.path} was opened read-only (RunStore.foreign) and cannot be run in")
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.path / ".lock"), timeout=0)
        try:
            self._lock.acquire()
        except Timeout:
            raise UsageError(
                f"run folder {self.path} is locked by {self._holder()}; wait for it to finish or stop it"
            ) from None
        atomic_write_json(
            self.path / ".lock.owner",
            {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S")},
        )
        run_json = self.path / "run.json"
        try:
            existing = self._read_json(run_json)
        except UsageError:  # the folder is named by this very config's hash: its run.json is rebuilt from it
            existing = None
            self._quarantine(run_json, "unreadable JSON; rewritten from this command's config")
        if existing is not None and existing.get("config_hash") != meta["config_hash"]:
            self.close()
            raise UsageError(
                f"{run_json} belongs to config {existing.get('config_hash', '?')[:12]}, not {meta['config_hash'][:12]}"
            )
        if existing is None:
            atomic_write_json(run_json, {**meta, "recovered": list(self.recovered)})
        self.jobs_dir.mkdir(exist_ok=True)
        self.state_dir.mkdir(exist_ok=True)
        from lth_core.integrity import check_run_folder

        check_run_folder(self)
        return self

    def _holder(self) -> str:
        try:
            o = json.loads((self.path / ".lock.owner").read_text())
            return f"pid {o['pid']} on {o['host']} (since {o['since']})"
        except (OSError, ValueError, KeyError):
            return "another process"

    def close(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def meta(self) -> dict[str, Any]:
        m = self._read_json(self.path / "run.json")
        if m is None:
            raise UsageError(f"{self.path} is not a run folder (no readable run.json)")
        if not isinstance(m, dict):
            raise UsageError(
                f"{self.path / 'run.json'} holds a JSON {type(m).__name__}, not a run's record (an object)"
            )
        return m

    def update_meta(self, **fields: Any) -> None:
        """Update run.json; a `recovered` list is added to the one already there, not put in its place."""
        meta = self.meta()
        if "recovered" in fields:
            fields["recovered"] = list(dict.fromkeys([*meta.get("recovered", []), *fields["recovered"]]))
        atomic_write_json(self.path / "run.json", {**meta, **fields})

    # ---- corruption handling ---------------------------------------------------------------
    def note(self, what: str) -> None:
        """Record a repair in `recovered`, and at once in run.json when this process holds the folder."""
        self.recovered.append(what)
        if self._lock is not None and (self.path / "run.json").is_file():
            try:
                self.update_meta(recovered=[what])
            except UsageError:  # run.json itself is the damaged file: open() rewrites it with the list
                pass

    def _quarantine(self, file: Path, why: str) -> None:
        if self.read_only:
            raise UsageError(f"{file} is damaged ({why}); that folder is only read here, so nothing in it was changed")
        dest = self.path / "corrupt"
        dest.mkdir(exist_ok=True)
        target = dest / f"{file.name}.{time.time_ns()}"
        if file.parent == self.jobs_dir:
            self._records.pop(file.stem, None)
        os.replace(file, target)
        self.note(f"{file.relative_to(self.path)} ({why}) -> {target.relative_to(self.path)}")

    quarantine = _quarantine

    def _read_json(self, file: Path) -> dict | None:
        if not file.exists():
            return None
        try:
            return json.loads(file.read_text())
        except (ValueError, UnicodeDecodeError) as e:
            if file.name == "run.json" and not self.read_only:
                raise UsageError(f"{file} is corrupt ({e}); remove it to start this run afresh") from None
            self._quarantine(file, f"unreadable JSON: {e}")
            return None

    # ---- job records -----------------------------------------------------------------------
    def record_path(self, key: str) -> Path:
        return self.jobs_dir / f"{key}.json"

    def record(self, key: str) -> dict | None:
        if key in self._records:
            return self._records[key]
        rec = self._read_json(self.record_path(key))
        why = None if rec is None else record_shape_error(rec)
        if why is not None:
            self._quarantine(self.record_path(key), f"record of the wrong shape: {why}")
            return None
        if rec is not None:
            self._records[key] = rec
        return rec

    def write_record(self, key: str, record: dict[str, Any]) -> None:
        atomic_write_json(self.record_path(key), record)
        self._records[key] = json.loads(json.dumps(record, sort_keys=True, default=str))  # as a reader sees it

    def records(self) -> list[dict]:
        """Every readable record, in key order; a file is read only the first time it is seen."""
        out = []
        for f in sorted(self.jobs_dir.glob("*.json")):
            rec = self.record(f.stem)
            if rec is not None:
                out.append(rec)
        return out

    # ---- tensors ---------------------------------------------------------------------------
    def state_path(self, name: str) -> Path:
        return self.state_dir / f"{name}.pt"

    def save_state(self, name: str, tensors: dict[str, torch.Tensor]) -> None:
        atomic_torch_save({k: v.detach().cpu() for k, v in tensors.items()}, self.state_path(name))

    def load_state(self, name: str) -> dict[str, torch.Tensor] | None:
        f = self.state_path(name)
        if not f.exists():
            return None
        try:
            return torch.load(f, map_location="cpu", weights_only=True)
        except Exception as e:  # any unreadable pickle/zip: quarantine and recompute
            self._quarantine(f, f"unreadable tensors: {type(e).__name__}")
            return None
