"""The dense ICT-FaceKit face model shipped with tfface (MIT; tfface/assets/morphable/ICT_LICENSE).

`build_ict_asset` turns the full model file (`ict_face_model_full_face.npz`: 9,409 face-area vertices,
100 identity modes, 53 ARKit blendshapes, centimetres) into the bundled asset: the first 40 identity
modes (68 landmarks cannot determine more) and all 53 blendshapes, stored as float16 in a compressed
npz (3.5 MB; float16 keeps ~0.01 mm on displacements of a few cm). `ict_face_model` loads it as a
float32 `MorphableModel`.

Two landmark sets ship: `landmarks`, ICT's own iBUG-68 vertices (for annotated 2D/3D landmarks), and
`landmarks_bfm`, the ICT vertices that best match the 68 fixed BFM vertices the default network
predicts (its eyebrow, contour and lip points sit elsewhere on the face than ICT's). They were derived
by `derive_bfm_landmarks`: fit ICT to BFM landmark shapes (the prior mean + 30 random faces), take per
landmark the vertex nearest the targets on average, refit, 4 rounds. On those BFM shapes the 3D fit
residual fell from 2.9% to 1.1% of the face size.
"""

from __future__ import annotations

import os
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from tfface.errors import DataFileError
from tfface.morphable.model import MorphableModel, load_ict_facekit

ICT_ASSET = "ict_facekit_face"
ICT_NUM_ID = 40


def build_ict_asset(source: str | os.PathLike, target: str | os.PathLike, num_id: int = ICT_NUM_ID) -> Path:
    full = load_ict_facekit(source)
    model = full.truncated(num_id, full.num_exp)
    with np.load(source) as z:
        exp_names = z["exp_names"] if "exp_names" in z.files else np.array([], str)
    target = Path(target)
    np.savez_compressed(target, mean=model.mean, id_basis=model.id_basis.astype(np.float16),
                        exp_basis=model.exp_basis.astype(np.float16), triangles=model.triangles,
                        landmarks=model.landmarks, landmarks_bfm=derive_bfm_landmarks(model),
                        exp_names=exp_names)
    return target


def derive_bfm_landmarks(model: MorphableModel, samples: int = 30, rounds: int = 4, seed: int = 0) -> np.ndarray:
    """ICT vertex ids (68,) that best stand in for the default network's BFM landmark vertices."""
    from tfface.fitting.fitter import LandmarkFitter
    from tfface.fitting.prior import default_prior
    from tfface.fitting.problem import FitConfig
    from tfface.models.presets import morphable_asset

    bfm = morphable_asset("bfm_3ddfa_68")
    prior, rng = default_prior(bfm), np.random.default_rng(seed)
    aid = prior.id_mean + rng.normal(size=(samples, bfm.num_id)) * prior.id_std * 0.7
    aexp = prior.exp_mean + rng.normal(size=(samples, bfm.num_exp)) * prior.exp_std * 0.5
    aid[0], aexp[0] = prior.id_mean, prior.exp_mean
    targets = (bfm.mean + np.einsum("bk,knc->bnc", aid, bfm.id_basis)
               + np.einsum("bk,knc->bnc", aexp, bfm.exp_basis))
    ids = model.landmarks.copy()
    for _ in range(rounds):
        current = replace(model, landmarks=ids)
        fit = LandmarkFitter(current, config=FitConfig(landmark_sigma=0.01, silhouette_contour=False)).fit(targets)
        verts = fitted_vertices(current, fit)
        dist = np.linalg.norm(verts[:, :, None] - targets[:, None], axis=-1).mean(axis=0)  # (N, 68)
        ids = dist.argmin(axis=0).astype(np.int32)
    return ids


def fitted_vertices(model: MorphableModel, fit) -> np.ndarray:
    """All vertices (B, N, 3) of a FitResult's shapes, posed by its similarity transform."""
    shapes = (model.mean + np.einsum("bk,knc->bnc", fit.alpha_id, model.id_basis)
              + np.einsum("bk,knc->bnc", fit.alpha_exp, model.exp_basis))
    return fit.scale[:, None, None] * shapes @ fit.rotation.transpose(0, 2, 1) + fit.translation[:, None]


def asset_path() -> Path:
    from tfface.models.presets import assets_dir

    return assets_dir() / "morphable" / f"{ICT_ASSET}.npz"


@lru_cache(maxsize=4)
def ict_face_model(path: str | None = None, landmark_set: str = "ibug", region: str = "face") -> MorphableModel:
    """The bundled dense ICT-FaceKit face model (centimetres).

    landmark_set: "ibug" (ICT's own iBUG-68 vertices) or "bfm" (stand-ins for the network's points).
    region: "face" (face, forehead and ears: 8,480 vertices, 16,614 triangles) or "full" (also the neck:
    9,409 vertices, 18,460 triangles; 68 landmarks say nothing about the neck, so its fitted shape is
    a guess that overlays draw over collars and chests).
    """
    if landmark_set not in ("ibug", "bfm"):
        raise ValueError(f"landmark_set must be 'ibug' or 'bfm'. Received: {landmark_set!r}")
    if region not in ("face", "full"):
        raise ValueError(f"region must be 'face' or 'full'. Received: {region!r}")
    path = Path(path) if path else asset_path()
    if not path.is_file():
        raise DataFileError(f"{path}: ICT-FaceKit asset not found")
    with np.load(path) as z:
        key = "landmarks_bfm" if landmark_set == "bfm" else "landmarks"
        model = MorphableModel(
            mean=z["mean"].astype(np.float32), id_basis=z["id_basis"].astype(np.float32),
            exp_basis=z["exp_basis"].astype(np.float32), landmarks=z[key].astype(np.int32),
            triangles=z["triangles"].astype(np.int32), name="ict-facekit", units="cm")
        ibug = z["landmarks"].astype(np.int64)
    if region == "full":
        return model
    return model.submesh(face_region(model.mean, model.triangles, ibug), "ict-facekit-face")


def face_region(mean: np.ndarray, triangles: np.ndarray, ibug68: np.ndarray, margin_cm: float = 2.0) -> np.ndarray:
    """(N,) bool: the vertices of the triangles above the jaw. The neck is what lies more than
    `margin_cm` beyond the plane through the chin (iBUG 8) and the two jaw points below the ears
    (3, 13), lower than those jaw points (so the ears, which that plane crosses, stay)."""
    chin, left, right = mean[ibug68[8]], mean[ibug68[3]], mean[ibug68[13]]
    normal = np.cross(right - left, chin - left)
    normal /= np.linalg.norm(normal)
    if normal[1] > 0:  # make it point down (y is up in ICT's frame), away from the face
        normal = -normal
    beyond = (mean - chin) @ normal > margin_cm
    below = mean[:, 1] < min(left[1], right[1])
    inside = ~(beyond & below)
    keep = np.zeros(len(mean), bool)
    keep[triangles[inside[triangles].all(axis=1)]] = True  # no vertex left without a triangle
    return keep


def exp_names(path: str | None = None) -> list[str]:
    with np.load(Path(path) if path else asset_path()) as z:
        return [str(n) for n in z["exp_names"]]
