"""3DDFA_V2's crop rules, checked on hand-worked boxes."""

from __future__ import annotations

import numpy as np

from tfface.morphable.crop import roi_from_box, roi_from_landmarks


def test_roi_from_box_hand_worked():
    # old = 100; centre (150, 150 + 0.14 * 100) = (150, 164); side int(1.58 * 100) = 158, half 79
    roi = roi_from_box(np.array([100, 100, 200, 200], np.float32))
    assert roi.dtype == np.float32
    np.testing.assert_array_equal(roi, [71, 85, 229, 243])
    # a wide box: w 220, h 100 -> old 160, centre (210, 250 + 22.4) = (210, 272.4), side int(252.8) = 252
    np.testing.assert_array_equal(roi_from_box(np.array([100, 200, 320, 300])), [84, 146, 336, 398])
    # extra columns (a score) are ignored; float boxes: old = 50.5, centre (25.25, 25.75 + 7.07)
    # side int(79.79) = 79, corners 25.25 -/+ 39.5 = -14.25, 64.75 and 32.82 -/+ 39.5 = -6.68, 72.32
    np.testing.assert_array_equal(roi_from_box(np.array([0, 0.5, 50.5, 51, 0.9])), [-14, -7, 65, 72])


def test_roi_from_landmarks_hand_worked():
    # the corners and centre of a square of side 100: crop side 100 * sqrt(2) = 141.42, same centre
    square = np.array([[100, 100], [200, 100], [100, 200], [200, 200], [150, 150]], np.float32)
    roi = roi_from_landmarks(square)
    assert roi.dtype == np.float32
    np.testing.assert_array_equal(roi, [80, 80, 221, 221])  # side round(141.42) = 141, x0 = floor(150 - 70.5 + 0.5)
    # a 100 x 60 point set: the bounding square takes the larger side, centred on the points' box
    rect = np.array([[100, 150, 5.0], [200, 210, -3.0], [130, 170, 0.0]])  # a z column is ignored
    np.testing.assert_array_equal(roi_from_landmarks(rect), [80, 110, 221, 251])  # centre (150, 180), side 141
    # points spanning 40 in y only: side round(40 * sqrt(2)) = 57 around (10, 30)
    column = np.array([[10, 10], [10, 50], [10, 20]])
    np.testing.assert_array_equal(roi_from_landmarks(column), [-18, 2, 39, 59])


def test_roi_from_landmarks_is_translation_covariant_and_scales():
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 100, size=(68, 2))
    base = roi_from_landmarks(pts)
    np.testing.assert_array_equal(roi_from_landmarks(pts + [300, 40]), base + [300, 40, 300, 40])
    lo, hi = pts.min(0), pts.max(0)
    side = np.sqrt(2) * (hi - lo).max()
    assert abs((base[2] - base[0]) - side) <= 1 and abs((base[3] - base[1]) - side) <= 1
    np.testing.assert_allclose((base[:2] + base[2:]) / 2, (lo + hi) / 2, atol=0.5)


def test_roi_from_box_is_square():
    # old = 99.5, side int(157.2) = 157 (odd): the corner is rounded once and the side added
    roi = roi_from_box(np.array([0, 1, 100, 100], np.float32))
    assert roi[2] - roi[0] == roi[3] - roi[1] == 157
    np.testing.assert_array_equal(roi, [-28, -14, 129, 143])
