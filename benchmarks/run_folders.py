"""Reading run folders through the result contract only (run.json + results.csv), for compare and report.

An argument on the command line is a *source*: a run folder (it holds run.json) or a folder that holds run
folders anywhere below it (e.g. `results/`). Anything else is bad input, reported in one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from lth_core.errors import UsageError
from lth_core.store import RunStore
from lth_core.tables import CONTRACT_COLUMNS, summarize

REQUIRED = [
    "domain",
    "task",
    "kind",
    "level",
    "trial",
    "density",
    "metric",
    "score",
    "early_stop_step",
    "final_score",
    "higher_is_better",
    "status",
]


@dataclass(frozen=True)
class Run:
    """One run folder: its run.json and its results.csv (every row, whatever its status)."""

    path: Path
    meta: dict[str, Any]
    results: pd.DataFrame

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def ok(self) -> pd.DataFrame:
        """Rows of jobs that trained (diverged or failed ones carry no score)."""
        return self.results[self.results["status"] == "ok"]

    @cached_property
    def summary(self) -> pd.DataFrame:
        return summarize(self.results)

    def tasks(self) -> list[tuple[str, str]]:
        return list(dict.fromkeys(zip(self.results["domain"], self.results["task"])))


META_OBJECTS = ("identity", "imp", "domain_config", "versions", "options", "metric", "prunable", "rates")


def load_run(folder: Path) -> Run:
    """Read one run folder, never writing to it; damage is a one-line UsageError naming the file."""
    meta = RunStore.foreign(folder).meta()  # UsageError when run.json is missing, unreadable or not an object
    wrong = [k for k in META_OBJECTS if k in meta and meta[k] is not None and not isinstance(meta[k], dict)]
    if wrong:
        raise UsageError(
            f"{folder / 'run.json'}: {wrong[0]!r} is a JSON {type(meta[wrong[0]]).__name__}, "
            "where a run's record holds an object"
        )
    csv = folder / "results.csv"
    if not csv.is_file():
        raise UsageError(f"{folder} is a run folder without results.csv yet (no level has finished)")
    try:
        df = pd.read_csv(csv)
    except (ValueError, UnicodeDecodeError, OSError) as e:  # pandas' parser and empty-data errors are ValueErrors
        raise UsageError(f"{csv} is not a readable results table ({type(e).__name__})") from None
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise UsageError(f"{csv} lacks the contract columns {missing} (expected at least {CONTRACT_COLUMNS})")
    try:
        df["density"] = df["density"].astype(float).round(6)
        df["level"] = df["level"].astype(int)
    except (ValueError, TypeError) as e:
        raise UsageError(f"{csv}: a density or level that is not a number ({str(e).splitlines()[0]})") from None
    df["higher_is_better"] = df["higher_is_better"].map(_as_bool)
    for col in ("score", "final_score", "early_stop_step"):
        df[col] = pd.to_numeric(df[col], errors="coerce")
    for col in ("domain", "task", "kind", "metric", "status"):
        df[col] = df[col].astype(str)
    return Run(path=folder.resolve(), meta=meta, results=df)


def _as_bool(v: Any) -> bool:
    return v if isinstance(v, bool) else str(v).strip().lower() in ("true", "1", "yes")


def find_runs(source: str | Path) -> list[Run]:
    """The runs of one source: the folder itself when it is a run, else every run folder below it."""
    path = Path(source)
    if not path.exists():
        raise UsageError(f"{str(source)!r} does not exist; give a run folder (with run.json) or a folder of runs")
    if not path.is_dir():
        raise UsageError(f"{str(source)!r} is a file, not a run folder (with run.json) or a folder of runs")
    if (path / "run.json").is_file():
        return [] if is_analysis(path) else [load_run(path)]
    folders = sorted({p.parent for p in path.rglob("run.json")})
    if not folders:
        raise UsageError(f"{str(source)!r} is not a run folder (no run.json) and holds no run folders")
    return [load_run(f) for f in folders if not is_analysis(f)]


def is_analysis(folder: Path) -> bool:
    """An analysis folder (benchmarks.instability's), not an IMP run: its run.json names the analysis; it has no
    results.csv and is read by its own section of the report (benchmarks/lmc_report.py)."""
    try:
        identity = RunStore.foreign(folder).meta().get("identity")
    except UsageError:
        return False  # load_run reports the damage
    return isinstance(identity, dict) and "analysis" in identity


def load_sources(sources: list[str]) -> list[list[Run]]:
    if not sources:
        raise UsageError("give at least one run folder or folder of runs")
    return [find_runs(s) for s in sources]
