"""What finding a ticket cost (lth_core/ticket_cost.py), by exact sums from hand-made rows: the dense run's own
training, nothing for masks drawn at init, the dense steps to the rewind point, every level trained before a
"final" source, and a "captured" source's training up to its declared step; unknown parts stay unknown."""

from __future__ import annotations

import math

from lth_core.schedules import Schedule, Source
from lth_core.ticket_cost import _num, _per_step, discovery


class Sources(Schedule):
    """A schedule given as level -> Source (the rule under test reads only `source`)."""

    def __init__(self, sources: dict[int, Source]) -> None:
        self.sources = sources

    def source(self, level: int) -> Source:
        return self.sources[level]


ITERATIVE = Sources({1: Source("final", 0, 0), 2: Source("final", 1, 1), 3: Source("final", 2, 2)})
ROWS = {
    0: {"steps": 100, "train_flops": 1000.0, "start_step": 0},
    1: {"steps": 80, "train_flops": 400.0, "start_step": 0},
}


def test_the_dense_rows_cost_is_its_own_training():
    assert discovery(0, ITERATIVE, ROWS.get, 5) == (100.0, 1000.0)
    assert [type(v) for v in discovery(0, ITERATIVE, ROWS.get, 5)] == [float, float]
    assert discovery(0, ITERATIVE, {}.get, 5) == (None, None)
    assert discovery(0, ITERATIVE, {0: {"steps": 100, "train_flops": math.nan}}.get, 5) == (100.0, None)
    assert discovery(0, ITERATIVE, {0: {"steps": 100}}.get, 5) == (100.0, None)


def test_a_mask_drawn_from_the_initial_weights_costs_nothing():
    assert discovery(3, Sources({3: Source("initial", 0, 0)}), {}.get, 5) == (0.0, 0.0)


def test_a_rewind_source_costs_the_dense_steps_to_the_rewind_point():
    at_init = Sources({2: Source("rewind", 0, 0)})
    assert discovery(2, at_init, ROWS.get, 7) == (7.0, 70.0)
    assert discovery(2, at_init, {0: {"steps": 100}}.get, 7) == (7.0, None)  # FLOPs not counted
    assert discovery(2, at_init, {0: {"steps": 0, "train_flops": 5.0}}.get, 7) == (7.0, None)  # no steps
    assert discovery(2, at_init, {}.get, 7) == (7.0, None)


def test_a_final_source_costs_every_level_trained_before_it():
    assert discovery(1, ITERATIVE, ROWS.get, 0) == (100.0, 1000.0)
    assert discovery(2, ITERATIVE, ROWS.get, 0) == (180.0, 1400.0)
    assert discovery(3, ITERATIVE, ROWS.get, 0) == (None, None)  # level 2's row is missing
    no_flops = {0: ROWS[0], 1: {"steps": 80}}
    assert discovery(2, ITERATIVE, no_flops.get, 0) == (180.0, None)
    one_shot = Sources({4: Source("final", 0, 0)})
    assert discovery(4, one_shot, ROWS.get, 0) == (100.0, 1000.0)
    nan_steps = {0: {"steps": math.nan, "train_flops": 1.0}, 1: ROWS[1]}
    assert discovery(2, ITERATIVE, nan_steps.get, 0) == (None, 401.0)


def test_a_captured_source_costs_its_training_up_to_the_declared_step():
    eb = Sources({1: Source("captured", 0, 0), 2: Source("captured", 1, 1)})
    assert discovery(1, eb, ROWS.get, 0, eb_step=30) == (30.0, 300.0)
    assert discovery(1, eb, ROWS.get, 0) == (100.0, 1000.0)  # never declared: its whole training
    late = {0: {"steps": 90, "train_flops": 900.0, "start_step": 10}}
    assert discovery(1, eb, late.get, 0, eb_step=40) == (30.0, 300.0)  # from its own start step
    assert discovery(1, eb, {0: {"steps": 90, "start_step": 10}}.get, 0, eb_step=40) == (30.0, None)
    rows = {0: ROWS[0], 1: {"steps": 50, "train_flops": 500.0, "start_step": 5, "eb_step": 25}}
    # level 1's own cost is read at ITS declared step (25): 25 dense steps; then level 1's 45 - 5 = 40 steps
    assert discovery(2, eb, rows.get, 0, eb_step=45) == (65.0, 650.0)
    rows[1] = {**rows[1], "eb_step": math.nan}  # level 1 never declared: the dense run's whole training
    assert discovery(2, eb, rows.get, 0, eb_step=45) == (140.0, 1400.0)
    assert discovery(2, eb, {0: ROWS[0]}.get, 0, eb_step=45) == (None, None)


def test_numbers_and_per_step_flops():
    assert _num(None) is None and _num(math.nan) is None and _num(3) == 3.0 and type(_num(3)) is float
    assert _num(2.5) == 2.5 and _num("4") == 4.0
    assert _per_step(None) is None and _per_step({"steps": 4}) is None and _per_step({"train_flops": 8.0}) is None
    assert _per_step({"steps": 0, "train_flops": 8.0}) is None and _per_step({"steps": 4, "train_flops": 8.0}) == 2.0
    assert _per_step({"steps": math.nan, "train_flops": 8.0}) is None


def test_a_level_pruned_from_a_rewound_level_adds_the_rewind_steps_below_it():
    mixed = Sources({1: Source("rewind", 0, 0), 2: Source("final", 1, 1)})
    assert discovery(2, mixed, ROWS.get, 7) == (87.0, 470.0)  # 7 dense steps (70 FLOPs), then level 1's training
