"""A dense shape basis in the network's own coefficient space: ICT-FaceKit vertices as a linear function
of the 3DDFA identity/expression coefficients, for meshes without a per-face fit.

With the pose left to the network's camera, fitting the dense model to the 68 landmarks in the model
frame is a ridge regression whose targets are linear in the coefficients (s68 = mean + A·alpha), so its
solution is too: dense(alpha) = D0 + D·alpha, exact for that regression and computed once. Decoding a
mesh then costs what decoding 68 landmarks costs (one matrix product and the camera), which is what
the TensorFlow-free edge app needs; `DenseFitter` (a free pose and bounded blendshapes per face) stays
the more faithful route in tfface itself.
"""

from __future__ import annotations

import numpy as np

from tfface.fitting.ict_asset import ict_face_model
from tfface.fitting.prior import default_prior
from tfface.morphable.model import MorphableModel


def face_size(points: np.ndarray) -> float:
    """sqrt(width x height) of the points' x-y bounding box (the NME normaliser)."""
    return float(np.sqrt(np.ptp(points[:, 0]) * np.ptp(points[:, 1])))


def similarity(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares s, R, t with target ≈ s·R·source + t (Umeyama), for (N, 3) point sets."""
    mu_s, mu_t = source.mean(0), target.mean(0)
    a, b = source - mu_s, target - mu_t
    u, sig, vt = np.linalg.svd(b.T @ a)
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ d @ vt
    scale = float(np.trace(np.diag(sig) @ d) / (a ** 2).sum())
    return scale, rot, mu_t - scale * rot @ mu_s


def dense_shape_basis(shape_model: MorphableModel, dense: MorphableModel | None = None,
                      landmark_sigma: float = 0.01) -> MorphableModel:
    """`dense` (default: the ICT-FaceKit face with its BFM-matched landmarks) re-expressed in the
    coefficients and frame of `shape_model` (the 68-point 3DDFA model): a MorphableModel with the dense
    vertices and triangles whose `id_basis`/`exp_basis` take the network's alpha_id/alpha_exp.

    landmark_sigma: expected landmark misfit as a fraction of the face size, against the dense model's
    coefficient prior (the same trade-off as `DenseFitter`)."""
    dense = dense or ict_face_model(landmark_set="bfm")
    lm68 = shape_model.landmark_model()
    scale, rot, shift = similarity(dense.mean[dense.landmarks].astype(np.float64), lm68.mean.astype(np.float64))
    to_frame = lambda x: scale * np.einsum("ij,...nj->...ni", rot, x)  # noqa: E731  (directions: no shift)
    prior = default_prior(dense)
    stds = np.concatenate([prior.id_std, prior.exp_std])
    # whitened dense landmark basis in the 68-point frame: (204, K) with K = dense id + exp components
    basis = np.concatenate([dense.id_basis, dense.exp_basis])[:, dense.landmarks].astype(np.float64)
    lm_basis = to_frame(basis).reshape(len(stds), -1).T * stds
    face = np.ptp(lm68.mean[:, 0]) * np.ptp(lm68.mean[:, 1])
    reg = (landmark_sigma ** 2) * face  # (sigma * face size)^2: the landmark variance against N(0, 1)
    solve = np.linalg.solve(lm_basis.T @ lm_basis + reg * np.eye(len(stds)), lm_basis.T)  # (K, 204)
    mean_lm = to_frame(dense.mean[dense.landmarks].astype(np.float64)) + shift
    prior_mean = np.concatenate([prior.id_mean, prior.exp_mean])
    offset = lm68.mean.astype(np.float64) - mean_lm - to_frame(np.einsum("k,knc->nc", prior_mean, basis))
    dense_dirs = to_frame(np.concatenate([dense.id_basis, dense.exp_basis]).astype(np.float64))  # (K, N, 3)
    weights = lambda x: stds * (solve @ x.reshape(-1))  # noqa: E731  (dense coefficients for a 68-point offset)
    mean = (to_frame(dense.mean.astype(np.float64)) + shift
            + np.einsum("k,knc->nc", prior_mean + weights(offset), dense_dirs))
    coef = lambda b: np.stack([np.einsum("k,knc->nc", weights(v), dense_dirs) for v in b])  # noqa: E731
    return MorphableModel(mean.astype(np.float32), coef(lm68.id_basis.astype(np.float64)).astype(np.float32),
                          coef(lm68.exp_basis.astype(np.float64)).astype(np.float32), dense.landmarks,
                          dense.triangles, f"{dense.name}-in-{shape_model.name}", shape_model.units)


def coarse_mesh_basis(shape_model: MorphableModel, cell: float) -> MorphableModel:
    """`dense_shape_basis(shape_model)` coarsened to cells of `cell` x its landmarks' face size."""
    dense = dense_shape_basis(shape_model)
    return simplified(dense, cell * face_size(dense.mean[dense.landmarks]))


def simplified(model: MorphableModel, cell: float) -> MorphableModel:
    """A coarser mesh of the same model by vertex clustering on its mean shape: one kept vertex (the
    one nearest its cell's centroid) per `cell`-sized cube, triangles re-pointed to the kept vertices,
    collapsed and repeated ones dropped. Landmark ids point to their cells' kept vertices."""
    cells = np.floor(model.mean / cell).astype(np.int64)
    _, cluster = np.unique(cells, axis=0, return_inverse=True)
    cluster = cluster.reshape(-1)
    centroids = np.zeros((cluster.max() + 1, 3))
    np.add.at(centroids, cluster, model.mean)
    centroids /= np.bincount(cluster)[:, None]
    dist = np.linalg.norm(model.mean - centroids[cluster], axis=1)
    order = np.lexsort((dist, cluster))  # per cluster, nearest first
    first = order[np.r_[True, cluster[order][1:] != cluster[order][:-1]]]
    keep = np.zeros(model.num_vertices, bool)
    keep[first] = True
    rep = np.empty(cluster.max() + 1, np.int64)
    rep[cluster[first]] = first
    tris = rep[cluster[model.triangles]]  # the original winding
    tris = tris[(tris[:, 0] != tris[:, 1]) & (tris[:, 1] != tris[:, 2]) & (tris[:, 0] != tris[:, 2])]
    tris = tris[np.sort(np.unique(np.sort(tris, axis=1), axis=0, return_index=True)[1])]
    new_ids = np.cumsum(keep) - 1
    return MorphableModel(model.mean[keep], model.id_basis[:, keep], model.exp_basis[:, keep],
                          new_ids[rep[cluster[model.landmarks]]].astype(np.int32),
                          new_ids[tris].astype(np.int32), f"{model.name}-coarse", model.units)
