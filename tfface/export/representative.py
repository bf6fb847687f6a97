"""Real face crops for int8 calibration and parity checks: photos -> BlazeFace -> the model's own crop
rule (3DDFA_V2 box, one re-crop from the predicted landmarks), exactly the crops inference sees."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from tfface.errors import DataFileError, NoFaceError

# int8/int16x8 activation ranges come from these faces: calibrated on 20 faces an int8 file drifted
# 6 px / 11 degrees from Keras; on 150 CelebA photos (the README's table) 0.89 px at most.
MIN_CALIBRATION_FACES = 100


def calibration_warning(faces: int, formats: list[str] | tuple[str, ...], report: dict[str, Any] | None) -> str | None:
    """A one-line warning, with the measured drift when the parity report has it, for quantised files
    calibrated on fewer than MIN_CALIBRATION_FACES faces; None otherwise."""
    from tfface.export.formats import QUANTISED_FORMATS

    quantised = [f for f in formats if f in QUANTISED_FORMATS]
    if not quantised or faces >= MIN_CALIBRATION_FACES:
        return None
    drift = []
    for fmt in quantised:
        entry = ((report or {}).get("runtimes") or {}).get(fmt) or {}
        if "landmarks_px" in entry and "pose_deg" in entry:
            drift.append(f"{fmt} {entry['landmarks_px']['max']:.2f} px / {entry['pose_deg']['max_abs']:.1f} deg")
    measured = f"; measured max drift from Keras: {', '.join(drift)}" if drift else ""
    return (f"{' and '.join(quantised)} calibrated on only {faces} faces (at least {MIN_CALIBRATION_FACES} "
            f"recommended: --representative with more photos){measured}")


def face_crops(paths: str | os.PathLike | list, preset: Any, max_faces: int | None = None,
               progress: bool = True) -> np.ndarray:
    """uint8 RGB crops (F, S, S, 3) of every face found in the images under `paths` (files/folders)."""
    from tfface.inference.reconstructor import FaceReconstructor
    from tfface.io.images import list_images, read_image
    from tfface.quiet import native_stderr_silenced

    paths = paths if isinstance(paths, (list, tuple)) else [paths]
    files = list_images(paths)
    if not files:
        raise DataFileError(f"no images found in {', '.join(map(str, paths))}")
    with native_stderr_silenced():
        rec = FaceReconstructor(preset)  # the loaded model itself (a preset folder or in-memory model)
    crops = []
    try:
        for path in tqdm(files, desc="face crops", unit="img", disable=not progress):
            try:
                image = read_image(path)
            except DataFileError:
                continue
            crops += [preset.preprocessor.crop(image, f.roi_box) for f in rec(image)]
            if max_faces and len(crops) >= max_faces:
                break
    finally:
        rec.close()
    if not crops:
        raise NoFaceError(f"no faces found in the {len(files)} image(s) under {', '.join(map(str, paths))}")
    return np.stack(crops[:max_faces] if max_faces else crops).astype(np.uint8)
