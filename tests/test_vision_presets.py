"""Each vision preset through the real CLI: papers' settings start and finish one tiny level on generated
files in torchvision's layout; transfer trains another run's tickets; bad input exits 2 with one line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from benchmarks.fake_vision_files import write_cifar10, write_mnist
from benchmarks.run import main
from domains.vision.adapter import VisionAdapter
from lth_core.config import ImpConfig
from lth_core.presets import apply
from lth_core.store import RunStore

PAPER_PRESETS = [
    "frankle2019-lenet",
    "frankle2019-conv2",
    "frankle2019-conv4",
    "frankle2019-conv6",
    "stabilizing-resnet20",
    "stabilizing-vgg19",
    "morcos2019-transfer",
    "you2020-earlybird",
    "frankle2021-pai",
    "frankle2021-pai-vgg16",
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vision-data")
    write_mnist(root, n_train=400, n_test=50)
    write_mnist(root, folder="FashionMNIST", n_train=400, n_test=50, seed=1)
    write_cifar10(root, per_batch=40, n_test=30)
    return root


def tiny(preset: str, data_dir: Path, out: Path, *extra: str) -> list[str]:
    """Three iterations of the preset's recipe, evaluated at start and end, on generated files.

    The default suite also passes a small --batch-size (see `small_batch`): a VGG-19 step at batch 64 is
    ~80 GFLOP, seconds on this CPU; the `slow` test runs the CIFAR presets at their own batch size.
    """
    iterations = VisionAdapter.presets[preset].domain["iterations"]
    return [
        "--domain",
        "vision",
        "--preset",
        preset,
        "--budget-scale",
        f"{3 / iterations:.8f}",
        "--eval-every",
        str(iterations),
        "--levels",
        "1",
        "--trials",
        "1",
        "--data-dir",
        str(data_dir),
        "--val-size",
        "30",
        "--threads",
        "1",
        "--out",
        str(out),
        "--noprogress",
        *extra,
    ]


def run_folder(out: Path) -> Path:
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    return folder


def test_presets_cover_the_papers_and_set_valid_values(data_dir):
    assert set(PAPER_PRESETS) | {
        "quick",
        "criteria-quick",
        "structured-quick",
        "liu2019-rethinking",
        "earlybird-quick",
    } == set(VisionAdapter.presets)
    for name, p in VisionAdapter.presets.items():
        cfg = apply(VisionAdapter.Config(data_dir=str(data_dir)), p.domain)
        imp = apply(ImpConfig(), p.imp)
        imp.validate()
        cfg.validate()
        groups = set(VisionAdapter(cfg).prunable(VisionAdapter(cfg).build(0), False).values())
        assert set(imp.overrides()) <= groups, name  # every rate override names a group of this model
        assert imp.rewind_at(cfg.total_iterations()) < cfg.total_iterations()


def test_paper_hyperparameters():
    P = VisionAdapter.presets
    lenet = P["frankle2019-lenet"]
    assert (lenet.domain["lr"], lenet.domain["batch_size"], lenet.domain["iterations"]) == (1.2e-3, 60, 50000)
    assert lenet.imp["rate"] == 0.2 and lenet.imp["rate_overrides"] == "output=0.1"
    for name, lr, iters, conv in (
        ("conv2", 2e-4, 20000, 0.1),
        ("conv4", 3e-4, 25000, 0.1),
        ("conv6", 3e-4, 30000, 0.15),
    ):
        p = P[f"frankle2019-{name}"]
        assert (p.domain["lr"], p.domain["iterations"], p.domain["batch_size"]) == (lr, iters, 60)
        assert p.imp["rate_overrides"] == f"conv={conv},output=0.1" and p.imp["rate"] == 0.2
    r20, vgg = P["stabilizing-resnet20"], P["stabilizing-vgg19"]
    assert ImpConfig(rewind_step=r20.imp["rewind_step"]).rewind_at(30000) == 500
    assert ImpConfig(rewind_step=vgg.imp["rewind_step"]).rewind_at(112480) == 500
    for p in (r20, vgg):
        assert (
            p.imp["strategy"] == "magnitude_global" and p.imp["rate"] == 0.2 and p.imp["rate_overrides"] == "output=0"
        )
        assert (p.domain["optimizer"], p.domain["lr"], p.domain["momentum"]) == ("sgd", 0.1, 0.9)


def check_tiny_level(preset: str, argv: list[str], out: Path, capsys) -> None:
    assert main(argv) == 0
    folder = run_folder(out)
    rows = pd.read_csv(folder / "results.csv")
    assert sorted(rows.kind) == sorted(["dense", "ticket", *VisionAdapter.presets[preset].imp["controls"].split(",")])
    assert (rows.status == "ok").all(), rows.error.tolist()
    meta = json.loads((folder / "run.json").read_text())
    assert meta["preset"] == preset and meta["budget"] == 3
    ticket = rows[rows.kind == "ticket"].iloc[0]
    lo, hi = (0.65, 0.75) if preset == "you2020-earlybird" else (0.75, 0.95)  # 30% per level vs 10-20%
    assert lo < ticket.density < hi
    if preset.startswith("stabilizing"):  # global ranking over conv weights, output layer untouched
        assert meta["rates"]["fc.weight"] == 0.0
        assert ticket.density == pytest.approx(0.8, abs=0.002)
    assert "ticket" in capsys.readouterr().out


small_batch = ("--batch-size", "8")


# VGG-16's tiny level is SynFlow's 100 rounds over VGG-16 (~130 s on 2 cores): slow; frankle2021-pai runs the
# same preset code on ResNet-20 in the default run
TINY_LEVEL = [pytest.param(p, marks=pytest.mark.slow) if p == "frankle2021-pai-vgg16" else p for p in PAPER_PRESETS]


@pytest.mark.parametrize("preset", TINY_LEVEL)
def test_paper_preset_completes_a_tiny_level(preset, data_dir, tmp_path, capsys):
    check_tiny_level(preset, tiny(preset, data_dir, tmp_path, *small_batch), tmp_path, capsys)


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["frankle2019-conv6", "stabilizing-resnet20", "stabilizing-vgg19"])
def test_cifar_preset_completes_a_tiny_level_at_its_own_batch_size(preset, data_dir, tmp_path, capsys):
    check_tiny_level(preset, tiny(preset, data_dir, tmp_path), tmp_path, capsys)


def test_transfer_trains_the_tickets_of_another_run(data_dir, tmp_path, monkeypatch):
    """Morcos et al.: a ticket found on Fashion-MNIST, trained on MNIST with the same architecture."""
    src_out, dst_out = tmp_path / "src", tmp_path / "dst"
    assert main(tiny("frankle2019-lenet", data_dir, src_out, "--dataset", "fashion-mnist", *small_batch)) == 0
    src = run_folder(src_out)
    jobs, train = {}, VisionAdapter.train
    monkeypatch.setattr(VisionAdapter, "train", lambda self, job: jobs.setdefault(job.key, job) and train(self, job))
    # another seed: this run's own init differs from the source's, so the rewind weights must come from there
    argv = tiny("morcos2019-transfer", data_dir, dst_out, "--ticket-from", str(src), "--seed", "1", *small_batch)
    assert main(argv) == 0
    dst = run_folder(dst_out)
    a, b = pd.read_csv(src / "results.csv"), pd.read_csv(dst / "results.csv")
    assert set(b.kind) == {"dense", "ticket", "random_reinit", "random_mask"} and (b.status == "ok").all()
    assert (b.task == "mnist/lenet_300_100").all() and (a.task == "fashion-mnist/lenet_300_100").all()
    kept = lambda df: df[df.kind == "ticket"].kept.tolist()
    assert kept(a) == kept(b)
    assert not list((dst / "state").glob("mask-*"))  # no pruning here: the source's masks were used
    source = RunStore.foreign(src)  # the ticket trained here is the source's, tensor by tensor
    ticket, mask = jobs["L01-ticket-t0"], source.load_state(source.mask_name(1, 0))
    assert ticket.mask.keys() == mask.keys() and all(torch.equal(ticket.mask[k], mask[k].bool()) for k in mask)
    rewind = source.load_state(source.rewind_name(0))
    assert ticket.weights.keys() == rewind.keys() and all(torch.equal(ticket.weights[k], rewind[k]) for k in rewind)
    assert json.loads((dst / "run.json").read_text())["ticket_from"]["path"] == str(src)


def test_transfer_refuses_another_architecture(data_dir, tmp_path, capsys):
    src_out = tmp_path / "src"
    assert main(tiny("frankle2019-lenet", data_dir, src_out, *small_batch)) == 0
    with pytest.raises(SystemExit) as e:
        main(tiny("quick", data_dir, tmp_path / "dst", "--ticket-from", str(run_folder(src_out))))
    assert e.value.code == 2 and "architecture differs" in capsys.readouterr().err


def test_missing_data_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(tiny("frankle2019-conv2", tmp_path / "empty", tmp_path / "out"))
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1
    assert "cifar-10-batches-py" in err and "--download" in err
    assert list(tmp_path.iterdir()) == []  # no run folder, no data folder, nothing


def test_frankle2021_pai_is_pruning_at_init_from_20_to_99_5_percent_sparsity():
    for name, model in (("frankle2021-pai", "resnet20"), ("frankle2021-pai-vgg16", "vgg16")):
        p = VisionAdapter.presets[name]
        imp = apply(ImpConfig(), p.imp)
        assert (imp.schedule, imp.rewind_step, p.domain["model"], p.domain["dataset"]) == (
            "at_init",
            "0",
            model,
            "cifar10",
        )
        densities = [(1 - imp.rate) ** level for level in range(1, imp.levels + 1)]
        assert densities[0] == pytest.approx(0.8) and 0.004 < densities[-1] < 0.005  # sparsity 20% .. 99.5%
        assert set(imp.control_names()) == {"layer_shuffle", "random_reinit", "inverted"}
        d = p.domain
        assert (d["lr"], d["momentum"], d["weight_decay"], d["batch_size"]) == (0.1, 0.9, 1e-4, 128)
        assert d["iterations"] == round(160 * 45000 / 128) and d["lr_milestones"] == "28125,42188"  # 80, 120 epochs
