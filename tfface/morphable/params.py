"""The 3DDFA 62-d parameter vector: 12 camera (3x4 [s*R | t]) + 40 identity + 10 expression.

Functions are batched (leading batch axis) and differentiable TensorFlow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tfface.errors import DataFileError
from tfface.morphable.safe_pickle import safe_load_pickle

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


@dataclass(frozen=True)
class ParamStats:
    """Per-dimension mean and std that networks' normalised outputs are expressed in."""

    mean: np.ndarray  # (D,) float32
    std: np.ndarray  # (D,) float32

    def __post_init__(self) -> None:
        if self.mean.shape != self.std.shape or self.mean.ndim != 1:
            raise ValueError(f"mean {self.mean.shape} and std {self.std.shape} must be equal 1-d shapes")
        if not (np.all(np.isfinite(self.mean)) and np.all(np.isfinite(self.std)) and np.all(self.std > 0)):
            raise ValueError("param stats need finite means and finite, positive stds")

    def denormalize(self, normalized: tf.Tensor) -> tf.Tensor:
        return tf.convert_to_tensor(normalized, tf.float32) * self.std + self.mean

    def normalize(self, params: tf.Tensor) -> tf.Tensor:
        return (tf.convert_to_tensor(params, tf.float32) - self.mean) / self.std

    @classmethod
    def from_pickle(cls, path: str | os.PathLike) -> "ParamStats":
        """3DDFA_V2's `param_mean_std_62d_120x120.pkl`: {'mean': (62,), 'std': (62,)}."""
        data = safe_load_pickle(path)
        if not isinstance(data, dict) or not {"mean", "std"} <= set(data):
            raise DataFileError(f"{path}: expected a dict with 'mean' and 'std'")
        return cls(np.asarray(data["mean"], np.float32).reshape(-1),
                   np.asarray(data["std"], np.float32).reshape(-1))

    @classmethod
    def from_npz(cls, path: str | os.PathLike) -> "ParamStats":
        with np.load(path) as z:
            return cls(z["mean"].astype(np.float32), z["std"].astype(np.float32))

    def save_npz(self, path: str | os.PathLike) -> None:
        np.savez(path, mean=self.mean, std=self.std)
