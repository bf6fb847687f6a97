"""Whitespace-separated label tables (CelebA's lists, LFW's pairs) read line by line.

A malformed line is never fatal: it is skipped and reported as `file:line: reason`, into the caller's
`problems` list when one is given, else as one warning per file with the count and the first case.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from tfface.errors import DataFileError

T = TypeVar("T")


def open_table(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: file not found")
    return path


def parse_lines(path: Path, parse: Callable[[list[str]], T], problems: list[str] | None,
                skip: int = 0) -> Iterator[tuple[int, T]]:
    """(line number, parsed row) for each good line after the first `skip`; bad ones are reported."""
    bad: list[str] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if number <= skip or not fields:
                continue
            try:
                yield number, parse(fields)
            except (ValueError, IndexError) as e:
                bad.append(f"{path}:{number}: {e}")
    report(bad, problems)


def report(bad: list[str], problems: list[str] | None) -> None:
    if problems is not None:
        problems.extend(bad)
    elif bad:
        warnings.warn(f"skipped {len(bad)} malformed line(s), e.g. {bad[0]}", stacklevel=3)
