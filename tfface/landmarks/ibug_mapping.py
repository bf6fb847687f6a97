"""MediaPipe's 468 face-mesh points -> the iBUG-68 scheme, as fixed convex combinations.

Each iBUG landmark j is sum_k w_jk * p[i_jk] over K MediaPipe points. The table shipped in
tfface/assets/mediapipe/ibug68_from_mediapipe468.json was derived by `derive_mapping` (no table was
copied from elsewhere): on calibration photos with ground-truth 68 landmarks, both point sets are
normalised per photo (centre, sqrt of the ground-truth box area); for each j the K MediaPipe points
nearest the ground truth on average are the candidates, and their weights are the non-negative,
sum-to-one least-squares fit over all calibration photos.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from tfface.errors import DataFileError

MAPPING_FILE = "ibug68_from_mediapipe468.json"


@dataclass(frozen=True)
class LandmarkMapping:
    indices: np.ndarray  # (68, K) MediaPipe point ids
    weights: np.ndarray  # (68, K) convex weights

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """(..., 468, D) -> (..., 68, D)."""
        return np.einsum("jk,...jkd->...jd", self.weights, np.asarray(points)[..., self.indices, :])

    def save(self, path: str | os.PathLike, note: str = "") -> None:
        Path(path).write_text(json.dumps({"note": note, "indices": self.indices.tolist(),
                                          "weights": np.round(self.weights, 5).tolist()}))

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> "LandmarkMapping":
        path = Path(path) if path else Path(str(resources.files("tfface.assets") / "mediapipe" / MAPPING_FILE))
        try:
            data = json.loads(path.read_text())
            idx, w = np.asarray(data["indices"], np.int64), np.asarray(data["weights"], np.float64)
        except (OSError, ValueError, KeyError) as e:
            raise DataFileError(f"{path}: not a landmark mapping file ({e})") from e
        if idx.shape != w.shape or idx.shape[0] != 68 or idx.min() < 0 or idx.max() >= 468:
            raise DataFileError(f"{path}: indices/weights must be (68, K) with ids in 0..467")
        return cls(idx, w)


def _normalise(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    lo, hi = reference.min(axis=1), reference.max(axis=1)
    size = np.sqrt(np.prod(hi - lo, axis=-1))[:, None, None]
    return (points - reference.mean(axis=1, keepdims=True)) / size


def derive_mapping(mediapipe: np.ndarray, ground_truth: np.ndarray, k: int = 4) -> LandmarkMapping:
    """Calibration photos: MediaPipe points (M, 468, 2) and ground truth (M, 68, 2) in image pixels."""
    mp = _normalise(np.asarray(mediapipe, np.float64)[..., :2], ground_truth[..., :2])
    gt = _normalise(np.asarray(ground_truth, np.float64)[..., :2], ground_truth[..., :2])
    dist = np.linalg.norm(mp[:, :, None] - gt[:, None], axis=-1).mean(axis=0)  # (468, 68)
    indices = np.argsort(dist, axis=0)[:k].T  # (68, K)
    weights = np.zeros(indices.shape)
    for j in range(68):
        a = mp[:, indices[j]].transpose(0, 2, 1).reshape(-1, k)  # rows: photo x coordinate
        b = gt[:, j].reshape(-1)
        penalty = 100.0  # enforce sum(w) = 1 through a heavy extra row
        w, _ = nnls(np.vstack([a, penalty * np.ones(k)]), np.r_[b, penalty])
        weights[j] = w / w.sum()
    return LandmarkMapping(indices, weights)


def nme(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per photo: mean 2D error / sqrt(ground-truth box area) (the AFLW2000-3D protocol)."""
    size = np.sqrt(np.prod(gt[..., :2].max(axis=1) - gt[..., :2].min(axis=1), axis=-1))
    return np.linalg.norm(pred[..., :2] - gt[..., :2], axis=-1).mean(axis=-1) / size
