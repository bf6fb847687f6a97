"""`export_preset`: one preset (or a Keras model with a preset's pre/post-processing) -> every format.

Layout of the output folder (the SavedModel part is a TF Serving model base path):
    DIR/metadata.json                   the sidecar (also inside the SavedModel's assets.extra/)
    DIR/<name>/<version>/               SavedModel: serving_default, reconstruct[, attributes, embedding]
    DIR/<name>_{fp32,fp16,int8,int16x8}.tflite  TFLite, built-in ops only (int16x8: float32 input)
    DIR/<name>.onnx                     ONNX (opset 17)
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tfface.errors import TffaceError
from tfface.runtimes import METADATA_FILE

from tfface.export.formats import FORMATS, QUANTISED_FORMATS, TFLITE_KINDS, input_dtype


@dataclass
class ExportResult:
    folder: Path
    files: dict[str, Path]  # format -> path
    metadata: dict[str, Any]
    ops: dict[str, list[str]] = field(default_factory=dict)  # TFLite format -> op codes


def output_paths(folder: Path, name: str, version: int, formats: tuple[str, ...]) -> dict[str, Path]:
    paths = {"saved_model": folder / name / str(version), "onnx": folder / f"{name}.onnx"}
    paths.update({f"tflite_{k}": folder / f"{name}_{k}.tflite" for k in TFLITE_KINDS})
    return {f: paths[f] for f in formats}


def load_export_preset(preset: str, model_path: str | None = None) -> Any:
    """A preset; with `model_path` a saved Keras model (.keras) replaces its network (e.g. a trained
    FaceModel) while the preset supplies preprocessing, param stats and the morphable model."""
    from tfface.models.presets import load_preset

    loaded = load_preset(preset)
    if model_path is None:
        return loaded
    import keras

    path = Path(model_path)
    if not path.is_file() or path.suffix != ".keras":
        raise TffaceError(f"{path}: --model must be an existing .keras file")
    loaded.model = keras.saving.load_model(path, compile=False)
    loaded.name = path.stem
    return loaded


def unsupported_formats(preset: Any) -> dict[str, str]:
    """Formats this preset cannot be exported to, with why."""
    if "embedding" in preset.outputs:
        # TFLite's 16x8 quantiser has no kernel for the embedding's L2 normalisation (SQUARE), and with
        # a float fallback for it the converted embedding came out wrong (sign-flipped, saturated)
        return {"tflite_int16x8": "does not support models with an identity embedding (TFLite cannot quantise "
                                  "its L2 normalisation to 16x8); use tflite_int8 or tflite_fp16"}
    return {}


def export_preset(preset: Any, folder: str | Path, formats: tuple[str, ...] = FORMATS,
                  representative: np.ndarray | None = None, version: int = 1,
                  overwrite: bool = False, int8_full_integer: bool = False) -> ExportResult:
    """Write `formats` of a loaded preset to `folder`; int8/int16x8 need `representative` uint8 face crops.
    int8 keeps its fully-connected heads in float32 unless `int8_full_integer` (see tfface.export.tflite)."""
    from tfface.export.graph import ServingModule
    from tfface.export.metadata import build_metadata

    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise TffaceError(f"unknown export formats {unknown}; choose from {list(FORMATS)}")
    quantised = [f for f in formats if f in QUANTISED_FORMATS]
    if quantised and (representative is None or not len(representative)):
        raise TffaceError(f"{', '.join(quantised)} need(s) representative face crops "
                          "(tfface export --representative DIR)")
    refused = {f: why for f, why in unsupported_formats(preset).items() if f in formats}
    if refused:
        raise TffaceError("; ".join(f"{f} {why} ('{preset.name}')" for f, why in refused.items()))
    folder = Path(folder)
    name = Path(str(preset.name)).name
    paths = output_paths(folder, name, version, tuple(formats))
    _prepare(folder, [*paths.values(), folder / METADATA_FILE], overwrite)

    module = ServingModule(preset)
    metadata = build_metadata(preset, module, version)
    metadata["files"] = {f: str(p.relative_to(folder)) for f, p in paths.items()}
    metadata["input"]["dtype_by_file"] = {f: input_dtype(f) for f in paths}
    result = ExportResult(folder, paths, metadata)
    if any(f.startswith("tflite") for f in formats):
        from tfface.export.tflite import output_names

        metadata["tflite"] = {
            "output_names": output_names(module),
            "params_output": "params_normalized: params = params_normalized * std + mean (metadata params)",
            "int8": ("full-integer: " if int8_full_integer else "")
                    + "uint8 input (the crop itself), int8 weights (per-channel) and activations, "
                    + ("" if int8_full_integer else "fully-connected heads (fc_param) in float32 after a DEQUANTIZE, ")
                    + "float32 outputs (dequantised in the model)",
            "int16x8": "float32 input holding the uint8 RGB values 0..255 (not normalised; the model has no "
                       "int16 CAST), quantised to int16 by the model's first op; int8 weights (per-channel), "
                       "int16 activations, float32 outputs (dequantised in the model)",
        }
    if any(f == "onnx" for f in formats):
        from tfface.export.onnx_export import ONNX_OPSET

        metadata["onnx"] = {"opset": ONNX_OPSET, "outputs": list(module.outputs), "converter": "tf2onnx"}
    text = json.dumps(metadata, indent=1)
    (folder / METADATA_FILE).write_text(text)

    if "saved_model" in formats:
        from tfface.export.saved_model import write_saved_model

        write_saved_model(module, paths["saved_model"], metadata)
    for kind in TFLITE_KINDS:
        if f"tflite_{kind}" in formats:
            from tfface.export.tflite import convert_tflite, op_names

            data = convert_tflite(module, kind, representative, int8_full_integer)
            paths[f"tflite_{kind}"].write_bytes(data)
            result.ops[f"tflite_{kind}"] = op_names(data)
    if "onnx" in formats:
        from tfface.export.onnx_export import write_onnx

        write_onnx(module, paths["onnx"], text)
    return result


def check_output_folder(folder: str | Path, overwrite: bool) -> bool:
    """Raise when `folder` is a file, or a non-empty folder without `overwrite`; True when non-empty."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise TffaceError(f"{folder}: exists and is not a folder")
    used = folder.is_dir() and any(folder.iterdir())
    if used and not overwrite:
        raise TffaceError(f"{folder}: output folder exists and is not empty; pass --overwrite to replace "
                          "the exported files in it")
    return used


def _prepare(folder: Path, targets: list[Path], overwrite: bool) -> None:
    """Refuse to write into an existing, non-empty folder unless `overwrite` (then replace only the
    files this export writes)."""
    if check_output_folder(folder, overwrite):
        for target in targets:
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    folder.mkdir(parents=True, exist_ok=True)
