"""Whitespace-separated label tables (CelebA's lists) read line by line.

A malformed line is never fatal: it is skipped and reported as `file:line: reason`, into the caller's
`problems` list when one is given, else as one warning per file with the count and the first case;
`strict=True` raises DataFileError at the first bad line instead.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path

from tfface.errors import DataFileError


class TableLines:
    """Numbered, stripped, non-empty lines of a text file; `bad` records (or raises) a problem."""

    def __init__(self, path: str | os.PathLike, problems: list[str] | None, strict: bool = False) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise DataFileError(f"{self.path}: file not found")
        self.caller_problems = problems
        self.problems: list[str] = []
        self.strict = strict

    def __iter__(self) -> Iterator[tuple[int, str]]:
        with open(self.path, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                line = line.strip()
                if line:
                    yield number, line
        self._report()

    def bad(self, number: int, message: str) -> None:
        text = f"{self.path}:{number}: {message}"
        if self.strict:
            raise DataFileError(text)
        self.problems.append(text)

    def _report(self) -> None:
        if self.caller_problems is not None:
            self.caller_problems.extend(self.problems)
        elif self.problems:
            warnings.warn(f"skipped {len(self.problems)} malformed line(s), e.g. {self.problems[0]}",
                          stacklevel=4)
