"""Argument types for the commands: numbers checked for range and finiteness where argparse parses them,
so a bad value is a usage line (exit 2) before anything runs, never a traceback or a silent NaN."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def bounded(kind: type, low: float | None = None, high: float | None = None, *,
            above: float | None = None) -> Callable[[str], int | float]:
    """An argparse `type`: `kind` (int or float), finite, within [low, high] and, if given, > `above`."""
    parts = ([f">= {low:g}"] if low is not None else []) + ([f"> {above:g}"] if above is not None else []) + \
        ([f"<= {high:g}"] if high is not None else [])
    wanted = f"{'an integer' if kind is int else 'a finite number'}{' ' + ' and '.join(parts) if parts else ''}"

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}") from None
        if (not math.isfinite(value) or (low is not None and value < low) or (high is not None and value > high)
                or (above is not None and value <= above)):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


PORT = bounded(int, 0, 65535)


def host_port(text: str) -> str:
    """'host:port' with a port in 1-65535 (for addresses such as a tf.data service dispatcher)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"must be HOST:PORT with a port in 1-65535, got {text!r}")
    return text
