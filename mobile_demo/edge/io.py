"""Reading photos with clear errors (OpenCV returns None for a missing or broken file)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


class InputError(ValueError):
    """An input photo/video/camera cannot be read; the message names it."""


def read_rgb(path: str | Path) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"{path}: not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
