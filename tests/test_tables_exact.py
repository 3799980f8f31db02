"""The standard tables of a run (lth_core/tables.py), cell by cell from hand-made job records: results.csv's
column order and row order, densities.csv, the layer-collapse lines, summary.csv's means, stds, counts, failures
and retries, the ticket − best control gap in the metric's direction, and summary.md as a reader sees it."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from lth_core import figures, tables
from lth_core.tables import (
    CONTRACT_COLUMNS,
    DENSITY_COLUMNS,
    collapse_lines,
    densities_frame,
    gaps,
    kind_order,
    markdown,
    rows_frame,
    summarize,
    write_tables,
)

NAN = float("nan")


def _row(kind, level, trial, density, score, es, final, status="ok", task="t", higher=True, metric="acc", **extra):
    return {
        "domain": "d",
        "task": task,
        "kind": kind,
        "level": level,
        "trial": trial,
        "density": density,
        "metric": metric,
        "score": score,
        "early_stop_step": es,
        "final_score": final,
        "higher_is_better": higher,
        "seed": trial,
        "wall_seconds": 1.0,
        "config_hash": "h",
        "status": status,
        **extra,
    }


def _u(kind, level, density, score, es, final, status="ok"):
    return _row(kind, level, 0, density, score, es, final, status=status, task="u", higher=False, metric="loss")


# task t: higher is better; task u: lower is better. Level 2 of t has a ticket and no control (no gap there).
ROWS = [
    _row("ticket", 1, 0, 0.8000000001, 0.9, 100, 0.85),  # rounds into 0.8 with the other trial
    _row("ticket", 1, 1, 0.8, 0.8, 200, 0.75, attempts=2),
    _row("mask", 1, 0, 0.8, 0.7, 50, 0.6),
    _row("mask", 1, 1, 0.8, NAN, NAN, NAN, status="diverged", attempts=3),
    _row("reinit", 1, 0, 0.8, 0.75, 60, 0.7),
    _row("dense", 0, 0, 1.0, 0.95, 300, 0.9),
    _row("dense", 0, 1, 1.0, 0.93, 280, 0.92),
    _row("reinit", 1, 1, 0.8, NAN, NAN, NAN, status="failed"),
    _row("ticket", 2, 0, 0.64, 0.6, 40, 0.5),
    _u("dense", 0, 1.0, 2.0, 10, 2.1),
    _u("ticket", 1, 0.512, 1.5, 20, 1.6),
    _u("mask", 1, 0.512, 1.2, 30, 1.3),
    _u("zeta", 1, 0.512, 1.8, 35, 1.9),
    _u("reinit", 1, 0.512, NAN, NAN, NAN, status="failed"),
]


def test_rows_frame_puts_the_contract_columns_first_then_the_rest_and_sorts_by_level_kind_trial():
    records = [
        {"row": {"zz": 1, "trial": 1, "level": 1, "kind": "ticket", "status": "ok", "aa": 2}},
        {"row": {"zz": 3, "trial": 0, "level": 1, "kind": "ticket", "status": "ok", "aa": 4}},
        {"row": {"zz": 5, "trial": 1, "level": 0, "kind": "dense", "status": "ok", "aa": 6}},
        {"row": {"zz": 7, "trial": 0, "level": 1, "kind": "mask", "status": "ok", "aa": 8}},
    ]
    df = rows_frame(records)
    assert list(df.columns) == ["kind", "level", "trial", "status", "zz", "aa"]
    assert list(df.index) == [0, 1, 2, 3]
    assert df["zz"].tolist() == [5, 7, 3, 1]
    empty = rows_frame([])
    assert empty.empty and list(empty.columns) == CONTRACT_COLUMNS


def test_densities_frame_is_one_row_per_job_and_tensor_with_kept_over_total():
    records = [
        {"row": {"kind": "ticket", "level": 1, "trial": 1}, "tensors": {"b": [3, 4], "a": [0, 0]}},
        {"row": {"kind": "ticket", "level": 1, "trial": 0}, "tensors": {"a": [1, 8]}},
        {"row": {"kind": "dense", "level": 0, "trial": 0}, "tensors": {"a": [8.0, 8.0]}},
        {"row": {"kind": "mask", "level": 1, "trial": 0}},  # no tensors recorded: no rows
    ]
    df = densities_frame(records)
    want = pd.DataFrame(
        {
            "kind": ["dense", "ticket", "ticket", "ticket"],
            "level": [0, 1, 1, 1],
            "trial": [0, 0, 1, 1],
            "tensor": ["a", "a", "a", "b"],
            "kept": [8, 1, 0, 3],
            "total": [8, 8, 0, 4],
            "density": [1.0, 0.125, 0.0, 0.75],
        }
    )
    pd.testing.assert_frame_equal(df, want, check_dtype=False, check_exact=True)
    assert str(df["kept"].dtype) == "int64" and str(df["total"].dtype) == "int64"
    empty = densities_frame(records[3:])
    assert empty.empty and list(empty.columns) == DENSITY_COLUMNS


def test_collapse_lines_name_each_emptied_tensor_by_level_and_kind_with_its_trials():
    d = pd.DataFrame(
        {
            "kind": ["ticket", "ticket", "ticket", "mask", "ticket", "ticket", "ticket", "ticket"],
            "level": [2, 2, 2, 2, 1, 1, 3, 4],
            "trial": [1, 0, 1, 0, 0, 0, 0, 0],
            "tensor": ["w2", "w1", "w1", "w1", "w1", "w3", "w1", "b"],
            "kept": [0, 0, 0, 0, 0, 5, 1, 0],
            "total": [4, 4, 4, 4, 0, 8, 4, 1],  # level 1's w1 has no entries: nothing was emptied
        }
    )
    assert collapse_lines(d) == [
        "- level 2 mask: empties w1 (trial 0)",
        "- level 2 ticket: empties w1, w2 (trial 0, 1)",
        "- level 4 ticket: empties b (trial 0)",  # a one-entry tensor emptied
    ]
    assert collapse_lines(d[d["level"].isin([1, 3])]) == []


def test_kind_order_is_dense_ticket_then_the_rest_sorted():
    assert kind_order(["zeta", "ticket", "alpha", "dense", "ticket"]) == ["dense", "ticket", "alpha", "zeta"]
    assert kind_order(["zeta", "alpha", "ticket"]) == ["ticket", "alpha", "zeta"]
    assert kind_order(["dense"]) == ["dense"]


def _summary() -> pd.DataFrame:
    return summarize(pd.DataFrame(ROWS))


def test_summarize_gives_mean_std_and_n_of_the_trained_rows_and_counts_failures_and_retries_apart():
    s = _summary()
    s1, s5 = math.sqrt(2 * 0.01**2), math.sqrt(2 * 0.05**2)  # two trials 0.02 (0.1) apart: sample std
    want = pd.DataFrame(
        {
            "domain": ["d"] * 10,
            "task": ["t"] * 5 + ["u"] * 5,
            "metric": ["acc"] * 5 + ["loss"] * 5,
            "higher_is_better": [True] * 5 + [False] * 5,
            "kind": ["dense", "mask", "reinit", "ticket", "ticket"] + ["dense", "mask", "reinit", "ticket", "zeta"],
            "level": [0, 1, 1, 1, 2, 0, 1, 1, 1, 1],
            "density": [1.0, 0.8, 0.8, 0.8, 0.64, 1.0, 0.512, 0.512, 0.512, 0.512],
            "diverged": [0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
            "failed": [0, 0, 1, 0, 0, 0, 0, 1, 0, 0],
            "retries": [0, 2, 0, 1, 0, 0, 0, 0, 0, 0],
            "score_mean": [0.94, 0.7, 0.75, 0.85, 0.6, 2.0, 1.2, NAN, 1.5, 1.8],
            "score_std": [s1, NAN, NAN, s5, NAN, NAN, NAN, NAN, NAN, NAN],
            "n": [2, 1, 1, 2, 1, 1, 1, 0, 1, 1],
            "early_stop_step_mean": [290.0, 50, 60, 150, 40, 10, 30, NAN, 20, 35],
            "early_stop_step_std": [math.sqrt(200), NAN, NAN, math.sqrt(5000), NAN, NAN, NAN, NAN, NAN, NAN],
            "final_score_mean": [0.91, 0.6, 0.7, 0.8, 0.5, 2.1, 1.3, NAN, 1.6, 1.9],
            "final_score_std": [s1, NAN, NAN, s5, NAN, NAN, NAN, NAN, NAN, NAN],
        }
    )
    pd.testing.assert_frame_equal(s, want, check_dtype=False, rtol=1e-9, atol=1e-12)
    assert str(s["n"].dtype) == "int64" and str(s["retries"].dtype) == "int64"
    assert summarize(pd.DataFrame(columns=CONTRACT_COLUMNS)).empty


def test_summarize_without_an_attempts_column_counts_no_retries():
    rows = [{k: v for k, v in r.items() if k != "attempts"} for r in ROWS]
    s = summarize(pd.DataFrame(rows))
    assert s["retries"].tolist() == [0] * len(s)
    assert s["diverged"].sum() == 1 and s["failed"].sum() == 2


def test_gaps_compare_the_ticket_with_the_best_control_in_the_metrics_direction():
    g = gaps(_summary())
    want = pd.DataFrame(
        {
            "domain": ["d", "d"],
            "task": ["t", "u"],
            "level": [1, 1],
            "density": [0.8, 0.512],
            "ticket": [0.85, 1.5],
            "best_control": ["reinit", "mask"],  # highest accuracy; lowest loss
            "best_control_score": [0.75, 1.2],
            "ticket_minus_best_control": [0.1, 0.3],
            "advantage": [0.1, -0.3],  # a lower-is-better ticket above its best control did worse
        }
    )
    pd.testing.assert_frame_equal(g, want, check_dtype=False, rtol=1e-9)
    assert g["level"].map(type).tolist() == [int, int]


def test_a_cell_is_mean_std_and_n_or_a_dash():
    assert tables._cell(0.123456, 0.0123, 3) == "0.1235 ± 0.012 (3)"
    assert tables._cell(0.5, NAN, 1) == "0.5 ± 0 (1)"
    assert tables._cell(0.5, 0.1, 0) == "—"
    assert tables._cell(NAN, 0.1, 2) == "—"


META = {
    "domain": "d",
    "task": "t",
    "config_hash": "abcdef0123456789",
    "git_commit": "c0ffee",
    "rewind_step": 3,
    "budget": 10,
    "preset": "quick",
    "allow_mixed_execution": True,
    "executions": {"local": 3},
}

SUMMARY_MD = """# d · t · config abcdef012345

preset `quick`, commit `c0ffee`, rewind step 3, budget 10

rows mix executions (--allow-mixed-execution): {'local': 3}

**Layer collapse**: these masks empty a whole tensor (see densities.csv):

- level 1 ticket: empties a (trial 0)
- level 2 ticket: empties b (trial 1)

## d · t — acc (↑), test score at the early-stop step

|   level | density   | dense            | ticket           | mask        | reinit       |   ticket − best control |
|--------:|:----------|:-----------------|:-----------------|:------------|:-------------|------------------------:|
|       0 | 100%      | 0.94 ± 0.014 (2) | —                | —           | —            |                         |
|       1 | 80%       | —                | 0.85 ± 0.071 (2) | 0.7 ± 0 (1) | 0.75 ± 0 (1) |                     0.1 |
|       2 | 64%       | —                | 0.6 ± 0 (1)      | —           | —            |                         |

Early-stop step (mean over trials):

|      |   dense |   ticket |   mask |   reinit |
|:-----|--------:|---------:|-------:|---------:|
| 100% |     290 |      nan |    nan |      nan |
| 80%  |     nan |      150 |     50 |       60 |
| 64%  |     nan |       40 |    nan |      nan |

Diverged: 1 rows, failed: 1 rows.

Retried: 3 trainings of failed or diverged jobs (see --retries).

## d · u — loss (↓), test score at the early-stop step

|   level | density   | dense     | ticket      | mask        | reinit   | zeta        |   ticket − best control |
|--------:|:----------|:----------|:------------|:------------|:---------|:------------|------------------------:|
|       0 | 100%      | 2 ± 0 (1) | —           | —           | —        | —           |                         |
|       1 | 51.2%     | —         | 1.5 ± 0 (1) | 1.2 ± 0 (1) | —        | 1.8 ± 0 (1) |                     0.3 |

Early-stop step (mean over trials):

|       |   dense |   ticket |   mask |   zeta |
|:------|--------:|---------:|-------:|-------:|
| 100%  |      10 |      nan |    nan |    nan |
| 51.2% |     nan |       20 |     30 |     35 |

Diverged: 0 rows, failed: 1 rows.
"""


def test_summary_md_is_the_header_the_collapse_lines_and_one_table_pair_per_task():
    """u's reinit never trained: a dash in the score table, no column in the early-stop one."""
    collapsed = ["- level 1 ticket: empties a (trial 0)", "- level 2 ticket: empties b (trial 1)"]
    assert markdown(_summary(), META, collapsed) == SUMMARY_MD


def test_summary_md_of_a_bare_meta_and_of_no_finished_job():
    head = "# d · t · config \n\npreset `-`, commit `?`, rewind step None, budget None\n"
    assert markdown(pd.DataFrame(), {"domain": "d", "task": "t"}) == head + "\n(no finished jobs yet)\n"
    assert markdown(pd.DataFrame(), {**META, "allow_mixed_execution": False, "preset": ""}).startswith(
        "# d · t · config abcdef012345\n\npreset `-`, commit `c0ffee`, rewind step 3, budget 10\n\n(no finished"
    )
    assert markdown(pd.DataFrame()) == "(no finished jobs yet)\n"


def test_summary_md_without_a_gap_or_a_failure_has_no_gap_column_and_no_failure_lines():
    rows = [r for r in ROWS if r["task"] == "t" and r["status"] == "ok" and r["kind"] in ("dense", "ticket")]
    text = markdown(summarize(pd.DataFrame(rows)))
    assert "ticket − best control" not in text and "Diverged" not in text and "Retried: 1 trainings" in text
    text = markdown(summarize(pd.DataFrame([{k: v for k, v in r.items() if k != "attempts"} for r in rows])))
    assert "Retried" not in text


class _Store:
    def __init__(self, path: Path, records: list[dict], meta: dict) -> None:
        self.path, self._records, self._meta = path, records, meta

    def records(self) -> list[dict]:
        return self._records

    def meta(self) -> dict:
        return self._meta


@pytest.fixture
def drawn(monkeypatch):
    calls: list[tuple] = []
    monkeypatch.setattr(figures, "figure1", lambda summary, path: calls.append(("figure1", summary, path)))
    monkeypatch.setattr(figures, "layer_densities", lambda d, path, title: calls.append(("layers", d, path, title)))
    return calls


def _records() -> list[dict]:
    out = [{"row": r} for r in ROWS]
    out[0]["tensors"] = {"a": [0, 4], "b": [2, 4]}
    return out


def test_write_tables_writes_the_four_files_and_draws_both_figures(tmp_path, drawn):
    meta = {**META, "imp": {"strategy": "magnitude_global"}}
    summary = write_tables(_Store(tmp_path, _records(), meta))
    results = rows_frame(_records())
    assert (tmp_path / "results.csv").read_text() == results.to_csv(index=False)
    densities = densities_frame(_records())
    assert (tmp_path / "densities.csv").read_text() == densities.to_csv(index=False)
    pd.testing.assert_frame_equal(summary, summarize(results))
    assert (tmp_path / "summary.csv").read_text() == summary.to_csv(index=False)
    md = markdown(summary, meta, ["- level 1 ticket: empties a (trial 0)"])
    assert (tmp_path / "summary.md").read_text() == md
    assert [c[0] for c in drawn] == ["figure1", "layers"]
    pd.testing.assert_frame_equal(drawn[0][1], summary)
    assert drawn[0][2] == tmp_path / "figure1.png"
    pd.testing.assert_frame_equal(drawn[1][1], densities)
    assert drawn[1][2:] == (tmp_path / "densities.png", "t · magnitude_global")


def test_write_tables_draws_nothing_unasked_and_no_density_figure_without_densities(tmp_path, drawn):
    write_tables(_Store(tmp_path, _records(), META), plots=False)
    assert drawn == [] and (tmp_path / "summary.md").is_file()
    write_tables(_Store(tmp_path, [{"row": r} for r in ROWS], META))
    assert [c[0] for c in drawn] == ["figure1"]
    drawn.clear()
    assert write_tables(_Store(tmp_path, [], META)).empty and drawn == []
    assert (tmp_path / "summary.md").read_text().endswith("(no finished jobs yet)\n")
    assert write_tables(_Store(tmp_path, _records(), {"task": "t"})) is not None
    assert drawn[-1][3] == "t · None"


def test_summary_md_follows_the_summarys_task_order_and_reads_a_one_row_task():
    s = _summary()
    flipped = pd.concat([s[s["task"] == "u"], s[s["task"] == "t"]], ignore_index=True)
    text = markdown(flipped)
    assert text.index("## d · u — loss (↓)") < text.index("## d · t — acc (↑)")
    one = markdown(summarize(pd.DataFrame([_u("ticket", 1, 0.5, 1.5, 20, 1.6)])))
    assert one.startswith("## d · u — loss (↓), test score at the early-stop step\n")
    assert "| 50%       | 1.5 ± 0 (1) |" in one


def test_summary_md_reports_one_diverged_row_alone_and_rounds_early_stop_means_to_whole_steps():
    """One diverged row and no failed one is still reported; a mean early-stop step of 151.5 reads 152."""
    rows = [
        _row("dense", 0, 0, 1.0, 0.9, 100, 0.9),
        _row("ticket", 1, 0, 0.8, 0.8, 150, 0.8),
        _row("ticket", 1, 1, 0.8, 0.7, 153, 0.7),
        _row("mask", 1, 0, 0.8, NAN, NAN, NAN, status="diverged"),
    ]
    text = markdown(summarize(pd.DataFrame(rows)))
    assert "Diverged: 1 rows, failed: 0 rows.\n" in text
    assert "| 80%  |     nan |      152 |" in text
