"""Training augmentation: a random similarity (flip, rotation, scale, shift) plus photometric jitter and
occlusion. The geometric part is one affine, applied to pixels and labels alike (tfface.data.transforms).

All draws are stateless, keyed on a (2,) int64 seed, so a pipeline seed reproduces every sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from tfface.data import transforms


@dataclass
class AugmentConfig:
    flip: float = 0.5  # probability of a horizontal flip
    max_rotation: float = 15.0  # degrees, uniform in [-max, max]
    min_scale: float = 0.9  # face size relative to the standard 3DDFA crop
    max_scale: float = 1.1
    max_shift: float = 0.04  # fraction of the output size, uniform in [-max, max] per axis
    brightness: float = 0.15  # fraction of 255
    contrast: float = 0.2  # factor in [1 - c, 1 + c]
    saturation: float = 0.2
    occlusion: float = 0.2  # probability of one grey rectangle
    max_occlusion: float = 0.4  # its largest side, fraction of the output size
    downscale: float = 0.0  # probability of a low-resolution copy (down and back up), per image
    min_resolution: float = 0.35  # its smallest side, fraction of the output size (drawn per batch)

    def __post_init__(self) -> None:
        if not 0 <= self.flip <= 1 or not 0 <= self.occlusion <= 1:
            raise ValueError(f"flip and occlusion are probabilities in [0, 1]. Received: flip={self.flip}, "
                             f"occlusion={self.occlusion}")
        if not 0 <= self.downscale <= 1 or not 0 < self.min_resolution <= 1:
            raise ValueError(f"downscale is a probability and min_resolution in (0, 1]. Received: "
                             f"downscale={self.downscale}, min_resolution={self.min_resolution}")
        if not 0 < self.min_scale <= self.max_scale:
            raise ValueError(f"need 0 < min_scale <= max_scale. Received: {self.min_scale}, {self.max_scale}")


def _uniform(seed: tf.Tensor, salt: int, shape: list[int], lo: float = 0.0, hi: float = 1.0) -> tf.Tensor:
    return tf.random.stateless_uniform(shape, seed + tf.constant([0, salt], tf.int64) * (1 << 40), lo, hi)


def random_affine(config: AugmentConfig, seed: tf.Tensor, base_scale: tf.Tensor, stored: tf.Tensor,
                  size: float) -> tf.Tensor:
    """(1, 2, 3) stored-crop -> output-crop affine around the crop centres (pixel-index frames, so a
    crop of S pixels is centred at (S - 1) / 2)."""
    u = _uniform(seed, 1, [6])
    flip = u[0] < config.flip
    angle = (2.0 * u[1] - 1.0) * config.max_rotation
    scale = config.min_scale + u[2] * (config.max_scale - config.min_scale)
    shift = (2.0 * u[3:5] - 1.0) * config.max_shift * size
    return transforms.similarity((base_scale * scale)[None], angle[None], flip[None], tf.fill([2], (stored - 1.0) / 2.0),
                                 [(size - 1.0) / 2.0] * 2, shift[None])


def photometric_draws(seed: tf.Tensor) -> tf.Tensor:
    """One sample's (11,) uniform draws for `augment_pixels` (drawn per sample, applied per batch)."""
    return tf.concat([_uniform(seed, 2, [9]), _uniform(seed, 3, [2])], axis=0)


def augment_pixels(config: AugmentConfig, pixels: tf.Tensor, u: tf.Tensor) -> tf.Tensor:
    """Per-image photometric jitter and a random occluder on float32 RGB (B, S, S, 3) in [0, 255];
    `u` (B, 11) from `photometric_draws`, so an image's jitter does not depend on its batch."""
    col = lambda i: u[:, i, None, None, None]  # noqa: E731
    x = pixels
    if config.downscale:  # small, blurry faces (e.g. CelebA's half-resolution crops) exist in the wild too
        size = tf.shape(x)[1]
        factor = config.min_resolution + (1.0 - config.min_resolution) * u[0, 10]
        small = tf.maximum(8, tf.cast(tf.cast(size, tf.float32) * factor, tf.int32))
        low = tf.image.resize(tf.image.resize(x, [small, small], antialias=True), [size, size])
        x = tf.where(col(9) < config.downscale, low, x)
    if config.brightness:
        x = x + (2.0 * col(0) - 1.0) * config.brightness * 255.0
    if config.contrast:
        mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
        x = (x - mean) * (1.0 + (2.0 * col(1) - 1.0) * config.contrast) + mean
    if config.saturation:
        grey = tf.reduce_mean(x, axis=-1, keepdims=True)
        x = grey + (x - grey) * (1.0 + (2.0 * col(2) - 1.0) * config.saturation)
    x = tf.clip_by_value(x, 0.0, 255.0)
    if config.occlusion:
        size = tf.cast(tf.shape(x)[1], tf.float32)
        w, h = col(3) * config.max_occlusion * size, col(4) * config.max_occlusion * size
        x0, y0 = col(5) * (size - w), col(6) * (size - h)
        xs = tf.reshape(tf.range(size), [1, 1, -1, 1])
        ys = tf.reshape(tf.range(size), [1, -1, 1, 1])
        inside = (xs >= x0) & (xs < x0 + w) & (ys >= y0) & (ys < y0 + h) & (col(7) < config.occlusion)
        x = tf.where(inside, col(8) * 255.0, x)
    return x
