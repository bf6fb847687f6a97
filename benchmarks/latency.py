"""Milliseconds per face of each stage of `tfface reconstruct`, on CPU, with 1 and 2 threads.

    python benchmarks/latency.py [--image examples/trump_hillary.jpg] [--repeats 50]

Each thread count runs in a fresh subprocess, because TensorFlow fixes its thread pools at start-up.
Stages as `tfface reconstruct` runs them by default: BlazeFace detection (per image, LiteRT), crop, the
network (one face, the preset's model.tflite on LiteRT) and the NumPy decode of 62 params to landmarks and
pose; the Keras network (tf.function) is timed beside them for reference. The ratio column compares each
stage with the LiteRT network of the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _time_ms(fn, repeats: int) -> float:
    fn()  # warm-up: tracing, allocation
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return 1000.0 * times[len(times) // 2]  # median


def measure(image_path: str, repeats: int, threads: int) -> dict[str, float]:
    """The stages `tfface reconstruct` runs by default (the preset's TFLite file on LiteRT, NumPy decode),
    and the Keras network (tf.function) beside them for reference."""
    import tensorflow as tf

    from tfface.inference.face_path import crops_at
    from tfface.inference.reconstructor import FaceReconstructor
    from tfface.io.images import read_image
    from tfface.morphable.crop import roi_from_box
    from tfface.runtimes import KerasRunner, load_runner

    image = read_image(image_path)
    rec = FaceReconstructor(load_runner("tfface_mb05_3ddfa", num_threads=threads))
    detections = rec.detector.detect(image)
    if not detections:
        raise SystemExit(f"{image_path}: no face found")
    roi = roi_from_box(detections[0].box)[None]
    crops = crops_at(image, roi, rec.runner.image_size)
    params = rec.runner(crops)["params"]
    keras_runner = KerasRunner("tfface_mb05_3ddfa")
    x = keras_runner.preset.preprocessor.normalize(crops)
    model = tf.function(lambda t: keras_runner.preset.model(t, training=False))
    return {
        "detector (per image)": _time_ms(lambda: rec.detector.detect(image), repeats),
        "crop": _time_ms(lambda: crops_at(image, roi, rec.runner.image_size), repeats),
        "network (LiteRT, the default)": _time_ms(lambda: rec.runner(crops), repeats),
        "decode (params -> 68 pts, pose)": _time_ms(lambda: rec.decoder.landmarks_pose(params, roi), repeats),
        "network (Keras tf.function, reference)": _time_ms(lambda: model(x).numpy(), repeats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", default=str(REPO / "examples" / "trump_hillary.jpg"))
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.child)
        tf.config.threading.set_inter_op_parallelism_threads(1)  # one graph at a time
        print(json.dumps(measure(args.image, args.repeats, args.child)))
        return

    results = {}
    for n in args.threads:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", OMP_NUM_THREADS=str(n), CUDA_VISIBLE_DEVICES="")
        out = subprocess.run([sys.executable, __file__, "--image", args.image, "--repeats", str(args.repeats),
                              "--child", str(n)], env=env, capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(f"benchmark with {n} threads failed:\n{out.stderr[-3000:]}")
        results[n] = json.loads(out.stdout.strip().splitlines()[-1])

    stages = list(next(iter(results.values())))
    head = "| stage | " + " | ".join(f"{n} thread{'s' * (n > 1)} ms | ratio" for n in args.threads) + " |"
    print(head)
    print("|" + "---|" * (1 + 2 * len(args.threads)))
    for stage in stages:
        cells = []
        for n in args.threads:
            ms, base = results[n][stage], results[n]["network (LiteRT, the default)"]
            cells += [f"{ms:.2f}", f"{ms / base:.2f}x"]
        print(f"| {stage} | " + " | ".join(cells) + " |")
    total = {n: sum(v for k, v in r.items() if "reference" not in k) for n, r in results.items()}
    print("| total, one face | " + " | ".join(f"{total[n]:.2f} | " for n in args.threads) + "|")


if __name__ == "__main__":
    main()
