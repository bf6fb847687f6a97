"""Video tracking in the edge app: detector every frame against detector every N frames with the crops
in between cut from the previous frame's landmarks (`tfface.inference.face_path.track_rois`), on the
synthetic camera-motion clips of `mobile_demo.smoothing_eval` (the sample photo and shared photos).

    python -m benchmarks.video_tracking [--every 10] [PHOTO ...]

Reports frames per second of the pipeline loop (one run, same clips) and the landmark error against the
known ground truth and against per-frame detection, in % of the face size (unsmoothed).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PHOTOS = [REPO / "examples" / "trump_hillary.jpg",
          *sorted((REPO.parent / "shared" / "data" / "identity_photos").glob("*/*.jp*g"))[:4]]


def run(pipeline, image: np.ndarray, motion) -> tuple[list, list, float]:
    from mobile_demo.smoothing_eval import face_size, synthetic_video, warp_points

    clean = pipeline(image)
    unit = float(np.mean([face_size(f.landmarks) for f in clean]))
    h, w = image.shape[:2]
    mats = motion.matrices((w / 2, h / 2), unit)
    truth = [np.stack([warp_points(m, f.landmarks) for m in mats]) for f in clean]
    frames = list(synthetic_video(image, mats, motion.noise, motion.seed))
    pipeline._previous, pipeline._since_detection = [], 0  # start the clip untracked
    t0 = time.perf_counter()
    raw = [[f.landmarks for f in pipeline(frame)] for frame in frames]
    return truth, raw, time.perf_counter() - t0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("photos", nargs="*", type=Path, default=PHOTOS)
    p.add_argument("--every", type=int, default=10)
    args = p.parse_args()
    from mobile_demo.edge.io import read_rgb
    from mobile_demo.edge.pipeline import EdgePipeline
    from mobile_demo.smoothing_eval import CameraMotion, _match, face_size

    motion = CameraMotion()
    rows = {}
    tracks = {}
    for every in (1, args.every):
        pipe = EdgePipeline(detect_every=every)
        seconds = frames = 0
        errs, per = [], []
        for path in args.photos:
            truth, raw, s = run(pipe, read_rgb(path), motion)
            seconds, frames = seconds + s, frames + len(raw)
            for gt in truth:
                track = [_match(faces, gt[t]) for t, faces in enumerate(raw)]
                per.append(track)
                errs += [np.linalg.norm(lm[:, :2] - gt[t], axis=-1).mean() / face_size(gt[0])
                         for t, lm in enumerate(track) if lm is not None]
        tracks[every] = per
        rows[every] = (frames / seconds, 100 * float(np.mean(errs)), sum(lm is None for t in per for lm in t))
    vs = [np.linalg.norm(a[:, :2] - b[:, :2], axis=-1).mean() / face_size(b)
          for ta, tb in zip(tracks[args.every], tracks[1]) for a, b in zip(ta, tb) if a is not None and b is not None]
    print(f"{len(args.photos)} clips of {motion.frames} frames (CameraMotion defaults), one run\n")
    print("| detector | fps | error vs truth (% face) | missed faces | vs per-frame detection (% face) |")
    print("|---|---|---|---|---|")
    for every, (fps, err, missed) in rows.items():
        other = "" if every == 1 else f"{100 * float(np.mean(vs)):.2f}"
        print(f"| every {every} frame{'s' * (every > 1)} | {fps:.1f} | {err:.2f} | {missed} | {other} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
