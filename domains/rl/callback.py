"""The SB3 callback that runs `learn()` under the engine's protocol: it calls `JobProtocol` at the first env
step at or past each evaluation or capture point, re-zeroes the target network's mask, and detects divergence,
without touching SB3's own loop."""

from __future__ import annotations

import torch
from stable_baselines3.common.callbacks import BaseCallback
from tqdm.auto import tqdm

from lth_core.errors import Diverged
from lth_core.mask_hold import MaskHold
from lth_core.protocol import JobProtocol


def check_finite(module: torch.nn.Module, step: int) -> None:
    for name, p in module.named_parameters():
        if not torch.isfinite(p).all():
            raise Diverged(f"non-finite weights in {name} at env step {step}")


class TicketCallback(BaseCallback):
    """Called by SB3 after every vectorised env step (`num_timesteps` grows by n_envs each time).

    - when the protocol has a point due before the budget: the weights are checked finite, then `protocol.reached(step)`
      (evaluation, early stopping, rewind captures: all the protocol's); False (SB3: stop) once it is `stopped`;
    - after each rollout, for algorithms with a target network: `hold.reapply()`, so weights copied into
      the target network outside the optimizer hold the mask (Polyak updates of a zero by a zero keep it
      zero anyway; this makes it independent of how the copy is done).
    """

    def __init__(
        self, protocol: JobProtocol, hold: MaskHold | None, target_network: bool, progress: bool = False
    ) -> None:
        super().__init__(verbose=0)
        self.protocol, self.hold, self.target_network = protocol, hold, target_network
        job = protocol.job
        self.bar = (
            tqdm(
                total=job.budget, initial=job.start_step, unit="step", desc="env steps", leave=False, dynamic_ncols=True
            )
            if progress
            else None
        )
        self._shown = job.start_step

    def _on_step(self) -> bool:
        t = self.num_timesteps
        # the end of training is evaluated by `finish`, after SB3's last update (which follows the last step)
        if t < self.protocol.job.budget and self.protocol.due(t):
            check_finite(self.model.policy, t)
            self.protocol.reached(t)
            if self.protocol.stopped:  # early bird: the watched masks are declared; `learn()` ends here
                return False
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
