"""Atomic file writes: write beside the target, rename over it only when the write succeeded."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tfface.errors import DataFileError


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `path` (same suffix, so writers that go by it still work) to write into;
    it replaces `path` only when the block ends without error, and is removed when it fails, so a
    reader (or a parallel run into the same folder) never sees a partial file. OSError -> a one-line
    DataFileError naming the file."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would keep results from the user's group
    except OSError as e:
        raise DataFileError(f"{path}: cannot write ({e.strerror or e})") from None
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as e:
        raise DataFileError(f"{path}: cannot write ({e.strerror or e})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
