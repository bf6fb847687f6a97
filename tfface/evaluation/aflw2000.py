"""AFLW2000-3D: 68-point 2D/3D NME by yaw bin, head-pose MAE, from ground-truth or detector crops.

`evaluate_aflw2000(runner, data_dir)` returns {"metrics": {...}, "rows": [one dict per image]}:
- metrics["nme_2d"] / ["nme_3d"]: {"[0,30]", "(30,60]", "(60,90]", "mean" (of the three bins), "std"
  (sample std of the three), "all_images"} in %; metrics["pose_mae"]: {"yaw", "pitch", "roll", "mean"}
  in degrees against Pose_Para; metrics["missed"]: faces the detector did not find (detector crops).
Missed faces are excluded from the NME and pose figures and counted separately; the CED counts them as
failures (its curve ends below 1). Images whose label (.mat) or photo cannot be used (missing keys, NaN,
wrong shapes, unreadable files) are skipped: result["skipped"] and metrics["skipped"] list them with
the reason, and they are in no figure. When every image is skipped, NothingEvaluated is raised.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from tfface.data.mat3d import Mat3DLabel, aflw2000_pairs, read_3d_mat
from tfface.errors import DataFileError
from tfface.evaluation import landmarks as lm
from tfface.evaluation.crops import DetectorCrops, Prediction, predict_roi
from tfface.evaluation.runner import Runner, as_runner
from tfface.io.guard import describe
from tfface.morphable.crop import roi_from_landmarks
from tfface.io.images import read_image

CROP_RULES = {
    "gt": "ground-truth crops: roi_from_landmarks(pt3d_68), the 3DDFA/3DDFA_V2 protocol",
    "detector": "detector crops: BlazeFace {detector} -> 3DDFA_V2 box rule -> {refine} re-crop(s) from the "
                "predicted landmarks; the detection nearest the ground-truth face",
}
POSE_NAMES = ("yaw", "pitch", "roll")


class NothingEvaluated(DataFileError):
    """Every image was skipped; `skipped` lists them ({"image", "reason", "problem"})."""

    def __init__(self, message: str, skipped: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.skipped = skipped


def evaluate_aflw2000(runner: Runner | str, data_dir: str | os.PathLike, crop: str = "gt",
                      limit: int | None = None, detector: str = "auto", refine: int = 1,
                      progress: bool = True, on_skip: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Evaluate a runner (or a spec `load_runner` opens) on an AFLW2000-3D folder (any subset: the
    first `limit` >= 1 images by name). A bad label or photo is skipped and listed (see the module
    docstring); `on_skip` is called with its one line ("FILE: reason") as it is skipped."""
    if crop not in CROP_RULES:
        raise ValueError(f"crop must be one of {sorted(CROP_RULES)}. Received: crop={crop!r}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1 (or None for all images). Received: limit={limit}")
    runner = as_runner(runner)
    pairs = aflw2000_pairs(data_dir)[:limit]
    detect = DetectorCrops(runner, detector, refine=refine) if crop == "detector" else None
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    try:
        for image_path, mat_path in tqdm(pairs, desc=f"AFLW2000-3D ({crop} crops)", disable=not progress):
            try:
                label, image = _read_pair(image_path, mat_path)
            except DataFileError as e:
                skipped.append({"image": image_path.name, "reason": str(e),
                                "problem": _without_file(str(e), image_path, mat_path)})
                if on_skip is not None:
                    on_skip(str(e))
                continue
            gt = label.landmarks
            if detect is None:
                pred = predict_roi(runner, image, roi_from_landmarks(gt))
            else:
                centre = (gt[:, :2].min(axis=0) + gt[:, :2].max(axis=0)) / 2
                pred = detect(image, near=centre, max_distance=float(lm.box_size(gt)))
            rows.append(_row(image_path.name, label.pose, gt, pred))
    finally:
        if detect is not None:
            detect.close()
    if not rows:
        raise NothingEvaluated(f"{data_dir}: none of the {len(skipped)} images could be evaluated "
                               f"(e.g. {skipped[0]['reason']})", skipped)
    metrics = summarize(rows, crop, _crop_rule(crop, detector, refine), Path(data_dir), skipped)
    return {"metrics": metrics, "rows": rows, "skipped": skipped}


def _read_pair(image_path: Path, mat_path: Path) -> tuple[Mat3DLabel, np.ndarray]:
    """The label and photo of one image; whatever is wrong with either is a DataFileError naming the file."""
    label = _guarded(read_3d_mat, mat_path)
    if not label.has_3d_landmarks:
        raise DataFileError(f"{mat_path}: no pt3d_68 (AFLW2000-3D labels hold 3x68 landmarks)")
    return label, _guarded(read_image, image_path)


def _guarded(read: Callable[[Path], Any], path: Path) -> Any:
    try:
        return read(path)
    except DataFileError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever one file does, it is that file's one line
        raise DataFileError(f"{path}: {describe(e)}") from e


def _without_file(line: str, *paths: Path) -> str:
    """"/data/image00020.mat: pt3d_68 contains NaN ..." -> "pt3d_68 contains NaN ..." (for counting)."""
    for path in paths:
        if line.startswith(f"{path}: "):
            return line[len(f"{path}: "):]
    return line


def _crop_rule(crop: str, detector: str, refine: int) -> str:
    return CROP_RULES[crop].format(detector=detector, refine=refine)


def _row(name: str, pose_gt: np.ndarray, gt: np.ndarray, pred: Prediction | None) -> dict[str, Any]:
    row: dict[str, Any] = {"image": name, "yaw_bin": lm.YAW_BINS[int(lm.yaw_bin(pose_gt[0]))],
                           **{f"{n}_gt": float(v) for n, v in zip(POSE_NAMES, pose_gt)},
                           "found": pred is not None}
    if pred is None:
        return row
    points, pose = pred.decoded.landmarks[0], pred.decoded.pose[0]
    row.update({f"roi_{k}": float(v) for k, v in zip(("x0", "y0", "x1", "y1"), pred.roi)})
    row["nme_2d"] = float(lm.nme_2d(points, gt))
    row["nme_3d"] = float(lm.nme_3d(points, gt))
    row.update({f"{n}_pred": float(v) for n, v in zip(POSE_NAMES, pose)})
    row.update({f"{n}_abs_err": float(e) for n, e in zip(POSE_NAMES, lm.angle_errors(pose, pose_gt))})
    return row


def summarize(rows: list[dict[str, Any]], crop: str, crop_rule: str, data_dir: Path,
              skipped: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """Per-image rows (and the skipped images) -> the protocol's figures (see the module docstring)."""
    skipped = skipped or []
    found = [r for r in rows if r["found"]]
    bins = np.array([lm.YAW_BINS.index(r["yaw_bin"]) for r in found], int)
    metrics: dict[str, Any] = {
        "dataset": "AFLW2000-3D", "data_dir": str(data_dir), "crop": crop, "crop_rule": crop_rule,
        "images": len(rows),
        "images_per_bin": {b: sum(r["yaw_bin"] == b for r in rows) for b in lm.YAW_BINS},
        "nme_definition": "2D: mean 68-point error / sqrt(w*h) of the ground-truth landmark box, %; "
                          "3D: the same in 3D after aligning the mean z of prediction and ground truth",
        "missed": {"total": len(rows) - len(found),
                   **{b: sum(r["yaw_bin"] == b and not r["found"] for r in rows) for b in lm.YAW_BINS},
                   "images": [r["image"] for r in rows if not r["found"]],
                   "counted_as": "excluded from NME and pose figures; failures in the CED"},
        "skipped": {"total": len(skipped),
                    "by_reason": dict(Counter(s["problem"] for s in skipped).most_common()),
                    "images": [{"image": s["image"], "reason": s["reason"]} for s in skipped],
                    "counted_as": "bad label or unreadable photo: in no figure, not in `images`, not in the CED"},
    }
    for key in ("nme_2d", "nme_3d"):
        metrics[key] = lm.binned_means(np.array([r[key] for r in found]), bins)
    errs = np.array([[r[f"{n}_abs_err"] for n in POSE_NAMES] for r in found]).reshape(-1, 3)
    metrics["pose_mae"] = {**{n: float(errs[:, i].mean()) for i, n in enumerate(POSE_NAMES)},
                           "mean": float(errs.mean())}
    metrics["pose_median_abs_err"] = {n: float(np.median(errs[:, i])) for i, n in enumerate(POSE_NAMES)}
    return metrics
