"""The measured cost of a compacted model (lth_core/cost.py) on a fake clock, so every count is exact: how many
calls a timing sample holds, the order of the interleaved pairs, the median of their ratios, the untimed reset,
the device syncs, the 200-pair cap; and measure_cost's columns, which model each timing runs in which mode, the
mask held during the dense step, and both models left with the weights they came with."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lth_core import cost
from lth_core.cost import count_macs, measure_cost, paired_speedup


class Clock:
    """time.perf_counter as the sum of the durations the fake work declared."""

    def __init__(self) -> None:
        self.t = 0.0
        self.log: list[str] = []

    def __call__(self) -> float:
        return self.t

    def work(self, name: str, durations):
        it = iter(durations) if not isinstance(durations, float) else None

        def fn() -> None:
            self.log.append(name)
            self.t += next(it) if it is not None else durations  # type: ignore[operator]

        return fn


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(cost.time, "perf_counter", c)
    return c


CPU = torch.device("cpu")


def _runs(log: list[str]) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for name in log:
        if out and out[-1][0] == name:
            out[-1] = (name, out[-1][1] + 1)
        else:
            out.append((name, 1))
    return out


def test_samples_hold_enough_calls_alternate_their_order_and_reset_untimed_first(clock):
    def reset() -> None:
        clock.log.append("reset")
        clock.t += 1000.0  # untimed: must not count in any sample

    slow = clock.work("slow", [100.0] + [0.0625] * 100)  # the first call (a warm-up) is never timed
    fast = clock.work("fast", 0.03125)
    ratio = paired_speedup(slow, fast, 0.0, CPU, sample_s=0.25, min_pairs=5, reset=reset)
    assert ratio == 2.0
    pair_a = [("reset", 1), ("fast", 8), ("reset", 1), ("slow", 4)]  # the first pair times `fast` first
    pair_b = [("reset", 1), ("slow", 4), ("reset", 1), ("fast", 8)]
    calibration = [("reset", 1), ("slow", 2), ("reset", 1), ("fast", 2)]
    assert _runs(clock.log) == calibration + pair_a + pair_b + pair_a + pair_b + pair_a


def test_the_speedup_is_the_median_of_the_pairs_ratios(clock):
    slow = clock.work("slow", [1.0, 1.0, 1.0, 1.0, 10.0])  # calibration twice, then one call per sample
    fast = clock.work("fast", 1.0)
    assert paired_speedup(slow, fast, 0.0, CPU, sample_s=1e-9, min_pairs=3) == 1.0  # the mean would be 4


def test_pairs_go_on_until_the_budget_is_spent(clock):
    slow, fast = clock.work("slow", 2.0), clock.work("fast", 1.0)
    assert paired_speedup(slow, fast, 30.0, CPU, sample_s=1e-9, min_pairs=1) == 2.0
    assert clock.log.count("slow") == 2 + 10  # 3 s per pair: 10 pairs reach the 30 s budget
    assert clock.log.count("fast") == 2 + 10


def test_pairs_stop_at_200_and_a_free_call_is_timed_at_the_clocks_floor(clock):
    slow, fast = clock.work("slow", 1.0), clock.work("fast", 0.0)
    assert paired_speedup(slow, fast, 1e9, CPU, sample_s=1e-9) == 1e12  # over max(0, 1e-12)
    calls = clock.log.count("fast")
    assert calls == 2 + 200  # one call a sample, 200 pairs however much budget is left
    del clock.log[:]
    assert cost._calibrate(fast, 1e-6, CPU) == 10  # 1e-6 s over the floor 1e-7 s
    assert cost._calibrate(slow, 0.5, CPU) == 1 and cost._calibrate(slow, 2.5, CPU) == 2
    assert clock.log == ["fast", "fast", "slow", "slow", "slow", "slow"]  # a warm-up call, then the timed one


def test_every_sample_is_synchronized_on_a_gpu_and_never_on_a_cpu(clock, monkeypatch):
    synced: list[torch.device] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: synced.append(device))
    slow, fast = clock.work("slow", 1.0), clock.work("fast", 1.0)
    paired_speedup(slow, fast, 0.0, CPU, sample_s=1e-9, min_pairs=2)
    assert synced == []
    gpu = torch.device("cuda")
    paired_speedup(slow, fast, 0.0, gpu, sample_s=1e-9, min_pairs=2)
    assert synced == [gpu] * (2 * 2 + 2 * 2 * 2)  # each calibration before and after its timed call; each sample


def test_count_macs_is_half_the_flops_of_one_forward():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2, bias=False))
    assert count_macs(model, torch.randn(5, 4)) == 5 * (4 * 3 + 3 * 2)
    conv = nn.Conv2d(2, 3, 3, bias=False)
    assert count_macs(conv, torch.randn(1, 2, 5, 5)) == 3 * 3 * 3 * 2 * 3 * 3


def _pair():
    torch.manual_seed(0)
    dense = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3))
    mask = {"0.weight": torch.tensor([[True, False] * 3] * 4), "2.weight": torch.ones(3, 4, dtype=torch.bool)}
    mask["2.weight"][:, 1] = False
    with torch.no_grad():
        dense[0].weight.mul_(mask["0.weight"])
        dense[2].weight.mul_(mask["2.weight"])
    small = nn.Sequential(nn.Linear(6, 2), nn.ReLU(), nn.Linear(2, 3))
    return dense, mask, small


def test_measure_cost_times_forwards_in_eval_without_grad_and_steps_in_train_under_the_mask(monkeypatch):
    dense, mask, small = _pair()
    before = copy.deepcopy(dense.state_dict()), copy.deepcopy(small.state_dict())
    example, batch, y = torch.randn(1, 6), torch.randn(8, 6), torch.randint(3, (8,))
    seen: list[dict] = []

    def fake(slow, fast, budget_s, device, reset=None):
        if reset is not None:
            reset()
        hooked = any(p._backward_hooks for p in dense.parameters())
        s_out, f_out = slow(), fast()
        seen.append(
            dict(
                budget=budget_s,
                device=device,
                reset=reset,
                grad=torch.is_grad_enabled(),
                training=(dense.training, small.training),
                hooked=hooked,
                out=(s_out, f_out),
                dense=copy.deepcopy(dense.state_dict()),
                small=copy.deepcopy(small.state_dict()),
            )
        )
        return 1.0 + len(seen) / 3 + 1e-6  # 4/3, 5/3, 2 (+ a tail the 4 digits drop)

    monkeypatch.setattr(cost, "paired_speedup", fake)
    out = measure_cost(
        dense,
        mask,
        small,
        example,
        batch,
        lambda o: F.cross_entropy(o, y),
        lambda ps: torch.optim.SGD(ps, lr=0.5),
        budget_s=0.9,
    )
    assert out == {
        "params": 6 * 2 + 2 + 2 * 3 + 3,
        "macs": 6 * 2 + 2 * 3,
        "dense_macs": 6 * 4 + 4 * 3,
        "forward_speedup_b1": 1.3333,
        "forward_speedup": 1.6667,
        "step_speedup": 2.0,
    }
    assert [s["budget"] for s in seen] == [0.3, 0.3, 0.3] and all(s["device"] == CPU for s in seen)
    assert [s["grad"] for s in seen] == [False, False, True]
    assert [s["training"] for s in seen] == [(False, False), (False, False), (True, True)]
    assert not any(s["hooked"] for s in seen)  # the dense step masks its gradients itself (hooks=False)
    for s, x in zip(seen[:2], (example, batch)):
        assert s["reset"] is None
        torch.testing.assert_close(s["out"][0], dense.eval()(x).detach())
        assert s["out"][1].shape == (x.shape[0], 3)
    step = seen[2]
    assert step["reset"] is not None and step["out"] == (None, None)
    for name, m in mask.items():  # one SGD step of each model: the dense one's pruned entries stay zero
        moved = step["dense"][name] != before[0][name]
        assert (step["dense"][name][~m] == 0).all() and moved[m].any() and not moved[~m].any()
    assert not step["small"]["0.weight"].equal(before[1]["0.weight"])
    for now, then in zip((dense.state_dict(), small.state_dict()), before):  # put back as they came
        assert all(now[k].equal(v) for k, v in then.items())


def test_the_step_timings_restart_from_the_same_weights_and_fresh_optimizers(monkeypatch):
    dense, mask, small = _pair()
    start = copy.deepcopy(small.state_dict())
    made: list[list[nn.Parameter]] = []

    def make(ps):
        made.append(ps)
        return torch.optim.SGD(ps, lr=0.5, momentum=0.9)

    def fake(slow, fast, budget_s, device, reset=None):
        if reset is None:
            return 1.0
        for _ in range(2):
            reset()
            assert all(v.equal(start[k]) for k, v in small.state_dict().items())
            fast()
            fast()
        return 1.0

    monkeypatch.setattr(cost, "paired_speedup", fake)
    x, y = torch.randn(4, 6), torch.randint(3, (4,))
    measure_cost(dense, mask, small, x[:1], x, lambda o: F.cross_entropy(o, y), make, budget_s=0.3)
    assert len(made) >= 2 * 3 and [len(ps) for ps in made[:2]] == [4, 4]
    assert made[0][0] is dense[0].weight and made[1][0] is small[0].weight


def test_by_default_a_sample_lasts_20_ms_and_at_least_5_pairs_are_timed(clock):
    slow, fast = clock.work("slow", 0.0049), clock.work("fast", 0.00245)  # 4.08 and 8.16 calls a sample
    assert paired_speedup(slow, fast, 0.0, CPU) == pytest.approx(2.0)
    assert clock.log.count("slow") == 2 + 5 * 4 and clock.log.count("fast") == 2 + 5 * 8


def test_count_macs_is_an_int_and_prints_nothing(capsys):
    macs = count_macs(nn.Linear(4, 3), torch.randn(1, 4))
    assert macs == 12 and type(macs) is int
    assert capsys.readouterr().out == ""
