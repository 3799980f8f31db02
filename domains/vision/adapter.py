"""The vision domain's seam to the engine: builds classifiers, names their prunable tensors, trains jobs, and
offers the optional capabilities: evaluate arbitrary weights, a differentiable training loss, group families,
BatchNorm statistics recomputed for given weights."""

from __future__ import annotations

import copy
import threading
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from domains.vision import models
from domains.vision.config import VisionConfig
from domains.vision.data import DATASETS, Data, load
from domains.vision.optim import OPTIMIZERS
from domains.vision.presets import PRESETS
from domains.vision.structure import families
from domains.vision.train import Batches, evaluate, train_job
from lth_core.adapter import SPLITS, Adapter, Metric
from lth_core.batchnorm import recompute
from lth_core.compact_jobs import train_compacted
from lth_core.compaction import shrink
from lth_core.cost import measure_cost
from lth_core.errors import UsageError
from lth_core.flops import train_step_flops, weight_macs
from lth_core.job import Job, Outcome, StateDict
from lth_core.masks import Mask
from lth_core.structure import GroupFamily
from lth_core.structured import keeps_to_mask


class VisionAdapter(Adapter):
    """Image / 1-D signal classification; score = test accuracy at the iteration of minimum validation loss."""

    domain = "vision"
    packages = ("torchvision", "mnist1d")
    Config = VisionConfig
    presets = PRESETS

    _lock = threading.Lock()  # a class attribute: adapters are pickled to worker processes, locks can't be

    def __init__(self, config: VisionConfig) -> None:
        super().__init__(config)
        self.config: VisionConfig = config
        self._data: Data | None = None
        self._macs: dict[str, float] | None = None

    # --- what the engine asks -------------------------------------------------------------------
    def task(self) -> str:
        return f"{self.config.dataset}/{self.config.model}"

    def metric(self) -> Metric:
        return Metric(name="test_accuracy", higher_is_better=True, val_name="val_loss", val_higher_is_better=False)

    def build(self, seed: int) -> nn.Module:
        spec = DATASETS.get(self.config.dataset)
        with torch.random.fork_rng(devices=[]):  # the model's own initializer, seeded, leaving global RNG as it was
            torch.manual_seed(seed)
            return models.create(self.config.model, spec.shape, spec.classes)

    def prunable(self, model: nn.Module, biases: bool) -> dict[str, str]:
        return models.prunable_groups(model, biases)

    def budget(self) -> int:
        return self.config.total_iterations()

    def train(self, job: Job) -> Outcome:
        c = self.config
        if c.threads:
            torch.set_num_threads(c.threads)
        model = self.build(job.seed)
        model.load_state_dict(job.weights)
        if job.keep is not None:  # --compact: the smaller model, trained by the same loop
            return train_compacted(self, model, job, lambda m, j: train_job(m, self.data(), j, c, c.torch_device()))
        return train_job(model, self.data(), job, c, c.torch_device())

    def train_batch(self, jobs: list[Job]) -> list[Outcome] | None:
        """The jobs of a level in one pass: stacked where that pays, else in turn (batched_training.py).
        None (one by one) for jobs that sum their gradients (`Job.grad_sums`): the stacked loop has no hooks; and
        under --sparse auto/always: the sparse kernels are per job (train_job)."""
        from domains.vision.batched_training import train_batch

        if any(j.keep is not None for j in jobs):
            return None  # compacted jobs differ in shapes: the executor trains them one by one
        if any(j.grad_sums for j in jobs) or self.config.sparse != "never":
            return None

        c = self.config  # threads: the batched executor's (one pass of several jobs), not --threads per training
        with self._lock:  # passes may run side by side on threads; build() seeds the global RNG
            model, data = self.build(0), self.data()
        return train_batch(model, data, jobs, c, c.torch_device())

    def batch_stacks(self, jobs: int, cores: int) -> int:
        """On a CPU one pass per core, side by side; on a GPU one pass (see domains/vision/batched_training.py)."""
        return min(jobs, cores) if self.config.torch_device().type == "cpu" else 1

    def close(self) -> None:
        self._data = None

    # --- optional capabilities ------------------------------------------------------------------
    def evaluate(self, weights: StateDict, split: str) -> dict[str, float]:
        """Cross-entropy and accuracy of `weights` on `split`, as the training loop computes them (eval mode):
        'loss', '{split}_loss', '{split}_acc', and on 'test' the reported metric 'test_accuracy'."""
        if split not in SPLITS:
            raise UsageError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
        c = self.config
        model = self.build(0)
        model.load_state_dict(weights)
        data = self.data()
        loss, acc = evaluate(model.to(c.torch_device()), data.val if split == "val" else data.test, c.eval_batch)
        out = {"loss": loss, f"{split}_loss": loss, f"{split}_acc": acc}
        if split == "test":
            out[self.metric().name] = acc
        return out

    def training_loss(self, model: nn.Module, batches: int, seed: int) -> Tensor:
        """Mean cross-entropy over training minibatches 0..batches-1 of the data order `seed` gives (the
        batches a training with that order seed starts on; no augmentation), in the model's current mode."""
        data = self.data()
        order = Batches(len(data.train), self.config.batch_size, seed)
        device = next(model.parameters()).device
        losses = []
        for step in range(batches):
            idx = order(step).to(data.train.x.device)
            x, y = data.train.x.index_select(0, idx).to(device), data.train.y.index_select(0, idx).to(device)
            losses.append(F.cross_entropy(model(x), y))
        return torch.stack(losses).mean()

    def recompute_norm_stats(self, weights: StateDict, batches: int, seed: int) -> StateDict:
        """BatchNorm statistics of `weights` averaged over training minibatches 0..batches-1 of the order `seed`
        gives (no augmentation, as `training_loss`); a model without BatchNorm comes back unchanged."""
        model = self.build(0)
        model.load_state_dict(weights)
        device = self.config.torch_device()
        model.to(device)
        data = self.data()
        order = Batches(len(data.train), self.config.batch_size, seed)
        inputs = (data.train.x.index_select(0, order(s).to(data.train.x.device)).to(device) for s in range(batches))
        recompute(model, inputs, lambda m, x: m(x))
        return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}

    def input_shape(self) -> tuple[int, ...]:
        """One example of the dataset, channels first (what `build` is made for)."""
        return tuple(DATASETS.get(self.config.dataset).shape)

    def step_flops(self, mask: Mapping[str, Tensor] | None) -> float:
        """Linear and convolution FLOPs of one training batch, the kept weights only (lth_core/flops.py)."""
        if self._macs is None:
            example = torch.zeros(1, *self.input_shape())
            self._macs = weight_macs(self.build(0), example)
        return train_step_flops(self._macs, mask, self.config.batch_size)

    def structure(self, model: nn.Module) -> list[GroupFamily]:
        """Neurons, filters (with their BatchNorm entries) and residual channels (domains/vision/structure.py)."""
        out = families(model)
        if out is None:
            raise self.unsupported(f"describe the structure of a {type(model).__name__}")
        return out

    def compact(self, model: nn.Module, keep: Mapping[str, Tensor]) -> nn.Module:
        """`model` cut in place to the kept neurons / filters / residual channels of `structure(model)`: torch's
        standard layers carry all the sizes these models have (their forward reads shapes from the tensors)."""
        return shrink(model, self.structure(model), keep)

    def cost(self, model: nn.Module, keep: Mapping[str, Tensor]) -> dict[str, float]:
        """Compacted vs masked dense on random inputs of the dataset's shape: one example, a training batch of
        --batch-size, a step of --optimizer; on --device with --threads (as a training runs), about a second."""
        c = self.config
        dev = c.torch_device()
        fams = self.structure(model)
        prunable = self.prunable(model, False)
        full = Mask({n: torch.ones_like(t, dtype=torch.bool) for n, t in model.state_dict().items() if n in prunable})
        mask = keeps_to_mask(tuple(fams), keep, full).to_state()
        dense = copy.deepcopy(model).to(dev)
        small = self.compact(copy.deepcopy(model), keep).to(dev)
        g = torch.Generator().manual_seed(0)
        shape, classes = self.input_shape(), DATASETS.get(c.dataset).classes
        example = torch.randn(1, *shape, generator=g).to(dev)
        batch = torch.randn(c.batch_size, *shape, generator=g).to(dev)
        y = torch.randint(classes, (c.batch_size,), generator=g).to(dev)
        before = torch.get_num_threads()
        if c.threads:
            torch.set_num_threads(c.threads)
        try:
            return measure_cost(
                dense,
                mask,
                small,
                example,
                batch,
                lambda out: F.cross_entropy(out, y),
                lambda params: OPTIMIZERS.get(c.optimizer)(params, c),
            )
        finally:
            torch.set_num_threads(before)

    # --- the domain's own -----------------------------------------------------------------------
    def data(self) -> Data:
        """The dataset, loaded once per adapter (per worker process) and kept on the training device."""
        if self._data is None:
            data = load(self.config)
            if self.config.batch_size > len(data.train):
                raise UsageError(
                    f"--batch-size {self.config.batch_size} exceeds the {len(data.train)} training "
                    f"examples of {self.config.dataset}"
                )
            self._data = data.to(self.config.torch_device())
        return self._data
