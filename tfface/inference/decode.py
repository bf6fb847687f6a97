"""Network outputs -> 3DMM parameters, 68 landmarks in image pixels, and head pose (NumPy; the rules
themselves live in `tfface.morphable.decode`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfface.morphable.decode import ParamStats, ShapeBasis, decode_faces
from tfface.morphable.model import MorphableModel


@dataclass(frozen=True)
class DecodedFaces:
    params: np.ndarray  # (F, 62) de-normalised 3DMM parameters (camera in the crop frame)
    landmarks: np.ndarray  # (F, 68, 3) image pixels; z is relative depth in the same scale
    pose: np.ndarray  # (F, 3) yaw, pitch, roll in degrees (see tfface.morphable.pose)


class ParamDecoder:
    """Normalised network outputs + crop boxes -> DecodedFaces."""

    def __init__(self, param_stats: ParamStats, shape_model: MorphableModel, image_size: int) -> None:
        self.param_stats = param_stats
        self.shape_model = shape_model.landmark_model()
        m = self.shape_model
        self.basis = ShapeBasis(*(np.ascontiguousarray(a, np.float32) for a in (m.mean, m.id_basis, m.exp_basis)))
        self.image_size = image_size

    def __call__(self, outputs: np.ndarray, roi_boxes: np.ndarray) -> DecodedFaces:
        """Normalised network outputs (F, 62) + crop boxes (F, 4) -> DecodedFaces."""
        outputs = np.asarray(outputs, np.float32).reshape(-1, self.param_stats.mean.shape[0])
        return self.decode_params(self.param_stats.denormalize(outputs), roi_boxes)

    def decode_params(self, params: np.ndarray, roi_boxes: np.ndarray) -> DecodedFaces:
        """De-normalised 3DMM params (F, 62) + crop boxes (F, 4) -> DecodedFaces."""
        params = np.asarray(params, np.float32).reshape(-1, self.param_stats.mean.shape[0])
        landmarks, pose = decode_faces(params, roi_boxes, self.basis, self.image_size)
        return DecodedFaces(params, landmarks, pose)

    def landmarks_pose(self, params: np.ndarray, roi_boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """De-normalised params + crop boxes -> (landmarks, pose): the decode step of
        `tfface.inference.face_path`."""
        return decode_faces(params, roi_boxes, self.basis, self.image_size)
