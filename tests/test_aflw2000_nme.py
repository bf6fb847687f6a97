"""68-point NME of the default model on the shared AFLW2000-3D images (skipped when they are absent).

NME = mean point-to-point 2D error / sqrt(w * h) of the ground-truth landmarks' box, per yaw bin.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
import scipy.io as sio

from conftest import shared_path
from tfface.morphable.crop import roi_from_landmarks
from tfface.io.images import read_image

pytestmark = pytest.mark.slow


def _samples():
    root = shared_path("aflw2000_3d")
    with open(root / "index.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for row in rows:
        image = read_image(root / "AFLW2000" / row["image"])
        gt = sio.loadmat(root / "AFLW2000" / row["image"].replace(".jpg", ".mat"))["pt3d_68"][:2].T
        yield row["yaw_bin"], image, gt


def _nme(pred: np.ndarray, gt: np.ndarray) -> float:
    w, h = gt.max(axis=0) - gt.min(axis=0)
    return float(np.linalg.norm(pred[:, :2] - gt, axis=1).mean() / np.sqrt(w * h))


def test_nme_with_ground_truth_crops_below_5_percent(reconstructor):
    by_bin: dict[str, list[float]] = {}
    for yaw_bin, image, gt in _samples():
        roi = roi_from_landmarks(gt)
        pred = reconstructor.predict_rois(image, roi[None]).landmarks[0]
        by_bin.setdefault(yaw_bin, []).append(_nme(pred, gt))
    means = {b: 100 * np.mean(v) for b, v in by_bin.items()}
    print("NME % (gt crops):", {b: round(m, 3) for b, m in sorted(means.items())})
    assert set(means) == {"0-30", "30-60", "60-90"}
    assert np.mean(list(means.values())) < 5.0
    assert means["0-30"] < means["60-90"]  # larger yaw is harder; a broken decode would not show this


def test_nme_with_detector_crops(reconstructor):
    by_bin: dict[str, list[float]] = {}
    missed = 0
    for yaw_bin, image, gt in _samples():
        faces = reconstructor(image)
        if not faces:
            missed += 1
            continue
        centre = (gt.min(axis=0) + gt.max(axis=0)) / 2
        face = min(faces, key=lambda f: np.linalg.norm((f.box[:2] + f.box[2:]) / 2 - centre))
        by_bin.setdefault(yaw_bin, []).append(_nme(face.landmarks, gt))
    means = {b: 100 * np.mean(v) for b, v in by_bin.items()}
    print("NME % (detector crops):", {b: round(m, 3) for b, m in sorted(means.items())}, "missed", missed)
    assert missed <= 6  # of 300
    assert np.mean(list(means.values())) < 5.0
