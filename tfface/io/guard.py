"""One-line errors for loaders of user-supplied model files (presets, exports, metadata).

A truncated `config.json`, a `model.weights.h5` of another model, a garbage SavedModel or a malformed
`metadata.json` raise whatever the JSON, h5py, Keras or TensorFlow reader raises (KeyError, OSError,
ValueError, tf.errors.*); `model_file_errors` turns each into a TffaceError naming the file or folder.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from typing import Any, TypeVar

from tfface.errors import TffaceError

F = TypeVar("F", bound=Callable[..., Any])


def describe(error: BaseException) -> str:
    """'KeyError: missing key ...' style: the exception's kind and the first line of its message."""
    if isinstance(error, KeyError):
        return f"missing key {error.args[0]!r}" if error.args else "missing key"
    if isinstance(error, json.JSONDecodeError):
        return f"{error.doc and 'malformed JSON' or 'empty JSON'} ({error.msg}, line {error.lineno})"
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:300] if lines else ''}".rstrip(": ")


def model_file_errors(loader: F) -> F:
    """Wrap a loader whose first argument names the model file/folder/preset."""

    @functools.wraps(loader)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return loader(*args, **kwargs)
        except TffaceError:
            raise
        except Exception as e:  # noqa: BLE001 - any reader's failure on a user's file is that file's one line
            spec = args[0] if args else next(iter(kwargs.values()), "?")
            name = spec if isinstance(spec, str | os.PathLike) else getattr(spec, "name", type(spec).__name__)
            raise TffaceError(f"{os.fspath(name) if isinstance(name, os.PathLike) else name}: cannot load this "
                              f"model ({describe(e)})") from None

    return wrapped  # type: ignore[return-value]
