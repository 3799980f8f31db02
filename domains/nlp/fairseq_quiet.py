"""Keep fairseq's import-time side effects out of the host program.

Several fairseq modules call `logging.basicConfig(level=DEBUG)` on the root logger when imported
(tasks/text_to_speech.py, models/wav2vec/...), which would turn on debug logging for every library in
the process, and its imports emit deprecation warnings from hydra and torch. `import_fairseq()`
imports fairseq's registries once with the root logger's handlers and level restored afterwards;
`fairseq_warnings_quiet()` silences the deprecation chatter of fairseq, hydra and omegaconf only.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import warnings
from typing import Iterator

NOISY = r"(fairseq|fairseq_cli|hydra|omegaconf|torch)(\.|$)"


@contextlib.contextmanager
def root_logging_kept() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    for name in ("fairseq", "fairseq_cli", "hydra"):
        logging.getLogger(name).setLevel(logging.WARNING)  # fairseq logs every update at INFO
    try:
        yield
    finally:
        for h in list(root.handlers):
            if h not in handlers:
                root.removeHandler(h)
        root.setLevel(level)


@contextlib.contextmanager
def fairseq_warnings_quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        for category in (FutureWarning, DeprecationWarning, UserWarning):
            warnings.filterwarnings("ignore", category=category, module=NOISY)
        # hydra attributes its deprecation notices to the caller's module: match them by text
        warnings.filterwarnings("ignore", message=r"(?s).*(hydra|ConfigStore|strict flag)")
        warnings.filterwarnings("ignore", message=r"(?s).*(pin_memory|key_padding_mask)")
        yield


def import_fairseq(*modules: str) -> None:
    """Import fairseq modules (default: its model, task and trainer registries) without side effects."""
    with root_logging_kept(), fairseq_warnings_quiet():
        for name in modules or ("fairseq.models", "fairseq.tasks", "fairseq.trainer", "fairseq.options"):
            importlib.import_module(name)
