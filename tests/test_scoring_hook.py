"""A gradient-based strategy: PruneStep carries the initial and rewind weights and the domain's scoring hook,
and a domain without a training loss is refused in one line before the run folder exists."""

import json
from dataclasses import dataclass

import pytest
import torch
from torch import nn
from toy_adapter import ToyAdapter, ToyConfig

from benchmarks.run import main
from lth_core.adapter import Adapter
from lth_core.config import opt
from lth_core.job import Job
from lth_core.masks import Mask
from lth_core.strategies import STRATEGIES, PruneStep, Strategy, prune_lowest

STEPS: list[tuple[int, PruneStep, Mask]] = []


class HookedToy(ToyAdapter):
    """The toy domain with its training loss offered for scoring."""

    def training_loss(self, model: nn.Module, batches: int, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        x, y = self.train_set
        idx = torch.randint(0, len(x), (batches * 32,), generator=g)
        return nn.functional.cross_entropy(model(x[idx]), y[idx])


class LosslessToy(ToyAdapter):
    """The toy domain without a training loss to score with."""

    training_loss = Adapter.training_loss


@STRATEGIES.register("snip_probe")
@dataclass(frozen=True)
class SnipProbe(Strategy):
    """SNIP-style saliency |w * dL/dw| of the rewind weights under the current mask (Lee et al. 2019)."""

    needs = frozenset({"training_loss"})
    batches: int = opt(1, "training batches the saliency is averaged over")

    def __call__(self, step: PruneStep) -> Mask:
        weights = {k: v * step.mask[k] if k in step.mask else v for k, v in step.rewind.items()}
        model = step.score.model(weights)
        step.score(model, self.batches).backward()
        grads = {n: model.get_parameter(n).grad for n in step.mask}
        mask = prune_lowest(step, {n: (weights[n] * grads[n]).abs() for n in step.mask})
        STEPS.append((self.batches, step, mask))
        return mask


def run(tmp_path, name, table, *flags):
    STEPS.clear()
    out = tmp_path / name
    main(
        [
            "--domain",
            "toy",
            "--levels",
            "1",
            "--trials",
            "1",
            "--controls",
            "",
            "--strategy",
            "snip_probe",
            "--out",
            str(out),
            "--noprogress",
            *flags,
        ],
        table,
    )
    (folder,) = out.iterdir()
    return json.loads((folder / "run.json").read_text())


def test_a_domain_without_the_hook_is_refused_before_anything_is_written(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        run(tmp_path, "out", {"toy": "test_scoring_hook:LosslessToy"})
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1
    assert "domain 'toy' cannot training loss, which the strategy 'snip_probe' needs" in err
    assert not (tmp_path / "out").exists()


def test_the_step_carries_initial_and_rewind_weights_and_the_hook_scores(tmp_path):
    one = run(tmp_path, "one", {"toy": "test_scoring_hook:HookedToy"}, "--rewind-step", "20")
    ((_, step, mask_one),) = STEPS
    adapter = ToyAdapter(ToyConfig())
    init = adapter.initial_weights(0)
    assert all(torch.equal(step.initial[k], init[k]) for k in init)
    dense = adapter.train(
        Job(level=0, kind="dense", trial=0, seed=0, weights=init, mask=None, budget=60, capture_steps=(20,))
    )
    assert all(torch.equal(step.rewind[k], dense.captured[20][k]) for k in init)
    assert any(not torch.equal(step.rewind[k], init[k]) for k in init)
    four = run(
        tmp_path, "four", {"toy": "test_scoring_hook:HookedToy"}, "--rewind-step", "20", "--snip-probe-batches", "4"
    )
    ((batches, _, mask_four),) = STEPS
    assert batches == 4 and mask_four.kept() == mask_one.kept()
    assert any(not torch.equal(mask_four[n], mask_one[n]) for n in mask_one)
    assert one["config_hash"] != four["config_hash"]
