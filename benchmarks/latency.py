"""Milliseconds per face of each stage of `tfface reconstruct`, on CPU, with 1 and 2 threads.

    python benchmarks/latency.py [--image examples/trump_hillary.jpg] [--repeats 50]

Each thread count runs in a fresh subprocess, because TensorFlow fixes its thread pools at start-up.
Stages: BlazeFace detection (per image), crop + normalise, backbone + head (one face, called as a
compiled tf.function, as a served model would be), and decoding 62 params to landmarks and pose.
The ratio column compares each stage with the backbone + head of the same run.
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


def measure(image_path: str, repeats: int) -> dict[str, float]:
    import tensorflow as tf

    from tfface.morphable.crop import roi_from_box
    from tfface.inference.reconstructor import FaceReconstructor
    from tfface.io.images import read_image

    image = read_image(image_path)
    rec = FaceReconstructor()
    detections = rec.detector.detect(image)
    if not detections:
        raise SystemExit(f"{image_path}: no face found")
    roi = roi_from_box(detections[0].box)[None]
    crops = rec.preset.preprocessor(image, roi)
    model = tf.function(lambda x: rec.preset.model(x, training=False))
    outputs = model(crops).numpy()
    return {
        "detector (per image)": _time_ms(lambda: rec.detector.detect(image), repeats),
        "crop + normalise": _time_ms(lambda: rec.preset.preprocessor(image, roi), repeats),
        "backbone + head": _time_ms(lambda: model(crops).numpy(), repeats),
        "decode (params -> 68 pts, pose)": _time_ms(lambda: rec.decoder(outputs, roi), repeats),
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
        print(json.dumps(measure(args.image, args.repeats)))
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
            ms, base = results[n][stage], results[n]["backbone + head"]
            cells += [f"{ms:.2f}", f"{ms / base:.2f}x"]
        print(f"| {stage} | " + " | ".join(cells) + " |")
    total = {n: sum(r.values()) for n, r in results.items()}
    print("| total, one face | " + " | ".join(f"{total[n]:.2f} | " for n in args.threads) + "|")


if __name__ == "__main__":
    main()
