"""What the shipped joint preset's mirror-averaged branch costs: its packaged model.tflite beside the same
weights without mirror averaging, packaged in this run, on LiteRT (batch 1, one thread, interleaved).

    python benchmarks/mirror_cost.py [--preset tfface_mb05_joint] [--repeats 300]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def plain_copy(preset, folder: Path) -> Path:
    """The preset's weights with `mirror_average` off, saved and packaged as a preset folder."""
    from tfface.models.packaging import package_preset
    from tfface.models.presets import inference_copy, save_preset

    extra = {k: v for k, v in preset.config.items() if k not in ("task", "model", "preprocessor", "morphable_model")}
    save_preset(inference_copy(preset.model, mirror_average=False), folder, preset.param_stats, preset.preprocessor,
                preset.config.get("morphable_model", "bfm_3ddfa_68"), extra)
    package_preset(folder)
    return folder / "model.tflite"


def main() -> None:
    from tfface.litert import open_interpreter
    from tfface.models.presets import load_preset, preset_dir

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="tfface_mb05_joint")
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()
    preset = load_preset(args.preset)
    if not getattr(preset.model, "mirror_average", False):
        raise SystemExit(f"{args.preset}: its branch is not mirror-averaged; nothing to compare")
    with tempfile.TemporaryDirectory() as tmp:
        files = {"without mirror averaging": plain_copy(preset, Path(tmp) / "plain"),
                 "mirror-averaged (shipped)": preset_dir(args.preset) / "model.tflite"}
        size = preset.preprocessor.image_size
        crop = np.random.default_rng(0).integers(0, 256, (1, size, size, 3)).astype(np.uint8)
        runs = {}
        for name, path in files.items():
            it = open_interpreter(path, num_threads=1)
            d = it.get_input_details()[0]
            it.resize_tensor_input(d["index"], [1, size, size, 3])
            it.allocate_tensors()
            it.set_tensor(d["index"], crop.astype(d["dtype"]))
            it.invoke()  # warm-up
            runs[name] = (it, [])
        for _ in range(args.repeats):  # interleaved: load on the host hits both alike
            for it, times in runs.values():
                t0 = time.perf_counter()
                it.invoke()
                times.append(time.perf_counter() - t0)
    base = np.median(runs["without mirror averaging"][1])
    print("| network (LiteRT, batch 1, 1 thread) | median ms | vs without |\n|---|---|---|")
    for name, (_, times) in runs.items():
        print(f"| {name} | {1000 * np.median(times):.2f} | {np.median(times) / base:.2f}x |")


if __name__ == "__main__":
    main()
