"""Silence native (C++) log lines that TensorFlow and MediaPipe write straight to file descriptor 2."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Point fd 2 at /dev/null for the block; Python-level errors raised inside still propagate."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def quiet_tensorflow() -> None:
    """Import TensorFlow without its start-up noise (CUDA `cuInit` errors on GPU-less hosts, oneDNN
    notices, absl warnings); for the commands that need it (train, export, edit, convert, data, Keras)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GLOG_minloglevel", "2")
    with native_stderr_silenced():
        import tensorflow as tf
    import logging

    tf.get_logger().setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # absl comes with TensorFlow; guard anyway
        pass
