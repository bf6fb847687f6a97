"""Milliseconds per face for every runtime of one `tfface export`: Keras, SavedModel, TFLite
fp32/fp16/int8/int16x8 and ONNX Runtime, at 1 and 2 threads, batch 1, with ratios against Keras (same run).

    python benchmarks/export_latency.py EXPORT_DIR [--preset NAME] [--repeats 200]

Prints a markdown table. Keras and the SavedModel run in TensorFlow, whose thread pools are set once
per process: run the script once per thread count for them (`--threads 1` then `--threads 2`); TFLite
and ONNX Runtime take the count per session. TFLite runs with its default XNNPACK delegate; rows marked
"no XNNPACK" use TFLite's own kernels only (XNNPACK has no int16 kernels, so int16x8 runs on TFLite's
reference int16 kernels either way).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("export_dir", type=Path, help="a `tfface export` output folder")
    p.add_argument("--preset", default="tfface_mb05_3ddfa", help="the Keras baseline preset")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    return p.parse_args()


def time_ms(fn, crop, repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        fn(crop)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(crop)
        times.append(time.perf_counter() - t)
    times.sort()
    return 1000.0 * times[len(times) // 2]  # median: robust to other processes on a shared CPU


def main() -> None:
    args = parse_args()
    tf_threads = args.threads[0] if len(args.threads) == 1 else None
    import tensorflow as tf

    if tf_threads:
        tf.config.threading.set_intra_op_parallelism_threads(tf_threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    import numpy as np

    from tfface.runtimes import KerasRunner, OnnxRunner, SavedModelRunner, TFLiteRunner

    md = json.loads((args.export_dir / "metadata.json").read_text())
    files = {k: args.export_dir / v for k, v in md["files"].items()}
    s = int(md["input"]["image_size"])
    crop = np.random.default_rng(0).integers(0, 256, (1, s, s, 3), dtype=np.uint8)
    rows: dict[str, dict[int, float]] = {}
    tf_label = f"{tf_threads}" if tf_threads else f"TF default ({os.cpu_count()} cores)"
    keras = KerasRunner(args.preset)
    rows["Keras (tf.function)"] = {t: time_ms(keras, crop, args.repeats, args.warmup) for t in [0]}
    if "saved_model" in files:
        sm = SavedModelRunner(files["saved_model"])
        rows["SavedModel (serving_default)"] = {0: time_ms(sm, crop, args.repeats, args.warmup)}
    for fmt, cls in (("tflite_fp32", TFLiteRunner), ("tflite_fp16", TFLiteRunner), ("tflite_int8", TFLiteRunner),
                     ("tflite_int16x8", TFLiteRunner), ("onnx", OnnxRunner)):
        if fmt in files:
            rows[fmt] = {t: time_ms(cls(files[fmt], num_threads=t), crop, args.repeats, args.warmup)
                         for t in args.threads}
    for fmt in ("tflite_int8", "tflite_int16x8"):  # is XNNPACK what makes a quantised file fast?
        if fmt in files:
            rows[f"{fmt} (no XNNPACK)"] = {
                t: time_ms(TFLiteRunner(files[fmt], num_threads=t, xnnpack=False), crop, args.repeats, args.warmup)
                for t in args.threads}
    base = rows["Keras (tf.function)"][0]
    print(f"Batch 1, median of {args.repeats} runs; TensorFlow threads: {tf_label}; "
          f"ratio = Keras ms / runtime ms (higher is faster).\n")
    print("| runtime | " + " | ".join(f"{t} thread{'s' if t > 1 else ''} ms (x Keras)" for t in args.threads) + " |")
    print("|---|" + "---|" * len(args.threads))
    for name, by_t in rows.items():
        cells = []
        for t in args.threads:
            ms = by_t.get(t, by_t.get(0))
            cells.append(f"{ms:.2f} ({base / ms:.2f}x)" + ("" if t in by_t else " †"))
        print(f"| {name} | " + " | ".join(cells) + " |")
    if "tflite_int16x8" in rows and "tflite_int8" in rows:
        t = args.threads[0]
        print(f"\ntflite_int16x8 takes {rows['tflite_int16x8'][t] / rows['tflite_int8'][t]:.1f}x the time of "
              f"tflite_int8 and {rows['tflite_int16x8'][t] / rows['tflite_fp32'][t]:.1f}x that of tflite_fp32 "
              f"({t} thread{'s' if t > 1 else ''}): XNNPACK has no int16x8 kernels, so it runs on TFLite's "
              "reference int16 kernels.")
    print("\n† TensorFlow runtimes: one measurement with the process-wide TensorFlow threads "
          f"({tf_label}); pass --threads N to pin them.")


if __name__ == "__main__":
    main()
