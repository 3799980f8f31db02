"""A small domain for the engine's tests, and the template of a domain: a tiny MLP on generated data, trained by
a plain loop that calls the engine's protocol (lth_core/protocol.py); see docs/ARCHITECTURE.md, "add a domain"."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lth_core.adapter import Adapter, Metric
from lth_core.config import DomainConfig, opt
from lth_core.errors import Diverged, UsageError
from lth_core.job import Job, Outcome
from lth_core.mask_hold import MaskHold
from lth_core.masks import Mask
from lth_core.presets import Preset
from lth_core.protocol import EvalGrid, JobProtocol, Trainee

OPTIMIZERS = {
    "sgd": lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda p, lr: torch.optim.Adam(p, lr=lr),
    "adamw": lambda p, lr: torch.optim.AdamW(p, lr=lr, weight_decay=0.1),
    "rmsprop": lambda p, lr: torch.optim.RMSprop(p, lr=lr, alpha=0.99, eps=1e-5),
}


@dataclass
class ToyConfig(DomainConfig):
    hidden: int = opt(32, "hidden width")
    steps: int = opt(60, "training steps per job")
    lr: float = opt(0.01, "learning rate")
    optimizer: str = opt("adam", "optimizer")
    eval_every: int = opt(20, "evaluation cadence")
    tied: bool = opt(False, "tie the first and last layers' weights")
    nan_at: int = opt(-1, "inject a NaN loss at this step (fault tests)")
    device: str = opt("cpu", "device", identity=False)

    def validate(self) -> None:
        super().validate()  # --budget-scale, --threads
        if self.optimizer not in OPTIMIZERS:
            raise UsageError(f"unknown optimizer {self.optimizer!r}; valid choices: {', '.join(OPTIMIZERS)}")


class TiedNet(nn.Module):
    """An autoencoder-shaped net whose decoder reuses the encoder's weight, as fairseq ties embeddings."""

    def __init__(self, d: int, h: int, k: int) -> None:
        super().__init__()
        self.enc = nn.Linear(d, h)
        self.mid = nn.Linear(h, h)
        self.dec = nn.Linear(h, d)
        self.dec.weight = nn.Parameter(self.enc.weight.t().contiguous())  # replaced below by a true tie
        self.out = nn.Linear(d, k)

    def forward(self, x):
        h = torch.relu(self.enc(x))
        h = torch.relu(self.mid(h))
        r = nn.functional.linear(h, self.enc.weight.t(), self.dec.bias)
        return self.out(r)


def make_data(seed: int = 123, n: int = 1200, d: int = 10, k: int = 3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    w = torch.randn(d, k, generator=g)
    y = (torch.tanh(x @ w) + 0.3 * torch.randn(n, k, generator=g)).argmax(1)
    return (x[:800], y[:800]), (x[800:1000], y[800:1000]), (x[1000:], y[1000:])


class ToyAdapter(Adapter):
    domain = "toy"
    Config = ToyConfig
    presets = {"quick": Preset("quick", "a few seconds", imp={"levels": 3, "trials": 2}, domain={})}

    def __init__(self, config: ToyConfig) -> None:
        super().__init__(config)
        self.train_set, self.val_set, self.test_set = make_data()
        self.calls = 0

    def task(self) -> str:
        return "blobs/mlp" + ("-tied" if self.config.tied else "")

    def metric(self) -> Metric:
        return Metric("accuracy", True, "val_loss", False)

    def build(self, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        if self.config.tied:
            net = TiedNet(10, self.config.hidden, 3)
            del net.dec.weight
            net.dec.weight = net.enc.weight  # one Parameter under two names
            return net
        return nn.Sequential(
            nn.Linear(10, self.config.hidden),
            nn.ReLU(),
            nn.Linear(self.config.hidden, self.config.hidden),
            nn.ReLU(),
            nn.Linear(self.config.hidden, 3),
        )

    def prunable(self, model: nn.Module, biases: bool) -> dict[str, str]:
        out = {}
        seen = set()
        names = [n for n, _ in model.named_parameters(remove_duplicate=False)]
        last = [n for n in names if n.endswith("weight")][-1]
        for n in names:
            p = model.get_parameter(n)
            if id(p) in seen or (n.endswith("bias") and not biases):
                continue
            seen.add(id(p))
            out[n] = "output" if n.startswith(last.rsplit(".", 1)[0]) else "fc"
        return out

    def budget(self) -> int:
        return self.config.scaled(self.config.steps)

    def _eval(self, model, data):
        x, y = data
        with torch.no_grad():
            logits = model(x)
            return nn.functional.cross_entropy(logits, y).item(), (logits.argmax(1) == y).float().mean().item()

    def train(self, job: Job) -> Outcome:
        """The template of a domain's training: its own loop, with the engine's protocol called at each step."""
        self.calls += 1
        # no torch.set_num_threads here: the executor sets the job's threads (`--cpus-per-job`), and tests see it
        model = self.build(0)
        model.load_state_dict(job.weights)
        hold = MaskHold(model, Mask(job.mask)) if job.mask is not None else None
        opt_ = OPTIMIZERS[self.config.optimizer](model.parameters(), self.config.lr)  # built after the mask
        protocol = JobProtocol(
            job,
            ToyTrainee(self, model),
            EvalGrid(self.config.eval_every),
            val_higher_is_better=self.metric().val_higher_is_better,
        )
        g = torch.Generator().manual_seed(job.order_seed)
        x, y = self.train_set
        step = job.start_step
        for step in range(job.start_step, job.budget):
            protocol.reached(step)
            if protocol.stopped:  # early bird: every watched level declared
                break
            idx = torch.randint(0, len(x), (32,), generator=g)
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            if step == self.config.nan_at:
                loss = loss * float("nan")
            if not torch.isfinite(loss):
                raise Diverged(f"loss {loss.item()} at step {step}")
            opt_.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt_.step()
        else:
            step = job.budget
            protocol.reached(step)
        if hold:
            hold.assert_held()
            hold.release()
        return protocol.finish(step)

    def evaluate(self, weights, split: str) -> dict[str, float]:
        model = self.build(0)
        model.load_state_dict(weights)
        loss, acc = self._eval(model, self.val_set if split == "val" else self.test_set)
        return {"val_loss": loss, "loss": loss} if split == "val" else {"accuracy": acc, "loss": loss}

    def training_loss(self, model: nn.Module, batches: int, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        x, y = self.train_set
        idx = torch.randint(0, len(x), (32 * batches,), generator=g)
        return nn.functional.cross_entropy(model(x[idx]), y[idx])


class ToyTrainee(Trainee):
    """What the protocol reads of a toy training: validation loss, test accuracy, the weights."""

    def __init__(self, adapter: ToyAdapter, model: nn.Module) -> None:
        self.adapter, self.model = adapter, model

    def validate(self) -> tuple[float, dict[str, float]]:
        loss, acc = self.adapter._eval(self.model, self.adapter.val_set)
        return loss, {"val_acc": acc}

    def test(self) -> float:
        return self.adapter._eval(self.model, self.adapter.test_set)[1]

    def weights(self):
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def load_weights(self, weights) -> None:
        self.model.load_state_dict(weights)
