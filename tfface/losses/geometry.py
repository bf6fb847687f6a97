"""The 3DMM as TF constants for losses: de-normalisation, shapes, projection into crop pixels.

Losses on 3D shapes are measured in crop pixels: model units times the mean camera scale
(`shape_scale`), so their weights are comparable with the 2D landmark losses.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfface.morphable.model import MorphableModel
from tfface.morphable.params import ParamStats, split_params


class FaceGeometry:
    """Param statistics + a (68-landmark or dense) morphable model, batched in TF."""

    def __init__(self, param_stats: ParamStats, shape_model: MorphableModel, image_size: int) -> None:
        self.param_stats = param_stats
        self.model = shape_model
        self.image_size = image_size
        self.param_mean = tf.constant(param_stats.mean, tf.float32)
        self.param_std = tf.constant(param_stats.std, tf.float32)
        self.mean = tf.constant(shape_model.mean, tf.float32)  # (N, 3)
        self.id_basis = tf.constant(shape_model.id_basis, tf.float32)  # (K, N, 3)
        self.exp_basis = tf.constant(shape_model.exp_basis, tf.float32)
        self.shape_scale = float(np.linalg.norm(param_stats.mean[:3]))  # model units -> crop pixels

    @property
    def num_id(self) -> int:
        return self.model.num_id

    def denormalize(self, normalized: tf.Tensor) -> tf.Tensor:
        return tf.cast(normalized, tf.float32) * self.param_std + self.param_mean

    def normalize(self, params: tf.Tensor) -> tf.Tensor:
        return (tf.cast(params, tf.float32) - self.param_mean) / self.param_std

    def split(self, params: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        return split_params(params, self.num_id)

    def offsets(self, basis: tf.Tensor, alpha: tf.Tensor) -> tf.Tensor:
        """Coefficients (B, K) -> shape offsets (B, N, 3) in model units."""
        return tf.einsum("bk,knc->bnc", alpha, basis)

    def vertices(self, params: tf.Tensor) -> tf.Tensor:
        """De-normalised params (B, 62) -> model-space vertices (B, N, 3)."""
        _, alpha_id, alpha_exp = self.split(params)
        return self.mean + self.offsets(self.id_basis, alpha_id) + self.offsets(self.exp_basis, alpha_exp)

    def to_crop_frame(self, camera: tf.Tensor, vertices: tf.Tensor) -> tf.Tensor:
        """Camera (B, 3, 4) + vertices (B, N, 3) -> 3DDFA crop frame (y up)."""
        return tf.einsum("bij,bnj->bni", camera[:, :, :3], vertices) + camera[:, None, :, 3]

    def to_crop_pixels(self, crop_frame: tf.Tensor) -> tf.Tensor:
        """3DDFA crop frame -> (x, y) crop pixels, top-left origin, y down (the batch contract's landmarks)."""
        return tf.stack([crop_frame[..., 0] - 1.0, self.image_size - crop_frame[..., 1]], axis=-1)

    def landmarks_px(self, params: tf.Tensor) -> tf.Tensor:
        """De-normalised params (B, 62) -> landmarks (B, N, 2) in crop pixels."""
        camera, _, _ = self.split(params)
        return self.to_crop_pixels(self.to_crop_frame(camera, self.vertices(params)))

    def param_gradient_norms(self, params: tf.Tensor) -> tf.Tensor:
        """|d vertices / d p_i| for each of the 62 de-normalised params (B, 62), as WPDC weighs them.

        Camera entry (r, c): the norm of vertex coordinate c over all vertices (1 for translation);
        a shape coefficient: its basis vector's norm times the camera scale (rotation keeps norms).
        """
        camera, _, _ = self.split(params)
        verts = self.vertices(params)
        coord = tf.sqrt(tf.reduce_sum(tf.square(verts), axis=1))  # (B, 3)
        n = tf.cast(tf.shape(verts)[1], tf.float32)
        row = tf.concat([coord, tf.fill([tf.shape(coord)[0], 1], tf.sqrt(n))], axis=1)  # (B, 4)
        cam = tf.tile(row, [1, 3])  # (B, 12) row-major like the camera
        scale = tf.reduce_mean(tf.norm(camera[:, :2, :3], axis=-1), axis=-1, keepdims=True)  # (B, 1)
        basis = tf.concat([tf.norm(tf.reshape(self.id_basis, [self.num_id, -1]), axis=-1),
                           tf.norm(tf.reshape(self.exp_basis, [self.model.num_exp, -1]), axis=-1)], axis=0)
        shape = scale * basis[None, :]
        return tf.concat([cam, shape], axis=1)
