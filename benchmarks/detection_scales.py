"""Which face sizes each detector finds, and at what cost: the sample photo (two faces) shrunk onto
1600x1200 and 4000x3000 canvases, through BlazeFace short-range, full-range and `auto` (short-range,
then full-range + tiles where it finds nothing), all in one run.

    python benchmarks/detection_scales.py [--image examples/trump_hillary.jpg] [--repeats 5]

Prints a markdown table: faces found (of 2) and median ms per photo.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SCALES = (1.0, 0.5, 0.3, 0.2, 0.15, 0.1)
CANVASES = ((1200, 1600), (3000, 4000))


def canvas_with(image: np.ndarray, scale: float, size: tuple[int, int]) -> np.ndarray:
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.full((*size, 3), 90, np.uint8)
    y, x = min(size[0] // 3, size[0] - small.shape[0]), min(size[1] // 3, size[1] - small.shape[1])
    canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
    return canvas


def median_ms(fn, repeats: int) -> tuple[float, object]:
    result, times = fn(), []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times)), result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image", type=Path, default=REPO / "examples" / "trump_hillary.jpg")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tfface.detection import create_detector
    from tfface.io.images import read_image

    image = read_image(args.image)
    names = ("short", "full", "auto")
    detectors = {n: create_detector(n) for n in names}
    face_px = float(np.mean([d.box[2] - d.box[0] for d in detectors["short"].detect(image)]))
    print("| canvas | face px | " + " | ".join(f"{n}: found, ms" for n in names) + " |")
    print("|---|---|" + "---|" * len(names))
    for h, w in CANVASES:
        for scale in SCALES:
            canvas = canvas_with(image, scale, (h, w))
            cells = []
            for n in names:
                ms, found = median_ms(lambda d=detectors[n]: d.detect(canvas), args.repeats)
                cells.append(f"{len(found)}/2, {ms:.0f}")
            print(f"| {w}x{h} | {face_px * scale:.0f} | " + " | ".join(cells) + " |")
    for d in detectors.values():
        d.close()


if __name__ == "__main__":
    main()
