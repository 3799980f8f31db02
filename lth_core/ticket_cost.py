"""What finding a ticket cost: the training steps (and FLOPs, where the adapter counts them) spent before its
mask existed, cumulative over levels, the dense run included. The same rule for every schedule, read off the
schedule's `source`:

- "final" of level l: everything spent to reach level l's trained weights (l's own discovery plus its training);
- "captured" during level l: l's discovery plus l's training up to the point this level was declared;
- "rewind": the dense steps to the rewind point; "initial": nothing.
The dense row's own cost is its training. Controls cost what their ticket did (they reuse its mask or counts).
"""

from __future__ import annotations

import math
from typing import Any, Callable

from lth_core.schedules import Schedule

Row = Callable[[int], dict[str, Any] | None]  # level -> the row of that level's dense run or ticket (this trial)


def _num(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def discovery(
    level: int, schedule: Schedule, row: Row, rewind: int, eb_step: float | None = None
) -> tuple[float | None, float | None]:
    """(discovery_steps, discovery_flops) of level `level`'s ticket, whose mask was declared at `eb_step` of
    its source training (captured sources; None = at its end); None where a part is unknown (a missing row,
    FLOPs the adapter does not count). `row(l)` reads levels up to `level`'s source (level 0: the dense run)."""
    if level == 0:
        r = row(0)
        return (None, None) if r is None else (_num(r.get("steps")), _num(r.get("train_flops")))
    src = schedule.source(level)
    if src.weights == "initial":
        return 0.0, 0.0
    if src.weights == "rewind":
        dense = row(0)
        per_step = _per_step(dense)
        return float(rewind), None if per_step is None else per_step * rewind
    s = row(src.level)
    if s is None:
        return None, None
    base = (0.0, 0.0) if src.level == 0 else discovery(src.level, schedule, row, rewind, _num(s.get("eb_step")))
    if src.weights == "final":
        trained = _num(s.get("steps")), _num(s.get("train_flops"))
    else:  # captured: up to the step this level was declared at (the training's end where it never was)
        at = eb_step
        stop = int(s["start_step"]) + int(s["steps"])
        steps = (at if at is not None else stop) - int(s["start_step"])
        per_step = _per_step(s)
        trained = float(steps), None if per_step is None else per_step * steps
    steps_sum = None if base[0] is None or trained[0] is None else base[0] + trained[0]
    flops_sum = None if base[1] is None or trained[1] is None else base[1] + trained[1]
    return steps_sum, flops_sum


def _per_step(r: dict[str, Any] | None) -> float | None:
    if r is None:
        return None
    flops, steps = _num(r.get("train_flops")), _num(r.get("steps"))
    return None if flops is None or not steps else flops / steps
