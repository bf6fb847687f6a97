"""Derive (and score) the MediaPipe 468 -> iBUG-68 mapping on AFLW2000-3D photos.

    python -m tfface.landmarks.calibrate ../shared/data/aflw2000_3d/AFLW2000 -o mapping.json

Even-numbered photos (in name order) with |yaw| <= 60 deg calibrate, odd-numbered photos are held
out; the held-out NME against pt3d_68 is printed per yaw bin.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tfface.landmarks.ibug_mapping import LandmarkMapping, derive_mapping, nme

YAW_BINS = ((0.0, 30.0), (30.0, 60.0), (60.0, 90.0))


def mediapipe_on_aflw2000(folder: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe points (M, 468, 3), ground truth (M, 68, 2), |yaw| (M,) for photos with a detection."""
    from tfface.data.mat3d import aflw2000_pairs, read_3d_mat
    from tfface.detection.blazeface import BlazeFaceDetector
    from tfface.io.images import read_image
    from tfface.landmarks.mediapipe_mesh import MediaPipeFaceMesh

    mesh, detector = MediaPipeFaceMesh(), BlazeFaceDetector("short")
    points, truth, yaw = [], [], []
    for image_path, mat_path in tqdm(aflw2000_pairs(folder), desc="mediapipe", unit="img"):
        label, image = read_3d_mat(mat_path), read_image(image_path)
        gt = label.landmarks[:, :2]
        found = detector.detect(image)
        if not found:
            continue
        det = min(found, key=lambda d: np.linalg.norm((d.box[:2] + d.box[2:]) / 2 - gt.mean(axis=0)))
        points.append(mesh.from_box(image, det.box, det.keypoints[:2]).points)
        truth.append(gt)
        yaw.append(abs(float(label.pose[0])))
    detector.close()
    return np.array(points), np.array(truth), np.array(yaw)


def calibrate(points: np.ndarray, truth: np.ndarray, yaw: np.ndarray, k: int = 3,
              max_yaw: float = 60.0) -> tuple[LandmarkMapping, dict[str, float]]:
    even = np.arange(len(points)) % 2 == 0
    mapping = derive_mapping(points[even & (yaw <= max_yaw)], truth[even & (yaw <= max_yaw)], k)
    err = nme(mapping(points[~even]), truth[~even]) * 100
    held_yaw = yaw[~even]
    scores = {f"nme_{lo:.0f}_{hi:.0f}": float(err[(held_yaw > lo) & (held_yaw <= hi)].mean()) for lo, hi in YAW_BINS}
    scores.update(nme_mean_of_bins=float(np.mean(list(scores.values()))), held_out=int((~even).sum()))
    return mapping, scores


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("-k", type=int, default=3, help="MediaPipe points per iBUG landmark")
    args = parser.parse_args(argv)
    mapping, scores = calibrate(*mediapipe_on_aflw2000(args.folder), k=args.k)
    mapping.save(args.output, note="derived by tfface.landmarks.calibrate on AFLW2000-3D; held-out NME % "
                 + json.dumps({k: round(v, 3) for k, v in scores.items()}))
    print(json.dumps(scores, indent=1))


if __name__ == "__main__":
    main()
