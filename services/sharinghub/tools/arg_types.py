"""Command-line number types that refuse out-of-range values before anything starts.

argparse turns the `ArgumentTypeError` into a usage error naming the option, so
`sharinghub bench --requests 0` stops at once with a clear message instead of starting a
broker and services for a run that cannot measure anything.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def at_least(minimum: int) -> Callable[[str], int]:
    """An integer ≥ `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be ≥ {minimum}, got {value}")
        return value

    parse.__name__ = "integer"  # argparse's "invalid <name> value" fallback
    return parse


def seconds(*, zero_ok: bool = False) -> Callable[[str], float]:
    """A number of seconds: > 0 (or ≥ 0 with `zero_ok`)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"not a finite number of seconds: {text!r}")
        if value < 0 or (value == 0 and not zero_ok):
            bound = "≥ 0" if zero_ok else "> 0"
            raise argparse.ArgumentTypeError(f"must be {bound} seconds, got {text}")
        return value

    parse.__name__ = "seconds"
    return parse


def tcp_port(text: str) -> int:
    """A TCP port number, 1–65535."""
    value = at_least(1)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a TCP port is 1–65535, got {value}")
    return value
