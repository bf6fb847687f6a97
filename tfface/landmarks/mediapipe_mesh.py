"""MediaPipe's face landmark model (468 3D points, Apache-2.0, shipped in tfface/assets/mediapipe).

The crop follows MediaPipe's face-mesh rule: a square of 1.5x the detector box's longer side around
its centre, rotated so the eyes (BlazeFace keypoints 0 and 1) are level; the model sees it as
192x192 RGB in [0, 1]. Points come back in image pixels (z on the same scale, smaller = nearer, as
MediaPipe outputs it).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import cv2
import numpy as np

from tfface.quiet import native_stderr_silenced

INPUT_SIZE = 192
NUM_POINTS = 468


@dataclass(frozen=True)
class MeshLandmarks:
    points: np.ndarray  # (468, 3) image pixels
    score: float  # face presence probability of the landmark model
    crop: np.ndarray  # (2, 3) affine crop pixels -> image pixels


def crop_affine(box: np.ndarray, eyes: np.ndarray | None, scale: float = 1.5) -> np.ndarray:
    """2x3 map from 192x192 crop pixels to image pixels, rotated so the eyes are level."""
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    side = scale * max(x1 - x0, y1 - y0) / INPUT_SIZE
    angle = 0.0 if eyes is None else float(np.arctan2(eyes[1, 1] - eyes[0, 1], eyes[1, 0] - eyes[0, 0]))
    c, s = np.cos(angle) * side, np.sin(angle) * side
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    lin = np.array([[c, -s], [s, c]])
    return np.concatenate([lin, (centre - lin @ np.full(2, INPUT_SIZE / 2))[:, None]], axis=1)


class MediaPipeFaceMesh:
    """`mesh.from_box(image_rgb, box, eyes)` -> MeshLandmarks; `mesh(image)` runs BlazeFace first."""

    def __init__(self, num_threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        path = resources.files("tfface.assets") / "mediapipe" / "face_landmark.tflite"
        with native_stderr_silenced():
            self._interp = Interpreter(model_content=path.read_bytes(), num_threads=num_threads)
            self._interp.allocate_tensors()
        self._in = self._interp.get_input_details()[0]["index"]
        outs = {tuple(o["shape"]): o["index"] for o in self._interp.get_output_details()}
        self._points, self._flag = outs[(1, 1, 1, NUM_POINTS * 3)], outs[(1, 1, 1, 1)]
        self._detector = None

    def from_box(self, image: np.ndarray, box: np.ndarray, eyes: np.ndarray | None = None) -> MeshLandmarks:
        affine = crop_affine(box, eyes)
        crop = cv2.warpAffine(image, affine, (INPUT_SIZE, INPUT_SIZE),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT)
        self._interp.set_tensor(self._in, (crop.astype(np.float32) / 255.0)[None])
        self._interp.invoke()
        raw = self._interp.get_tensor(self._points).reshape(NUM_POINTS, 3).astype(np.float64)
        score = float(1.0 / (1.0 + np.exp(-self._interp.get_tensor(self._flag).reshape(()))))
        xy = raw[:, :2] @ affine[:, :2].T + affine[:, 2]
        z = raw[:, 2:] * np.sqrt(abs(np.linalg.det(affine[:, :2])))
        return MeshLandmarks(np.concatenate([xy, z], axis=1), score, affine)

    def __call__(self, image: np.ndarray) -> list[MeshLandmarks]:
        if self._detector is None:
            from tfface.detection.blazeface import BlazeFaceDetector

            self._detector = BlazeFaceDetector("short")
        return [self.from_box(image, d.box, d.keypoints[:2]) for d in self._detector.detect(image)]

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()
