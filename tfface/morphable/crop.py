"""The one crop rule: which square of the photo a face crop is cut from, and how it is resampled; and
the aligned crop a joint preset's identity embedding also reads (`warp_aligned`).

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
    return _warp(image, crop_affine(roi_box, size), size)


def _warp(image: np.ndarray, crop_to_image: np.ndarray, size: int) -> np.ndarray:
    return cv2.warpAffine(image, crop_to_image, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


# The aligned crop: the face moved onto a template's landmarks by a similarity (rotation, scale, shift),
# then cut at the template's crop box, so every face reaches the network at one pose in the image plane,
# as CelebA's aligned faces do. The jaw (points 0-16) is left out of the fit: it follows the head's yaw.
ALIGN_POINTS = slice(17, 68)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity (Umeyama 1991, no reflection) taking points `src` (N, 2) onto `dst`."""
    src, dst = np.asarray(src, np.float64)[:, :2], np.asarray(dst, np.float64)[:, :2]
    ms, md = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - ms, dst - md
    u, sv, vt = np.linalg.svd(d.T @ s / len(src))
    flip = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ flip @ vt
    scale = np.trace(np.diag(sv) @ flip) * len(src) / max(float((s ** 2).sum()), 1e-12)
    return np.hstack([scale * rotation, (md - scale * rotation @ ms)[:, None]])


def aligned_affine(landmarks: np.ndarray, template: dict, size: int) -> np.ndarray:
    """2x3 map from aligned-crop pixels to image pixels for a face with 68 `landmarks` (image pixels);
    `template`: {"landmarks": (68, 2), "roi": (4,)} in the template's frame."""
    to_template = np.vstack([similarity(np.asarray(landmarks)[ALIGN_POINTS],
                                        np.asarray(template["landmarks"])[ALIGN_POINTS]), [0.0, 0.0, 1.0]])
    crop_to_template = np.vstack([crop_affine(np.asarray(template["roi"]), size), [0.0, 0.0, 1.0]])
    return (np.linalg.inv(to_template) @ crop_to_template)[:2]


def warp_aligned(image: np.ndarray, landmarks: np.ndarray, template: dict, size: int) -> np.ndarray:
    """Image (H, W, C) + a face's 68 landmarks -> its (size, size, C) aligned crop (`aligned_affine`)."""
    return _warp(image, aligned_affine(landmarks, template, size), size)
