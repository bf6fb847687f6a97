"""Whole-process throughput of `tfface reconstruct` against the TensorFlow-free edge pipeline, on the
same photos, in one run (so the ratio holds on a shared, noisy CPU), plus `tfface --help` and one photo.

    python benchmarks/reconstruct_throughput.py [--photos ../shared/data/aflw2000_3d/AFLW2000] [--repeats 2]

Every row is a fresh process (start-up included), timed wall-clock; the best of `--repeats` is shown.
The ratio column divides by the edge pipeline's time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PHOTOS = REPO.parent / "shared" / "data" / "aflw2000_3d" / "AFLW2000"
SAMPLE = REPO / "examples" / "trump_hillary.jpg"

EDGE = """
import sys
from pathlib import Path
from mobile_demo.edge.io import read_rgb
from mobile_demo.edge.pipeline import EdgePipeline
pipe = EdgePipeline()
files = sorted(p for p in Path(sys.argv[1]).rglob('*') if p.suffix.lower() in ('.jpg', '.jpeg', '.png'))
faces = sum(len(pipe(read_rgb(p))) for p in files)
print(len(files), faces)
"""


def wall(cmd: list[str], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photos", type=Path, default=PHOTOS)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    py = [sys.executable]
    with tempfile.TemporaryDirectory() as out:
        rows = [
            ("edge pipeline (LiteRT, NumPy), whole process", py + ["-c", EDGE, str(args.photos)]),
            ("tfface reconstruct DIR --no-overlay", py + ["-m", "tfface", "reconstruct", str(args.photos), "-o", out,
                                                          "--no-overlay"]),
            ("tfface reconstruct DIR (overlays)", py + ["-m", "tfface", "reconstruct", str(args.photos), "-o", out]),
            ("tfface --help", py + ["-m", "tfface", "--help"]),
            ("tfface reconstruct one.jpg -o out", py + ["-m", "tfface", "reconstruct", str(SAMPLE), "-o", out]),
        ]
        times = [(name, wall(cmd, args.repeats)) for name, cmd in rows]
    base = times[0][1]
    n = len([f for f in args.photos.rglob("*") if f.suffix.lower() in (".jpg", ".jpeg", ".png")])
    print(f"{n} photos in {args.photos}; best of {args.repeats}, wall-clock seconds per whole process\n")
    print("| run | s | vs edge |\n|---|---|---|")
    for name, t in times:
        print(f"| {name} | {t:.2f} | {t / base:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
