"""The facade: an RGB photo in, one reconstruction per face out.

Detector boxes and the 3DDFA crop rule give a first crop; with `refine` the crop is cut again from
the 68 landmarks of that first pass (the rule the model's training crops and the AFLW2000-3D protocol
use), which makes results depend far less on how the detector draws its boxes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tfface.detection.blazeface import BlazeFaceDetector
from tfface.inference.cropping import roi_from_box, roi_from_landmarks
from tfface.inference.decode import DecodedFaces, ParamDecoder
from tfface.models.presets import DEFAULT_PRESET, load_preset


@dataclass(frozen=True)
class Face:
    box: np.ndarray  # (4,) detector box x0, y0, x1, y1
    score: float
    roi_box: np.ndarray  # (4,) the square crop the network saw
    params: np.ndarray  # (62,)
    landmarks: np.ndarray  # (68, 3) image pixels
    pose: np.ndarray  # (3,) yaw, pitch, roll degrees

    def to_json(self) -> dict[str, Any]:
        yaw, pitch, roll = (round(float(a), 3) for a in self.pose)
        return {
            "box": [round(float(v), 2) for v in self.box],
            "score": round(self.score, 4),
            "roi_box": [round(float(v), 2) for v in self.roi_box],
            "landmarks_2d": np.round(self.landmarks[:, :2], 2).tolist(),
            "landmarks_3d": np.round(self.landmarks, 2).tolist(),
            "pose": {"yaw": yaw, "pitch": pitch, "roll": roll},
            "params": [float(f"{v:.6g}") for v in self.params],
        }


class FaceReconstructor:
    """`faces = FaceReconstructor()(image_rgb)`; or `.from_boxes(image, boxes)` with your own boxes."""

    def __init__(self, preset: str = DEFAULT_PRESET, detector: str = "short",
                 min_score: float = 0.5, refine: int = 1) -> None:
        self.preset = load_preset(preset)
        self.decoder = ParamDecoder(self.preset.param_stats, self.preset.shape_model,
                                    self.preset.preprocessor.image_size)
        self.detector_name, self.min_score = detector, min_score
        self._detector: BlazeFaceDetector | None = None
        self.refine = refine

    @property
    def detector(self) -> BlazeFaceDetector:
        if self._detector is None:
            self._detector = BlazeFaceDetector(self.detector_name, self.min_score)
        return self._detector

    def predict_rois(self, image: np.ndarray, roi_boxes: np.ndarray) -> DecodedFaces:
        """Run the network on crops cut at `roi_boxes` (F, 4) and decode."""
        x = self.preset.preprocessor(image, roi_boxes)
        outputs = self.preset.model(x, training=False).numpy() if len(x) else np.zeros((0, 62), np.float32)
        return self.decoder(outputs, roi_boxes)

    def from_boxes(self, image: np.ndarray, boxes: np.ndarray, scores: np.ndarray | None = None) -> list[Face]:
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        if not len(boxes):
            return []
        rois = np.stack([roi_from_box(b) for b in boxes])
        decoded = self.predict_rois(image, rois)
        for _ in range(self.refine):
            rois = np.stack([roi_from_landmarks(lm) for lm in decoded.landmarks])
            decoded = self.predict_rois(image, rois)
        scores = np.ones(len(boxes)) if scores is None else scores
        return [Face(boxes[i], float(scores[i]), rois[i], decoded.params[i], decoded.landmarks[i], decoded.pose[i])
                for i in range(len(boxes))]

    def __call__(self, image: np.ndarray) -> list[Face]:
        detections = self.detector.detect(image)
        return self.from_boxes(image, np.array([d.box for d in detections]),
                               np.array([d.score for d in detections]))

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()
