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


def test_similarity_recovers_a_known_transform_and_ignores_reflection():
    from tfface.morphable.crop import similarity

    rng = np.random.default_rng(0)
    src = rng.normal(size=(51, 2)) * 40
    angle, scale, shift = np.radians(17.0), 1.6, np.array([12.0, -7.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    m = similarity(src, src @ (scale * rot).T + shift)
    assert np.allclose(m, np.hstack([scale * rot, shift[:, None]]), atol=1e-9)
    mirrored = similarity(src, src * [-1, 1])  # a reflection is not a similarity: the best rotation instead
    assert np.linalg.det(mirrored[:, :2]) > 0


def test_aligned_crop_undoes_a_rotated_scaled_photo():
    """The sample photo turned by 25 degrees and shrunk, its landmarks moved with it, gives the same
    aligned crop as the photo itself (up to resampling), while the plain 3DDFA crops differ."""
    import cv2

    from conftest import SAMPLE_IMAGE
    from tfface.inference.reconstructor import FaceReconstructor, largest_face
    from tfface.io.images import read_image
    from tfface.morphable.crop import warp_aligned, warp_crop

    image = read_image(SAMPLE_IMAGE)
    with FaceReconstructor() as rec:
        face = largest_face(rec(image))
    centre = face.landmarks[:, :2].mean(axis=0)
    turn = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), 25.0, 0.8)
    turned = cv2.warpAffine(image, turn, (image.shape[1], image.shape[0]), flags=cv2.INTER_LINEAR)
    moved = face.landmarks[:, :2] @ turn[:, :2].T + turn[:, 2]
    frame = face.landmarks[:, :2] * 0.5 + 30  # a template frame at half the photo's scale
    lo, hi = frame.min(axis=0), frame.max(axis=0)
    template = {"landmarks": frame, "roi": np.array([*(lo - 0.3 * (hi - lo)), *(hi + 0.3 * (hi - lo))])}
    a, b = warp_aligned(image, face.landmarks, template, 120), warp_aligned(turned, moved, template, 120)
    assert a.shape == b.shape == (120, 120, 3)
    same = np.abs(a.astype(float) - b.astype(float)).mean()
    plain = np.abs(warp_crop(image, face.roi_box, 120).astype(float) - warp_crop(turned, face.roi_box, 120)).mean()
    assert same < 2.0 and plain > 10 * same, (same, plain)
