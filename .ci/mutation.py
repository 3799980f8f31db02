"""Mutation testing of lth_core/ by groups (`[tool.lth_mutation.<group>]` in pyproject.toml), see .ci/mutation.

Each group is run in its own copy of the tree (.mutation/<group>/), whose [tool.mutmut] test selection is the
group's tests, so its mutmut cache (.mutation/<group>/mutants/) survives runs of the other groups. The table
counts, per group: killed, timeout, survived, no tests (a mutant no test of the group reaches: counted as
survived), not run, and judged equivalent (README, "Mutation testing": `EQUIVALENT` below, by mutant name).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("lth_core", "tests", "domains", "benchmarks")

# Survivors judged equivalent (why: README, "Mutation testing"); a name that is killed later is not subtracted.
EQUIVALENT = {
    "lth_core.mask_hold.xǁGradSumsǁ_hook__mutmut_5",  # grad.to(None): addcmul_ promotes to the sum's dtype
    "lth_core.mask_hold.xǁGradSumsǁ_hook__mutmut_6",  # weight.to(None): likewise
    "lth_core.protocol.xǁEvalGridǁpoints__mutmut_19",  # budget >= start: budget == start is added as the start
    "lth_core.protocol.xǁJobProtocolǁ__init____mutmut_16",  # last_eval None: unequal to every step, as -1 is
    "lth_core.protocol.xǁJobProtocolǁ__init____mutmut_18",  # last_eval -2: likewise (steps are >= 0)
    "lth_core.protocol.xǁJobProtocolǁfinish__mutmut_17",  # assert ... or ...: both tests are set by then
    "lth_core.strategies.x_prune_global__mutmut_25",  # float("INF") == float("inf")
    "lth_core.strategies.x_prune_global__mutmut_48",  # likewise
    "lth_core.strategies.x_prune_global__mutmut_63",  # likewise
    "lth_core.strategies.x__drop_lowest__mutmut_6",  # as_tuple=False is nonzero's default
    "lth_core.strategies.x__drop_lowest__mutmut_15",  # integer scores unconverted: differ only past 2**24
    "lth_core.store.xǁRunStoreǁload_state__mutmut_5",  # map_location None: every state file holds CPU tensors
    "lth_core.store.xǁRunStoreǁload_state__mutmut_8",  # map_location dropped: likewise
    "lth_core.imp_runner.xǁImpRunnerǁ_done__mutmut_16",  # exists() or loads: open() quarantined unreadable state
    "lth_core.controls.xǁInvertedǁ__call____mutmut_21",  # integer scores unconverted: differ only past 2**24
    "lth_core.masks.xǁMaskǁload__mutmut_3",  # map_location None: every mask file holds CPU tensors
    "lth_core.masks.xǁMaskǁload__mutmut_6",  # map_location dropped: likewise
    "lth_core.masks.xǁMaskǁload__mutmut_4",  # weights_only None: the installed torch's default is True (a pickled
    "lth_core.masks.xǁMaskǁload__mutmut_7",  # object is refused, tests/test_masks_unit.py); dropped: likewise
    # --- mut-runner ---
    "lth_core.imp_runner.xǁImpRunnerǁprune_step__mutmut_11",  # hook built `or True` / `caps | {...}`: a hook no
    "lth_core.imp_runner.xǁImpRunnerǁprune_step__mutmut_22",  # criterion calls (one that calls it needs the
    # capability, refused at start)
    "lth_core.imp_runner.xǁImpRunnerǁprune_step__mutmut_29",  # `_has_rewind() or True`: at a pruning step the
    # rewind file is there (a dense run without it trains again first)
    "lth_core.imp_runner.xǁImpRunnerǁprune_step__mutmut_63",  # initial=None: read only where state and rewind
    "lth_core.imp_runner.xǁImpRunnerǁprune_step__mutmut_74",  # are None, never at a runner's pruning step; dropped
    "lth_core.imp_runner.xǁImpRunnerǁprune_step__mutmut_49",  # sums read `or True`: no sums file exists unless
    # the strategy sums gradients (a folder is one strategy), so None either way
    "lth_core.imp_runner.xǁTicketSourceǁ_read_all__mutmut_35",  # map_location None: a run's state files hold CPU
    "lth_core.imp_runner.xǁTicketSourceǁ_read_all__mutmut_39",  # tensors (RunStore saves them so); dropped: likewise
    "lth_core.imp_runner.xǁTicketSourceǁ_read_all__mutmut_36",  # weights_only None: the installed torch's default
    "lth_core.imp_runner.xǁTicketSourceǁ_read_all__mutmut_40",  # is True; dropped: likewise
    "lth_core.imp_runner.xǁTicketSourceǁ_read_all__mutmut_37",  # mmap None / dropped / False: the same tensors,
    "lth_core.imp_runner.xǁTicketSourceǁ_read_all__mutmut_41",  # read into memory instead of mapped (memory only)
    "lth_core.imp_runner.xǁTicketSourceǁ_read_all__mutmut_45",
    "lth_core.imp_runner.xǁImpRunnerǁrun__mutmut_17",  # "XXexecutionXX" not in meta: rewrites the execution
    "lth_core.imp_runner.xǁImpRunnerǁrun__mutmut_18",  # run.json already holds (a differing one is refused or mixed)
    # --- mut-eb ---
    "lth_core.schedules.xǁOneShotǁsource__mutmut_5",  # Source("final", 0): mask_level's default is 0
    "lth_core.schedules.xǁOneShotǁsource__mutmut_6",  # Source("final", 0, ): likewise
    "lth_core.schedules.xǁAtInitǁsource__mutmut_5",  # Source("rewind", 0): likewise
    "lth_core.schedules.xǁAtInitǁsource__mutmut_6",  # Source("rewind", 0, ): likewise
    "lth_core.schedules.xǁScheduleǁwatched__mutmut_16",  # Source("captured", level, ): likewise
    "lth_core.early_bird_schedule.xǁEarlyBirdǁsource__mutmut_5",  # Source("captured", 0): likewise
    "lth_core.early_bird_schedule.xǁEarlyBirdǁsource__mutmut_6",  # Source("captured", 0, ): likewise
    "lth_core.early_bird_files.x_write_matrix__mutmut_3",  # newline=None: on POSIX writing "\r\n" is unchanged
    "lth_core.early_bird_files.x_write_matrix__mutmut_6",  # newline dropped: likewise
    "lth_core.early_bird_files.x_read_matrix__mutmut_2",  # newline=None: "\r\n" read as "\n", csv splits the same
    "lth_core.early_bird_files.x_read_matrix__mutmut_4",  # newline dropped: likewise
    "lth_core.early_bird_files.x_plot__mutmut_3",  # matplotlib.use("agg"): backend names are case-insensitive
    "lth_core.early_bird_files.x_plot__mutmut_4",  # "AGG": likewise
    "lth_core.early_bird_files.x_plot__mutmut_20",  # squeeze=None: falsy, as False
    "lth_core.early_bird_files.x_plot__mutmut_32",  # ax.axis("OFF"): Axes.axis lowercases its argument
    "lth_core.early_bird_files.x_plot__mutmut_57",  # vmin=None: the data's min, 0 (a distance matrix's diagonal)
    "lth_core.early_bird_files.x_plot__mutmut_61",  # vmin dropped: likewise
    "lth_core.early_bird_files.x_plot__mutmut_123",  # colorbar ax=None: taken from the image's own axes
    "lth_core.early_bird_files.x_plot__mutmut_126",  # colorbar ax dropped: likewise
    "lth_core.early_bird_files.x_plot__mutmut_147",  # savefig format="PNG": formats are case-insensitive
    # --- mut-exec ---
    "lth_core.atomic.x_atomic_write__mutmut_29",  # open(tmp) in text mode: fsync of its fd is the same, nothing read
    "lth_core.integrity.x__text__mutmut_4",  # decode("UTF-8"): the same codec as "utf-8"
    "lth_core.integrity.x_check_run_folder__mutmut_17",  # map_location None: every state file holds CPU tensors
    "lth_core.integrity.x_check_run_folder__mutmut_21",  # map_location dropped: likewise
    "lth_core.integrity.x_check_run_folder__mutmut_18",  # weights_only None: the installed torch's default is True
    "lth_core.integrity.x_check_run_folder__mutmut_22",  # (a pickled object is still refused); dropped: likewise
    "lth_core.executors.x_train_safely__mutmut_6",  # getattr(..., None) or threads: None or x == 0 or x
    "lth_core.executors.x_train_safely__mutmut_15",  # error = None: every attempt returns or sets error (>= 1 runs)
    "lth_core.executors.x_train_safely__mutmut_16",  # error = "XXXX": likewise never read
    "lth_core.executors.x_train_safely__mutmut_40",  # format_exc(limit=None): its last line is the exception's own
    "lth_core.executors.x_train_safely__mutmut_41",  # format_exc(limit=4): likewise, whatever the limit
    "lth_core.executor_process.x__started_at__mutmut_20",  # in "XXZXXX": a state is one letter, Z or X in either
    # --- mut-out ---
    "lth_core.tables.x_write_tables__mutmut_14",  # to_csv(index=None): pandas writes no index for a falsy value
    "lth_core.tables.x_write_tables__mutmut_29",  # likewise (densities.csv)
    "lth_core.tables.x_write_tables__mutmut_44",  # likewise (summary.csv)
    "lth_core.sparse_kernels.x__t_contiguous__mutmut_2",  # always .contiguous(): a no-op returning self when it is
    "lth_core.sparse_kernels.xǁPatternǁcsr__mutmut_5",  # check_invariants None/dropped (off by default) or True:
    "lth_core.sparse_kernels.xǁPatternǁcsr__mutmut_10",  # only validates the indices, which Pattern always builds
    "lth_core.sparse_kernels.xǁPatternǁcsr__mutmut_11",  # valid (row-major nonzero, bincount offsets)
    "lth_core.sparse_kernels.xǁPatternǁcsr_t__mutmut_11",  # likewise for W^T
    "lth_core.sparse_kernels.xǁPatternǁcsr_t__mutmut_16",  # likewise
    "lth_core.sparse_kernels.xǁPatternǁcsr_t__mutmut_19",  # likewise
    "lth_core.sparse_kernels.x_swap_linears__mutmut_2",  # named_parameters(remove_duplicate=None): falsy, as False
    "lth_core.tables.x_collapse_lines__mutmut_15",  # groupby(sort=True) dropped: True is the default
    "lth_core.tables.x_densities_frame__mutmut_48",  # sort_values(kind=...) on several columns: pandas ignores
    "lth_core.tables.x_densities_frame__mutmut_50",  # `kind` there (its lexsort is stable whatever kind says)
    "lth_core.tables.x_densities_frame__mutmut_60",  # likewise
    "lth_core.tables.x_densities_frame__mutmut_61",  # likewise
    "lth_core.tables.x_rows_frame__mutmut_13",  # likewise
    "lth_core.tables.x_rows_frame__mutmut_15",  # likewise
    "lth_core.tables.x_rows_frame__mutmut_22",  # likewise
    "lth_core.tables.x_rows_frame__mutmut_23",  # likewise
    "lth_core.tables.x_markdown__mutmut_169",  # to_markdown(index=None): no index column, as with False
    "lth_core.sparse_kernels.xǁCsrLinearFnǁbackward__mutmut_19",  # addmm out= dropped: the same values in a
    "lth_core.sparse_kernels.xǁCsrLinearFnǁbackward__mutmut_24",  # fresh tensor (the empty buffer goes unused)
    "lth_core.cost.x_paired_speedup__mutmut_5",  # the no-op reset returns 0 instead of None: never read
    "lth_core.config.xǁDomainConfigǁeval_size__mutmut_18",  # value < floor: at value == floor, max(floor,
    # ceil(floor x scale)) is floor again (scale < 1)
    # --- mut-struct ---
    "lth_core.criteria.x_masked_state__mutmut_20",  # weights .to(None): load_state_dict casts; x 0/1 mask is exact
    "lth_core.criteria.x_masked_state__mutmut_21",  # bool mask .to(None): float * bool is the same float product
    "lth_core.criteria.x__synflow_scores__mutmut_16",  # mask .to(None, dtype): scored models are adapter.build's,
    "lth_core.criteria.x__synflow_scores__mutmut_18",  # on the CPU like the masks (every domain); .to(dtype): same
    "lth_core.criteria.x__synflow_scores__mutmut_17",  # mask .to(device, None): p.mul_(bool) is the same product
    "lth_core.criteria.x__synflow_scores__mutmut_19",  # mask .to(device): likewise
    "lth_core.criteria.x__synflow_scores__mutmut_20",  # device None: the ones input on the CPU, as the params are
    "lth_core.criteria.x__synflow_scores__mutmut_21",  # always "cpu": likewise
    "lth_core.criteria.x__synflow_scores__mutmut_30",  # ones input device=None: likewise
    "lth_core.criteria.x__synflow_scores__mutmut_33",  # device dropped: likewise
    "lth_core.criteria.xǁCriterionǁiterate__mutmut_22",  # rate 1 of an empty tensor: round(1 * 0) = 0 removed too
    "lth_core.criteria.xǁCriterionǁiterate__mutmut_52",  # max(default=1.0): read only with no ranked tensor (x 0)
    "lth_core.criteria.xǁCriterionǁiterate__mutmut_56",  # share 1 of ranked tensors with no entry: 0 removed too
    "lth_core.criteria.xǁCriterionǁiterate__mutmut_73",  # PruneStep weights None: prune_lowest/_global never read
    "lth_core.criteria.xǁCriterionǁiterate__mutmut_77",  # seed None: nor the seed
    "lth_core.criteria.xǁCriterionǁiterate__mutmut_82",  # seed dropped (0): likewise
    "lth_core.structured.xǁStructuredCostsǁ__init____mutmut_9",  # < for <=: families come from structure(), so
    # an adapter with families has 'structure' too: {compact, cost} is a proper subset whenever it is a subset
    "lth_core.structured.xǁStructuredCostsǁmeasure__mutmut_11",  # b"XX|XX": keeps have their family's fixed
    # length, in sorted family order: the digest is injective with any separator
    "lth_core.structured.x_prune_groups__mutmut_64",  # float("INF") == float("inf")
    "lth_core.structured.x_prune_groups__mutmut_74",  # likewise
    "lth_core.structured.x_prune_groups__mutmut_86",  # likewise
    "lth_core.batchnorm.x_recompute__mutmut_14",  # seen = 1: `seen` is only compared with 0 (no batch at all)
    "lth_core.batchnorm.x_recompute__mutmut_15",  # seen -= 1: nonzero after any batch, as the count is
    "lth_core.batchnorm.x_recompute__mutmut_16",  # seen += 2: likewise
    "lth_core.compact_jobs.x_expand_outcome__mutmut_16",  # mask .to(None, dtype): an Outcome's weights are the
    "lth_core.compact_jobs.x_expand_outcome__mutmut_18",  # Trainee's CPU copies, as masks are; .to(dtype): same
    "lth_core.compact_jobs.x_expand_outcome__mutmut_17",  # mask .to(device, None): float * bool, the same product
    "lth_core.compact_jobs.x_expand_outcome__mutmut_19",  # mask .to(device): likewise
    "lth_core.compact_jobs.x_expand_tensors__mutmut_26",  # meshgrid indexing None: torch's default is "ij"
    "lth_core.compact_jobs.x_expand_tensors__mutmut_28",  # indexing dropped: likewise
    "lth_core.criteria.xǁCriterionǁprune__mutmut_12",  # protect=None: prune_global tests `if protect`, None is falsy
}


def groups() -> dict[str, dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["lth_mutation"]


def prepare(name: str, group: dict) -> Path:
    """The group's copy: the tree's current files, and a pyproject whose selection is the group's tests."""
    where = ROOT / ".mutation" / name
    where.mkdir(parents=True, exist_ok=True)
    for d in COPIED:
        shutil.rmtree(where / d, ignore_errors=True)
        shutil.copytree(ROOT / d, where / d, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    text = (ROOT / "pyproject.toml").read_text()
    tests = "[" + ", ".join(json.dumps(t) for t in group["tests"]) + "]"
    text, n = re.subn(
        r"(?ms)^pytest_add_cli_args_test_selection = \[.*?^\]", f"pytest_add_cli_args_test_selection = {tests}", text
    )
    assert n == 1, "pyproject.toml: [tool.mutmut] pytest_add_cli_args_test_selection not found"
    module = group.get("module", name)
    text = re.sub(r"(?m)^only_mutate = .*$", f'only_mutate = ["lth_core/{module}.py"]', text)
    (where / "pyproject.toml").write_text(text)
    return where


def retry_survivors(where: Path, module: str) -> int:
    """Forget the group's survived / no-tests verdicts, so tests added since are tried on them (mutmut reruns
    only unchecked mutants; new tests alone do not reopen a verdict). The test-to-function map is dropped too:
    mutmut keeps it while the group's test list is unchanged, so tests added to a listed file would never run."""
    (where / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    meta = where / "mutants" / "lth_core" / f"{module}.py.meta"
    if not meta.is_file():
        return 0
    data = json.loads(meta.read_text())
    codes = data["exit_code_by_key"]
    reopened = [k for k, v in codes.items() if v in (0, 5, 33)]
    for k in reopened:
        codes[k] = None
    meta.write_text(json.dumps(data))
    return len(reopened)


def patterns(name: str, group: dict) -> list[str]:
    module = group.get("module", name)
    return [f"lth_core.{module}.{f}" for f in group.get("functions", ["*"])]


# mutmut's exit codes (mutmut/stats.py): what each verdict is called in the table
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", None: "not checked", 36: "timeout"}
STATUS.update({c: "timeout" for c in (-24, 24, 152, 255)})


def verdicts(where: Path, module: str, pats: list[str]) -> dict[str, str]:
    """The group's mutants and their verdicts, read from mutmut's cache (`mutmut results` takes minutes per group)."""
    meta = where / "mutants" / "lth_core" / f"{module}.py.meta"
    codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.is_file() else {}
    out = {}
    for mutant, code in codes.items():
        if any(fnmatch.fnmatchcase(mutant, p) for p in pats):
            status = STATUS.get(code, "suspicious")
            out[mutant] = "equivalent" if status == "survived" and mutant in EQUIVALENT else status
    return out


# where two groups score one mutant (e.g. `identity` and `config`), the module's row keeps its best verdict
RANK = ("killed", "timeout", "equivalent", "survived", "no tests", "suspicious", "not checked")


def main(argv: list[str]) -> None:
    gs = groups()
    names = argv or [n for n in gs if not gs[n].get("slow")]  # slow groups (real pools, Ray) only by name
    unknown = [n for n in names if n not in gs]
    if unknown:
        sys.exit(f"unknown mutation group(s) {unknown}; groups: {', '.join(gs)}")
    children = os.environ.get("MUTATION_CHILDREN", "1")
    rows = []
    by_module: dict[str, dict[str, str]] = {}
    for name in names:
        report_only = os.environ.get("MUTATION_REPORT_ONLY") == "1"
        where = ROOT / ".mutation" / name if report_only else prepare(name, gs[name])
        pats = patterns(name, gs[name])
        if os.environ.get("MUTATION_RETRY") == "1":
            print(f"{name}: {retry_survivors(where, gs[name].get('module', name))} survivors reopened")
        if not report_only:
            subprocess.run(["mutmut", "run", "--max-children", children, *pats], cwd=where)
        found = verdicts(where, gs[name].get("module", name), pats)
        rows.append((name, Counter(found.values())))
        for mutant, status in found.items():
            module = by_module.setdefault(gs[name].get("module", name), {})
            module[mutant] = min(status, module.get(mutant, "not checked"), key=RANK.index)
    print(table("group", rows))
    print()
    print(table("module", sorted((m, Counter(v.values())) for m, v in by_module.items())))


def table(first: str, rows: list[tuple[str, Counter]]) -> str:
    """A markdown table of verdicts, one row per group (or module) and a total; score over non-equivalent mutants."""
    head = (first, "killed", "timeout", "survived", "no tests", "equivalent", "not run", "score")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    total: Counter = Counter()
    for name, c in rows:
        total.update(c)
    for name, c in [*rows, ("total", total)]:
        dead = c["killed"] + c["timeout"]
        live = c["survived"] + c["no tests"]
        score = f"{100 * dead / (dead + live):.1f}%" if dead + live else "-"
        cells = (c["killed"], c["timeout"], c["survived"], c["no tests"], c["equivalent"], c["not checked"])
        lines.append(f"| {name} | " + " | ".join(str(x) for x in cells) + f" | {score} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main(sys.argv[1:])
