"""Opening .tflite files with LiteRT (ai_edge_litert), with errors that name the file (tfface and the edge app)."""

from __future__ import annotations

from pathlib import Path

from ai_edge_litert.interpreter import Interpreter


class ModelFileError(ValueError):
    """A model or metadata file is missing or unusable; the message names it."""


def open_interpreter(path: str | Path, num_threads: int | None = None) -> Interpreter:
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        it = Interpreter(model_path=str(path), num_threads=num_threads)
        it.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise ModelFileError(f"{path}: not a valid TFLite model ({e})") from None
    return it
