"""The vision domain's flags: data, model, optimisation schedule, evaluation cadence and where it runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from lth_core.config import DomainConfig, opt
from lth_core.errors import UsageError
from lth_core.sparse_choice import MODES as SPARSE_MODES


def parse_steps(text: str, flag: str) -> list[int]:
    """'20000,25000' -> [20000, 25000] (iteration counts, ascending)."""
    out = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        try:
            value = int(item)
        except ValueError:
            raise UsageError(f"--{flag} item {item!r} must be an integer iteration, e.g. '20000,25000'") from None
        if value <= 0:
            raise UsageError(f"--{flag} item {item!r} must be a positive iteration")
        out.append(value)
    if out != sorted(out):
        raise UsageError(f"--{flag} {text!r} must be ascending")
    return out


@dataclass
class VisionConfig(DomainConfig):
    """One classification task trained by our in-memory loop; iterations count optimizer steps."""

    dataset: str = opt(
        "mnist1d",
        "dataset: mnist1d, digits (embedded); mnist, fashion-mnist, cifar10, cifar100 (from --data-dir); "
        "mnist-generated, cifar10-generated (their shapes, made in memory: smoke runs)",
    )
    model: str = opt(
        "mlp",
        "model: mlp, cnn1d, lenet_300_100, lenet5, conv2, conv4, conv6, vgg11, vgg16, vgg19, resnet20, resnet56, "
        "resnet18",
    )
    data_dir: str = opt(
        "data", "folder holding datasets in torchvision's layout (e.g. DIR/MNIST/raw/*-ubyte)", identity=False
    )
    download: bool = opt(False, "download missing torchvision datasets into --data-dir", identity=False)
    iterations: int = opt(3000, "training iterations (optimizer steps) per training, before --budget-scale")
    batch_size: int = opt(100, "minibatch size")
    optimizer: str = opt("adam", "optimizer: sgd (with --momentum, --nesterov), adam, adamw")
    lr: float = opt(1e-3, "learning rate (peak, after any warm-up)")
    momentum: float = opt(0.0, "SGD momentum (sgd only)")
    nesterov: bool = opt(False, "Nesterov momentum (sgd only)")
    weight_decay: float = opt(0.0, "weight decay (L2 for sgd/adam, decoupled for adamw)")
    lr_milestones: str = opt(
        "", "iterations at which the learning rate is multiplied by --lr-gamma, e.g. '20000,25000'"
    )
    lr_gamma: float = opt(0.1, "learning-rate factor at each milestone")
    warmup: int = opt(0, "iterations of linear learning-rate warm-up from 0")
    eval_every: int = opt(100, "iterations between evaluations on validation (early stopping) and test", cadence=True)
    val_size: int = opt(
        0, "training examples held out for validation (0 = the dataset's default, 5,000 for MNIST/CIFAR)"
    )
    train_size: int = opt(0, "use only this many of the remaining training examples (0 = all)")
    eval_examples: int = opt(
        0,
        "validation and test examples read per evaluation, a fixed random subset of each (0 = all); under "
        "--budget-scale < 1: x the scale, at least 100 (a scaled run's test score is then on part of the test set)",
        identity=False,  # joins the identity where it acts (identity_extras)
        eval_floor=100,
    )
    mnist1d_samples: int = opt(
        10000, "MNIST-1D examples generated, 4 in 5 for training and 1 in 5 for test (the paper's file has 5,000)"
    )
    augment: str = opt("auto", "training augmentation: auto (the dataset's usual one), none, crop_flip")
    budget_scale: float = opt(
        1.0,
        "multiply iterations, milestones, warm-up and eval cadence by this (e.g. 0.002 for a smoke run); below 1 "
        "evaluation shrinks too (--eval-points, --eval-examples); a paper's batch size, model and validation "
        "split are kept, so a smoke measures speed and plumbing, not the paper's accuracy",
    )
    test_curve: bool = opt(
        False,
        "read the test set at every evaluation too (a test-accuracy curve); by default it is "
        "read only where it is reported: at the early-stop step and at the end",
        identity=False,
    )
    bn_l1: float = opt(
        0.0,
        "L1 penalty on every BatchNorm scale: lambda * sum |gamma| added to the training loss of every job (network "
        "slimming, Liu et al. 2017, use 1e-4 to 1e-5; pair with --strategy bn_slimming); 0 = none",
        identity=False,  # joins the identity in identity_extras() when set, so runs without it keep their hash
    )
    sparse: str = opt(
        "never",
        "vision's own loop only: train masked Linear layers on their mask's pattern (CSR forward and backward, "
        "gradients and optimizer state for kept weights only; lth_core/sparse_kernels.py): never; auto = per "
        "layer where a timed calibration on this machine finds it faster (cached per shape, density, batch, "
        "threads); always = every masked untied Linear. Equal to masked dense within float tolerance, not "
        "bitwise; under --executor batched such jobs train one by one; jobs that sum gradients (movement) stay dense",
        identity=False,  # joins the identity in identity_extras() when set, so runs without it keep their hash
        choices=SPARSE_MODES,
    )
    eval_batch: int = opt(2000, "examples per forward pass during evaluation", identity=False)
    device: str = opt("cpu", "device: cpu, cuda, cuda:N or auto", identity=False)
    threads: int = opt(
        0,
        "torch CPU threads per training (0 = leave it to the executor and torch); 1 is "
        "fastest for small models and when jobs share cores",
        identity=False,
    )

    # --- derived schedule, all in scaled iterations (DomainConfig.scaled) ---
    def total_iterations(self) -> int:
        return self.scaled(self.iterations)

    def milestones(self) -> list[int]:
        return [self.scaled(m) for m in parse_steps(self.lr_milestones, "lr-milestones")]

    def warmup_iterations(self) -> int:
        return self.scaled(self.warmup) if self.warmup > 0 else 0

    def eval_cadence(self) -> int:
        return self.eval_cadence_for(self.total_iterations())

    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def validate(self) -> None:
        from domains.vision.augment import AUGMENTS
        from domains.vision.data import DATASETS
        from domains.vision.models import MODELS, create
        from domains.vision.optim import OPTIMIZERS

        DATASETS.check(self.dataset)
        MODELS.check(self.model)
        OPTIMIZERS.check(self.optimizer)
        if self.augment != "auto":
            AUGMENTS.check(self.augment)
        for name in ("iterations", "batch_size", "eval_every", "eval_batch", "mnist1d_samples"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} {getattr(self, name)} must be >= 1")
        for name in ("val_size", "train_size", "warmup", "threads", "eval_examples"):
            if getattr(self, name) < 0:
                raise UsageError(f"--{name.replace('_', '-')} {getattr(self, name)} must be >= 0")
        if not self.lr > 0:
            raise UsageError(f"--lr {self.lr} must be > 0")
        if not 0.0 <= self.momentum < 1.0:
            raise UsageError(f"--momentum {self.momentum} must be in [0, 1)")
        if self.weight_decay < 0:
            raise UsageError(f"--weight-decay {self.weight_decay} must be >= 0")
        if not 0.0 <= self.bn_l1 < float("inf"):
            raise UsageError(f"--bn-l1 {self.bn_l1} must be a finite value >= 0")
        if self.sparse not in SPARSE_MODES:
            raise UsageError(f"--sparse {self.sparse!r}: valid choices: {', '.join(SPARSE_MODES)}")
        if not 0.0 < self.budget_scale <= 1.0:
            raise UsageError(f"--budget-scale {self.budget_scale} must be in (0, 1]")
        super().validate()
        if not self.lr_gamma > 0:
            raise UsageError(f"--lr-gamma {self.lr_gamma} must be > 0")
        if any(m >= self.iterations for m in parse_steps(self.lr_milestones, "lr-milestones")):
            raise UsageError(f"--lr-milestones {self.lr_milestones!r} must lie below --iterations {self.iterations}")
        valid_devices = "cpu, cuda, cuda:N, auto"
        try:
            dev = self.torch_device()
        except RuntimeError:
            raise UsageError(f"--device {self.device!r} is not a device; valid choices: {valid_devices}") from None
        if dev.type not in ("cpu", "cuda"):
            raise UsageError(f"--device {self.device!r}: valid choices: {valid_devices}")
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise UsageError(f"--device {self.device!r}: no CUDA device is visible here; use --device cpu")
        spec = DATASETS.get(self.dataset)
        spec.check_files(self)  # missing data is reported before a run writes anything
        with torch.random.fork_rng(devices=[]):
            create(self.model, spec.shape, spec.classes)  # raises UsageError when the model cannot take the data

    def identity_extras(self) -> dict[str, Any]:
        """`--val-size 0` is the dataset's default: hashed as that number, so both spellings are one run; `--bn-l1`
        only where set (a run without the penalty keeps the hash it had before the flag existed), `--sparse` likewise
        only where not `never` (its results equal the dense path's within float tolerance only)."""
        from domains.vision.data import DATASETS

        out: dict[str, Any] = {
            **super().identity_extras(),
            "val_size": self.val_size or DATASETS.get(self.dataset).val_size,
        }
        if self.eval_examples:
            out["eval_examples"] = self.eval_examples
        if self.sparse != "never":
            out["sparse"] = self.sparse
        return out | ({"bn_l1": self.bn_l1} if self.bn_l1 else {})
