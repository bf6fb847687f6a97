"""Synthetic training batches in exactly the tfface.data batch contract, for tests and benchmarks.

Params are drawn around the default preset's statistics with a proper scaled rotation camera
(yaw +-60, pitch/roll +-20 degrees); landmarks are decoded from them into crop pixels and drawn as
bright dots on a noise image, so the images carry the labels' signal. Every label comes with a mask
drawn at `label_rate`; missing labels are zero-filled as the contract says.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfface.losses.geometry import FaceGeometry
from tfface.morphable.params import CAMERA_DIM, ID_DIM, join_params, srt_to_camera
from tfface.morphable.pose import rotation_from_euler

MASKS = {"params": "has_params", "landmarks": "has_landmarks", "attributes": "has_attributes",
         "identity": "has_identity"}


def synthetic_batch(geometry: FaceGeometry, batch_size: int, num_ids: int = 8, num_attributes: int = 40,
                    label_rate: float | dict[str, float] = 0.75, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One (images, labels) batch as numpy arrays."""
    rng = np.random.default_rng(seed)
    stats, size = geometry.param_stats, geometry.image_size
    angles = rng.uniform([-60, -20, -20], [60, 20, 20], (batch_size, 3)).astype(np.float32)
    rotation = rotation_from_euler(angles)
    scale = np.linalg.norm(stats.mean[:3]) * rng.uniform(0.9, 1.1, batch_size)
    translation = stats.mean[[3, 7, 11]] + rng.normal(0, 3, (batch_size, 3))
    camera = srt_to_camera(scale.astype(np.float32), rotation, translation.astype(np.float32))
    shape_mean, shape_std = stats.mean[CAMERA_DIM:], stats.std[CAMERA_DIM:]
    alphas = shape_mean + 0.5 * shape_std * rng.standard_normal((batch_size, shape_mean.size))
    params = join_params(camera, alphas[:, :ID_DIM], alphas[:, ID_DIM:]).numpy()
    landmarks = geometry.landmarks_px(tf.constant(params)).numpy()

    images = rng.normal(0.0, 0.3, (batch_size, size, size, 3)).astype(np.float32)
    pix = np.clip(np.round(landmarks).astype(int), 0, size - 1)
    for b in range(batch_size):
        images[b, pix[b, :, 1], pix[b, :, 0], :] = 1.0
    labels = {
        "params": params.astype(np.float32),
        "landmarks": landmarks.astype(np.float32),
        "attributes": (rng.random((batch_size, num_attributes)) < 0.3).astype(np.float32),
        "identity": rng.integers(0, num_ids, batch_size).astype(np.int32),
    }
    rates = label_rate if isinstance(label_rate, dict) else dict.fromkeys(MASKS, label_rate)
    for key, mask_key in MASKS.items():
        mask = (rng.random(batch_size) < rates.get(key, 0.0)).astype(np.float32)
        labels[mask_key] = mask
        fill = -1 if key == "identity" else 0
        labels[key] = np.where(mask.reshape((-1,) + (1,) * (labels[key].ndim - 1)) > 0, labels[key], fill).astype(labels[key].dtype)
    return images, labels


def synthetic_dataset(geometry: FaceGeometry, batch_size: int, num_batches: int, num_ids: int = 8,
                      label_rate: float | dict[str, float] = 0.75, seed: int = 0) -> tf.data.Dataset:
    """A finite, repeatable dataset of `num_batches` synthetic batches (repeat() it for several epochs)."""
    batches = [synthetic_batch(geometry, batch_size, num_ids, label_rate=label_rate, seed=seed + i)
               for i in range(num_batches)]
    images = np.concatenate([b[0] for b in batches])
    labels = {k: np.concatenate([b[1][k] for b in batches]) for k in batches[0][1]}
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size, drop_remainder=True)
