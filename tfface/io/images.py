"""Reading photos as RGB uint8 with errors that name the file and the problem."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from tfface.errors import DataFileError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file -> RGB uint8 (H, W, 3); grey and alpha images are converted."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: file not found")
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise DataFileError(f"{path}: unsupported format '{path.suffix}' (supported: {', '.join(IMAGE_EXTENSIONS)})")
    data = np.fromfile(path, np.uint8)  # imdecode, unlike imread, copes with any path encoding
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise DataFileError(f"{path}: cannot decode image (corrupt or not a {path.suffix} file)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """RGB uint8 -> file (format from the suffix)."""
    if not cv2.imwrite(os.fspath(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise DataFileError(f"{path}: could not write image")


def list_images(paths: list[str | os.PathLike]) -> list[Path]:
    """Files as given (whatever their suffix, so bad ones get reported) and image files in folders."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS))
        else:
            found.append(p)
    return found
