"""The vision domain's seam to the engine: builds classifiers, names their prunable tensors, trains jobs, and
offers the optional capabilities: evaluate arbitrary weights, a differentiable training loss, group families."""

from __future__ import annotations

import threading

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from domains.vision import models
from domains.vision.config import VisionConfig
from domains.vision.data import DATASETS, Data, load
from domains.vision.presets import PRESETS
from domains.vision.structure import families
from domains.vision.train import Batches, evaluate, train_job
from lth_core.adapter import SPLITS, Adapter, Metric
from lth_core.errors import UsageError
from lth_core.job import Job, Outcome, StateDict
from lth_core.structure import GroupFamily


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
        return train_job(model, self.data(), job, c, c.torch_device())

    def train_batch(self, jobs: list[Job]) -> list[Outcome] | None:
        """The jobs of a level in one pass: stacked where that pays, else in turn (batched_training.py).
        None (one by one) for jobs that sum their gradients (`Job.grad_sums`): the stacked loop has no hooks."""
        from domains.vision.batched_training import train_batch

        if any(j.grad_sums for j in jobs):
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

    def input_shape(self) -> tuple[int, ...]:
        """One example of the dataset, channels first (what `build` is made for)."""
        return tuple(DATASETS.get(self.config.dataset).shape)

    def structure(self, model: nn.Module) -> list[GroupFamily]:
        """Neurons, filters (with their BatchNorm entries) and residual channels (domains/vision/structure.py)."""
        out = families(model)
        if out is None:
            raise self.unsupported(f"describe the structure of a {type(model).__name__}")
        return out

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
