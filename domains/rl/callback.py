"""The SB3 callback that turns `learn()` into a lottery-ticket training: evaluation points, rewind captures,
the target-network mirror of the mask, and divergence detection — without touching SB3's own loop."""
from __future__ import annotations

from typing import Callable

import torch
from stable_baselines3.common.callbacks import BaseCallback
from tqdm.auto import tqdm

from lth_core.errors import Diverged
from lth_core.hold import MaskHold


def state_copy(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def check_finite(module: torch.nn.Module, step: int) -> None:
    for name, p in module.named_parameters():
        if not torch.isfinite(p).all():
            raise Diverged(f"non-finite weights in {name} at env step {step}")


class TicketCallback(BaseCallback):
    """Called by SB3 after every vectorised env step (`num_timesteps` grows by n_envs each time).

    - at each multiple of `eval_every` env steps: `evaluate(step)`;
    - at each step in `capture_steps`: a CPU copy of the policy's state dict (the first env step count
      at or past the asked step; the copy is stored under the asked step, as the engine expects);
    - after each rollout, for algorithms with a target network: `hold.reapply()`, so weights copied into
      the target network outside the optimizer hold the mask (Polyak updates of a zero by a zero keep it
      zero anyway; this makes it independent of how the copy is done).
    """

    def __init__(self, start_step: int, budget: int, eval_every: int, capture_steps: list[int],
                 evaluate: Callable[[int], None], hold: MaskHold | None, target_network: bool,
                 progress: bool = False) -> None:
        super().__init__(verbose=0)
        self.eval_every = max(1, eval_every)
        self.next_eval = (start_step // self.eval_every + 1) * self.eval_every
        self.pending = sorted(k for k in capture_steps if k > start_step)
        self.captured: dict[int, dict[str, torch.Tensor]] = {}
        self.evaluate = evaluate
        self.hold = hold
        self.target_network = target_network
        self.last_eval = -1
        self.bar = tqdm(total=budget, initial=start_step, unit="step", desc="env steps", leave=False,
                        dynamic_ncols=True) if progress else None
        self._shown = start_step

    def _on_step(self) -> bool:
        t = self.num_timesteps
        while self.pending and t >= self.pending[0]:
            self.captured[self.pending.pop(0)] = state_copy(self.model.policy)
        if t >= self.next_eval:
            check_finite(self.model.policy, t)
            self.evaluate(t)
            self.last_eval = t
            self.next_eval = (t // self.eval_every + 1) * self.eval_every
        if self.bar is not None and t - self._shown >= 1000:
            self.bar.update(t - self._shown)
            self._shown = t
        return True

    def _on_rollout_end(self) -> None:
        if self.target_network and self.hold is not None:
            self.hold.reapply()

    def _on_training_end(self) -> None:
        if self.bar is not None:
            self.bar.close()
