"""Teacher identity embeddings for distillation: dlib's face recognition ResNet, at labelling time only.

dlib (`dlib-bin`, Boost licence) and its model file (`face-recognition-models`: the ResNet of
dlib-models by Davis King, released CC0 / public domain) are an optional extra:
`pip install -e .[teacher]`. Nothing at inference imports this module's dependencies.

The teacher sees the *photo* with dlib's own alignment: its 5-point shape predictor, started from a
face box drawn the way dlib's frontal detector draws it (derived from our 68 landmarks when a record
has them: measured on CelebA, dlib's box is a square of side 1.02x the landmarks' width, centred
0.08 widths above their centre), then a 150 px face chip and the 128-d descriptor, returned unit-norm.
"""

from __future__ import annotations

import numpy as np

from tfface.data.records import TEACHER_DIM
from tfface.errors import DataFileError, TffaceError


def dlib_box(landmarks: np.ndarray | None = None, box: np.ndarray | None = None) -> np.ndarray:
    """A dlib-detector-style square box (x0, y0, x1, y1) from 68 landmarks, else from a detector box."""
    if landmarks is not None:
        pts = np.asarray(landmarks, np.float64)[:, :2]
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        side = 1.02 * (hi[0] - lo[0])
        cx, cy = (lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0 - 0.08 * (hi[0] - lo[0])
    elif box is not None:
        x0, y0, x1, y1 = (float(v) for v in box[:4])
        side = (x1 - x0 + y1 - y0) / 2.0
        cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    else:
        raise DataFileError("the teacher needs the face's landmarks or box")
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])


class DlibTeacher:
    """RGB uint8 photo + face (landmarks or box) -> unit-norm (128,) float32 embedding."""

    name = "dlib_resnet_v1"
    dim = TEACHER_DIM

    def __init__(self, jitters: int = 0) -> None:
        try:
            import dlib
            import face_recognition_models as models
        except ImportError as e:
            raise TffaceError(f"the dlib teacher needs the optional extra: pip install -e .[teacher] ({e})") from e
        self._dlib = dlib
        self._shape = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
        self._net = dlib.face_recognition_model_v1(models.face_recognition_model_location())
        self.jitters = jitters

    def __call__(self, image: np.ndarray, landmarks: np.ndarray | None = None,
                 box: np.ndarray | None = None) -> np.ndarray:
        return self.embed_chips([self.chip(image, landmarks, box)])[0]

    def chip(self, image: np.ndarray, landmarks: np.ndarray | None = None,
             box: np.ndarray | None = None) -> np.ndarray:
        """The (150, 150, 3) uint8 face chip the ResNet reads: dlib's 5-point alignment, padding 0.25."""
        x0, y0, x1, y1 = (int(round(v)) for v in dlib_box(landmarks, box))
        image = np.ascontiguousarray(image[..., :3], np.uint8)
        shape = self._shape(image, self._dlib.rectangle(x0, y0, x1, y1))
        return np.asarray(self._dlib.get_face_chip(image, shape, size=150, padding=0.25))

    def embed_chips(self, chips: list[np.ndarray]) -> np.ndarray:
        """(N, 150, 150, 3) uint8 chips (from `chip`, or blends of them) -> (N, 128) unit-norm embeddings."""
        if not len(chips):
            return np.zeros((0, self.dim), np.float32)
        v = np.asarray(self._net.compute_face_descriptor([np.ascontiguousarray(c, np.uint8) for c in chips],
                                                         self.jitters), np.float32)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
