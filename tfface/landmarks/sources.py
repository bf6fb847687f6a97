"""Where 68 landmarks for labelling come from: the default network, or MediaPipe mapped to iBUG-68.

A source is called on an RGB photo and returns one (68, 2) array (image pixels) per face, largest
face first. Both give points on fixed model vertices (the network's BFM vertices; the MediaPipe
mapping was calibrated against AFLW2000-3D's pt3d_68), so fits need no silhouette handling.
"""

from __future__ import annotations

import numpy as np

SOURCES = ("network", "mediapipe")


def _largest_first(faces: list[np.ndarray]) -> list[np.ndarray]:
    return sorted(faces, key=lambda p: -float(np.prod(p[:, :2].max(axis=0) - p[:, :2].min(axis=0))))


class NetworkLandmarks:

    def __init__(self, preset: str | None = None) -> None:
        from tfface.inference.reconstructor import FaceReconstructor
        from tfface.models.presets import DEFAULT_PRESET

        self.reconstructor = FaceReconstructor(preset or DEFAULT_PRESET)

    def __call__(self, image: np.ndarray) -> list[np.ndarray]:
        return _largest_first([f.landmarks[:, :2] for f in self.reconstructor(image)])

    def close(self) -> None:
        self.reconstructor.close()


class MediaPipeLandmarks:

    def __init__(self) -> None:
        from tfface.landmarks.ibug_mapping import LandmarkMapping
        from tfface.landmarks.mediapipe_mesh import MediaPipeFaceMesh

        self.mesh, self.mapping = MediaPipeFaceMesh(), LandmarkMapping.load()

    def __call__(self, image: np.ndarray) -> list[np.ndarray]:
        return _largest_first([self.mapping(m.points[:, :2]) for m in self.mesh(image)])

    def close(self) -> None:
        self.mesh.close()


def landmark_source(name: str):
    if name not in SOURCES:
        raise ValueError(f"landmark source must be one of {SOURCES}. Received: {name!r}")
    return NetworkLandmarks() if name == "network" else MediaPipeLandmarks()
