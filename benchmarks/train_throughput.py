"""Training throughput of the joint FaceModel (images/s per `fit` step), float32 vs mixed precision.

    python benchmarks/train_throughput.py [--batch 32] [--steps 20] [--jit]

Default model: MobileNetV1 x0.5 at 120 px with all heads (250 identities, ArcFace) and the default
joint loss, on synthetic batches of the tfface.data contract. On every device found (CPU, and the
first GPU when there is one) it times float32 and the device's mixed policy (mixed_bfloat16 on CPU,
mixed_float16 on GPU) in the same run and prints the ratio to float32 on that device.
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np
import tensorflow as tf

from tfface.losses import JointLoss, LossConfig
from tfface.models.face_model import FaceModel
from tfface.training.synthetic import synthetic_dataset
from tfface.training.trainer import build_geometry


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--jit", action="store_true", help="XLA-compile the train step")
    args = parser.parse_args()
    devices = [("CPU", "/CPU:0", "mixed_bfloat16")]
    if tf.config.list_logical_devices("GPU"):
        devices.append((tf.config.experimental.get_device_details(
            tf.config.list_physical_devices("GPU")[0]).get("device_name", "GPU"), "/GPU:0", "mixed_float16"))
    print(f"batch {args.batch}, {args.steps} timed steps, jit_compile={args.jit}\n")
    print("| device | precision | images/s | ratio vs float32 |\n|---|---|---|---|")
    for name, device, mixed in devices:
        base = images_per_second(device, "float32", args.batch, args.steps, args.jit)
        print(f"| {name} | float32 | {base:.1f} | 1.00 |", flush=True)
        fast = images_per_second(device, mixed, args.batch, args.steps, args.jit)
        print(f"| {name} | {mixed} | {fast:.1f} | {fast / base:.2f} |", flush=True)


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
