"""Landmark and head-pose error metrics of the AFLW2000-3D protocol (pure NumPy).

2D NME: mean point-to-point distance of the 68 landmarks in the image plane, divided by sqrt(w * h)
of the ground-truth landmarks' 2D bounding box, in %. 3D NME: the same with 3D distances and the same
normaliser, after shifting the prediction in z so its mean depth equals the ground truth's (the z of
`pt3d_68` is only defined up to an offset).
"""

from __future__ import annotations

import numpy as np

YAW_BINS: tuple[str, ...] = ("[0,30]", "(30,60]", "(60,90]")
_BIN_EDGES = (30.0, 60.0)


def box_size(gt: np.ndarray) -> np.ndarray:
    """sqrt(w * h) of the 2D bounding box of ground-truth landmarks (..., N, 2+)."""
    gt = np.asarray(gt, np.float64)[..., :2]
    w, h = np.moveaxis(gt.max(axis=-2) - gt.min(axis=-2), -1, 0)
    return np.sqrt(w * h)


def nme_2d(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-face 2D NME in % for (..., N, 2+) predictions and ground truth."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    err = np.linalg.norm(pred[..., :2] - gt[..., :2], axis=-1).mean(axis=-1)
    return 100.0 * err / box_size(gt)


def nme_3d(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-face 3D NME in % (z means aligned, normalised by the 2D box size) for (..., N, 3) inputs."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if pred.shape[-1] != 3 or gt.shape[-1] != 3:
        raise ValueError(f"3D NME needs (..., N, 3) points. Received: {pred.shape} and {gt.shape}")
    shifted = pred.copy()
    shifted[..., 2] += (gt[..., 2].mean(axis=-1) - pred[..., 2].mean(axis=-1))[..., None]
    err = np.linalg.norm(shifted - gt, axis=-1).mean(axis=-1)
    return 100.0 * err / box_size(gt)


def yaw_bin(yaw_deg: np.ndarray) -> np.ndarray:
    """|yaw| -> bin index 0: [0,30], 1: (30,60], 2: (60,90] (beyond 90 counts as the last bin)."""
    a = np.abs(np.asarray(yaw_deg, np.float64))
    return np.where(a <= _BIN_EDGES[0], 0, np.where(a <= _BIN_EDGES[1], 1, 2))


def binned_means(values: np.ndarray, bins: np.ndarray) -> dict[str, float]:
    """Mean per yaw bin, the mean of the bin means (the balanced figure papers report) and their std."""
    values, bins = np.asarray(values, np.float64), np.asarray(bins)
    out = {name: float(values[bins == i].mean()) if np.any(bins == i) else float("nan")
           for i, name in enumerate(YAW_BINS)}
    per_bin = np.array([out[n] for n in YAW_BINS])
    present = per_bin[np.isfinite(per_bin)]
    out["mean"] = float(present.mean()) if present.size else float("nan")
    # Sample std (ddof=1): reproduces the published 3DDFA row (3.78, 4.54, 7.93 -> 5.42 +- 2.21).
    out["std"] = float(present.std(ddof=1)) if present.size > 1 else float("nan")
    out["all_images"] = float(values.mean()) if values.size else float("nan")
    return out


def angle_errors(pred_deg: np.ndarray, gt_deg: np.ndarray) -> np.ndarray:
    """Absolute angle differences in degrees, wrapped to [0, 180]."""
    d = np.abs(np.asarray(pred_deg, np.float64) - np.asarray(gt_deg, np.float64)) % 360.0
    return np.minimum(d, 360.0 - d)


def cumulative_error(errors: np.ndarray, thresholds: np.ndarray, total: int | None = None) -> np.ndarray:
    """Fraction of `total` faces (default: all given) with error <= each threshold (CED curve)."""
    errors = np.sort(np.asarray(errors, np.float64))
    total = len(errors) if total is None else total
    return np.searchsorted(errors, np.asarray(thresholds, np.float64), side="right") / max(total, 1)
