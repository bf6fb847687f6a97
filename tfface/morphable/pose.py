"""Head pose as Euler angles in degrees, in the convention of AFLW2000-3D's `Pose_Para`.

Signs (as a person sees the photo):
  yaw   > 0: the subject turns to their own right (the nose points to the image's left);
  pitch > 0: the head tilts up (chin up); < 0 looks down;
  roll  > 0: the head tilts towards the subject's left shoulder (the image's right side).
Composition: the 3DDFA camera rotation R (crop frame, y up) is the transpose of
Rz(roll) @ Ry(yaw) @ Rx(pitch), so yaw = asin(-R[0, 2]), pitch = atan2(R[1, 2], R[2, 2]),
roll = atan2(R[0, 1], R[0, 0]). Checked against `Pose_Para` on AFLW2000-3D by tests/test_pose.py.
"""

from __future__ import annotations

import math

import tensorflow as tf


def euler_angles(rotation: tf.Tensor) -> tf.Tensor:
    """Rotations (B, 3, 3) -> (B, 3) = yaw, pitch, roll in degrees."""
    r = tf.convert_to_tensor(rotation, tf.float32)
    yaw = tf.asin(tf.clip_by_value(-r[:, 0, 2], -1.0, 1.0))
    pitch = tf.atan2(r[:, 1, 2], r[:, 2, 2])
    roll = tf.atan2(r[:, 0, 1], r[:, 0, 0])
    return tf.stack([yaw, pitch, roll], axis=-1) * (180.0 / math.pi)


def rotation_from_euler(angles: tf.Tensor) -> tf.Tensor:
    """(B, 3) = yaw, pitch, roll in degrees -> rotations (B, 3, 3); the inverse of `euler_angles`."""
    a = tf.convert_to_tensor(angles, tf.float32) * (math.pi / 180.0)
    yaw, pitch, roll = a[:, 0], a[:, 1], a[:, 2]
    one, zero = tf.ones_like(yaw), tf.zeros_like(yaw)
    cy, sy, cp, sp, cr, sr = tf.cos(yaw), tf.sin(yaw), tf.cos(pitch), tf.sin(pitch), tf.cos(roll), tf.sin(roll)

    def mat(rows: list[list[tf.Tensor]]) -> tf.Tensor:
        return tf.stack([tf.stack(row, axis=-1) for row in rows], axis=-2)

    rx = mat([[one, zero, zero], [zero, cp, -sp], [zero, sp, cp]])
    ry = mat([[cy, zero, sy], [zero, one, zero], [-sy, zero, cy]])
    rz = mat([[cr, -sr, zero], [sr, cr, zero], [zero, zero, one]])
    return tf.linalg.matrix_transpose(rz @ ry @ rx)
