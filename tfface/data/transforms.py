"""Keeping labels consistent with a geometric change of a face crop (crop, resize, rotate, scale, flip).

Every geometric change of a crop is one 2x3 affine `A` from input crop pixels to output crop pixels
(x right, y down, the frame of the batch contract's landmarks: pixel index i sits at coordinate i).
Images are resampled with the inverse of the same `A`, so the image and all labels move together:

- landmarks (68, 2): `A` applied; when `A` mirrors (det < 0) the points are re-indexed with the
  iBUG-68 left/right permutation, so point 36 stays the subject's right eye corner.
- 3DDFA params (62,): the 3DDFA crop frame is u = x + 1, v = size - y (y up), so the camera's first
  two rows are multiplied by D A D (D = diag(1, -1)) and shifted; the depth row is scaled by the same
  factor (with `crop_to_image`'s z - 1 offset) so [s*R | t] stays a scaled rotation. A mirror is
  folded into model space: new camera = B [s*R] F with F = diag(-1, 1, 1), and the shift of the
  model's symmetry plane (x = c) goes into t. Identity and expression coefficients are KEPT: the BFM
  is only nearly mirror-symmetric, so decoded landmarks of a flipped sample differ slightly from the
  mirrored landmarks (measured by `flip_param_error`; ~0.5 px at 120 px, see tests/test_data_transforms.py).
- pose (yaw, pitch, roll degrees): the rotation is transformed like the camera's and re-read.

Functions are batched TF (leading axis), so the same code runs in the tf.data graph and eagerly
when shards are written.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from tfface.morphable.pose import euler_angles, rotation_from_euler

# iBUG-68 index of each point's mirror image (jaw, brows, nose, eyes, mouth).
FLIP_68 = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55] + [64, 63, 62, 61, 60, 67, 66, 65], np.int32)

_D = tf.constant([[1.0, 0.0], [0.0, -1.0]])
_F = tf.constant([[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def similarity(scale: tf.Tensor, angle_deg: tf.Tensor, flip: tf.Tensor, centre_in: tf.Tensor,
               centre_out: tf.Tensor, shift: tf.Tensor | None = None) -> tf.Tensor:
    """(B, 2, 3) affines: optional mirror about x = centre_in.x, then rotate by `angle_deg`
    (counter-clockwise as seen on screen) and scale about `centre_in`, landing on `centre_out` + shift.

    scale, angle_deg (B,), flip (B,) bool, centres (B, 2) or (2,), shift (B, 2).
    """
    scale = tf.convert_to_tensor(scale, tf.float32)
    a = tf.convert_to_tensor(angle_deg, tf.float32) * (math.pi / 180.0)
    c, s = tf.cos(a) * scale, tf.sin(a) * scale
    m = tf.where(tf.convert_to_tensor(flip)[:, None], -1.0, 1.0)  # x mirror sign
    # y is down on screen, so a visually counter-clockwise turn is [[c, s], [-s, c]].
    lin = tf.stack([tf.stack([c * m[:, 0], s], -1), tf.stack([-s * m[:, 0], c], -1)], 1)  # (B, 2, 2)
    cin = tf.broadcast_to(tf.cast(centre_in, tf.float32), tf.shape(lin)[:2])
    cout = tf.broadcast_to(tf.cast(centre_out, tf.float32), tf.shape(lin)[:2])
    if shift is not None:
        cout = cout + tf.cast(shift, tf.float32)
    t = cout - tf.einsum("bij,bj->bi", lin, cin)
    return tf.concat([lin, t[:, :, None]], axis=2)


def scale_shift(scale: tf.Tensor, offset: tf.Tensor) -> tf.Tensor:
    """(B, 2, 3) affines x -> scale * x + offset (resizing / re-cropping)."""
    scale = tf.convert_to_tensor(scale, tf.float32)
    offset = tf.convert_to_tensor(offset, tf.float32)
    zero = tf.zeros_like(scale)
    return tf.stack([tf.stack([scale, zero, offset[:, 0]], -1), tf.stack([zero, scale, offset[:, 1]], -1)], 1)


def invert(affine: tf.Tensor) -> tf.Tensor:
    lin, t = affine[:, :, :2], affine[:, :, 2:]
    inv = tf.linalg.inv(lin)
    return tf.concat([inv, -inv @ t], axis=2)


def is_mirror(affine: tf.Tensor) -> tf.Tensor:
    return tf.linalg.det(affine[:, :, :2]) < 0


def transform_landmarks(points: tf.Tensor, affine: tf.Tensor) -> tf.Tensor:
    """(B, 68, 2+) crop pixels -> (B, 68, 2) in the output crop, re-indexed when `affine` mirrors."""
    p = tf.cast(points, tf.float32)[..., :2]
    out = tf.einsum("bij,bnj->bni", affine[:, :, :2], p) + affine[:, None, :, 2]
    return tf.where(is_mirror(affine)[:, None, None], tf.gather(out, FLIP_68, axis=1), out)


def _block(affine: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The 3DDFA-frame version of a pixel affine: B (3, 3) and the scale k, without the shift."""
    m = _D @ affine[:, :, :2] @ _D  # u, v frame (y up)
    k = tf.sqrt(tf.abs(tf.linalg.det(affine[:, :, :2])))
    zeros = tf.zeros_like(k)
    b = tf.concat([tf.concat([m, tf.zeros_like(m[:, :, :1])], 2),
                   tf.stack([zeros, zeros, k], -1)[:, None, :]], 1)
    return b, k, m


def transform_params(params: tf.Tensor, affine: tf.Tensor, size_in: float | tf.Tensor, size_out: float | tf.Tensor,
                     symmetry_x: float = 0.0) -> tf.Tensor:
    """De-normalised params (B, 62) in a size_in crop -> the same face in the size_out output crop.

    `symmetry_x`: x of the morphable model's mirror plane in model space (see `model_symmetry_x`).
    """
    params = tf.cast(params, tf.float32)
    camera = tf.reshape(params[:, :12], (-1, 3, 4))
    sr, t = camera[:, :, :3], camera[:, :, 3]
    b, k, m = _block(affine)
    # Shift in (u, v): D (A (-1, size_in) + a) + (1, size_out); depth: z' = k (z - 1) + 1.
    base = tf.stack([-1.0, tf.cast(size_in, tf.float32)])
    shift_xy = tf.einsum("ij,bj->bi", _D, tf.einsum("bij,j->bi", affine[:, :, :2], base) + affine[:, :, 2])
    shift = tf.concat([shift_xy + tf.stack([1.0, tf.cast(size_out, tf.float32)]), (1.0 - k)[:, None]], axis=1)
    mirror = is_mirror(affine)
    sym = tf.constant([2.0 * symmetry_x, 0.0, 0.0])
    sr_m = tf.where(mirror[:, None, None], sr @ _F, sr)
    t_m = tf.where(mirror[:, None], t + tf.einsum("bij,j->bi", sr, sym), t)
    new_sr = b @ sr_m
    new_t = tf.einsum("bij,bj->bi", b, t_m) + shift
    new_camera = tf.concat([new_sr, new_t[:, :, None]], axis=2)
    return tf.concat([tf.reshape(new_camera, (-1, 12)), params[:, 12:]], axis=1)


def transform_pose(pose: tf.Tensor, affine: tf.Tensor) -> tf.Tensor:
    """(B, 3) yaw, pitch, roll degrees -> the pose seen in the output crop (in-plane turns change roll;
    a mirror negates yaw and roll)."""
    rotation = rotation_from_euler(pose)
    b, k, _ = _block(affine)
    r = (b / k[:, None, None]) @ tf.where(is_mirror(affine)[:, None, None], rotation @ _F, rotation)
    return euler_angles(r)


def model_symmetry_x(mean_shape: np.ndarray) -> float:
    """x of the mirror plane of a 68-landmark mean shape: the mean x of each point and its mirror."""
    return float(np.mean(np.asarray(mean_shape)[:, 0]))
