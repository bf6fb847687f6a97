"""Face boxes at convert time for photos that come without one (CelebA in the wild, identity folders)."""

from __future__ import annotations

import numpy as np

from tfface.errors import NoFaceError


class FaceLocator:
    """Callable RGB photo -> the largest BlazeFace box (x0, y0, x1, y1); NoFaceError("no face") otherwise."""

    def __init__(self, model: str = "auto", min_score: float = 0.5) -> None:
        from tfface.detection import create_detector

        self.detector = create_detector(model, min_score)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        faces = self.detector.detect(image)
        if not faces:
            raise NoFaceError("no face")
        best = max(faces, key=lambda d: float((d.box[2] - d.box[0]) * (d.box[3] - d.box[1])))
        return np.asarray(best.box, np.float32)

    def close(self) -> None:
        self.detector.close()

    def __enter__(self) -> "FaceLocator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
