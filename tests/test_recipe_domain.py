"""Recipe: add a domain (docs/ARCHITECTURE.md). One new folder, `domains/<name>/adapter.py`, and nothing else
edited: the domain is discovered, gets its flags and presets, and runs through `python -m benchmarks.run`.

The test writes the folder into a copy of the project (so the repository is not touched) and runs the CLI there.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ADAPTER = '''
"""Parity of 8 bits, learned by a small MLP: a whole domain in one file."""

from dataclasses import dataclass

import torch
from torch import nn

from lth_core.adapter import Adapter, Metric
from lth_core.config import DomainConfig, opt
from lth_core.job import Job, Outcome
from lth_core.mask_hold import MaskHold
from lth_core.masks import Mask
from lth_core.presets import Preset
from lth_core.protocol import EvalGrid, JobProtocol, Trainee


@dataclass
class ParityConfig(DomainConfig):
    hidden: int = opt(24, "hidden width")
    steps: int = opt(80, "training steps per job")
    lr: float = opt(0.02, "Adam learning rate")


def split(seed, n):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 2, (n, 8), generator=g).float()
    return x, (x.sum(1) > 4).long()


class ParityTrainee(Trainee):
    def __init__(self, model, val, test):
        self.model, self.val, self.test_set = model, val, test

    def _eval(self, data):
        with torch.no_grad():
            logits = self.model(data[0])
            accuracy = (logits.argmax(1) == data[1]).float().mean().item()
            return nn.functional.cross_entropy(logits, data[1]).item(), accuracy

    def validate(self):
        return self._eval(self.val)[0], {}

    def test(self):
        return self._eval(self.test_set)[1]

    def weights(self):
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def load_weights(self, weights):
        self.model.load_state_dict(weights)


class ParityAdapter(Adapter):
    domain = "parity"
    packages = ()
    Config = ParityConfig
    presets = {"quick": Preset("quick", "seconds", imp={"levels": 2, "trials": 1, "rate": 0.5})}

    def task(self):
        return "parity8/mlp"

    def metric(self):
        return Metric("accuracy", True, "val_loss", False)

    def build(self, seed):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(8, self.config.hidden), nn.ReLU(), nn.Linear(self.config.hidden, 2))

    def prunable(self, model, biases):
        return {"0.weight": "fc", "2.weight": "output"}

    def budget(self):
        return self.config.scaled(self.config.steps)

    def train(self, job: Job) -> Outcome:
        model = self.build(0)
        model.load_state_dict(job.weights)
        hold = MaskHold(model, Mask(job.mask)) if job.mask is not None else None
        optimizer = torch.optim.Adam(model.parameters(), lr=self.config.lr)
        protocol = JobProtocol(job, ParityTrainee(model, split(1, 256), split(2, 256)), EvalGrid(20),
                               val_higher_is_better=self.metric().val_higher_is_better)
        x, y = split(0, 1024)
        g = torch.Generator().manual_seed(job.order_seed)
        for step in range(job.start_step, job.budget):
            protocol.reached(step)
            idx = torch.randint(0, len(x), (64,), generator=g)
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        protocol.reached(job.budget)
        if hold is not None:
            hold.assert_held()
            hold.release()
        return protocol.finish(job.budget)
'''


def test_a_domain_added_as_one_folder_runs_through_the_cli(tmp_path):
    project = tmp_path / "project"
    for part in ("lth_core", "domains", "benchmarks"):
        shutil.copytree(ROOT / part, project / part, ignore=shutil.ignore_patterns("__pycache__"))
    folder = project / "domains" / "parity"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "adapter.py").write_text(ADAPTER)

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "benchmarks.run", *args], cwd=project, capture_output=True, text=True, timeout=600
        )

    helped = cli("--domain", "parity", "--help")
    assert helped.returncode == 0, helped.stderr
    assert "--hidden" in helped.stdout and "parity" in cli("--help").stdout
    out = tmp_path / "results"
    ran = cli("--domain", "parity", "--preset", "quick", "--out", str(out), "--noprogress")
    assert ran.returncode == 0, ran.stderr
    (run,) = out.iterdir()
    assert run.name.startswith("parity-")
    rows = list(csv.DictReader((run / "results.csv").open()))
    kinds = sorted({(r["level"], r["kind"]) for r in rows})
    assert kinds == [
        ("0", "dense"),
        ("1", "random_mask"),
        ("1", "random_reinit"),
        ("1", "ticket"),
        ("2", "random_mask"),
        ("2", "random_reinit"),
        ("2", "ticket"),
    ]
    assert all(r["status"] == "ok" and 0.0 < float(r["score"]) <= 1.0 for r in rows)
    ticket = {r["level"]: float(r["density"]) for r in rows if r["kind"] == "ticket"}
    assert ticket["2"] < ticket["1"] < 1.0
    # the copy's domain table is the only place the new domain exists: the repository itself is unchanged
    assert not (ROOT / "domains" / "parity").exists()
