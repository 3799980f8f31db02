"""Early-bird detection (lth_core/early_bird.py) on hand-made mask sequences: the exact normalized Hamming
distances the watch keeps, the exact step it declares (the first allowed point whose window is within epsilon,
epsilon included), what it hands the strategy, and the weights it keeps per target."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import pytest
import torch

from lth_core.early_bird import EarlyBirdSpec, EarlyBirdWatch, Target, declared_at, mask_distance
from lth_core.masks import Mask
from lth_core.strategies import STRATEGIES, PruneStep, Strategy

B = torch.tensor


def keep(*bits: int) -> torch.Tensor:
    return B([bool(b) for b in bits], dtype=torch.bool)


def test_mask_distance_counts_differing_entries_over_all_tensors_exactly():
    a = Mask({"x": keep(1, 1, 0, 0), "y": keep(1, 0)})
    assert mask_distance(a, Mask({"x": keep(1, 1, 0, 0), "y": keep(1, 0)})) == 0.0
    assert mask_distance(a, Mask({"x": keep(0, 1, 1, 0), "y": keep(1, 0)})) == 2 / 6
    assert mask_distance(a, Mask({"x": keep(0, 0, 1, 1), "y": keep(0, 1)})) == 1.0
    assert mask_distance(Mask({"x": keep(1)}), Mask({"x": keep(0)})) == 1.0  # one entry: not halved
    assert mask_distance(Mask({}), Mask({})) == 0.0  # no entries: no division by zero


def pairwise(fracs: list[list[Fraction]]) -> list[list[float]]:
    return [[float(f) for f in row] for row in fracs]


def test_declared_at_is_the_first_index_past_the_window_whose_window_is_within_epsilon():
    d = [  # a symmetric pairwise matrix of 5 points, zero diagonal
        [0.0, 0.5, 0.5, 0.5, 0.5],
        [0.5, 0.0, 0.2, 0.3, 0.3],
        [0.5, 0.2, 0.0, 0.1, 0.1],
        [0.5, 0.3, 0.1, 0.0, 0.1],
        [0.5, 0.3, 0.1, 0.1, 0.0],
    ]
    steps = [0, 10, 20, 30, 40]
    assert declared_at(d, steps, 2, 0.2) == 20  # index 1 is 0.5 from index 0; index 2 is 0.2 from 1: <= counts
    assert declared_at(d, steps, 2, 0.19) == 30
    assert declared_at(d, steps, 3, 0.1) == 40  # index 3 is 0.3 from index 1; index 4 is 0.1 from 2 and 3
    assert declared_at(d, steps, 4, 0.2) is None  # index 4 is 0.3 from index 1
    assert declared_at(d, steps, 4, 0.3) == 40
    assert declared_at(d, steps, 2, 0.5) == 10  # not at index 0: the window needs window - 1 masks before it
    assert declared_at(d, steps, 5, 0.5) == 40
    assert declared_at(d, steps, 6, 1.0) is None  # more masks than points: never


def spec(targets, window: int, epsilon: float, strategy="magnitude_layerwise", mask=None, params=None):
    return EarlyBirdSpec(strategy, params or {}, ("w", "v"), frozenset(), tuple(targets), window, epsilon, mask)


def weights_of(w: torch.Tensor, v: torch.Tensor) -> dict[str, torch.Tensor]:
    """Weights whose top halves by magnitude are exactly `w` and `v` (magnitude pruning at 0.5 draws them back),
    and a buffer that is no prunable tensor."""
    return {"w": w.float() * 2.0 + 0.5, "v": v.float() * 2.0 + 0.5, "buf": B([7.0])}


# 12 entries (8 + 4: the packed bits end in padding); each mask moves 2 entries of one tensor, or none
SEQ = [
    (keep(1, 1, 1, 1, 0, 0, 0, 0), keep(1, 1, 0, 0)),
    (keep(1, 1, 1, 0, 1, 0, 0, 0), keep(1, 1, 0, 0)),
    (keep(1, 1, 1, 0, 1, 0, 0, 0), keep(1, 0, 1, 0)),
    (keep(1, 1, 1, 0, 1, 0, 0, 0), keep(1, 0, 1, 0)),
    (keep(1, 1, 1, 0, 1, 0, 0, 0), keep(1, 0, 1, 0)),
    (keep(1, 1, 1, 0, 1, 0, 0, 0), keep(1, 0, 1, 0)),
]
F = Fraction
EXACT = [  # differing entries / 12
    [F(0), F(2, 12), F(4, 12), F(4, 12), F(4, 12), F(4, 12)],
    [F(2, 12), F(0), F(2, 12), F(2, 12), F(2, 12), F(2, 12)],
    [F(4, 12), F(2, 12), F(0), F(0), F(0), F(0)],
    [F(4, 12), F(2, 12), F(0), F(0), F(0), F(0)],
    [F(4, 12), F(2, 12), F(0), F(0), F(0), F(0)],
    [F(4, 12), F(2, 12), F(0), F(0), F(0), F(0)],
]


def watch_all(window: int, epsilon: float, may=None) -> tuple[EarlyBirdWatch, list[list[int]], list]:
    watch = EarlyBirdWatch(spec([Target(1, {"w": 0.5, "v": 0.5}, 0)], window, epsilon))
    news, ws = [], []
    for i, (w, v) in enumerate(SEQ):
        ws.append(weights_of(w, v))
        news.append(watch.observe(10 * i, ws[-1], may_declare=True if may is None else may[i]))
    return watch, news, ws


def test_the_watch_keeps_the_exact_pairwise_distances_as_plain_floats():
    watch, _, _ = watch_all(window=10, epsilon=0.0)  # never declared: every point is kept
    assert watch.result.steps == [0, 10, 20, 30, 40, 50]
    dist = watch.result.distances[1]
    assert dist == pairwise(EXACT)
    assert all(type(d) is float for row in dist for d in row)
    assert watch.result.declared == {1: None} and not watch.done


@pytest.mark.parametrize(
    "window, epsilon, step",
    [
        (3, 0.0, 40),  # index 2 is 4/12 from index 0, index 3 is 2/12 from index 1; index 4 matches 2 and 3
        (2, 0.0, 30),  # index 2 is 2/12 from index 1; index 3 equals index 2
        (2, 2 / 12, 10),  # a distance equal to epsilon is within it
        (3, 2 / 12, 30),  # index 2 is 4/12 from index 0
        (2, 1 / 12, 30),
        (4, 2 / 12, 40),  # index 3 is 4/12 from index 0
        (5, 2 / 12, 50),  # index 4 is 4/12 from index 0, index 5 within 2/12 of indexes 1..4
        (6, 2 / 12, None),  # index 5 is 4/12 from index 0
        (6, 4 / 12, 50),  # the first point a window of 6 allows
        (7, 0.9, None),  # more masks than points
    ],
)
def test_the_declared_step_on_a_hand_made_sequence(window, epsilon, step):
    watch, news, ws = watch_all(window, epsilon)
    assert watch.result.declared == {1: step} and watch.done == (step is not None)
    at = [s for s, new in zip(range(0, 60, 10), news) if new]
    assert at == ([] if step is None else [step]) and all(new in ([], [1]) for new in news)  # declared once
    kept = ws[step // 10] if step is not None else ws[-1]  # the declared point's weights, else the latest's
    assert watch.result.weights[1] is kept
    assert watch.result.steps == [0, 10, 20, 30, 40, 50]  # it goes on watching after a declaration
    assert watch.result.distances[1] == pairwise(EXACT)
    assert declared_at(watch.result.distances[1], watch.result.steps, window, epsilon) == step


def test_a_point_before_the_captures_are_taken_is_not_declared_the_next_allowed_one_is():
    may = [True, False, False, True, True, True]  # window 2, epsilon 0: index 3 is the first allowed match
    watch, news, ws = watch_all(2, 0.0, may)
    assert watch.result.declared == {1: 30} and news == [[], [], [], [1], [], []]
    assert watch.result.weights[1] is ws[3]
    watch, news, ws = watch_all(2, 2 / 12, [False, False, True, True, True, True])
    assert watch.result.declared == {1: 20} and news == [[], [], [1], [], [], []]
    watch, news, ws = watch_all(2, 2 / 12, [False] * 6)
    assert watch.result.declared == {1: None} and watch.result.weights[1] is ws[-1] and news == [[]] * 6


@dataclass(frozen=True)
class Planned(Strategy):
    """Draws, per target (by its seed), the next mask of a given plan, and records every step it is handed."""

    def __call__(self, step: PruneStep) -> Mask:
        CALLS.append(step)
        n = sum(1 for c in CALLS if c.seed == step.seed) - 1
        w, v = PLANS[step.seed][n]
        return Mask({"w": w, "v": v})


CALLS: list[PruneStep] = []
STILL = (keep(1, 1, 0, 0, 0, 0, 0, 0), keep(1, 0, 0, 0))
MOVED = (keep(0, 1, 1, 0, 0, 0, 0, 0), keep(1, 0, 0, 0))
PLANS = {5: [MOVED, STILL, STILL, STILL], 9: [STILL, MOVED, STILL, MOVED]}


@pytest.fixture
def planned(monkeypatch):
    monkeypatch.setitem(STRATEGIES._items, "planned", Planned)
    CALLS.clear()
    yield
    CALLS.clear()


def test_each_target_is_declared_on_its_own_and_the_watch_is_done_once_all_are(planned):
    targets = [Target(1, {"w": 0.2, "v": 0.3}, 5), Target(2, {"w": 0.4, "v": 0.6}, 9)]
    watch = EarlyBirdWatch(spec(targets, 2, 0.0, strategy="planned"))
    assert not watch.done and watch.result.declared == {1: None, 2: None}
    ws = [weights_of(*STILL) for _ in range(4)]
    assert watch.observe(0, ws[0]) == [] and not watch.done
    assert watch.observe(3, ws[1]) == [] and not watch.done  # level 1: 2/12 moved; level 2 still
    assert watch.observe(6, ws[2]) == [1] and not watch.done  # level 2 moved back
    assert watch.result.declared == {1: 6, 2: None}
    assert watch.result.weights[1] is ws[2] and watch.result.weights[2] is ws[2]
    assert watch.observe(9, ws[3]) == [] and not watch.done
    assert watch.result.declared == {1: 6, 2: None}
    assert watch.result.weights[1] is ws[2] and watch.result.weights[2] is ws[3]
    d = 2 / 12
    assert watch.result.distances == {
        1: [[0.0, d, d, d], [d, 0.0, 0.0, 0.0], [d, 0.0, 0.0, 0.0], [d, 0.0, 0.0, 0.0]],
        2: [[0.0, d, 0.0, d], [d, 0.0, d, 0.0], [0.0, d, 0.0, d], [d, 0.0, d, 0.0]],
    }
    watch = EarlyBirdWatch(spec(targets[:1], 2, 0.0, strategy="planned"))
    CALLS.clear()
    for s in range(3):
        watch.observe(s, weights_of(*STILL))
    assert watch.done and watch.result.declared == {1: 2}


def test_the_strategy_is_handed_the_prunable_weights_the_full_state_the_rates_seed_and_initial(planned):
    initial = {"w": torch.zeros(8), "v": torch.zeros(4), "buf": B([0.0])}
    targets = [Target(1, {"w": 0.2, "v": 0.3}, 5), Target(2, {"w": 0.4, "v": 0.6}, 9)]
    s = EarlyBirdSpec("planned", {}, ("w", "v"), frozenset({"w"}), tuple(targets), 2, 0.0)
    watch = EarlyBirdWatch(s, initial)
    w = weights_of(*STILL)
    watch.observe(0, w)
    one, two = CALLS
    assert (one.seed, one.rates, two.seed, two.rates) == (5, targets[0].rates, 9, targets[1].rates)
    for c in CALLS:
        assert set(c.weights) == {"w", "v"} and all(c.weights[n] is w[n] for n in ("w", "v"))
        assert c.state is w and c.initial is initial and c.global_names == frozenset({"w"})
        assert c.mask.names() == ["w", "v"] and all(c.mask[n].dtype == torch.bool for n in ("w", "v"))
        assert all(bool(c.mask[n].all()) for n in ("w", "v"))  # no mask given: every entry of `names`
        assert c.rewind is None and c.score is None


def test_a_given_mask_is_what_the_strategy_prunes_further_as_booleans():
    base = {"w": keep(1, 1, 1, 1, 1, 1, 0, 0).float(), "v": keep(0, 1, 1, 1).float()}  # as state files hold them
    watch = EarlyBirdWatch(spec([Target(1, {"w": 0.5, "v": 0.5}, 0)], 2, 0.0, mask=base))
    assert all(watch.base[n].dtype == torch.bool for n in ("w", "v"))
    w = {"w": torch.arange(8.0) + 1, "v": torch.arange(4.0) + 1}
    (drawn,) = watch.masks(w).values()
    assert drawn["w"].tolist() == keep(0, 0, 0, 1, 1, 1, 0, 0).tolist()  # the 3 smallest of 6 kept removed
    assert drawn["v"].tolist() == keep(0, 0, 0, 1).tolist()  # round(1.5) = 2 of 3 removed (to even)


def test_an_empty_given_mask_counts_as_none():
    watch = EarlyBirdWatch(spec([Target(1, {"w": 0.5, "v": 0.5}, 0)], 2, 0.0, mask={}))
    (drawn,) = watch.masks(weights_of(*SEQ[0])).values()
    assert drawn["w"].tolist() == SEQ[0][0].tolist() and drawn["v"].tolist() == SEQ[0][1].tolist()


def test_the_default_window_and_epsilon_are_the_authors():
    s = EarlyBirdSpec("magnitude_layerwise", {}, ("w",), frozenset(), ())
    assert (s.window, s.epsilon, s.mask) == (5, 0.1, None)
    assert EarlyBirdWatch(s).done  # no targets: nothing to wait for


def test_one_entry_that_flips_is_at_distance_one(planned):
    PLANS[7] = [(keep(1), keep()), (keep(0), keep()), (keep(0), keep())]
    try:
        s = EarlyBirdSpec("planned", {}, ("w", "v"), frozenset(), (Target(1, {"w": 0.0, "v": 0.0}, 7),), 2, 0.5)
        watch = EarlyBirdWatch(s)
        for step in range(3):
            watch.observe(step, {"w": torch.ones(1), "v": torch.ones(0)})
        assert watch.result.distances[1] == [[0.0, 1.0, 1.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
        assert watch.result.declared == {1: 2}
    finally:
        del PLANS[7]
