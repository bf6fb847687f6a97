"""The 3DDFA 62-d parameter vector: 12 camera (3x4 [s*R | t]) + 40 identity + 10 expression.

Functions are batched (leading batch axis) and differentiable TensorFlow (losses and training);
inference decodes with the NumPy twins in `tfface.morphable.decode`.
"""

from __future__ import annotations

import tensorflow as tf

from tfface.morphable.decode import ParamStats  # noqa: F401  (NumPy; re-exported for training code)

CAMERA_DIM = 12
ID_DIM = 40
EXP_DIM = 10
PARAM_DIM = CAMERA_DIM + ID_DIM + EXP_DIM


def split_params(params: tf.Tensor, num_id: int = ID_DIM) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(B, 12 + num_id + num_exp) -> camera (B, 3, 4), alpha_id (B, num_id), alpha_exp (B, num_exp)."""
    params = tf.convert_to_tensor(params, tf.float32)
    camera = tf.reshape(params[:, :CAMERA_DIM], (-1, 3, 4))
    return camera, params[:, CAMERA_DIM:CAMERA_DIM + num_id], params[:, CAMERA_DIM + num_id:]


def join_params(camera: tf.Tensor, alpha_id: tf.Tensor, alpha_exp: tf.Tensor) -> tf.Tensor:
    camera = tf.reshape(tf.convert_to_tensor(camera, tf.float32), (-1, CAMERA_DIM))
    return tf.concat([camera, tf.cast(alpha_id, tf.float32), tf.cast(alpha_exp, tf.float32)], axis=-1)


def camera_to_srt(camera: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """[s*R | t] (B, 3, 4) -> scale (B,), rotation (B, 3, 3), translation (B, 3).

    A regressed camera is only approximately scale*rotation, so (as 3DDFA does) the first two rows are
    normalised, their mean norm is the scale, and the third row is their cross product.
    """
    camera = tf.convert_to_tensor(camera, tf.float32)
    r1, r2, t = camera[:, 0, :3], camera[:, 1, :3], camera[:, :, 3]
    n1, n2 = tf.norm(r1, axis=-1), tf.norm(r2, axis=-1)
    r1, r2 = r1 / n1[:, None], r2 / n2[:, None]
    rotation = tf.stack([r1, r2, tf.linalg.cross(r1, r2)], axis=1)
    return (n1 + n2) / 2.0, rotation, t


def srt_to_camera(scale: tf.Tensor, rotation: tf.Tensor, translation: tf.Tensor) -> tf.Tensor:
    scale = tf.convert_to_tensor(scale, tf.float32)
    sr = scale[:, None, None] * tf.convert_to_tensor(rotation, tf.float32)
    return tf.concat([sr, tf.convert_to_tensor(translation, tf.float32)[:, :, None]], axis=2)
