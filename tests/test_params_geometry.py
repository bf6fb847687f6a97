"""The 62-d parameter vector, its statistics, the camera, and the crop <-> image maps."""

from __future__ import annotations

import pickle

import cv2
import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO, shared_path
from tfface.errors import DataFileError
from tfface.models.presets import morphable_asset
from tfface.morphable.crop import crop_affine
from tfface.morphable.geometry import ShapeDecoder, apply_camera, crop_to_image, image_to_crop
from tfface.morphable.params import ParamStats, camera_to_srt, join_params, split_params, srt_to_camera

PRESET_STATS = REPO / "tfface" / "assets" / "presets" / "tfface_mb05_3ddfa" / "param_stats.npz"


def _random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    """Uniform-ish proper rotations from QR of Gaussian matrices (independent of tfface.pose)."""
    q, r = np.linalg.qr(rng.normal(size=(n, 3, 3)))
    q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    q[np.linalg.det(q) < 0, :, 0] *= -1
    return q


# --------------------------------------------------------------------------- parameters


def test_split_join_params_round_trip():
    rng = np.random.default_rng(0)
    params = rng.normal(size=(4, 62)).astype(np.float32)
    camera, alpha_id, alpha_exp = split_params(params)
    assert camera.shape == (4, 3, 4) and alpha_id.shape == (4, 40) and alpha_exp.shape == (4, 10)
    # the camera is the row-major 3x4 [s*R | t]: params[3], [7], [11] are the translation
    np.testing.assert_array_equal(camera.numpy()[:, :, 3], params[:, [3, 7, 11]])
    np.testing.assert_array_equal(camera.numpy()[:, 1, :3], params[:, 4:7])
    np.testing.assert_array_equal(alpha_id.numpy(), params[:, 12:52])
    np.testing.assert_array_equal(alpha_exp.numpy(), params[:, 52:])
    np.testing.assert_array_equal(join_params(camera, alpha_id, alpha_exp).numpy(), params)

    camera, alpha_id, alpha_exp = split_params(params, num_id=30)
    assert alpha_id.shape == (4, 30) and alpha_exp.shape == (4, 20)
    np.testing.assert_array_equal(alpha_exp.numpy(), params[:, 42:])
    np.testing.assert_array_equal(join_params(camera, alpha_id, alpha_exp).numpy(), params)


def test_srt_camera_round_trip():
    rng = np.random.default_rng(1)
    scale = rng.uniform(5e-4, 1e-3, size=8).astype(np.float32)
    rotation = _random_rotations(rng, 8).astype(np.float32)
    translation = rng.uniform(-80, 80, size=(8, 3)).astype(np.float32)

    camera = srt_to_camera(scale, rotation, translation).numpy()
    assert camera.shape == (8, 3, 4)
    np.testing.assert_allclose(camera[:, :, :3], scale[:, None, None] * rotation, rtol=1e-6, atol=1e-12)
    np.testing.assert_array_equal(camera[:, :, 3], translation)

    s, r, t = (a.numpy() for a in camera_to_srt(camera))
    np.testing.assert_allclose(s, scale, rtol=1e-5)
    np.testing.assert_allclose(r, rotation, atol=1e-5)
    np.testing.assert_array_equal(t, translation)


def test_camera_to_srt_normalises_a_perturbed_camera():
    rng = np.random.default_rng(2)
    scale = rng.uniform(5e-4, 1e-3, size=8).astype(np.float32)
    rotation = _random_rotations(rng, 8).astype(np.float32)
    translation = rng.uniform(-80, 80, size=(8, 3)).astype(np.float32)
    camera = srt_to_camera(scale, rotation, translation).numpy()

    # rows of unequal length (a regressed camera is never exactly s*R): the rotation comes back
    # exactly and the scale is the mean row norm; the third row is ignored
    uneven = camera.copy()
    uneven[:, 0, :3] *= 1.02
    uneven[:, 1, :3] *= 0.98
    uneven[:, 2, :3] *= 5.0
    s, r, _ = (a.numpy() for a in camera_to_srt(uneven))
    np.testing.assert_allclose(s, scale, rtol=1e-5)
    np.testing.assert_allclose(r, rotation, atol=1e-5)

    # small noise in every entry: a rotation again up to the noise's order
    noisy = camera.copy()
    noisy[:, :, :3] += rng.normal(0, 1e-3, size=(8, 3, 3)).astype(np.float32) * scale[:, None, None]
    s, r, _ = (a.numpy() for a in camera_to_srt(noisy))
    np.testing.assert_allclose(np.linalg.norm(r[:, :2], axis=-1), 1.0, atol=1e-6)  # unit rows
    np.testing.assert_allclose(np.einsum("bi,bi->b", r[:, 2], r[:, 0]), 0.0, atol=1e-6)  # r3 _|_ r1
    np.testing.assert_allclose(np.einsum("bi,bi->b", r[:, 2], r[:, 1]), 0.0, atol=1e-6)  # r3 _|_ r2
    np.testing.assert_allclose(r @ np.swapaxes(r, 1, 2), np.broadcast_to(np.eye(3), (8, 3, 3)), atol=1e-2)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-2)  # proper: not a reflection
    np.testing.assert_allclose(r, rotation, atol=1e-2)
    np.testing.assert_allclose(s, scale, rtol=1e-2)
    assert np.abs(r - rotation).max() > 1e-5  # the noise did reach the rotation (test is not vacuous)


# --------------------------------------------------------------------------- parameter statistics


def test_param_stats_round_trip_and_values():
    rng = np.random.default_rng(3)
    stats = ParamStats(rng.normal(size=62).astype(np.float32), rng.uniform(0.1, 3, size=62).astype(np.float32))
    params = rng.normal(size=(5, 62)).astype(np.float32) * 10
    np.testing.assert_allclose(stats.denormalize(stats.normalize(params)), params, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(stats.denormalize(np.zeros((2, 62), np.float32)), np.tile(stats.mean, (2, 1)))
    np.testing.assert_allclose(stats.denormalize(np.ones((1, 62), np.float32))[0],
                               stats.mean + stats.std, rtol=1e-6)
    np.testing.assert_allclose(stats.normalize(stats.mean[None] + 2 * stats.std[None]),
                               np.full((1, 62), 2.0), rtol=1e-5)


def test_param_stats_npz_round_trip(tmp_path):
    stats = ParamStats(np.arange(5, dtype=np.float32), np.arange(1, 6, dtype=np.float32))
    stats.save_npz(tmp_path / "s.npz")
    back = ParamStats.from_npz(tmp_path / "s.npz")
    np.testing.assert_array_equal(back.mean, stats.mean)
    np.testing.assert_array_equal(back.std, stats.std)


@pytest.mark.parametrize("mean, std", [
    (np.zeros(62), np.r_[np.ones(61), 0.0]),  # std 0
    (np.zeros(62), np.r_[np.ones(61), -1.0]),  # negative std
    (np.zeros(62), np.r_[np.ones(61), np.nan]),  # NaN std
    (np.r_[np.zeros(61), np.nan], np.ones(62)),  # NaN mean
    (np.r_[np.zeros(61), np.inf], np.ones(62)),  # infinite mean
    (np.zeros(62), np.ones(61)),  # shape mismatch
    (np.zeros((2, 31)), np.ones((2, 31))),  # not 1-d
])
def test_param_stats_invalid(mean, std):
    with pytest.raises(ValueError):
        ParamStats(np.asarray(mean, np.float32), np.asarray(std, np.float32))


@pytest.mark.shared_data
def test_param_stats_from_3ddfa_v2_pickle_matches_shipped_preset():
    stats = ParamStats.from_pickle(shared_path("3ddfa_v2/configs/param_mean_std_62d_120x120.pkl"))
    shipped = ParamStats.from_npz(PRESET_STATS)
    assert stats.mean.shape == (62,) and stats.mean.dtype == np.float32
    np.testing.assert_array_equal(stats.mean, shipped.mean)
    np.testing.assert_array_equal(stats.std, shipped.std)
    # a plausible 3DDFA camera: tiny s*R entries, translation tens of crop pixels
    assert np.all(np.abs(stats.mean[[0, 5, 10]]) < 1e-2) and 30 < stats.mean[3] < 90


def test_param_stats_from_pickle_errors(tmp_path):
    path = tmp_path / "stats.pkl"
    path.write_bytes(pickle.dumps({"mean": np.zeros(62, np.float32)}, protocol=4))
    with pytest.raises(DataFileError, match="stats.pkl"):
        ParamStats.from_pickle(path)
    path.write_bytes(pickle.dumps({"mean": np.zeros(62), "std": np.ones(62)}, protocol=2))
    assert ParamStats.from_pickle(path).std.dtype == np.float32


# --------------------------------------------------------------------------- crop <-> image


def test_crop_to_image_hand_worked():
    # roi side 240 for a 120 crop: scale 2. x = (11 - 1) * 2 + 100, y = (120 - 100) * 2 + 50, z = (6 - 1) * 2
    points = tf.constant([[[11.0, 100.0, 6.0], [1.0, 120.0, 1.0]]])
    out = crop_to_image(points, tf.constant([[100.0, 50.0, 340.0, 290.0]]), 120).numpy()
    np.testing.assert_array_equal(out[0, 0], [120.0, 90.0, 10.0])
    np.testing.assert_array_equal(out[0, 1], [100.0, 50.0, 0.0])  # crop (1, 120, 1) is the roi corner
    # a non-square box (sx = 2, sy = 1, z scale 1.5) and a second batch entry with its own box
    points = tf.constant([[[11.0, 100.0, 6.0]], [[61.0, 60.0, 3.0]]])
    boxes = tf.constant([[0.0, 0.0, 240.0, 120.0], [10.0, 20.0, 70.0, 80.0]])
    out = crop_to_image(points, boxes, 120).numpy()
    np.testing.assert_array_equal(out[0, 0], [20.0, 20.0, 7.5])
    np.testing.assert_array_equal(out[1, 0], [40.0, 50.0, 1.0])  # scale 0.5: (60*.5+10, 60*.5+20, 2*.5)
    # another crop size: 60 -> scale 4 for the 240 box
    out = crop_to_image(tf.constant([[[11.0, 50.0, 6.0]]]), tf.constant([[100.0, 50.0, 340.0, 290.0]]), 60).numpy()
    np.testing.assert_array_equal(out[0, 0], [140.0, 90.0, 20.0])


def test_image_to_crop_inverts_crop_to_image():
    rng = np.random.default_rng(4)
    boxes = np.array([[100, 50, 340, 290], [10.5, 20, 70.5, 140], [-30, 5, 400, 200]], np.float32)
    points = rng.uniform(-50, 500, size=(3, 17, 3)).astype(np.float32)
    crop = image_to_crop(points, boxes, 120)
    np.testing.assert_allclose(crop_to_image(crop, boxes, 120).numpy(), points, rtol=1e-5, atol=1e-3)
    crop_pts = rng.uniform(0, 120, size=(3, 17, 3)).astype(np.float32)
    np.testing.assert_allclose(image_to_crop(crop_to_image(crop_pts, boxes, 120), boxes, 120).numpy(),
                               crop_pts, rtol=1e-5, atol=1e-3)
    # and a hand-worked value: image (120, 90, 10) in the scale-2 box is crop (11, 100, 6)
    np.testing.assert_allclose(image_to_crop(tf.constant([[[120.0, 90.0, 10.0]]]), boxes[:1]).numpy()[0, 0],
                               [11.0, 100.0, 6.0])


def _smooth_image(h=300, w=400) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([127 + 100 * np.sin(xx / 7 + yy / 13), 127 + 100 * np.cos(xx / 9 - yy / 5),
                     127 + 80 * np.sin((xx + yy) / 11)], axis=-1).astype(np.uint8)


def _warp_and_resize(image, box, size=120):
    x0, y0, x1, y1 = box
    warped = cv2.warpAffine(image, crop_affine(np.array(box, np.float32), size), (size, size),
                            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    resized = cv2.resize(image[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_LINEAR)
    return np.abs(warped.astype(np.int32) - resized.astype(np.int32))


@pytest.mark.parametrize("box", [(40, 30, 280, 270), (50, 60, 350, 200), (0, 0, 400, 300), (101, 77, 233, 209)])
def test_crop_affine_matches_crop_and_resize(box):
    diff = _warp_and_resize(_smooth_image(), box)
    assert diff.max() <= 1  # (a crop without the half-pixel terms is off by up to ~12 levels here)
    assert diff.mean() < 0.25


@pytest.mark.parametrize("box", [(13, 7, 97, 91), (10, 20, 70, 80)])
def test_crop_affine_upscaling_close_to_resize(box):
    # enlarging: warpAffine quantises sample positions to 1/32 pixel, so single pixels differ by a few levels
    diff = _warp_and_resize(_smooth_image(), box)
    assert diff.max() <= 8 and diff.mean() < 0.3


def test_crop_affine_matrix_hand_worked():
    # box 240 wide -> 120: scale 2; source x of crop pixel u is 2u + x0 + 0.5 (cv2's (u + .5) * 2 - .5)
    np.testing.assert_allclose(crop_affine(np.array([100, 50, 340, 290]), 120),
                               [[2.0, 0.0, 100.5], [0.0, 2.0, 50.5]])
    np.testing.assert_allclose(crop_affine(np.array([0, 0, 60, 240]), 120), [[0.5, 0.0, -0.25], [0.0, 2.0, 0.5]])


@pytest.mark.shared_data
def test_crop_affine_on_a_real_photo():
    from tfface.io.images import read_image

    image = read_image(shared_path("3ddfa_v2/examples/inputs/emma.jpg"))
    for box in ((40, 30, 280, 270), (500, 300, 900, 700), (1000, 100, 1200, 300)):
        diff = _warp_and_resize(image, box)
        assert diff.max() <= 1 and diff.mean() < 0.25, box


# --------------------------------------------------------------------------- shapes and camera


def test_shape_decoder_matches_numpy():
    model = morphable_asset("bfm_3ddfa_68")
    rng = np.random.default_rng(5)
    alpha_id = rng.normal(0, 2e5, size=(3, 40)).astype(np.float32)
    alpha_exp = rng.normal(0, 1.0, size=(3, 10)).astype(np.float32)
    got = ShapeDecoder(model).vertices(alpha_id, alpha_exp).numpy()
    m = model.mean.astype(np.float64)
    want = (m + np.einsum("bk,knc->bnc", alpha_id.astype(np.float64), model.id_basis.astype(np.float64))
            + np.einsum("bk,knc->bnc", alpha_exp.astype(np.float64), model.exp_basis.astype(np.float64)))
    assert got.shape == (3, 68, 3)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
    assert np.abs(want - m).max() > 1e3  # the coefficients did move the shape
    # zero coefficients give the mean
    np.testing.assert_array_equal(ShapeDecoder(model).vertices(np.zeros((1, 40)), np.zeros((1, 10))).numpy()[0],
                                  model.mean)


def test_apply_camera_matches_numpy():
    rng = np.random.default_rng(6)
    scale = rng.uniform(5e-4, 1e-3, size=4)
    rotation = _random_rotations(rng, 4)
    translation = rng.uniform(-80, 80, size=(4, 3))
    vertices = rng.normal(0, 1e5, size=(4, 68, 3))
    camera = np.concatenate([scale[:, None, None] * rotation, translation[:, :, None]], axis=2)
    want = scale[:, None, None] * np.einsum("bij,bnj->bni", rotation, vertices) + translation[:, None, :]
    got = apply_camera(camera.astype(np.float32), vertices.astype(np.float32)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)


def test_gradients_through_the_differentiable_core():
    model = morphable_asset("bfm_3ddfa_68")
    decoder = ShapeDecoder(model)
    rng = np.random.default_rng(8)
    camera = np.concatenate([8e-4 * _random_rotations(rng, 2), rng.uniform(50, 70, size=(2, 3, 1))], axis=2)
    params = tf.Variable(np.concatenate([camera.reshape(2, 12), rng.normal(0, 1e5, size=(2, 40)),
                                         rng.normal(0, 1, size=(2, 10))], axis=1).astype(np.float32))
    boxes = tf.constant([[100.0, 50.0, 340.0, 290.0], [0.0, 0.0, 60.0, 120.0]])  # scales (2, 2), (0.5, 1)
    weights = tf.constant(rng.normal(size=(2, 68, 3)).astype(np.float32))
    with tf.GradientTape() as tape:
        cam, alpha_id, alpha_exp = split_params(params)
        points = crop_to_image(apply_camera(cam, decoder.vertices(alpha_id, alpha_exp)), boxes, 120)
        loss = tf.reduce_sum(weights * points)
    grad = tape.gradient(loss, params).numpy()
    assert grad.shape == (2, 62)
    assert np.all(np.isfinite(grad))
    assert np.all(grad != 0)
    # translation enters linearly: d loss / d t = sum of weights times each axis' image scale (y flipped)
    w = weights.numpy().sum(axis=1)
    sx, sy = np.array([2.0, 0.5]), np.array([2.0, 1.0])
    np.testing.assert_allclose(grad[:, 3], w[:, 0] * sx, rtol=1e-4)
    np.testing.assert_allclose(grad[:, 7], -w[:, 1] * sy, rtol=1e-4)
    np.testing.assert_allclose(grad[:, 11], w[:, 2] * (sx + sy) / 2, rtol=1e-4)
