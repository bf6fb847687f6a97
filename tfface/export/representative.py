"""Real face crops for int8 calibration and parity checks: photos -> BlazeFace -> the model's own crop
rule (3DDFA_V2 box, one re-crop from the predicted landmarks), exactly the crops inference sees."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from tfface.errors import DataFileError, NoFaceError


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
