"""Training throughput of the joint FaceModel (images/s per `fit` step): float32, mixed precision and XLA,
and whether the input pipeline keeps up.

    python benchmarks/train_throughput.py [--batch 32] [--steps 10]

Default model: MobileNetV1 x0.5 at 120 px with all heads (250 identities, ArcFace) and the default
joint loss, on in-memory synthetic batches (so the step is timed, not the input). On every device found
(CPU, and the first GPU when there is one) it times float32, the device's mixed policy (mixed_bfloat16
on CPU, mixed_float16 on GPU) and float32 with jit_compile=True in the same run. Then the augmented
hybrid pipeline (benchmarks/input_pipeline.py's TFRecords, 120 px) is timed alone on this host's CPUs:
it keeps up when its images/s are at least the step's.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import keras
import tensorflow as tf

from tfface.losses import JointLoss, LossConfig
from tfface.models.face_model import FaceModel
from tfface.training.synthetic import synthetic_dataset
from tfface.training.trainer import build_geometry

MODES = (("float32", False), ("mixed", False), ("float32", True))  # (precision, XLA)


def images_per_second(device: str, policy: str, batch: int, steps: int, jit: bool) -> float:
    keras.mixed_precision.set_global_policy(policy)
    try:
        with tf.device(device):
            keras.utils.set_random_seed(0)
            model = FaceModel.from_preset(num_ids=250)
            geometry = build_geometry(model.image_size)
            model.compile(optimizer=keras.optimizers.AdamW(1e-4), jit_compile=jit,
                          joint_loss=JointLoss(LossConfig(id_consistency=0.001), geometry))
            data = synthetic_dataset(geometry, batch, 4, num_ids=250).repeat().prefetch(2)
            model.fit(data, steps_per_epoch=3, epochs=1, verbose=0, shuffle=False)  # tracing and warm-up
            start = time.perf_counter()
            model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
            return batch * steps / (time.perf_counter() - start)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def input_images_per_second(batch: int, batches: int) -> float:
    """The augmented hybrid pipeline alone (input_pipeline.py's shards), images/s."""
    from input_pipeline import face_records, images_per_second as pipeline_rate  # benchmarks/ is on sys.path

    from tfface.data.pipeline import PipelineConfig, SourceConfig, build_hybrid_dataset
    from tfface.data.records import write_shards

    with tempfile.TemporaryDirectory() as tmp:
        records, _ = face_records(Path(tmp))
        write_shards(records, Path(tmp) / "shards", shard_size=100, progress=False)
        config = PipelineConfig([SourceConfig([str(Path(tmp) / "shards" / "*.tfrecord")], batch)])
        return pipeline_rate(build_hybrid_dataset(config), batch, batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    devices = [("CPU", "/CPU:0", "mixed_bfloat16")]
    if tf.config.list_logical_devices("GPU"):
        devices.append((tf.config.experimental.get_device_details(
            tf.config.list_physical_devices("GPU")[0]).get("device_name", "GPU"), "/GPU:0", "mixed_float16"))
    print(f"batch {args.batch}, {args.steps} timed steps\n")
    print("| device | precision | XLA | images/s | ms/step | ratio vs float32 |\n|---|---|---|---|---|---|")
    rates = {}
    for name, device, mixed in devices:
        for precision, jit in MODES:
            policy = mixed if precision == "mixed" else precision
            rate = images_per_second(device, policy, args.batch, args.steps, jit)
            rates[name, policy, jit] = rate
            base = rates[name, "float32", False]
            print(f"| {name} | {policy} | {'yes' if jit else 'no'} | {rate:.1f} | {1000 * args.batch / rate:.0f} "
                  f"| {rate / base:.2f} |", flush=True)
    supply = input_images_per_second(args.batch, 10)
    fastest = max(rates.values())
    print(f"\nInput pipeline (augmented TFRecords, this host's {__import__('os').cpu_count()} CPU cores): "
          f"{supply:.0f} images/s = {1000 * args.batch / supply:.0f} ms per batch; fastest step "
          f"{1000 * args.batch / fastest:.0f} ms: the input {'keeps up' if supply >= fastest else 'is the bottleneck'} "
          f"({supply / fastest:.2f}x the step's rate)")


if __name__ == "__main__":
    main()
