"""The in-batch hybrid tf.data pipeline: several TFRecord sources, fixed per-batch quotas, one batch.

Every batch holds exactly `quota` samples of each source (e.g. 32 3DMM + 16 attribute + 16 identity),
shuffled inside the batch. Each source is an independent infinite stream (files shuffled and
repeated, records shuffled), so small and large datasets mix at the configured rate, not their size
ratio. All randomness is stateless and keyed on (seed, source, element index): the same seed gives
the same batches. Identity sources can be drawn as P persons x K images.

Elements follow the training batch contract: images float32 [B, S, S, 3] through the model's
preprocessor convention, labels dict with params / landmarks / attributes / identity and has_* masks.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
import yaml

from tfface.data import transforms
from tfface.data.augment import AugmentConfig, augment_pixels, photometric_draws, random_affine
from tfface.data.records import MASK_KEYS, parse_example
from tfface.errors import TffaceError

AUTOTUNE = tf.data.AUTOTUNE


@dataclass
class SourceConfig:
    """One TFRecord source and how many samples of it every batch holds."""

    files: list[str]  # shard paths or globs (written by `tfface data convert` / write_shards)
    quota: int  # samples per batch
    name: str = ""  # for messages; defaults to the first pattern
    task: str = ""  # what this source is for (params | landmarks | attributes | identity | pose | teacher); informative
    identities_per_batch: int = 0  # P x K sampling: quota = P * images_per_identity
    images_per_identity: int = 0  # K (0: plain sampling)
    augment: bool = True
    shuffle_buffer: int = 2048
    cache: bool = False  # keep the parsed (still JPEG-encoded) records in memory after the first pass

    def __post_init__(self) -> None:
        if self.quota <= 0:
            raise ValueError(f"quota must be > 0. Received: quota={self.quota} ({self.files})")
        if self.images_per_identity and self.quota % self.images_per_identity:
            raise ValueError(f"quota {self.quota} must be a multiple of images_per_identity "
                             f"{self.images_per_identity} (P persons x K images)")
        if self.task and self.task not in MASK_KEYS:  # the tasks records carry a mask for
            raise ValueError(f"task must be one of {list(MASK_KEYS)}. Received: task={self.task!r}")
        self.name = self.name or (self.files[0] if self.files else "?")


@dataclass
class PipelineConfig:
    sources: list[SourceConfig]
    validation: list[SourceConfig] = field(default_factory=list)  # not augmented; empty: no validation
    image_size: int = 120
    channel_order: str = "bgr"  # the model's preprocessor convention
    offset: float = 127.5
    scale: float = 1.0 / 128.0
    seed: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    include_pose: bool = False  # also emit labels["pose"] (B, 3) and "has_pose"
    symmetry_x: float | None = None  # model-space mirror plane; None: from the 68-point BFM asset
    parallel_calls: int = -1  # -1: AUTOTUNE
    warp: str = "opencv"  # opencv (cv2.warpAffine via numpy_function, ~10x faster on CPU) | tf (pure graph)

    @property
    def batch_size(self) -> int:
        return sum(s.quota for s in self.sources)


def load_pipeline_config(path: str | os.PathLike) -> PipelineConfig:
    """A YAML file -> PipelineConfig; unknown keys are rejected with their path; relative file globs are
    taken relative to the YAML file's folder."""
    p = Path(path)
    if not p.is_file():
        raise TffaceError(f"{p}: pipeline config not found")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise TffaceError(f"{p}: not valid YAML ({e})") from None
    try:
        config = _from_dict(PipelineConfig, data, "")
    except (TypeError, ValueError) as e:
        raise TffaceError(f"{p}: {e}") from None
    for s in (*config.sources, *config.validation):
        s.files = [f if os.path.isabs(f) else str(p.parent / f) for f in s.files]
    return config


def _from_dict(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"'{prefix or 'top level'}' must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ValueError(f"unknown key '{prefix}{unknown[0]}' (known: {sorted(hints)})")
    kwargs = {}
    for key, value in data.items():
        hint, args = hints[key], typing.get_args(hints[key])
        if dataclasses.is_dataclass(hint):
            value = _from_dict(hint, value, f"{prefix}{key}.")
        elif typing.get_origin(hint) is list and args and dataclasses.is_dataclass(args[0]):
            value = [_from_dict(args[0], v, f"{prefix}{key}[{i}].") for i, v in enumerate(value or [])]
        kwargs[key] = value
    return cls(**kwargs)


def resolve_files(source: SourceConfig) -> list[str]:
    files = sorted({f for pattern in source.files for f in glob.glob(os.path.expanduser(pattern))})
    if not files:
        raise TffaceError(f"source '{source.name}': no TFRecord files match {source.files}")
    return files


def _symmetry_x(config: PipelineConfig) -> float:
    if config.symmetry_x is not None:
        return config.symmetry_x
    from tfface.models.presets import morphable_asset

    return transforms.model_symmetry_x(morphable_asset("bfm_3ddfa_68").mean)


def source_dataset(source: SourceConfig, config: PipelineConfig, index: int, training: bool,
                   start: int = 0) -> tf.data.Dataset:
    """One source: an infinite stream of decoded, augmented, normalised samples, batched by its quota;
    `start`: the first batch (earlier ones are skipped as parsed records, before any JPEG decode)."""
    files = resolve_files(source)
    seed = config.seed * 1000 + index
    ds = tf.data.Dataset.from_tensor_slices(files)
    if training:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    # A truncated or corrupt shard ends that file's stream with a logged warning, never the epoch.
    ds = ds.interleave(lambda f: tf.data.TFRecordDataset(f).ignore_errors(log_warning=True),
                       cycle_length=min(len(files), 8), num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = ds.map(parse_example, num_parallel_calls=AUTOTUNE, deterministic=True).ignore_errors(log_warning=True)
    if source.cache:
        ds = ds.cache()
    if training:
        ds = ds.shuffle(source.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.repeat()
    if source.images_per_identity:
        k = source.images_per_identity
        ds = ds.filter(lambda ex: ex["identity"] >= 0)
        ds = ds.group_by_window(key_func=lambda ex: tf.cast(ex["identity"], tf.int64),
                                reduce_func=lambda _, w: w.batch(k, drop_remainder=True), window_size=k).unbatch()
    sym = _symmetry_x(config)
    augment = config.augment if (training and source.augment) else None
    calls = AUTOTUNE if config.parallel_calls < 0 else config.parallel_calls
    seed_t = tf.constant(seed, tf.int64)
    first = start * source.quota  # the per-sample draws are keyed on the index, so skipping keeps them
    ds = ds.skip(first).enumerate(first).map(lambda i, ex: decode_example(ex, config, augment, tf.stack([seed_t, i])),
                            num_parallel_calls=calls, deterministic=True)
    ds = ds.ignore_errors(log_warning=True)  # a record whose JPEG does not decode is skipped, and logged
    # Warping, jitter and label updates run once per batch (vectorised), not per sample.
    ds = ds.batch(source.quota, drop_remainder=True)
    return ds.map(lambda ex: finish_batch(ex, config, augment, sym), num_parallel_calls=calls, deterministic=True)


def decode_example(ex: dict[str, tf.Tensor], config: PipelineConfig, augment: AugmentConfig | None,
                   seed: tf.Tensor) -> dict[str, tf.Tensor]:
    """Per sample: decode the stored crop and draw its geometric transform (stored -> output crop).

    All shards of one source must share one crop_size (they are batched before warping)."""
    size = config.image_size
    out = dict(ex)
    out["image"] = tf.io.decode_jpeg(ex["image"], channels=3)
    stored = tf.cast(tf.shape(out["image"])[0], tf.float32)
    base = tf.cast(size, tf.float32) * ex["margin"] / stored  # central 1/margin of the stored crop
    if augment is not None:
        affine = random_affine(augment, seed, base, stored, float(size))
    else:
        affine = transforms.similarity(base[None], [0.0], [False], tf.fill([2], (stored - 1.0) / 2.0),
                                            [(size - 1.0) / 2.0] * 2)
    out["affine"] = affine[0]
    out["stored"] = stored
    out["photometric"] = photometric_draws(seed)
    return out


def finish_batch(ex: dict[str, tf.Tensor], config: PipelineConfig, augment: AugmentConfig | None,
                 symmetry_x: float) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """A batch of decoded samples -> (network input (B, S, S, 3), labels in the output crops)."""
    size = config.image_size
    affine = ex["affine"]
    pixels = warp_images(ex["image"], affine, size, config.warp)
    if augment is not None:
        pixels = augment_pixels(augment, pixels, ex["photometric"])
    if config.channel_order == "bgr":
        pixels = pixels[..., ::-1]
    pixels = (pixels - config.offset) * config.scale
    pixels.set_shape([None, size, size, 3])

    labels_affine = to_decode_frame(affine, ex["roi"], ex["margin"], ex["stored"])
    labels = {
        "params": transforms.transform_params(ex["params"], labels_affine, ex["stored"][0], size, symmetry_x),
        "landmarks": transforms.transform_landmarks(ex["landmarks"], labels_affine),
        "attributes": ex["attributes"],
        "identity": ex["identity"],
        "teacher": ex["teacher"],
    }
    if config.include_pose:
        labels["pose"] = transforms.transform_pose(ex["pose"], affine)
    for key in list(labels):
        mask = ex[MASK_KEYS[key]]
        labels[MASK_KEYS[key]] = mask
        expand = tf.reshape(mask, [-1] + [1] * (labels[key].shape.rank - 1)) > 0
        fill = tf.fill(tf.shape(labels[key]), tf.constant(-1 if key == "identity" else 0, labels[key].dtype))
        labels[key] = tf.where(expand, labels[key], fill)  # zero-filled (identity -1), never NaN
    return pixels, labels


def to_decode_frame(affine: tf.Tensor, roi: tf.Tensor, margin: tf.Tensor, stored: tf.Tensor) -> tf.Tensor:
    """Stored-crop index frame -> the output crop's 3DDFA decode frame (photo = x * p + roi corner, as
    `crop_to_image` maps it back, p = photo pixels per output pixel). Output pixel i is centred at photo
    (i + 0.5) p - 0.5 + corner, so decode x = index x + 0.5 / p - 0.5: labels shift by that amount."""
    photo_per_stored = (roi[:, 2] - roi[:, 0]) * margin / stored
    p = photo_per_stored / tf.sqrt(tf.abs(tf.linalg.det(affine[:, :, :2])))
    shift = 0.5 - 0.5 / p
    return tf.concat([affine[:, :, :2], affine[:, :, 2:] + shift[:, None, None]], axis=2)


def _cv2_warp(images: np.ndarray, affines: np.ndarray, size: int) -> np.ndarray:
    import cv2

    return np.stack([cv2.warpAffine(im, a, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
                     for im, a in zip(images, affines.astype(np.float64))]).astype(np.float32)


def warp_images(images: tf.Tensor, affine: tf.Tensor, size: int, backend: str = "opencv") -> tf.Tensor:
    """uint8 (B, H, W, 3) -> float32 (B, size, size, 3): out(p) = in(A^-1 p), bilinear, zeros outside.
    Both backends sample pixel index i at coordinate i (the labels' frame)."""
    if backend == "opencv":
        out = tf.numpy_function(lambda im, a: _cv2_warp(im, a, size), [images, affine], tf.float32, stateful=False)
        return tf.ensure_shape(out, [None, size, size, 3])
    if backend != "tf":
        raise TffaceError(f"warp must be 'opencv' or 'tf'. Received: {backend!r}")
    inverse = transforms.invert(affine)
    flat = tf.concat([tf.reshape(inverse, [-1, 6]), tf.zeros_like(inverse[:, 0, :2])], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.cast(images, tf.float32), transforms=flat, output_shape=[size, size],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT")


def build_hybrid_dataset(config: PipelineConfig, training: bool = True,
                         sources: list[SourceConfig] | None = None, start: int = 0) -> tf.data.Dataset:
    """Batches of sum(quota) samples with exactly each source's quota, shuffled inside the batch.

    `start` > 0 begins at that batch of the same stream (exact resume): batch `start` of this dataset
    equals batch `start` of the one built with start=0."""
    sources = config.sources if sources is None else sources
    if not sources:
        raise TffaceError("the pipeline config lists no sources")
    if config.channel_order not in ("rgb", "bgr"):
        raise TffaceError(f"channel_order must be 'rgb' or 'bgr'. Received: {config.channel_order!r}")
    streams = tuple(source_dataset(s, config, i, training, start) for i, s in enumerate(sources))
    batch_seed = config.seed * 1000 + 999

    def merge(step: tf.Tensor, batches: tuple) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        images = tf.concat([b[0] for b in batches], axis=0)
        labels = {k: tf.concat([b[1][k] for b in batches], axis=0) for k in batches[0][1]}
        if training:  # shuffle inside the batch so no sample position is tied to a source
            order = tf.argsort(tf.random.stateless_uniform([tf.shape(images)[0]], tf.stack([tf.cast(batch_seed, tf.int64), step])))
            images = tf.gather(images, order)
            labels = {k: tf.gather(v, order) for k, v in labels.items()}
        return images, labels

    ds = tf.data.Dataset.zip(streams).enumerate(start).map(merge, num_parallel_calls=AUTOTUNE, deterministic=True)
    options = tf.data.Options()
    options.deterministic = True
    return ds.prefetch(AUTOTUNE).with_options(options)


def build_train_val(config_path: str | os.PathLike | PipelineConfig, batch_size: int | None = None,
                    image_size: int | None = None, start: int = 0) -> tuple[tf.data.Dataset, tf.data.Dataset | None]:
    """What `tfface train` calls: (training batches, validation batches or None) from a pipeline YAML.

    `batch_size` must equal the sum of the training quotas (the quotas define the batch);
    `image_size` overrides the config's (the model's input size); `start`: the first training batch.
    """
    config = config_path if isinstance(config_path, PipelineConfig) else load_pipeline_config(config_path)
    if batch_size is not None and batch_size != config.batch_size:
        raise TffaceError(f"data.batch_size is {batch_size} but the pipeline quotas "
                          f"{[s.quota for s in config.sources]} sum to {config.batch_size}: make them agree")
    if image_size is not None:
        config = dataclasses.replace(config, image_size=image_size)
    train = build_hybrid_dataset(config, training=True, start=start)
    val = build_hybrid_dataset(config, training=False, sources=config.validation) if config.validation else None
    return train, val

