"""One frame in, faces out: BlazeFace -> 3DDFA_V2 crop -> tfface TFLite (+ one landmark re-crop) ->
optional One-Euro smoothing across frames."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tfface.detection.litert_blazeface import open_detector
from mobile_demo.edge.face_model import DEFAULT_MODEL, FaceNetwork
from tfface.inference.face_path import track_rois
from tfface.morphable.crop import roi_from_box
from tfface.inference.smoothing import FaceTracker, OneEuroConfig


@dataclass(frozen=True)
class Face:
    box: np.ndarray  # (4,) detector box, photo pixels
    score: float
    roi_box: np.ndarray  # (4,) last crop
    params: np.ndarray  # (62,)
    landmarks: np.ndarray  # (68, 3) photo pixels
    pose: np.ndarray  # (3,) yaw, pitch, roll degrees
    attributes: dict[str, float] | None = None
    vertices: np.ndarray | None = None  # (V, 3) coarse mesh, photo pixels (mesh=True)


@dataclass
class Timings:
    """Milliseconds of the last frame, by stage."""

    detect: float = 0.0
    model: float = 0.0
    smooth: float = 0.0
    history: list[float] = field(default_factory=list)  # total ms of every frame

    @property
    def total(self) -> float:
        return self.detect + self.model + self.smooth


class EdgePipeline:
    """`faces = EdgePipeline()(frame_rgb, t)`; `t` (seconds) drives the smoothing, None = a still photo."""

    def __init__(self, model: str | Path = DEFAULT_MODEL, detector: str | Path = "auto",
                 min_score: float = 0.5, refine: int = 1, smoothing: OneEuroConfig | None = None,
                 num_threads: int | None = None, max_faces: int = 8, mesh: bool = False,
                 detect_every: int = 1) -> None:
        self.detector = open_detector(detector, min_score, num_threads)
        self.model = FaceNetwork(model, num_threads=num_threads, mesh=mesh)
        self.refine, self.max_faces = refine, max_faces
        # detect_every > 1: video tracking; frames in between are cropped from the previous frame's
        # landmarks (tfface.inference.face_path.track_rois), the detector runs when tracking is lost
        self.detect_every = detect_every
        self._previous: list[Face] = []
        self._since_detection = 0
        self.tracker = FaceTracker(smoothing) if smoothing is not None else None
        self.timings = Timings()

    def __call__(self, image: np.ndarray, t: float | None = None) -> list[Face]:
        t0 = time.perf_counter()
        self.timings.detect = 0.0
        faces = self._tracked(image) if self._since_detection < self.detect_every and self._previous else None
        if faces is None:
            faces = self._detected(image)
            self._since_detection = 0
        self._since_detection += 1
        self._previous = faces
        t2 = time.perf_counter()
        if self.tracker is not None and t is not None:
            # params are relative to each frame's crop, so the mesh is smoothed in photo pixels with the rest
            smoothed = self.tracker(t, [{"landmarks": f.landmarks, "pose": f.pose, "params": f.params,
                                         **({} if f.vertices is None else {"vertices": f.vertices})}
                                        for f in faces])
            faces = [Face(f.box, f.score, f.roi_box, s["params"], s["landmarks"], s["pose"], f.attributes,
                          s.get("vertices")) for f, s in zip(faces, smoothed)]
        t3 = time.perf_counter()
        tm = self.timings
        tm.model, tm.smooth = 1e3 * (t2 - t0) - tm.detect, 1e3 * (t3 - t2)
        tm.history.append(tm.total)
        return faces

    def _detected(self, image: np.ndarray) -> list[Face]:
        t0 = time.perf_counter()
        detections = self.detector(image)[:self.max_faces]
        self.timings.detect = 1e3 * (time.perf_counter() - t0)
        rois = np.stack([roi_from_box(d.box) for d in detections]) if detections else np.zeros((0, 4))
        results = self.model.predict(image, rois, self.refine, check=True)
        return [Face(d.box, d.score, r.roi_box, r.params, r.landmarks, r.pose, r.attributes, r.vertices)
                for d, r in zip(detections, results) if r.holds_face]

    def _tracked(self, image: np.ndarray) -> list[Face] | None:
        """The previous frame's faces followed into this frame, or None when tracking is lost."""
        prev = self._previous
        p, held = track_rois(image, np.stack([f.landmarks for f in prev]), np.stack([f.params for f in prev]),
                             self.model, self.model.decode, self.model.image_size)
        if not held:
            return None
        results = self.model.results(p)
        return [Face(f.box, f.score, r.roi_box, r.params, r.landmarks, r.pose, r.attributes, r.vertices)
                for f, r in zip(prev, results)]
