"""3DMM landmark fitting: synthetic recovery, shared identity, real AFLW2000-3D reprojection."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_path
from scipy.spatial import procrustes

from tfface.errors import TffaceError
from tfface.fitting.correspondences import read_ibug_mapping
from tfface.fitting.fitter import LandmarkFitter
from tfface.fitting.identity import IdentityFitter
from tfface.fitting.prior import default_prior
from tfface.fitting.problem import FitConfig
from tfface.models.presets import morphable_asset
from tfface.morphable.pose import rotation_from_euler

FIXED = FitConfig(silhouette_contour=False)


@pytest.fixture(scope="module")
def bfm():
    return morphable_asset("bfm_3ddfa_68")


def synthetic(model, rng, n, identity=None, noise=0.3, dim=2, max_yaw=60.0):
    """Random faces from the model's prior, posed and projected (y-up frame, ~100 px faces)."""
    prior = default_prior(model)
    angles = np.stack([rng.uniform(-max_yaw, max_yaw, n), rng.uniform(-25, 25, n), rng.uniform(-20, 20, n)], 1)
    rot = rotation_from_euler(angles).numpy().astype(np.float64)
    aid = identity if identity is not None else prior.id_mean + rng.normal(size=(n, model.num_id)) * prior.id_std
    aexp = prior.exp_mean + rng.normal(size=(n, model.num_exp)) * prior.exp_std
    shapes = (model.mean + np.einsum("...k,knc->...nc", aid, model.id_basis)
              + np.einsum("bk,knc->bnc", aexp, model.exp_basis))
    scale = rng.uniform(5e-4, 9e-4, n)
    clean = scale[:, None, None] * np.einsum("bij,bnj->bni", rot, shapes) + rng.uniform(40, 80, (n, 1, 3))
    return clean[..., :dim] + rng.normal(scale=noise, size=clean[..., :dim].shape), clean[..., :dim], angles


def test_pose_and_landmarks_recovered_from_noisy_2d(bfm):
    pts, clean, angles = synthetic(bfm, np.random.default_rng(0), 64)
    res = LandmarkFitter(bfm, config=FIXED).fit(pts)
    err = np.abs(res.pose() - angles)
    assert err.mean(axis=0).max() < 1.0, err.mean(axis=0)  # yaw, pitch, roll each < 1 deg on average
    assert np.median(err) < 0.6
    lm_err = np.linalg.norm(res.landmarks - clean, axis=-1).mean(axis=1)
    assert lm_err.mean() < 0.5 and lm_err.max() < 1.0  # sub-pixel against the noise-free landmarks
    assert res.params().shape == (64, 62) and np.all(np.isfinite(res.params()))


def test_similarity_fit_from_3d_points(bfm):
    pts, clean, angles = synthetic(bfm, np.random.default_rng(1), 16, noise=0.2, dim=3)
    res = LandmarkFitter(bfm, config=FIXED).fit(pts)
    err = np.abs(res.pose() - angles)
    assert err.mean() < 0.5 and err.max() < 2.0, err
    assert np.linalg.norm(res.landmarks - clean, axis=-1).mean() < 0.6  # noise: 0.2 per axis


@pytest.mark.slow
def test_shared_identity_beats_single_fits(bfm):
    """Neutral identity shapes (Procrustes-aligned, scale is the camera's) are closer to the truth."""
    rng, prior = np.random.default_rng(2), default_prior(bfm)
    fitter = IdentityFitter(bfm, config=FIXED)
    single_err, shared_err = [], []
    for _ in range(4):
        aid = prior.id_mean + rng.normal(size=bfm.num_id) * prior.id_std
        pts, _, _ = synthetic(bfm, rng, 6, identity=aid, noise=1.0)
        truth = bfm.mean + np.einsum("k,knc->nc", aid, bfm.id_basis)

        def err(alpha):
            return np.sqrt(procrustes(truth, bfm.mean + np.einsum("k,knc->nc", alpha, bfm.id_basis))[2])

        single = fitter.fit(pts)
        shared = fitter.fit_identity(pts)
        assert np.allclose(shared.alpha_id, shared.alpha_id[0])  # one identity for all photos
        single_err.append(np.mean([err(a) for a in single.alpha_id]))
        shared_err.append(err(shared.alpha_id[0]))
    assert np.mean(shared_err) < 0.8 * np.mean(single_err), (shared_err, single_err)


def test_contour_weights_fall_on_the_far_side(bfm):
    fitter = LandmarkFitter(bfm)
    pts, _, _ = synthetic(bfm, np.random.default_rng(3), 1, noise=0.0, max_yaw=0)
    from tfface.fitting.problem import State

    state = State(np.zeros(2), rotation_from_euler(np.array([[50.0, 0, 0], [0.0, 0, 0]])).numpy().astype(float),
                  np.zeros((2, 2)), np.zeros((2, 40)), np.zeros((2, 10)))
    w = fitter.problem.weights(np.ones((2, 68)), state, 2)
    assert np.all(w[1] == 1)  # frontal: all weights kept
    jaw = w[0, :17]
    assert np.isclose(jaw.min(), 1 - 50 / 45 if 1 - 50 / 45 > 0.1 else 0.1) and (jaw < 1).sum() in (8, 9)
    assert np.all(w[0, 17:] == 1)


def test_bad_landmarks_are_refused(bfm):
    fitter = LandmarkFitter(bfm)
    with pytest.raises(TffaceError, match="68"):
        fitter.fit(np.zeros((2, 5, 2)))
    pts = np.random.default_rng(0).normal(size=(1, 68, 2))
    pts[0, 3, 0] = np.nan
    with pytest.raises(TffaceError, match="finite"):
        fitter.fit(pts)


@pytest.mark.slow
def test_aflw2000_reprojection_nme():
    """Fit the 62 params to AFLW2000-3D pt3d_68 (x, y); decoding them must give the landmarks back."""
    from tfface.data.mat3d import aflw2000_pairs, read_3d_mat
    from tfface.fitting.labels import fit_crop_labels
    from tfface.inference.decode import ParamDecoder
    from tfface.models.presets import load_preset

    pairs = aflw2000_pairs(shared_path("aflw2000_3d/AFLW2000"))[::5][:60]
    labels = [read_3d_mat(m) for _, m in pairs]
    gt = np.stack([lab.landmarks[:, :2] for lab in labels])
    out = fit_crop_labels(gt, shared_identity=False)
    preset = load_preset()
    decoded = ParamDecoder(preset.param_stats, preset.shape_model, 120).decode_params(out.params, out.roi_boxes)
    size = np.sqrt(np.prod(gt.max(axis=1) - gt.min(axis=1), axis=-1))
    nme = np.linalg.norm(decoded.landmarks[..., :2] - gt, axis=-1).mean(axis=1) / size
    assert nme.mean() < 0.012, nme.mean()  # measured 0.80% on the 300 shared images
    yaw_err = np.abs(decoded.pose[:, 0] - np.stack([lab.pose for lab in labels])[:, 0])
    assert np.median(yaw_err) < 1.5
    assert np.allclose(out.fit.nme, nme, atol=2e-3)  # the fit's own residual is the decoded one


def test_surrey_mapping_leaves_the_jaw_undefined():
    corr = read_ibug_mapping(shared_path("surrey_face_model/ibug_to_sfm.txt"))
    assert corr.vertex_ids[8] == 33 and corr.vertex_ids[30] > 0  # chin, nose tip
    assert not corr.defined[:8].any() and not corr.defined[9:17].any() and corr.defined.sum() == 50
