"""Load pickled data files without executing code from them.

Only plain containers and numpy arrays may be rebuilt; any other global named in the pickle stream
is refused, so a crafted file cannot run code (`pickle.load` would call whatever the file names).
"""

from __future__ import annotations

import io
import os
import pickle
from typing import Any

from tfface.errors import DataFileError

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),  # protocol-5 pickles (Python 3.14 default)
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("collections", "OrderedDict"),
    ("builtins", "dict"),
    ("builtins", "list"),
    ("builtins", "tuple"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("_codecs", "encode"),  # numpy arrays pickled by Python 2 store their bytes through this
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, path: str) -> None:
        super().__init__(file, encoding="latin1")  # latin1: Python-2 pickles of numpy arrays
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise DataFileError(
                f"{self._path}: refusing to load '{module}.{name}' from a pickle "
                "(only numpy arrays and plain containers are allowed)"
            )
        return super().find_class(module, name)


def safe_load_pickle(path: str | os.PathLike) -> Any:
    """Unpickle `path`, allowing only numpy arrays and plain Python containers."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataFileError(f"{path}: file not found")
    with open(path, "rb") as f:
        try:
            return _RestrictedUnpickler(f, path).load()
        except DataFileError:
            raise
        except Exception as e:  # truncated or not a pickle at all
            raise DataFileError(f"{path}: not a readable pickle ({type(e).__name__}: {e})") from e
