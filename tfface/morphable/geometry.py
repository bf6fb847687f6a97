"""Shapes from coefficients, the camera, and the map between the model's crop and image pixels.

Frames. *Model space*: the morphable model's own coordinates. *Crop frame*: what the 3DDFA camera
[s*R | t] maps model space into, in pixels of the (size x size) network crop, with y pointing UP and
z towards the viewer. *Image frame*: pixels of the original photo, x right, y down, z towards the
viewer in the same pixel scale. `crop_to_image` follows 3DDFA_V2's convention exactly (x-1, z-1,
y = size - y, then scale by roi side / size) so landmarks match published numbers.
"""

from __future__ import annotations

import tensorflow as tf

from tfface.morphable.model import MorphableModel


class ShapeDecoder:
    """A MorphableModel held as TF constants: coefficients -> model-space vertices."""

    def __init__(self, model: MorphableModel) -> None:
        self.model = model
        self.mean = tf.constant(model.mean)
        self.id_basis = tf.constant(model.id_basis)
        self.exp_basis = tf.constant(model.exp_basis)

    def vertices(self, alpha_id: tf.Tensor, alpha_exp: tf.Tensor) -> tf.Tensor:
        """(B, K_id), (B, K_exp) -> (B, N, 3)."""
        alpha_id = tf.convert_to_tensor(alpha_id, tf.float32)
        alpha_exp = tf.convert_to_tensor(alpha_exp, tf.float32)
        return (self.mean
                + tf.einsum("bk,knc->bnc", alpha_id, self.id_basis)
                + tf.einsum("bk,knc->bnc", alpha_exp, self.exp_basis))


def apply_camera(camera: tf.Tensor, vertices: tf.Tensor) -> tf.Tensor:
    """Model space -> crop frame: v' = (s*R) v + t, with camera (B, 3, 4) and vertices (B, N, 3)."""
    camera = tf.convert_to_tensor(camera, tf.float32)
    return tf.einsum("bij,bnj->bni", camera[:, :, :3], vertices) + camera[:, None, :, 3]


def _roi_scale(roi_box: tf.Tensor, size: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    roi_box = tf.convert_to_tensor(roi_box, tf.float32)
    sx = (roi_box[:, 2] - roi_box[:, 0]) / size
    sy = (roi_box[:, 3] - roi_box[:, 1]) / size
    return roi_box, sx, sy


def crop_to_image(points: tf.Tensor, roi_box: tf.Tensor, size: int = 120) -> tf.Tensor:
    """Crop-frame points (B, N, 3) -> image pixels, given each crop's box (B, 4) = x0, y0, x1, y1.

    z keeps the crop frame's origin (scaled to image pixels); it is a relative depth.
    """
    roi_box, sx, sy = _roi_scale(roi_box, size)
    x = (points[..., 0] - 1.0) * sx[:, None] + roi_box[:, 0:1]
    y = (size - points[..., 1]) * sy[:, None] + roi_box[:, 1:2]
    z = (points[..., 2] - 1.0) * ((sx + sy) / 2.0)[:, None]
    return tf.stack([x, y, z], axis=-1)


def image_to_crop(points: tf.Tensor, roi_box: tf.Tensor, size: int = 120) -> tf.Tensor:
    """The inverse of `crop_to_image`."""
    roi_box, sx, sy = _roi_scale(roi_box, size)
    x = (points[..., 0] - roi_box[:, 0:1]) / sx[:, None] + 1.0
    y = size - (points[..., 1] - roi_box[:, 1:2]) / sy[:, None]
    z = points[..., 2] / ((sx + sy) / 2.0)[:, None] + 1.0
    return tf.stack([x, y, z], axis=-1)
