"""The packaging step: a preset's Keras weights -> the `model.tflite` (fp32) + `metadata.json` the preset
ships, which `tfface reconstruct | verify | evaluate` and the edge app run on LiteRT without TensorFlow.

Rerun it whenever a preset's weights change (needs TensorFlow):

    python -m tfface.models.packaging tfface_mb05_3ddfa tfface_mb05_joint

It refuses to write a file whose normalised params differ from Keras by more than `PARAM_BOUND` on real
face crops (the sample photo's faces and their mirror images).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from tfface.errors import TffaceError
from tfface.runtimes import METADATA_FILE, PRESET_RUNTIME_FILE

PARAM_BOUND = 1e-4  # max |normalised params| difference against Keras, as for `tfface export` fp32
SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "trump_hillary.jpg"


def package_preset(preset: str | os.PathLike, photos: list[Path] | None = None) -> dict[str, float]:
    """Write `model.tflite` and `metadata.json` into the preset's folder; returns the parity figures."""
    from tfface.export.exporter import export_preset
    from tfface.models.presets import load_preset, preset_dir
    from tfface.runtimes import KerasRunner, TFLiteRunner

    folder = preset_dir(preset)
    loaded = load_preset(preset)
    with tempfile.TemporaryDirectory() as tmp:
        result = export_preset(loaded, tmp, ("tflite_fp32",), overwrite=True)
        candidate = Path(tmp) / PRESET_RUNTIME_FILE
        shutil.move(result.files["tflite_fp32"], candidate)
        metadata = {**result.metadata, "files": {"tflite_fp32": PRESET_RUNTIME_FILE}}
        (Path(tmp) / METADATA_FILE).write_text(json.dumps(metadata, indent=1))
        parity = shipped_parity(KerasRunner(loaded), TFLiteRunner(candidate), photos)
        if parity["params_normalized_max_abs"] > PARAM_BOUND:
            raise TffaceError(f"{preset}: TFLite params differ from Keras by {parity} > {PARAM_BOUND}")
        for name in (PRESET_RUNTIME_FILE, METADATA_FILE):
            shutil.copyfile(Path(tmp) / name, folder / name)
    return parity


def shipped_parity(keras_runner, runner, photos: list[Path] | None = None) -> dict[str, float]:
    """Max differences of `runner` from the Keras preset on real face crops (and their mirrors)."""
    from tfface.export.parity import compare
    from tfface.export.representative import face_crops

    crops = face_crops(photos or [SAMPLE], keras_runner.preset, progress=False)
    crops = np.concatenate([crops, crops[:, :, ::-1]])
    report = compare(keras_runner, runner, crops)
    return {"params_normalized_max_abs": report["params_normalized"]["max_abs"],
            "landmarks_px_max": report["landmarks_px"]["max"], "crops": float(len(crops))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("presets", nargs="+", help="preset names or folders")
    args = p.parse_args(argv)
    from tfface.quiet import quiet_tensorflow

    quiet_tensorflow()
    for preset in args.presets:
        print(preset, package_preset(preset))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
