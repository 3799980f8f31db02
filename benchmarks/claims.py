"""`python -m benchmarks.claims`: which of the papers' claims hold here, with their statistics.

For each chosen claim (`benchmarks/seed_claims.py`; one registered object each), run the presets behind it
through `benchmarks.run` — or reuse them: a run's folder is named by its identity, so a finished run is
read back, not retrained — then judge their result tables and write a verdict table: claim, source, the
measured effect with its 95% interval over trials, the test and its Holm-corrected p-value, the densities
where the claim holds, and a verdict (holds / does not hold here / inconclusive). `claims.md` and
`claims.csv` go to --out; the runs stay in --results.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table as RichTable

from benchmarks import seed_claims as _seed_claims  # noqa: F401  (registers the seed claims)
from benchmarks.claim_base import CLAIMS, SCALES, Claim, Recipe, Verdict
from benchmarks.cli import OneLineParser, fail
from benchmarks.run import parse as parse_run
from benchmarks.run import run_plan
from benchmarks.run_folders import Run, load_run
from domains import DOMAINS, domain_names
from lth_core.atomic import atomic_write_text
from lth_core.config import opt
from lth_core.errors import UsageError
from lth_core.executors import EXECUTORS
from lth_core.registry import Registry

PROG = "python -m benchmarks.claims"


def fmt_p(p: float) -> str:
    return "" if math.isnan(p) else (f"{p:.2g}" if p >= 1e-3 else f"{p:.0e}")


COLUMNS = ["claim", "verdict", "effect", "test", "p", "holds_at", "detail", "source", "statement", "threshold", "runs"]


@dataclass
class ClaimsConfig:
    """Which claims to test, at which scale, and where runs and verdicts go."""

    domain: str = opt("all", "only the claims whose runs are in this domain (or 'all')")
    only: str = opt("", "comma list of claims to test (default: every claim of --domain)")
    scale: str = opt("quick", "quick: embedded data on a CPU; paper: the paper presets (a GPU)", choices=SCALES)
    out: str = opt("claims", "folder for claims.md and claims.csv")
    results: str = opt("results", "folder of run folders: a run already there is reused, else it runs there")
    executor: str = opt("local", "how each run's jobs are executed (as benchmarks.run --executor)", choices=EXECUTORS)

    def chosen(self, registry: Registry[Claim] = CLAIMS, table: dict[str, str] = DOMAINS) -> list[Claim]:
        domains = ["all", *domain_names(table)]
        if self.domain not in domains:
            raise UsageError(f"--domain {self.domain!r} is not one of {', '.join(domains)}")
        names = [n.strip() for n in self.only.split(",") if n.strip()] or registry.registered()
        claims = [registry.get(n) for n in names]
        if self.domain != "all":
            claims = [c for c in claims if c.domains() == {self.domain}]
        if not claims:
            raise UsageError(f"no claim of --only {self.only!r} has all its runs in domain {self.domain!r}")
        missing = [c.name for c in claims if any(n.at(self.scale) is None for n in c.needs)]
        if missing:
            raise UsageError(f"claims {', '.join(missing)} have no runs at --scale {self.scale}")
        return claims


def needed(claims: list[Claim], scale: str) -> dict[str, Recipe]:
    """Every run the claims read, by need name, in an order where a run comes after those its flags name."""
    recipes: dict[str, Recipe] = {}
    for c in claims:
        for n in c.needs:
            r = n.at(scale)
            assert r is not None
            if n.name in recipes and recipes[n.name] != r:
                raise ValueError(f"need {n.name!r} declared with two recipes")
            recipes[n.name] = r
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in order:
            return
        if name in path or name not in recipes:
            raise ValueError(f"need {name!r} is unknown or refers to itself")
        for dep in recipes[name].refers_to():
            visit(dep, (*path, name))
        order.append(name)

    for name in list(recipes):
        visit(name, ())
    return {n: recipes[n] for n in order}


def check_all(recipes: dict[str, Recipe], cfg: ClaimsConfig, table: dict[str, str] = DOMAINS) -> None:
    """Parse every run's flags before anything runs (a bad preset or flag is one line, nothing written)."""
    placeholders = {name: str(Path(cfg.results) / name) for name in recipes}
    for recipe in recipes.values():
        argv = [*recipe.argv(placeholders, cfg.results), "--executor", cfg.executor]
        parse_run(argv, recipe.domain, recipe.preset, table)


def run_all(recipes: dict[str, Recipe], cfg: ClaimsConfig, table: dict[str, str] = DOMAINS) -> dict[str, str]:
    """Run (or reuse) each recipe in order; returns need name -> run folder."""
    folders: dict[str, str] = {}
    for name, recipe in recipes.items():
        argv = [*recipe.argv(folders, cfg.results), "--executor", cfg.executor]
        started = time.perf_counter()
        print(f"[claims] {name}: python -m benchmarks.run {' '.join(argv)}", flush=True)
        folders[name] = run_plan(parse_run(argv, recipe.domain, recipe.preset, table))
        print(f"[claims] {name}: {folders[name]} ({time.perf_counter() - started:.0f} s)", flush=True)
    return folders


def judge(claims: list[Claim], folders: dict[str, str]) -> pd.DataFrame:
    rows = []
    runs: dict[str, Run] = {name: load_run(Path(f)) for name, f in folders.items()}
    for c in claims:
        v: Verdict = c.judge({n.name: runs[n.name] for n in c.needs})
        rows.append(
            {
                "claim": c.name,
                "verdict": v.verdict,
                "effect": v.effect,
                "test": v.test,
                "p": v.p,
                "holds_at": v.where,
                "detail": v.detail,
                "source": c.source,
                "statement": c.statement,
                "threshold": c.threshold,
                "runs": " ".join(Path(folders[n.name]).name for n in c.needs),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def render_md(table: pd.DataFrame, scale: str, seconds: float) -> str:
    shown = table.assign(p=[fmt_p(p) for p in table["p"]])
    head = shown[["claim", "verdict", "effect", "p", "holds_at", "detail"]]
    parts = [
        f"# Claims at scale {scale!r}\n",
        f"{(table['verdict'] == 'holds').sum()} of {len(table)} claims hold ({seconds:.0f} s).\n",
        head.to_markdown(index=False, disable_numparse=True),
        "",
        "## What each claim says, where from, and its declared thresholds\n",
    ]
    for r in table.itertuples():
        parts.append(
            f"- **{r.claim}** ({r.source}): {r.statement} *Threshold:* {r.threshold}. *Test:* {r.test}. "
            f"*Runs:* {r.runs}"
        )
    return "\n".join(parts) + "\n"


def show(table: pd.DataFrame) -> None:
    t = RichTable(title="claims")
    for col in ("claim", "verdict", "effect", "p", "holds_at"):
        t.add_column(col)
    for r in table.itertuples():
        t.add_row(r.claim, r.verdict, r.effect, fmt_p(r.p), r.holds_at)
    Console(width=160).print(t)


def parse(argv: list[str], registry: Registry[Claim] = CLAIMS) -> ClaimsConfig:
    parser = OneLineParser(prog=PROG, description=__doc__, epilog=epilog(registry))
    parser.add_arguments(ClaimsConfig, dest="cfg")
    cfg: ClaimsConfig = parser.parse_args(argv).cfg
    return cfg


def epilog(registry: Registry[Claim]) -> str:
    return "claims:\n" + "\n".join(f"  {c.name:<28} {c.statement}" for c in map(registry.get, registry.registered()))


def main(argv: list[str] | None = None, registry: Registry[Claim] = CLAIMS, table: dict[str, str] = DOMAINS) -> int:
    """Entry point; tests pass their own claim `registry` and domain `table` (as benchmarks.run's)."""
    started = time.perf_counter()
    try:
        cfg = parse(list(sys.argv[1:] if argv is None else argv), registry)
        claims = cfg.chosen(registry, table)
        recipes = needed(claims, cfg.scale)
        check_all(recipes, cfg, table)
        out = Path(cfg.out)
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out {cfg.out!r} is a file, not a folder")
        folders = run_all(recipes, cfg, table)
        table = judge(claims, folders)
    except UsageError as e:
        fail(str(e))
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "claims.csv", table.to_csv(index=False))
    atomic_write_text(out / "claims.md", render_md(table, cfg.scale, time.perf_counter() - started))
    show(table)
    print(f"verdicts: {out / 'claims.md'}, {out / 'claims.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
