"""Network outputs -> 3DMM parameters, 68 landmarks in image pixels, and head pose."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tfface.morphable.geometry import ShapeDecoder, apply_camera, crop_to_image
from tfface.morphable.model import MorphableModel
from tfface.morphable.params import ParamStats, camera_to_srt, split_params
from tfface.morphable.pose import euler_angles


@dataclass(frozen=True)
class DecodedFaces:
    params: np.ndarray  # (F, 62) de-normalised 3DMM parameters (camera in the crop frame)
    landmarks: np.ndarray  # (F, 68, 3) image pixels; z is relative depth in the same scale
    pose: np.ndarray  # (F, 3) yaw, pitch, roll in degrees (see tfface.morphable.pose)


class ParamDecoder:
    """Normalised network outputs + crop boxes -> DecodedFaces."""

    def __init__(self, param_stats: ParamStats, shape_model: MorphableModel, image_size: int) -> None:
        self.param_stats = param_stats
        self.shapes = ShapeDecoder(shape_model.landmark_model())
        self.image_size = image_size

    def __call__(self, outputs: np.ndarray, roi_boxes: np.ndarray) -> DecodedFaces:
        """Normalised network outputs (F, 62) + crop boxes (F, 4) -> DecodedFaces."""
        params = self.param_stats.denormalize(np.asarray(outputs, np.float32).reshape(-1, self.param_stats.mean.shape[0]))
        return self.decode_params(params.numpy(), roi_boxes)

    def decode_params(self, params: np.ndarray, roi_boxes: np.ndarray) -> DecodedFaces:
        """De-normalised 3DMM params (F, 62) + crop boxes (F, 4) -> DecodedFaces."""
        params = np.asarray(params, np.float32).reshape(-1, self.param_stats.mean.shape[0])
        roi_boxes = np.asarray(roi_boxes, np.float32).reshape(-1, 4)
        return DecodedFaces(*(t.numpy() for t in self._decode(params, roi_boxes)))

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32), tf.TensorSpec([None, 4], tf.float32)])
    def _decode(self, params: tf.Tensor, roi_boxes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        # One compiled graph: eager op-by-op dispatch cost more than the network itself.
        camera, alpha_id, alpha_exp = split_params(params, self.shapes.model.num_id)
        crop_pts = apply_camera(camera, self.shapes.vertices(alpha_id, alpha_exp))
        landmarks = crop_to_image(crop_pts, roi_boxes, self.image_size)
        _, rotation, _ = camera_to_srt(camera)
        return params, landmarks, euler_angles(rotation)
