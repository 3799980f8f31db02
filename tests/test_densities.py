"""Per-tensor densities of every job's mask land in densities.csv, and a mask that empties a tensor is named in
summary.md (a layer collapse trains a dead network; the run says so)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from benchmarks.run import main
from lth_core.masks import Mask
from lth_core.strategies import STRATEGIES, PruneStep, Strategy, prune_lowest

TABLE = {"toy": "toy_adapter:ToyAdapter"}


@STRATEGIES.register("collapse_probe")
@dataclass(frozen=True)
class CollapseProbe(Strategy):
    """Magnitude pruning that empties the middle layer at level 2."""

    def __call__(self, step: PruneStep) -> Mask:
        mask = prune_lowest(step, {n: step.weights[n].abs() for n in step.mask})
        if step.rates["2.weight"] > 0.3:  # one-shot level 2: 1 - 0.8^2
            mask.tensors["2.weight"] = torch.zeros_like(mask["2.weight"])
        return mask

    def scores(self, step: PruneStep) -> dict[str, torch.Tensor]:
        return {n: step.weights[n].abs() for n in step.mask}


def run(tmp_path, strategy: str):
    out = tmp_path / strategy
    flags = ["--levels", "2", "--trials", "2", "--schedule", "one_shot", "--rate", "0.2"]
    controls = ["--controls", "random_mask,layer_shuffle,inverted"]
    main(["--domain", "toy", *flags, *controls, "--strategy", strategy, "--out", str(out), "--noprogress"], TABLE)
    (folder,) = out.iterdir()
    return folder


def test_every_jobs_mask_has_its_per_tensor_densities(tmp_path):
    folder = run(tmp_path, "magnitude_layerwise")
    dens = pd.read_csv(folder / "densities.csv")
    rows = pd.read_csv(folder / "results.csv")
    pruned = rows[rows.level > 0]
    assert len(dens) == len(pruned) * 3  # three prunable tensors per mask
    per_job = dens.groupby(["level", "kind", "trial"]).agg(kept_t=("kept", "sum"), total_t=("total", "sum"))
    joined = pruned.set_index(["level", "kind", "trial"])[["kept", "total"]].join(per_job)
    assert (joined.kept == joined.kept_t).all() and (joined.total == joined.total_t).all()
    ticket = dens[(dens.kind == "ticket") & (dens.level == 1)]
    assert ticket.density.tolist() == [k / t for k, t in zip(ticket.kept, ticket.total)]
    hidden = ticket[ticket.tensor == "0.weight"].iloc[0]
    assert hidden.kept == hidden.total - round(0.2 * hidden.total)
    assert "Layer collapse" not in (folder / "summary.md").read_text()
    assert (folder / "densities.png").stat().st_size > 0


def test_a_mask_that_empties_a_tensor_is_named_in_the_summary(tmp_path):
    folder = run(tmp_path, "collapse_probe")
    dens = pd.read_csv(folder / "densities.csv")
    empty = dens[dens.kept == 0]
    assert set(empty.tensor) == {"2.weight"} and set(empty.level) == {2}
    assert set(empty.kind) == {"ticket", "random_mask", "layer_shuffle", "inverted"}  # the counts carry over
    text = (folder / "summary.md").read_text()
    assert (folder / "densities.png").stat().st_size > 0
    assert "**Layer collapse**" in text and "- level 2 ticket: empties 2.weight (trial 0, 1)" in text
    assert "level 1" not in text.split("**Layer collapse**")[1].split("##")[0]
