"""Surrogate 3DDFA training labels from image landmarks (the default network's 62-param layout).

Image landmarks -> the 3DDFA_V2 crop square around them -> the 120x120 crop frame (y up) -> a BFM
68-point fit whose [s*R | t] is directly the 12 camera params of the default network. The z
translation is unobservable from 2D points, so it is set to the training mean (param_stats).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfface.fitting.fitter import FitResult, LandmarkFitter
from tfface.fitting.identity import IdentityFitter
from tfface.fitting.problem import FitConfig
from tfface.morphable.crop import roi_from_landmarks
from tfface.morphable.geometry import image_to_crop
from tfface.morphable.params import ParamStats

CAMERA_TZ = 11  # index of t_z in the 62 params


@dataclass(frozen=True)
class CropLabels:
    roi_boxes: np.ndarray  # (B, 4) the square crop each label lives in (image pixels)
    params: np.ndarray  # (B, 62) de-normalised 3DDFA params in the crop frame
    landmarks: np.ndarray  # (B, 68, 2) the input landmarks in crop pixels (top-left origin, y down)
    fit: FitResult  # in the crop frame (y up)


def bfm_fitter(config: FitConfig | None = None) -> IdentityFitter:
    """A fitter of the default network's 68-point BFM model with its training prior."""
    from tfface.models.presets import morphable_asset

    return IdentityFitter(morphable_asset("bfm_3ddfa_68"), config=config)


def _training_tz() -> float:
    from tfface.models.presets import DEFAULT_PRESET, preset_dir

    return float(ParamStats.from_npz(preset_dir(DEFAULT_PRESET) / "param_stats.npz").mean[CAMERA_TZ])


def to_crop_frame(landmarks: np.ndarray, image_size: int = 120) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image landmarks (B, 68, 2+) -> roi boxes (B, 4), crop-frame points (B, 68, 2) y up, crop pixels."""
    landmarks = np.asarray(landmarks, np.float64)[..., :2]
    rois = np.stack([roi_from_landmarks(lm) for lm in landmarks]).astype(np.float64)
    pts = np.concatenate([landmarks, np.zeros(landmarks.shape[:2] + (1,))], axis=-1)
    crop = image_to_crop(pts.astype(np.float32), rois.astype(np.float32), image_size).numpy()[..., :2]
    side = (rois[:, 2] - rois[:, 0])[:, None, None] / image_size
    pixels = (landmarks - rois[:, None, :2]) / side
    return rois, crop.astype(np.float64), pixels


def fit_crop_labels(landmarks: np.ndarray, fitter: LandmarkFitter | None = None, image_size: int = 120,
                    shared_identity: bool = False, weights: np.ndarray | None = None) -> CropLabels:
    """Landmarks in image pixels (B, 68, 2+) -> 62-param labels; `shared_identity`: one person."""
    fitter = fitter or bfm_fitter()
    rois, crop_pts, pixels = to_crop_frame(landmarks, image_size)
    if shared_identity:
        if not isinstance(fitter, IdentityFitter):
            raise ValueError("shared_identity needs an IdentityFitter")
        fit = fitter.fit_identity(crop_pts, weights)
    else:
        fit = fitter.fit(crop_pts, weights)
    params = fit.params(tz=_training_tz())
    return CropLabels(rois.astype(np.float32), params, pixels.astype(np.float32), fit)
