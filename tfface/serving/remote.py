"""A photo -> faces pipeline whose network runs on a TF Serving server: local BlazeFace detection and
cropping (the 3DDFA_V2 box rule, `refine` re-crops), the `reconstruct` signature on the server, and the
same `Face` results (and JSON) as `tfface.inference.reconstructor.FaceReconstructor`."""

from __future__ import annotations

from typing import Any

import numpy as np

from tfface.morphable.crop import roi_from_box, roi_from_landmarks
from tfface.inference.reconstructor import Face
from tfface.models.preprocessor import FacePreprocessor


def crop_to_photo(points: np.ndarray, roi_boxes: np.ndarray, image_size: int) -> np.ndarray:
    """Landmarks (F, 68, 3) in crop pixels (the `reconstruct` signature's frame) -> photo pixels: the
    same map as `tfface.morphable.geometry.crop_to_image` on crop-frame points."""
    roi = np.asarray(roi_boxes, np.float32).reshape(-1, 4)
    sx, sy = (roi[:, 2] - roi[:, 0]) / image_size, (roi[:, 3] - roi[:, 1]) / image_size
    scale = np.stack([sx, sy, (sx + sy) / 2], axis=-1)[:, None]
    shift = np.stack([roi[:, 0], roi[:, 1], np.zeros_like(sx)], axis=-1)[:, None]
    return (np.asarray(points, np.float32) * scale + shift).astype(np.float32)


class ServedReconstructor:
    """`faces = ServedReconstructor(client)(image_rgb)` with a RestClient or GrpcClient."""

    def __init__(self, client: Any, image_size: int = 120, detector: str = "auto", min_score: float = 0.5,
                 refine: int = 1) -> None:
        from tfface.detection import create_detector

        self.client, self.refine = client, refine
        self.cropper = FacePreprocessor(image_size=image_size)
        self.detector = create_detector(detector, min_score)

    def predict_rois(self, image: np.ndarray, rois: np.ndarray) -> dict[str, np.ndarray]:
        crops = np.stack([self.cropper.crop(image, r) for r in rois])
        out = self.client.predict(crops, "reconstruct")
        out["landmarks"] = crop_to_photo(out["landmarks"], rois, self.cropper.image_size)
        return out

    def __call__(self, image: np.ndarray) -> list[Face]:
        detections = self.detector.detect(image)
        if not detections:
            return []
        rois = np.stack([roi_from_box(d.box) for d in detections]).astype(np.float32)
        out = self.predict_rois(image, rois)
        for _ in range(self.refine):
            rois = np.stack([roi_from_landmarks(lm) for lm in out["landmarks"]]).astype(np.float32)
            out = self.predict_rois(image, rois)
        return [Face(np.asarray(d.box, np.float32), float(d.score), rois[i], out["params"][i],
                     out["landmarks"][i], out["pose"][i]) for i, d in enumerate(detections)]

    def close(self) -> None:
        self.detector.close()
