"""fairseq checkpoints under torch >= 2.6, whose `torch.load` defaults to `weights_only=True`.

fairseq pickles an `argparse.Namespace` into its checkpoints (the legacy `args`), which the
weights-only unpickler refuses. Rather than turn safety off for every load in the process
(`TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`), `fairseq_checkpoint_globals()` allow-lists exactly that one
class, only for the duration of a `with` block: loads of files we did not write stay weights-only,
and a checkpoint carrying any other object is still refused. Our own saved state is plain tensors
and never needs this.
"""

from __future__ import annotations

import argparse
import contextlib
from typing import Any, Iterator

import torch

FAIRSEQ_CHECKPOINT_GLOBALS = [argparse.Namespace]


@contextlib.contextmanager
def fairseq_checkpoint_globals() -> Iterator[None]:
    safe_globals = getattr(torch.serialization, "safe_globals", None)
    if safe_globals is None:  # torch < 2.5 loads with weights_only=False by default: nothing to allow
        yield
        return
    with safe_globals(FAIRSEQ_CHECKPOINT_GLOBALS):
        yield


def load_fairseq_checkpoint(path: str) -> dict[str, Any]:
    """fairseq's own loader (upgrades old formats), weights-only with the one allowed class."""
    from fairseq import checkpoint_utils

    with fairseq_checkpoint_globals():
        return checkpoint_utils.load_checkpoint_to_cpu(str(path))


def trainer_load_checkpoint(trainer, path: str) -> dict[str, Any] | None:
    """`fairseq.trainer.Trainer.load_checkpoint` (model, optimizer, schedule), weights-only as above.

    The trainer rebuilds its optimizer here; a MaskHold's gradient hooks live on the Parameters and
    so survive, but the loaded weights came from disk: callers `reapply()` their hold afterwards.
    """
    with fairseq_checkpoint_globals():
        return trainer.load_checkpoint(str(path))
