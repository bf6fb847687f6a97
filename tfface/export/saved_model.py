"""SavedModel in the TF Serving layout: `<base>/<name>/<version>/` with one signature per task."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import tensorflow as tf

from tfface.export.graph import ServingModule
from tfface.runtimes import SAVED_MODEL_METADATA


def write_saved_model(module: ServingModule, folder: Path, metadata: dict[str, Any]) -> Path:
    """Write the SavedModel to `folder` (a TF Serving version folder) with the metadata in assets.extra,
    the place TF Serving leaves alone."""
    sigs = {name: fn.get_concrete_function() for name, fn in module.signatures().items()}
    tf.saved_model.save(module, str(folder), signatures=sigs)
    (folder / SAVED_MODEL_METADATA).parent.mkdir(parents=True, exist_ok=True)
    (folder / SAVED_MODEL_METADATA).write_text(json.dumps(metadata, indent=1))
    return folder


def describe_signatures(folder: str | Path) -> dict[str, dict[str, Any]]:
    """What `saved_model_cli show --all` shows: per signature, inputs and outputs -> (dtype, shape)."""
    loaded = tf.saved_model.load(str(folder))
    result = {}
    for name, fn in loaded.signatures.items():
        inputs = fn.structured_input_signature[1]
        result[name] = {
            "inputs": {k: (v.dtype.name, v.shape.as_list()) for k, v in inputs.items()},
            "outputs": {k: (v.dtype.name, v.shape.as_list()) for k, v in fn.structured_outputs.items()},
        }
    return result
