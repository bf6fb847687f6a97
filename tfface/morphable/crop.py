"""The one crop rule: which square of the photo a face crop is cut from, and how it is resampled.

Boxes are (x0, y0, x1, y1) in image pixels. Crop boxes are rounded to whole pixels so the crop and
the mapping of landmarks back to the image use the very same box (3DDFA_V2's rules). Training crops
(tfface.data.records), inference crops (FacePreprocessor) and the edge app all cut through `warp_crop`,
so a face seen in training and at inference is the same pixels.
"""

from __future__ import annotations

import cv2
import numpy as np


def roi_from_box(box: np.ndarray) -> np.ndarray:
    """A detector box -> square crop box: centre moved down by 0.14 of the box size, side 1.58x."""
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    old = (x1 - x0 + y1 - y0) / 2.0
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0 + 0.14 * old
    return _square(cx, cy, int(old * 1.58))


def roi_from_landmarks(points: np.ndarray) -> np.ndarray:
    """Landmarks (N, 2+) -> square crop box: the landmarks' bounding square, side = its diagonal."""
    pts = np.asarray(points, np.float64)[:, :2]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre = (lo + hi) / 2.0
    return _square(centre[0], centre[1], int(round(np.sqrt(2.0) * (hi - lo).max())))


def _square(cx: float, cy: float, side: int) -> np.ndarray:
    # Round the corner once and add the whole side, so the box is exactly square.
    x0, y0 = np.floor(cx - side / 2.0 + 0.5), np.floor(cy - side / 2.0 + 0.5)
    return np.array([x0, y0, x0 + side, y0 + side], np.float32)


def crop_affine(roi_box: np.ndarray, size: int) -> np.ndarray:
    """2x3 matrix mapping crop pixels to image pixels, as cv2.resize of the cropped box samples them.

    Bilinear resize samples source pixel (dst + 0.5) * scale - 0.5; adding the box corner gives the
    warp that crops and resizes in one step (and pads with zeros outside the image, as 3DDFA does).
    """
    x0, y0, x1, y1 = (float(v) for v in roi_box[:4])
    sx, sy = (x1 - x0) / size, (y1 - y0) / size
    return np.array([[sx, 0.0, x0 + 0.5 * sx - 0.5], [0.0, sy, y0 + 0.5 * sy - 0.5]], np.float64)


def warp_crop(image: np.ndarray, roi_box: np.ndarray, size: int) -> np.ndarray:
    """Image (H, W, C) + box -> (size, size, C) crop of that box, bilinear, zeros outside the image."""
    return cv2.warpAffine(image, crop_affine(roi_box, size), (size, size),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
