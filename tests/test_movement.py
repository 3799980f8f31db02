"""Movement pruning: the gradient sums a training returns (GradSums) and the criterion that ranks by them."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from torch import nn

import lth_core.criteria  # noqa: F401  (registers the criteria)
from benchmarks.run import main
from lth_core.config import parse_overrides
from lth_core.job import Job
from lth_core.mask_hold import GradSums, MaskHold
from lth_core.masks import Mask
from lth_core.schedules import SCHEDULES
from lth_core.strategies import STRATEGIES, PruneStep, global_names, resolve_rates

X = torch.tensor([[1.0, -2.0, 0.5], [0.3, 0.8, -1.0]])
Y = torch.tensor([[0.3], [-0.2]])
W0 = torch.tensor([[0.4, -0.7, 1.5]])


def sgd_sums(mask: torch.Tensor | None, steps: int = 3, lr: float = 0.1) -> tuple[dict, torch.Tensor]:
    """Train fc (3 -> 1, no bias) with plain SGD on half the squared error; GradSums as a loop would hold it."""
    model = nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(W0)
    job = Job(0, "dense", 0, 0, {}, None, steps, grad_sums=("weight",))
    hold = MaskHold(model, Mask({"weight": mask})) if mask is not None else None
    sums = GradSums.for_job(model, job)
    assert sums is not None
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for t in range(steps):
        opt.zero_grad()
        (0.5 * ((model(X[t % 2 : t % 2 + 1]) - Y[t % 2 : t % 2 + 1]) ** 2).sum()).backward()
        opt.step()
    if hold is not None:
        hold.release()
    return sums.take(), model.weight.detach()


def by_hand(mask: torch.Tensor, steps: int = 3, lr: float = 0.1) -> torch.Tensor:
    w, total = W0 * mask, torch.zeros(1, 3)
    for t in range(steps):
        x, y = X[t % 2], Y[t % 2]
        g = float((w * x).sum() - y) * x * mask  # dL/dw = r x, masked
        total += g * w  # the gradient times the weight it was taken at
        w = w - lr * g
    return total


def test_grad_sums_are_the_sum_of_gradient_times_weight_under_plain_sgd():
    got, _ = sgd_sums(None)
    expected = by_hand(torch.ones(1, 3))
    assert torch.allclose(got["weight"], expected, atol=1e-6)
    # neither (sum g) * w_final nor (sum g) * w_0: each gradient goes with the weight it was taken at
    _, w_final = sgd_sums(None)
    g_sum = torch.zeros(1, 3)
    w = W0.clone()
    for t in range(3):
        g = float((w * X[t % 2]).sum() - Y[t % 2]) * X[t % 2]
        g_sum += g
        w = w - 0.1 * g
    assert not torch.allclose(got["weight"], g_sum * w_final, atol=1e-4)
    assert not torch.allclose(got["weight"], g_sum * W0, atol=1e-4)


def test_a_pruned_entry_sums_to_zero_and_the_hooks_go_with_take():
    mask = torch.tensor([[True, False, True]])
    got, _ = sgd_sums(mask)
    assert got["weight"][0, 1] == 0
    assert torch.allclose(got["weight"], by_hand(mask), atol=1e-6)
    model = nn.Linear(3, 1, bias=False)
    sums = GradSums(model, ["weight"])
    taken = sums.take()
    model(X).sum().backward()
    assert torch.equal(taken["weight"], torch.zeros(1, 3)) and not model.weight._backward_hooks
    assert GradSums.for_job(model, Job(0, "dense", 0, 0, {}, None, 1)) is None  # opt-in


def test_movement_keeps_weights_moving_away_from_zero():
    sums = {"w": torch.tensor([[-3.0, 2.0, -0.5, 1.0]])}  # g * w < 0: |w| grows under descent
    mask = Mask({"w": torch.ones(1, 4, dtype=torch.bool)})
    step = PruneStep({"w": torch.ones(1, 4)}, mask, {"w": 0.5}, frozenset(), grad_sums=sums)
    movement = STRATEGIES.build("movement", {"scope": "layerwise"})
    assert torch.equal(movement.scores(step)["w"], -sums["w"])
    assert movement(step)["w"].tolist() == [[True, False, True, False]]


def run(tmp_path, *flags: str):
    out = tmp_path / "out"
    base = ["--domain", "vision", "--preset", "quick", "--trials", "1", "--levels", "2", "--budget-scale", "0.05"]
    assert main([*base, "--out", str(out), "--noprogress", "--strategy", "movement", *flags]) == 0
    (folder,) = out.iterdir()
    return folder, pd.read_csv(folder / "results.csv"), json.loads((folder / "run.json").read_text())


@pytest.mark.parametrize("schedule,sources", [("iterative", (0, 1)), ("one_shot", (0, 0))])
def test_vision_movement_prunes_by_the_sums_of_the_training_it_prunes_from(tmp_path, schedule, sources):
    folder, rows, meta = run(tmp_path, "--schedule", schedule, "--controls", "inverted")
    assert (rows.status == "ok").all() and len(rows) == 1 + 2 * 2
    state = folder / "state"
    kept = sorted(p.stem for p in state.glob("gradsums-*"))
    assert kept == sorted({f"gradsums-L{lv:02d}-t0" for lv in sources})  # only the trainings pruned from
    for level, src in zip((1, 2), sources):
        sums = torch.load(state / f"gradsums-L{src:02d}-t0.pt", weights_only=True)
        prev = Mask({k: v.bool() for k, v in torch.load(state / f"mask-L{src:02d}-t0.pt").items()}) if src else None
        mask = Mask({k: v.bool() for k, v in torch.load(state / f"mask-L0{level}-t0.pt").items()})
        assert set(sums) == set(meta["prunable"]) and any(bool(s.abs().sum()) for s in sums.values())
        if prev is not None:  # a pruned entry's weight is zero: its sum too
            assert all(bool((sums[n][~prev[n]] == 0).all()) for n in prev)
        rates = resolve_rates(meta["prunable"], meta["imp"]["rate"], parse_overrides(meta["imp"]["rate_overrides"]))
        step = PruneStep(
            weights={n: torch.zeros(1) for n in mask},  # movement reads only the sums
            mask=prev if prev is not None else Mask({n: torch.ones_like(m) for n, m in mask.tensors.items()}),
            rates=SCHEDULES.get(schedule).rates(level, rates),
            global_names=global_names(meta["prunable"], parse_overrides(meta["imp"]["rate_overrides"])),
            grad_sums=sums,
        )
        again = STRATEGIES.get("movement")(step)
        assert all(torch.equal(again[n], mask[n]) for n in mask)
    lv = rows[rows.level > 0].set_index(["level", "kind"])
    assert lv.loc[(1, "inverted"), "kept"] == lv.loc[(1, "ticket"), "kept"]
    tickets = rows[rows.kind == "ticket"]  # the seconds spent drawing each level's mask, on its ticket's row
    assert (tickets.scoring_s > 0).all() and rows[rows.kind != "ticket"].scoring_s.isna().all()
    assert {p.stem for p in state.glob("scoring-*")} == {f"scoring-L0{level}-t0" for level in (1, 2)}


def test_movement_at_init_is_one_line_exit_2_and_nothing_written(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        run(tmp_path, "--schedule", "at_init")
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1, err
    assert "prunes before any training" in err and not (tmp_path / "out").exists()
