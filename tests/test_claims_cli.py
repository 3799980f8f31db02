"""`python -m benchmarks.claims` end to end on the toy domain: it runs the claim's runs, writes the verdict
table, reuses the runs by identity on a second call (no job trained again), and refuses bad input in one line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from benchmarks import seed_claims
from benchmarks.claim_base import Claim, Need, Recipe
from benchmarks.claims import main
from lth_core.registry import Registry

TOY = {"toy": "toy_adapter:ToyAdapter"}


def registry() -> Registry[Claim]:
    reg: Registry[Claim] = Registry("claim")
    need = Need("imp", Recipe("toy", "quick", ("--trials", "3")))
    reg.add("toy-match", Claim("toy-match", "tickets match", "a toy", "1%", (need,), seed_claims.fc2019_match))
    return reg


def job_records(results: Path) -> dict[str, int]:
    """Every job record (the commit marker of a trained job) with its modification time."""
    return {str(p): p.stat().st_mtime_ns for p in results.glob("*/jobs/*.json")}


def test_claims_run_judge_write_and_reuse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--results", str(tmp_path / "results"), "--out", str(tmp_path / "claims")]
    assert main(argv, registry(), TOY) == 0
    table = pd.read_csv(tmp_path / "claims" / "claims.csv")
    assert table["claim"].tolist() == ["toy-match"]
    assert table["verdict"].iloc[0] in ("holds", "does not hold here", "inconclusive")
    assert (tmp_path / "claims" / "claims.md").read_text().startswith("# Claims at scale 'quick'")
    folders = [p for p in (tmp_path / "results").iterdir() if p.is_dir()]
    assert len(folders) == 1 and table["runs"].iloc[0] == folders[0].name
    before = job_records(tmp_path / "results")
    assert len(before) == 3 * (1 + 3 * 3)  # 3 trials x (dense + 3 levels x ticket and 2 controls)
    assert main(argv, registry(), TOY) == 0  # every job is done: read back, nothing retrained or rewritten
    assert job_records(tmp_path / "results") == before
    assert pd.read_csv(tmp_path / "claims" / "claims.csv").equals(table)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--only", "nope"], "unknown claim 'nope'; valid choices: toy-match"),
        (["--domain", "mars"], "--domain 'mars' is not one of all, toy"),
        (["--scale", "paper"], "claims toy-match have no runs at --scale paper"),
        (["--scale", "huge"], "invalid choice: 'huge'"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    out = tmp_path / "claims"
    with pytest.raises(SystemExit) as e:
        main([*argv, "--results", str(tmp_path / "results"), "--out", str(out)], registry(), TOY)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and message in err
    assert not out.exists() and not (tmp_path / "results").exists()


def test_report_heads_its_page_with_the_verdicts(tmp_path: Path) -> None:
    from benchmarks.report import main as report

    argv = ["--results", str(tmp_path / "results"), "--out", str(tmp_path / "claims")]
    assert main(argv, registry(), TOY) == 0
    csv = tmp_path / "claims" / "claims.csv"
    table = pd.read_csv(csv)
    table.loc[0, "detail"] = "<script>alert(1)</script>"  # a claims table is data: escaped, never markup
    table.to_csv(csv, index=False)
    page = tmp_path / "report.html"
    assert report([str(tmp_path / "results"), "--claims", str(tmp_path / "claims"), "--out", str(page)]) == 0
    html = page.read_text()
    claims = html[html.index("<h2>Claims</h2>") : html.index("<h2>Overview</h2>")]
    assert "toy-match" in claims and table.loc[0, "verdict"] in claims
    assert "&lt;script&gt;" in claims and "<script>" not in html
    with pytest.raises(SystemExit) as e:
        report([str(tmp_path / "results"), "--claims", str(tmp_path / "nowhere"), "--out", str(page)])
    assert e.value.code == 2
