"""How stable is a fitted identity across photos of one person? (shared vs per-photo fits)

For each person the photos are split at random into two disjoint halves, many times. The neutral
identity shape (68 BFM points, no expression) is compared between the halves, after a similarity
(Procrustes) alignment, since global size belongs to the camera:
  shared      one multi-image fit per half            -> distance between the two identities
  per-photo   one photo of each half                  -> distance between the two single-photo fits
  averaged    mean alpha_id of per-photo fits per half -> distance between the two means
Distances are sqrt(Procrustes disparity) of the unit-normalised shapes (dimensionless). Fits that
lean on the prior shrink every identity towards the mean face, which shortens all distances, so each
method's within-person distance is also divided by its between-people distance (same method, the
halves of two different people): lower = a more stable, more person-specific identity.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import procrustes

from tfface.fitting.identity import IdentityFitter
from tfface.fitting.labels import to_crop_frame
from tfface.fitting.problem import FitConfig


def _neutral(fitter: IdentityFitter, alpha_id: np.ndarray) -> np.ndarray:
    m = fitter.model
    return m.mean[m.landmarks] + np.einsum("k,knc->nc", alpha_id, m.id_basis[:, m.landmarks])


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(procrustes(a, b)[2]))


def identity_stability(people: dict[str, np.ndarray], fitter: IdentityFitter | None = None,
                       splits: int = 5, seed: int = 0) -> dict[str, float]:
    """people: name -> landmarks (N, 68, 2) in image pixels (N >= 4). Returns mean distances."""
    if fitter is None:
        from tfface.fitting.labels import bfm_fitter

        fitter = bfm_fitter(FitConfig(silhouette_contour=False))
    rng = np.random.default_rng(seed)
    methods = ("shared_fit", "per_photo_fit", "averaged_per_photo")
    halves: dict[str, list[list[tuple[np.ndarray, np.ndarray]]]] = {m: [] for m in methods}
    for landmarks in people.values():
        pts = to_crop_frame(landmarks)[1]
        per_photo = fitter.fit(pts).alpha_id
        found = {m: [] for m in methods}
        for _ in range(splits):
            order = rng.permutation(len(pts))
            a, b = order[:len(pts) // 2], order[len(pts) // 2:]
            found["shared_fit"].append(tuple(_neutral(fitter, fitter.fit_identity(pts[h]).alpha_id[0]) for h in (a, b)))
            found["per_photo_fit"].append(tuple(_neutral(fitter, per_photo[h[0]]) for h in (a, b)))
            found["averaged_per_photo"].append(tuple(_neutral(fitter, per_photo[h].mean(0)) for h in (a, b)))
        for m in methods:
            halves[m].append(found[m])
    out: dict[str, float] = {"people": len(people), "splits": splits}
    for m in methods:
        within = [_distance(x, y) for person in halves[m] for x, y in person]
        between = [_distance(halves[m][i][s][0], halves[m][j][s][1]) for s in range(splits)
                   for i in range(len(people)) for j in range(len(people)) if i != j]
        out[f"{m}_within"], out[f"{m}_between"] = float(np.mean(within)), float(np.mean(between))
        out[f"{m}_ratio"] = out[f"{m}_within"] / out[f"{m}_between"]
    return out
