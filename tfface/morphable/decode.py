"""The inference-time face decode in NumPy: normalised network outputs -> 3DMM params -> 68 landmarks in
photo pixels and head pose. Used by tfface inference, the runtimes, evaluation, serving, rendering and
the TensorFlow-free edge app (mobile_demo), so this module imports NumPy only.

Frames and conventions as in `tfface.morphable.geometry` (crop frame y up; `crop_to_image` is 3DDFA_V2's
x - 1, y = size - y, z - 1, scaled by roi side / size) and `tfface.morphable.pose` (degrees, AFLW2000-3D
`Pose_Para`). The TensorFlow versions there stay for losses and training, which need gradients;
tests/test_params_geometry.py checks that both agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

CAMERA_DIM = 12


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

    # Plain arithmetic, so NumPy arrays stay NumPy and TF tensors stay TF (losses use the same object).
    def denormalize(self, normalized):
        return normalized * self.std + self.mean

    def normalize(self, params):
        return (params - self.mean) / self.std

    @classmethod
    def from_pickle(cls, path: str | os.PathLike) -> "ParamStats":
        """3DDFA_V2's `param_mean_std_62d_120x120.pkl`: {'mean': (62,), 'std': (62,)}."""
        from tfface.errors import DataFileError
        from tfface.morphable.safe_pickle import safe_load_pickle

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


@dataclass(frozen=True)
class ShapeBasis:
    """A linear shape model: mean (N, 3), id_basis (K_id, N, 3), exp_basis (K_exp, N, 3)."""

    mean: np.ndarray
    id_basis: np.ndarray
    exp_basis: np.ndarray

    def vertices(self, params: np.ndarray) -> np.ndarray:
        """Params (F, 12 + K_id + K_exp) -> model-space vertices (F, N, 3)."""
        k = self.id_basis.shape[0]
        # matmuls on the flattened bases: NumPy's einsum took ~1 ms a call here, as long as the network
        offsets = (params[:, CAMERA_DIM:CAMERA_DIM + k] @ self.id_basis.reshape(k, -1)
                   + params[:, CAMERA_DIM + k:] @ self.exp_basis.reshape(self.exp_basis.shape[0], -1))
        return self.mean + offsets.reshape(len(params), *self.mean.shape)


def camera_of(params: np.ndarray) -> np.ndarray:
    """Params (F, 62) or cameras (F, 12) -> (F, 3, 4) [s*R | t]."""
    return np.asarray(params, np.float32)[:, :CAMERA_DIM].reshape(-1, 3, 4)


def apply_camera(camera: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Model space -> crop frame: (s*R) v + t, camera (F, 3, 4), vertices (F, N, 3)."""
    return vertices @ camera[:, :, :3].transpose(0, 2, 1) + camera[:, None, :, 3]


def crop_to_image(points: np.ndarray, roi_boxes: np.ndarray, size: int) -> np.ndarray:
    """Crop-frame points (F, N, 3) -> photo pixels, given each crop's box (F, 4); z is relative depth."""
    boxes = np.asarray(roi_boxes, np.float32).reshape(-1, 4)
    sx = ((boxes[:, 2] - boxes[:, 0]) / size)[:, None]
    sy = ((boxes[:, 3] - boxes[:, 1]) / size)[:, None]
    x = (points[..., 0] - 1.0) * sx + boxes[:, 0:1]
    y = (size - points[..., 1]) * sy + boxes[:, 1:2]
    z = (points[..., 2] - 1.0) * (sx + sy) / 2.0
    return np.stack([x, y, z], axis=-1).astype(np.float32)


def rotation_from_camera(camera: np.ndarray) -> np.ndarray:
    """(F, 3, 4) [s*R | t] -> (F, 3, 3) R. A regressed camera is only roughly a scaled rotation, so (as
    3DDFA does) the first two rows are normalised and the third is their cross product."""
    r1 = camera[:, 0, :3] / np.linalg.norm(camera[:, 0, :3], axis=-1, keepdims=True)
    r2 = camera[:, 1, :3] / np.linalg.norm(camera[:, 1, :3], axis=-1, keepdims=True)
    r3 = np.stack([r1[:, 1] * r2[:, 2] - r1[:, 2] * r2[:, 1], r1[:, 2] * r2[:, 0] - r1[:, 0] * r2[:, 2],
                   r1[:, 0] * r2[:, 1] - r1[:, 1] * r2[:, 0]], axis=-1)  # r1 x r2; np.cross is 5x slower
    return np.stack([r1, r2, r3], axis=1)


def euler_degrees(rotation: np.ndarray) -> np.ndarray:
    """(F, 3, 3) -> (F, 3) yaw, pitch, roll in degrees (see tfface.morphable.pose for the signs)."""
    yaw = np.arcsin(np.clip(-rotation[:, 0, 2], -1.0, 1.0))
    pitch = np.arctan2(rotation[:, 1, 2], rotation[:, 2, 2])
    roll = np.arctan2(rotation[:, 0, 1], rotation[:, 0, 0])
    return np.degrees(np.stack([yaw, pitch, roll], axis=-1)).astype(np.float32)


def decode_faces(params: np.ndarray, roi_boxes: np.ndarray, basis: ShapeBasis,
                 size: int) -> tuple[np.ndarray, np.ndarray]:
    """De-normalised params (F, 62) + crop boxes (F, 4) -> points (F, N, 3) in photo pixels, pose (F, 3)."""
    roi_boxes = np.asarray(roi_boxes, np.float32).reshape(-1, 4)
    params = np.asarray(params, np.float32).reshape(len(roi_boxes), -1)
    camera = camera_of(params)
    points = crop_to_image(apply_camera(camera, basis.vertices(params)), roi_boxes, size)
    return points, euler_degrees(rotation_from_camera(camera))
