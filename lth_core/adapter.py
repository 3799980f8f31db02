"""The seam between the engine and a domain. The engine never sees a dataset, an environment or a loop."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Mapping

from torch import Tensor, nn

from lth_core.errors import UsageError
from lth_core.job import Job, Outcome, StateDict
from lth_core.structure import GroupFamily

if TYPE_CHECKING:
    from lth_core.config import DomainConfig
    from lth_core.presets import Preset


class Unsupported(UsageError):
    """A capability this domain does not offer: one line, 'domain X cannot Y', before anything runs."""


SPLITS = ("val", "test")


@dataclass(frozen=True)
class Metric:
    """The reported metric and the validation signal that early stopping selects on, with directions."""

    name: str  # e.g. "test_accuracy", "return", "bleu", "perplexity"
    higher_is_better: bool
    val_name: str  # e.g. "val_loss"
    val_higher_is_better: bool


class Adapter(ABC):
    """One domain: builds models from a seed, names prunable tensors, trains a job, reports a metric.

    Subclasses set `domain`, `Config` (a DomainConfig dataclass), `presets` and `packages` (the distributions
    whose versions every row and run.json record, e.g. ("stable-baselines3", "gymnasium")).
    `train` must hold `job.mask` with `lth_core.mask_hold.MaskHold` (or, for adapters owning a batched loop,
    with an equivalent that the mask-invariant tests cover) and run its loop under
    `lth_core.protocol.JobProtocol`, which owns the evaluation grid, early stopping on validation, rewind
    captures, the test reads and the `Outcome`; the domain supplies a `Trainee` (validate, test, weights).
    """

    domain: ClassVar[str]
    Config: ClassVar[type[DomainConfig]]
    presets: ClassVar[dict[str, Preset]]
    packages: ClassVar[tuple[str, ...]] = ()
    refusals: ClassVar[Mapping[str, str]] = {}  # capability -> why this domain has none (appended to `require`)

    def __init__(self, config: DomainConfig) -> None:
        self.config = config

    @abstractmethod
    def task(self) -> str:
        """Short name of what is learned, e.g. '<dataset>/<model>' (a column of every result row)."""

    @abstractmethod
    def metric(self) -> Metric: ...

    @abstractmethod
    def build(self, seed: int) -> nn.Module:
        """A freshly initialised model from the model's own initializer, deterministic in `seed`."""

    @abstractmethod
    def prunable(self, model: nn.Module, biases: bool) -> dict[str, str]:
        """Prunable parameter names -> group (e.g. 'conv', 'fc', 'output'); rate overrides match groups or names.

        Each Parameter appears once, under one name, even where modules tie it.
        """

    @abstractmethod
    def budget(self) -> int:
        """Training steps of one job, in the adapter's own unit (iterations, env steps, updates)."""

    @abstractmethod
    def train(self, job: Job) -> Outcome: ...

    def train_batch(self, jobs: list[Job]) -> list[Outcome] | None:
        """Train several jobs in one pass (the `batched` executor); None where this adapter can't.

        Must not touch global state (the global RNG, torch's thread count): the executor may run several
        of these passes side by side on threads (see `batch_stacks`)."""
        return None

    def batch_stacks(self, jobs: int, cores: int) -> int:
        """Into how many passes to split `jobs` that train side by side, one thread each. On a CPU, several
        1-thread passes beat one pass on every core for small models (their products are too small to share
        out); on a GPU one pass fills the device. Default: one pass."""
        return 1

    def initial_weights(self, seed: int) -> StateDict:
        return {k: v.detach().clone() for k, v in self.build(seed).state_dict().items()}

    def close(self) -> None:
        """Release datasets, environments or worker pools held between jobs."""

    # ---- optional capabilities beyond training (see `capabilities`) ----------------------------------
    def evaluate(self, weights: StateDict, split: str) -> dict[str, float]:
        """Metrics of arbitrary weights on `split` ('val' or 'test'): at least `metric().val_name` on 'val' and
        `metric().name` on 'test' (and the training loss of the split as 'loss' where the domain has one)."""
        raise self.unsupported("evaluate arbitrary weights")

    def training_loss(self, model: nn.Module, batches: int, seed: int) -> Tensor:
        """The domain's own training loss of `model` on `batches` batches of its training data drawn with
        `seed`, differentiable in the model's Parameters (the scoring hook of gradient-based criteria)."""
        raise self.unsupported("compute a training loss for scoring")

    def input_shape(self) -> tuple[int, ...]:
        """The shape of one input example of `build`'s model (no batch dimension), for data-free criteria
        (SynFlow scores the network on an all-ones input of this shape)."""
        raise self.unsupported("give the shape of one input example")

    def flow_output(self, model: nn.Module, x: Tensor) -> Tensor:
        """The outputs of `model` on the input batch `x` that data-free criteria sum (SynFlow's R): `model(x)`;
        a domain whose model's forward is no plain tensor function (a policy with several heads) says which outputs."""
        return model(x)

    def structure(self, model: nn.Module) -> list[GroupFamily]:
        """The prunable groups across coupled tensors: neurons, channels, attention heads."""
        raise self.unsupported("describe its structure (neurons, channels, heads)")

    def compact(self, model: nn.Module, keep: Mapping[str, Tensor]) -> nn.Module:
        """The physically smaller model keeping, per family of `structure(model)`, the groups where
        `keep[family.name]` (a [count] bool tensor) is True: same state-dict keys, smaller shapes, the kept
        weights carried over, the same outputs as the masked model (`lth_core.compaction.shrink` does the
        standard layers; a domain fixes what its own modules carry)."""
        raise self.unsupported("compact a structured ticket (remove neurons, channels, heads)")

    def cost(self, model: nn.Module, keep: Mapping[str, Tensor]) -> dict[str, float]:
        """The measured cost of the compacted model (`compact(model, keep)`) against the masked dense `model`, as
        result columns: `params`, `macs` and the speed-ups of `lth_core.cost.measure_cost` (the domain supplies
        its inputs, loss and optimizer). `model` is left as it was."""
        raise self.unsupported("measure the cost of a compacted model")

    def recompute_norm_stats(self, weights: StateDict, batches: int, seed: int) -> StateDict:
        """`weights` with the running statistics of every BatchNorm layer recomputed on `batches` training
        batches of the data order `seed` gives (the rest unchanged; no BatchNorm = unchanged), for
        `benchmarks.instability --bn recompute` (`lth_core.batchnorm.recompute` does the layers)."""
        raise self.unsupported("recompute normalization statistics (it has no BatchNorm layers)")

    def step_flops(self, mask: Mapping[str, Tensor] | None) -> float:
        """FLOPs of one training step under `mask` (None = dense), forward and backward, counting only the kept
        weights: the unit of the `train_flops` and `discovery_flops` columns."""
        raise self.unsupported("count the FLOPs of a training step")

    def capabilities(self) -> set[str]:
        """Which of the optional capabilities (`OPTIONAL`) this adapter overrides."""
        return {name for name in OPTIONAL if getattr(type(self), name) is not getattr(Adapter, name)}

    def require(self, capability: str, why: str) -> None:
        """One line before anything runs when a requested analysis needs what this domain cannot do."""
        if capability not in self.capabilities():
            reason = f": {self.refusals[capability]}" if capability in self.refusals else ""
            raise Unsupported(
                f"domain {self.domain!r} cannot {capability.replace('_', ' ')}, which {why} needs{reason}"
            )

    def unsupported(self, what: str) -> Unsupported:
        return Unsupported(f"domain {self.domain!r} cannot {what}")


OPTIONAL = (
    "evaluate",
    "training_loss",
    "input_shape",
    "structure",
    "compact",
    "cost",
    "recompute_norm_stats",
    "step_flops",
)  # the optional capabilities beyond training, as `Adapter.capabilities()` reports them
