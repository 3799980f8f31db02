"""The built-in schedules (lth_core/schedules.py, lth_core/early_bird_schedule.py) exactly: each level's source,
its rates, which levels' trained weights are kept and which are watched for early-bird masks, and the early-bird
schedule's parameter checks as the user reads them."""

from __future__ import annotations

import pytest

import lth_core.config  # noqa: F401  (registers every built-in component)
from lth_core.early_bird_schedule import EarlyBird
from lth_core.errors import UsageError
from lth_core.schedules import SCHEDULES, SOURCES, Schedule, Source

BASE = {"a": 0.5, "b": 0.25}


def test_each_builtin_names_its_source_exactly():
    for level in (1, 2, 5):
        assert SCHEDULES.get("iterative").source(level) == Source("final", level - 1, level - 1)
        assert SCHEDULES.get("one_shot").source(level) == Source("final", 0, 0)
        assert SCHEDULES.get("at_init").source(level) == Source("rewind", 0, 0)
        assert SCHEDULES.get("early_bird").source(level) == Source("captured", 0, 0)
    assert Source("captured") == Source("captured", 0, 0)  # defaults: level 0, the full mask
    assert SOURCES == ("final", "initial", "rewind", "captured")  # what the runner resolves (source_weights)


@pytest.mark.parametrize("name", ["one_shot", "at_init", "early_bird"])
def test_straight_to_a_levels_density_rates_are_exact(name):
    s = SCHEDULES.get(name)
    assert s.rates(1, BASE) == {"a": 0.5, "b": 0.25}
    assert s.rates(2, BASE) == {"a": 0.75, "b": 1 - 0.75**2}
    assert s.rates(3, BASE) == {"a": 0.875, "b": 1 - 0.75**3}
    assert s.rates(0, BASE) == {"a": 0.0, "b": 0.0}


def test_iterative_rates_are_the_base_as_a_new_dict():
    base = dict(BASE)
    got = SCHEDULES.get("iterative").rates(4, base)
    assert got == BASE and got is not base
    got["a"] = 0.9
    assert base == BASE


@pytest.mark.parametrize("levels", [1, 3])
def test_kept_final_weights_and_watched_levels_per_schedule(levels):
    kept = {n: [lv for lv in range(levels + 1) if SCHEDULES.get(n).keeps_final(lv, levels)] for n in SCHEDULES}
    assert kept["iterative"] == list(range(levels))  # every level but the last is pruned from
    assert kept["one_shot"] == [0] and kept["at_init"] == [] and kept["early_bird"] == []
    watched = {n: [SCHEDULES.get(n).watched(lv, levels) for lv in range(levels + 1)] for n in SCHEDULES}
    assert watched["early_bird"] == [list(range(1, levels + 1))] + [[]] * levels  # the dense training only
    assert all(w == [[]] * (levels + 1) for n, w in watched.items() if n != "early_bird")


def test_watched_needs_the_captured_source_of_that_level_on_the_full_mask():
    class Mixed(Schedule):
        def source(self, level: int) -> Source:
            return {1: Source("captured", 0, 0), 2: Source("captured", 1, 0), 3: Source("captured", 0, 1)}.get(
                level, Source("final", level - 1, level - 1)
            )

    assert Mixed().watched(0, 4) == [1] and Mixed().watched(1, 4) == [2] and Mixed().watched(2, 4) == []
    assert [lv for lv in range(5) if Mixed().keeps_final(lv, 4)] == [3]


def test_a_schedule_must_say_its_source_and_rates():
    with pytest.raises(NotImplementedError):
        Schedule().source(1)
    with pytest.raises(NotImplementedError):
        Schedule().rates(1, BASE)


def test_early_bird_defaults_and_bounds_as_the_user_reads_them():
    assert (EarlyBird().window, EarlyBird().epsilon) == (5, 0.1)
    EarlyBird(window=2, epsilon=0.0).validate()
    EarlyBird(window=2, epsilon=0.999).validate()
    with pytest.raises(UsageError, match=r"^--early-bird-window 1 must be >= 2$"):
        EarlyBird(window=1).validate()
    with pytest.raises(UsageError, match=r"^--early-bird-epsilon 1\.0 must be in \[0, 1\)$"):
        EarlyBird(epsilon=1.0).validate()
    with pytest.raises(UsageError, match=r"^--early-bird-epsilon -0\.1 must be in \[0, 1\)$"):
        EarlyBird(epsilon=-0.1).validate()


def test_early_bird_flags_help_is_what_the_user_reads():
    from dataclasses import fields

    helps = {f.name: f.metadata.get("help") for f in fields(EarlyBird)}
    assert helps == {
        "window": "masks in the window: the latest is compared with the window - 1 before it",
        "epsilon": "largest normalized Hamming distance within the window at the declared point",
    }
