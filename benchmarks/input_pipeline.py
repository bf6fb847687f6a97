"""Input pipeline throughput: TFRecord shards vs raw JPEG folders, against one training step.

    python benchmarks/input_pipeline.py [--batch 64] [--batches 20] [--service-workers 1 2]

Faces: the AFLW2000-3D sample in ../shared/data (450x450 photos, crop boxes from their landmarks), or
synthetic 450x450 photos when it is absent. Both paths run the same tf.data shape (parallel decode,
AUTOTUNE, prefetch) and end in the model's 120x120 BGR normalised input:
- TFRecords: `tfface data convert`-style shards (160 px crops with margin) -> build_hybrid_dataset with
  the default augmentation (flip, rotation, scale, shift, photometric, occlusion) and all label updates;
- raw JPEG: read_file + decode of the full photo + crop_and_resize to the 3DDFA box, no augmentation;
- the same augmented TFRecord pipeline through the tf.data service (tfface.data.service) with 1 and 2
  workers started in this process: on one host they share its cores, so this shows the service's
  overhead; its gain comes from workers on other hosts.
Then one training step (forward + backward + AdamW update) of the default 62-param regressor at the
same batch on this CPU. Prints a markdown table and the ratios.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import cv2
import keras
import numpy as np
import tensorflow as tf

from tfface.data import service
from tfface.data.pipeline import PipelineConfig, SourceConfig, build_hybrid_dataset
from tfface.data.records import FaceRecord, write_shards

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "aflw2000_3d"


def face_records(tmp: Path) -> tuple[list[FaceRecord], str]:
    if SHARED.is_dir():
        from tfface.data import mat3d

        return mat3d.mat3d_records(mat3d.aflw2000_pairs(SHARED), "aflw2000"), "AFLW2000-3D sample (300 photos, 450x450)"
    from tfface.data.synthetic import render_landmarks, synthetic_params, landmarks_from_params

    landmarks = landmarks_from_params(synthetic_params(300, 450, seed=0), 450)
    records = []
    for i, lm in enumerate(landmarks):
        path = tmp / f"face_{i:03d}.jpg"
        cv2.imwrite(str(path), render_landmarks(lm, 450, seed=i)[..., ::-1])
        records.append(FaceRecord(image=path, source="synthetic", landmarks=lm))
    return records, "synthetic photos (300, 450x450)"


def raw_jpeg_dataset(records: list[FaceRecord], batch: int) -> tf.data.Dataset:
    paths = [str(r.image) for r in records]
    boxes = np.stack([r.crop_box() for r in records]).astype(np.float32)

    def load(path, box):
        image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        size = tf.cast(tf.shape(image)[:2], tf.float32)
        norm = tf.stack([box[1] / size[0], box[0] / size[1], box[3] / size[0], box[2] / size[1]])
        crop = tf.image.crop_and_resize(tf.cast(image, tf.float32)[None], norm[None], [0], [120, 120])[0]
        return (crop[..., ::-1] - 127.5) / 128.0

    ds = tf.data.Dataset.from_tensor_slices((paths, boxes)).shuffle(len(paths), seed=0).repeat()
    return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def images_per_second(ds: tf.data.Dataset, batch: int, batches: int) -> float:
    it = iter(ds)
    for _ in range(3):  # warm-up: tracing, file caches, AUTOTUNE
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batch * batches / (time.perf_counter() - start)


def service_images_per_second(config: PipelineConfig, workers: int, batch: int, batches: int) -> float:
    with service.local_service(workers) as dispatcher:
        served = service.distribute(build_hybrid_dataset(service.servable(config)), dispatcher.target)
        return images_per_second(served, batch, batches)


def train_step_ms(batch: int, steps: int) -> float:
    from tfface.models.param_regressor import ParamRegressor
    from tfface.models.presets import DEFAULT_PRESET

    model = ParamRegressor.from_preset(DEFAULT_PRESET)
    optimizer = keras.optimizers.AdamW(1e-4)
    x = tf.random.normal([batch, 120, 120, 3])
    y = tf.random.normal([batch, 62])

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step().numpy()
    return 1000 * (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--service-workers", type=int, nargs="*", default=[1, 2],
                        help="tf.data service rows: local worker counts (none: skip)")
    args = parser.parse_args()
    print(f"batch {args.batch}; {os.cpu_count()} cores\n\n| path | images/s | ms per batch |\n|---|---:|---:|", flush=True)

    def row(name: str, rate: float) -> None:
        print(f"| {name} | {rate:.0f} | {1000 * args.batch / rate:.1f} |", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        records, what = face_records(Path(tmp))
        write_shards(records, Path(tmp) / "shards", shard_size=100, progress=False)
        config = PipelineConfig([SourceConfig([str(Path(tmp) / "shards" / "*.tfrecord")], args.batch)])
        for n in args.service_workers:
            row(f"augmented pipeline via tf.data service, {n} local worker(s)",
                service_images_per_second(config, n, args.batch, args.batches))
        tfrecord = images_per_second(build_hybrid_dataset(config), args.batch, args.batches)
        row("TFRecords + augmentation + labels (tfface.data.pipeline), in-process", tfrecord)
        graph = images_per_second(build_hybrid_dataset(service.servable(config)), args.batch, args.batches)
        row("the same with the graph-only warp the service runs, in-process", graph)
        plain = images_per_second(build_hybrid_dataset(config, training=False), args.batch, args.batches)
        row("TFRecords, no augmentation (validation path)", plain)
        raw = images_per_second(raw_jpeg_dataset(records, args.batch), args.batch, args.batches)
        row("raw JPEG photos, decode + crop only", raw)
    step_rate = 1000 * args.batch / train_step_ms(args.batch, args.steps)
    row("train step, 62-param regressor fwd+bwd (this CPU)", step_rate)
    print(f"\nFaces: {what}. TFRecords / raw JPEG (both without augmentation): {plain / raw:.2f}x; with "
          f"augmentation: {tfrecord / raw:.2f}x; augmented pipeline / CPU train step: {tfrecord / step_rate:.2f}x")

if __name__ == "__main__":
    main()
