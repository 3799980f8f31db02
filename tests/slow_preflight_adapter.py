"""The toy domain with a preflight that takes its time (a marker file says when it began), for the kill -9 test."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from toy_adapter import ToyAdapter, ToyConfig

from lth_core.config import opt


@dataclass
class SlowConfig(ToyConfig):
    marker: str = opt("", "file written when validation starts", identity=False)
    pause: float = opt(0.0, "seconds validation sleeps after writing the marker", identity=False)

    def validate(self) -> None:
        if self.marker:
            Path(self.marker).write_text("validating\n")
        time.sleep(self.pause)
        super().validate()


class SlowAdapter(ToyAdapter):
    Config = SlowConfig
    presets = ToyAdapter.presets
