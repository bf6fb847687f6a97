"""NME, yaw bins, pose errors and CED of the AFLW2000-3D protocol, against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from tfface.evaluation import landmarks as lm


def _face(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pts = rng.uniform([100, 50, -20], [300, 250, 20], size=(68, 3))
    pts[0, :2], pts[1, :2] = (100, 50), (300, 250)  # box exactly 200 x 200 -> sqrt(w*h) = 200
    return pts


def test_nme_is_zero_for_the_ground_truth_and_known_for_a_shift():
    gt = _face()
    assert lm.nme_2d(gt, gt) == 0.0 and lm.nme_3d(gt, gt) == 0.0
    shifted = gt + [3.0, 4.0, 0.0]  # every point 5 px off; box 200 -> 2.5 %
    assert lm.nme_2d(shifted, gt) == pytest.approx(2.5)
    # 3D: a pure z offset is not an error (z of pt3d_68 is defined up to an offset) ...
    assert lm.nme_3d(gt + [0, 0, 37.0], gt) == pytest.approx(0.0, abs=1e-12)
    # ... but depth shape is: alternate +-2 px in z around the mean -> 1 % of 200
    bumpy = gt.copy()
    bumpy[:, 2] += np.where(np.arange(68) % 2, 2.0, -2.0)
    assert lm.nme_3d(bumpy, gt) == pytest.approx(1.0)


def test_nme_uses_the_landmark_box_area_not_its_diagonal():
    gt = np.zeros((68, 2))
    gt[:, 0] = np.linspace(0, 400, 68)
    gt[:, 1] = np.linspace(0, 100, 68)  # 400 x 100 box -> sqrt = 200 (diagonal would be 412)
    pred = gt.copy()
    pred[:34, 0] += 10.0  # half the points 10 px off -> mean 5 px
    assert lm.box_size(gt) == pytest.approx(200.0)
    assert lm.nme_2d(pred, gt) == pytest.approx(2.5)
    batch = lm.nme_2d(np.stack([pred, gt]), np.stack([gt, gt]))
    np.testing.assert_allclose(batch, [2.5, 0.0])


def test_yaw_bins_edges_are_closed_on_the_right():
    yaws = np.array([0, -30, 30, 30.0001, -60, 60, 60.01, -89.9, 95])
    np.testing.assert_array_equal(lm.yaw_bin(yaws), [0, 0, 0, 1, 1, 1, 2, 2, 2])


def test_binned_means_reproduce_the_published_3ddfa_row():
    # 3DDFA (Zhu et al.): 3.78 / 4.54 / 7.93 -> mean 5.42, std 2.21 (sample std of the three bins)
    values = np.array([3.78, 4.54, 7.93, 3.78, 4.54, 7.93, 7.93])
    bins = np.array([0, 1, 2, 0, 1, 2, 2])
    out = lm.binned_means(values, bins)
    assert out["[0,30]"] == pytest.approx(3.78) and out["(60,90]"] == pytest.approx(7.93)
    assert round(out["mean"], 2) == 5.42 and round(out["std"], 2) == 2.21
    assert out["all_images"] == pytest.approx(values.mean())  # differs from the balanced mean


def test_angle_errors_wrap_around():
    np.testing.assert_allclose(lm.angle_errors([179.0, -10, 5], [-179.0, 10, 5]), [2.0, 20.0, 0.0])


def test_cumulative_error_counts_missed_faces_as_failures():
    errors = np.array([1.0, 2.0, 2.0, 5.0])
    np.testing.assert_allclose(lm.cumulative_error(errors, [0.5, 2.0, 10.0]), [0, 0.75, 1.0])
    np.testing.assert_allclose(lm.cumulative_error(errors, [10.0], total=5), [0.8])
