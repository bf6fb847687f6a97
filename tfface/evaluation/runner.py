"""The model under evaluation: any `tfface.runtimes.Runner` (Keras preset, SavedModel, TFLite, ONNX)."""

from __future__ import annotations

from tfface.errors import TffaceError
from tfface.runtimes import Runner, load_runner


def as_runner(model: Runner | str) -> Runner:
    """A runner, or a spec `load_runner` opens (preset name/folder, SavedModel, .tflite, .onnx)."""
    return load_runner(model) if isinstance(model, str) else model


def require_output(runner: Runner, name: str) -> None:
    """Fail early, naming the model, when it lacks an output (e.g. no embedding head yet)."""
    if name not in runner.outputs:
        raise TffaceError(f"this model has no {name} output ({runner.name} gives {', '.join(runner.outputs)}); "
                          f"evaluate a model with {'an' if name[0] in 'aeiou' else 'a'} {name} head")
