"""Command-line plumbing shared by the benchmarks entry points: one-line errors, exit code 2."""

from __future__ import annotations

import sys
from typing import NoReturn

import simple_parsing


class OneLineParser(simple_parsing.ArgumentParser):
    """A simple-parsing parser whose errors are one line on stderr and exit code 2."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("add_option_string_dash_variants", simple_parsing.DashVariant.DASH)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        fail(message)


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)
