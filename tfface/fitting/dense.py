"""Dense meshes for reconstructions: the ICT-FaceKit model fitted to the network's 68 3D landmarks.

The network's landmarks are in image pixels with y down and z towards the viewer; flipping y gives a
right-handed frame where the 3D fit is a similarity transform (s, R, t) plus identity and blendshape
coefficients. The fitted mesh is flipped back, so its vertices are image pixels (x, y) with a depth z
on the same pixel scale, ready for drawing, rasterising and writing as .obj/.ply.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tfface.fitting.fitter import FitResult, LandmarkFitter
from tfface.fitting.ict_asset import fitted_vertices, ict_face_model
from tfface.fitting.problem import FitConfig
from tfface.morphable.model import MorphableModel

_FLIP_Y = np.array([1.0, -1.0, 1.0])
# 3D landmarks of the network are fixed model vertices: no silhouette sliding; a 68-point cloud says
# little about 40 identity modes; sigma 0.01 keeps the ICT landmarks within ~1% of the targets.
DENSE_CONFIG = FitConfig(iterations=15, landmark_sigma=0.01, silhouette_contour=False)


@dataclass(frozen=True)
class DenseFace:
    vertices: np.ndarray  # (N, 3) image pixels x, y (down) and depth z (towards the viewer)
    triangles: np.ndarray  # (T, 3) wound so that normals face the viewer
    landmark_ids: np.ndarray  # (68,) vertex ids of the iBUG-68 landmarks
    fit: FitResult  # one row; in the y-up frame

    @property
    def landmarks(self) -> np.ndarray:
        return self.vertices[self.landmark_ids]


class DenseFitter:
    """`DenseFitter()(landmarks_3d (F, 68, 3) image px)` -> one DenseFace per face."""

    def __init__(self, model: MorphableModel | None = None, config: FitConfig = DENSE_CONFIG) -> None:
        self.model = model or ict_face_model(landmark_set="bfm")
        if self.model.triangles is None:
            raise ValueError(f"{self.model.name} has no triangles: a dense model is needed for meshes")
        self.fitter = LandmarkFitter(self.model, config=config)

    def __call__(self, landmarks_3d: np.ndarray) -> list[DenseFace]:
        pts = np.asarray(landmarks_3d, np.float64).reshape(-1, 68, 3)
        if not len(pts):
            return []
        fit = self.fitter.fit(pts * _FLIP_Y)
        model = self.model
        verts = fitted_vertices(model, fit) * _FLIP_Y
        # the y flip mirrors the winding: reverse it so triangle normals face the viewer (+z)
        tris = model.triangles[:, ::-1].copy()
        return [DenseFace(verts[i], tris, model.landmarks,
                          FitResult(*(np.asarray(a)[i:i + 1] for a in (
                              fit.scale, fit.rotation, fit.translation, fit.alpha_id, fit.alpha_exp,
                              fit.landmarks, fit.errors, fit.nme))))
                for i in range(len(pts))]


def sample_colours(image: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Per-vertex RGB uint8 (N, 3) sampled bilinearly from the photo at each vertex's (x, y)."""
    xy = np.asarray(vertices, np.float32)[:, :2]
    cols = cv2.remap(image, xy[:, 0:1].copy(), xy[:, 1:2].copy(), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cols.reshape(-1, 3)
