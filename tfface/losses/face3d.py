"""Per-sample 3DMM losses (B,): parameters, vertices, the MARN terms. Masking happens in `joint`.

Inputs: `pred` = normalised network output (B, 62); `target` = de-normalised label params (B, 62).
Distances are in crop pixels (see `FaceGeometry.shape_scale`).
"""

from __future__ import annotations

import tensorflow as tf

from tfface.losses.geometry import FaceGeometry
from tfface.losses.masked import safe_norm


def param_mse(geom: FaceGeometry, pred: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """Plain loss on normalised parameters."""
    return tf.reduce_mean(tf.square(pred - geom.normalize(target)), axis=-1)


def wpdc(geom: FaceGeometry, pred: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """Weighted parameter distance (3DDFA's WPDC): each parameter's squared error weighted by how far
    its error alone moves the vertices (|dp_i| * |dV/dp_i|), weights scaled to max 1 per sample."""
    pred_params = geom.denormalize(pred)
    weights = tf.abs(pred_params - target) * geom.param_gradient_norms(target)
    weights = tf.stop_gradient(weights / tf.maximum(tf.reduce_max(weights, axis=-1, keepdims=True), 1e-12))
    return tf.reduce_mean(weights * tf.square(pred - geom.normalize(target)), axis=-1)


def vertex_distance(geom: FaceGeometry, pred: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """Mean 3D distance of the posed shapes in the crop frame (68 landmarks, or dense with a dense model)."""
    pred_params = geom.denormalize(pred)
    cam_p, _, _ = geom.split(pred_params)
    cam_t, _, _ = geom.split(target)
    diff = geom.to_crop_frame(cam_p, geom.vertices(pred_params)) - geom.to_crop_frame(cam_t, geom.vertices(target))
    return tf.reduce_mean(safe_norm(diff), axis=-1)


def basis_distance(geom: FaceGeometry, pred: tf.Tensor, target: tf.Tensor, part: str) -> tf.Tensor:
    """MARN L_id / L_exp: |A (alpha - alpha~)|^2, mean over vertices, in crop pixels^2."""
    _, id_p, exp_p = geom.split(geom.denormalize(pred))
    _, id_t, exp_t = geom.split(target)
    basis, delta = (geom.id_basis, id_p - id_t) if part == "id" else (geom.exp_basis, exp_p - exp_t)
    offsets = geom.offsets(basis, delta) * geom.shape_scale
    return tf.reduce_mean(tf.reduce_sum(tf.square(offsets), axis=-1), axis=-1)


def pose_projection(geom: FaceGeometry, pred: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """MARN L_p: the true shape projected by the predicted vs the true camera, mean 2D distance (px)."""
    cam_p, _, _ = geom.split(geom.denormalize(pred))
    cam_t, _, _ = geom.split(target)
    verts = geom.vertices(target)
    diff = geom.to_crop_frame(cam_p, verts)[..., :2] - geom.to_crop_frame(cam_t, verts)[..., :2]
    return tf.reduce_mean(safe_norm(diff), axis=-1)


def landmark_projection(geom: FaceGeometry, pred: tf.Tensor, landmarks: tf.Tensor) -> tf.Tensor:
    """MARN L_68: predicted landmarks vs labelled (B, 68, 2) crop pixels, mean 2D distance (px)."""
    return tf.reduce_mean(safe_norm(geom.landmarks_px(geom.denormalize(pred)) - landmarks), axis=-1)


def decoded_shape(geom: FaceGeometry, shape_id: tf.Tensor, shape_res: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """Liu et al.'s reconstruction term: s_mean + ds_id + ds_res vs the target 3DMM shape (mean 3D px)."""
    diff = (geom.mean + shape_id + shape_res - geom.vertices(target)) * geom.shape_scale
    return tf.reduce_mean(safe_norm(diff), axis=-1)
