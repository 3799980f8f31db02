"""One folder is one domain: discovery, lazy imports, declared packages, configs that validate without changing."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from toy_adapter import ToyAdapter, ToyConfig

import domains
from domains import _declared, discover, load_adapter_class
from lth_core.config import DomainConfig, ImpConfig, RunOptions
from lth_core.errors import UsageError
from lth_core.imp_runner import ImpRunner
from lth_core.provenance import versions
from lth_core.store import RunStore

ROOT = Path(__file__).resolve().parents[1]


def test_every_domain_folder_is_discovered_without_importing_it():
    table = discover()
    assert {"vision", "rl", "nlp"} <= set(table)
    assert table["rl"] == "domains.rl.adapter:RLAdapter"
    code = "import sys, domains; print(sorted(m for m in sys.modules if m.startswith('domains.')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr


def test_a_new_folder_is_a_new_domain(tmp_path, monkeypatch):
    """A domain added as one folder (here a copy of the toy adapter) appears with no edit elsewhere."""
    pkg = tmp_path / "domains"
    (pkg / "toy").mkdir(parents=True)
    (pkg / "toy" / "__init__.py").write_text("")
    (pkg / "toy" / "adapter.py").write_text((ROOT / "tests" / "toy_adapter.py").read_text())
    monkeypatch.setattr(domains, "__file__", str(pkg / "__init__.py"))
    assert discover()["toy"] == "domains.toy.adapter:ToyAdapter"
    assert _declared(pkg / "toy" / "adapter.py") == {"toy": ("ToyAdapter", ())}


def test_a_missing_domain_library_is_one_line_naming_what_to_install(tmp_path, monkeypatch):
    pkg = tmp_path / "lazydom"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "adapter.py").write_text(
        "import not_installed_lib\n\nclass A(object):\n    domain = 'lazy'\n    packages = ('not-installed-lib',)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        UsageError,
        match=r"^domain 'lazy' needs 'not_installed_lib'; install it with: "
        r"pip install not-installed-lib$",
    ):
        load_adapter_class("lazy", {"lazy": "lazydom.adapter:A"})


def test_adapters_declare_their_packages_and_rows_carry_them():
    assert load_adapter_class("vision").packages == ("torchvision", "mnist1d")
    assert _declared(ROOT / "domains" / "rl" / "adapter.py")["rl"][1] == ("stable-baselines3", "gymnasium", "ale-py")
    assert "fairseq-fixed" in _declared(ROOT / "domains" / "nlp" / "adapter.py")["nlp"][1]
    assert "torchvision" in versions(("torchvision",)) and "torchvision" not in versions()


class PackagedToy(ToyAdapter):
    packages = ("pandas",)


def test_run_json_and_rows_record_the_declared_packages(tmp_path):
    cfg = ToyConfig(steps=20)
    path = ImpRunner(
        PackagedToy(cfg),
        lambda: PackagedToy(cfg),
        ImpConfig(levels=0, trials=1),
        RunOptions(out=str(tmp_path), progress=False),
    ).run()
    meta = json.loads((path / "run.json").read_text())
    assert {"pandas", "torch", "lth-bench"} <= set(meta["versions"]) and "gymnasium" not in meta["versions"]
    row = RunStore(path).records()[0]["row"]
    assert json.loads(row["versions"]) == meta["versions"]


def test_domain_configs_share_the_base():
    vision, rl = (load_adapter_class(d).Config for d in ("vision", "rl"))
    for cls in (vision, rl, ToyConfig):
        assert issubclass(cls, DomainConfig)
        assert {"budget_scale", "device", "threads"} <= {f.name for f in dataclasses.fields(cls)}
        assert cls(budget_scale=0.01).scaled(1000) == 10 and cls.scaled is DomainConfig.scaled
    assert vision().device == "cpu" and rl().device == "auto"  # a domain keeps its own default
    with pytest.raises(UsageError, match=r"--threads -1 must be in \[0, 1024\]"):
        ToyConfig(threads=-1).validate()


def test_nlp_validate_changes_nothing_and_the_fingerprint_joins_the_identity(tmp_path):
    pytest.importorskip("fairseq")
    from domains.nlp.config import NLPConfig

    cfg = NLPConfig()
    before = dataclasses.asdict(cfg)
    cfg.validate()
    assert dataclasses.asdict(cfg) == before
    assert cfg.identity_extras() == {"data_fingerprint": "grammar-v1"}
    assert NLPConfig(data_dir=str(tmp_path)).dataset == "folder"  # the implied source, when the config is made


def test_the_store_spells_names_and_reads_each_record_once(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    assert store.mask_name(2, 1) == "mask-L02-t1" and store.final_name(0, 3) == "final-L00-t3"
    assert store.init_name(1) == "init-t1" and store.rewind_name(0) == "rewind-t0"
    assert store.job_key(3, "random_mask", 1) == "L03-random_mask-t1"
    store.jobs_dir.mkdir()
    row = {"kind": "dense", "level": 0, "trial": 0, "status": "ok"}  # the shape every record has
    store.write_record("L00-dense-t0", {"row": {**row, "x": 1.0}, "curve": []})
    (store.jobs_dir / "L01-ticket-t0.json").write_text(json.dumps({"row": {**row, "x": 2.0}}))
    reads = []
    original = RunStore._read_json
    monkeypatch.setattr(RunStore, "_read_json", lambda self, f: reads.append(f.name) or original(self, f))
    assert [r["row"]["x"] for r in store.records()] == [1.0, 2.0]
    assert [r["row"]["x"] for r in store.records()] == [1.0, 2.0]
    assert reads == ["L01-ticket-t0.json"]  # the written record is cached; the other is read once


def test_the_cli_builds_the_model_once_per_run(tmp_path, monkeypatch):
    from benchmarks.run import main

    builds = []
    original = ToyAdapter.build
    monkeypatch.setattr(ToyAdapter, "build", lambda self, seed: builds.append(seed) or original(self, seed))
    main(
        ["--domain", "toy", "--levels", "1", "--trials", "1", "--controls", "", "--out", str(tmp_path), "--noprogress"],
        {"toy": "toy_adapter:ToyAdapter"},
    )
    # names/architecture once; the trial's initial weights once; one per training (dense, ticket)
    assert len(builds) == 1 + 1 + 2, builds
