"""The facade: an RGB photo in, one reconstruction per face out.

Detector boxes and the 3DDFA crop rule give a first crop; with `refine` the crop is cut again from
the 68 landmarks of that first pass (the rule the model's training crops and the AFLW2000-3D protocol
use), which makes results depend far less on how the detector draws its boxes.

Any preset works: a 3DDFA regressor gives params, landmarks and pose; a joint FaceModel preset also
gives CelebA attribute probabilities and the identity embedding, from the same forward pass that
gives the final crop's params (the network runs through `tfface.runtimes.KerasRunner`). So does any
file `tfface export` wrote (.tflite, .onnx, SavedModel: `tfface.runtimes.load_runner`), e.g. the TFLite
fp32 file for a CPU several times faster than Keras.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tfface.detection import create_detector
from tfface.detection.blazeface import BlazeFaceDetector
from tfface.detection.cascade import CascadeDetector
from tfface.inference.decode import DecodedFaces
from tfface.inference.face_path import (MAX_TURN_DEGREES, RoiPass, crops_at, holds_face, reconstruct_rois,
                                        track_rois, with_aligned_embedding)
from tfface.morphable.crop import roi_from_box
from tfface.models.presets import DEFAULT_PRESET, Preset
from tfface.runtimes import KerasRunner, Runner, load_runner


@dataclass(frozen=True)
class Face:
    box: np.ndarray  # (4,) detector box x0, y0, x1, y1
    score: float
    roi_box: np.ndarray  # (4,) the square crop the network saw
    params: np.ndarray  # (62,)
    landmarks: np.ndarray  # (68, 3) image pixels
    pose: np.ndarray  # (3,) yaw, pitch, roll degrees
    attributes: dict[str, float] | None = None  # sigmoid probabilities by name (joint presets)
    embedding: np.ndarray | None = None  # (D,) L2-normalised identity embedding (joint presets)
    present: list[str] | None = None  # attributes at or above the model's per-attribute thresholds

    def to_json(self) -> dict[str, Any]:
        yaw, pitch, roll = (round(float(a), 3) for a in self.pose)
        result = {
            "box": [round(float(v), 2) for v in self.box],
            "score": round(self.score, 4),
            "roi_box": [round(float(v), 2) for v in self.roi_box],
            "landmarks_2d": np.round(self.landmarks[:, :2], 2).tolist(),
            "landmarks_3d": np.round(self.landmarks, 2).tolist(),
            "pose": {"yaw": yaw, "pitch": pitch, "roll": roll},
            "params": [float(f"{v:.6g}") for v in self.params],
        }
        if self.attributes is not None:
            result["attributes"] = {k: round(float(v), 4) for k, v in self.attributes.items()}
            result["attributes_present"] = self.present
        if self.embedding is not None:
            result["embedding"] = np.round(np.asarray(self.embedding, np.float64), 5).tolist()
        return result


def largest_face(faces: Sequence[Face]) -> Face:
    """The face with the largest detector box (ties: the first)."""
    return max(faces, key=lambda f: float((f.box[2] - f.box[0]) * (f.box[3] - f.box[1])))


class FaceReconstructor:
    """`faces = FaceReconstructor()(image_rgb)`; or `.from_boxes(image, boxes)` with your own boxes.

    `preset` is a preset name or folder, a loaded `Preset`, an exported model (.tflite, .onnx, SavedModel
    folder) or a `Runner`; `runtime` picks how a preset runs (`tfface.runtimes.load_runner`: by default its
    shipped TFLite file, without TensorFlow). `.preset` is the Keras preset, None for other runtimes."""

    def __init__(self, preset: str | os.PathLike | Preset | Runner = DEFAULT_PRESET, detector: str = "auto",
                 min_score: float = 0.5, refine: int = 1, runtime: str = "auto",
                 max_turn: float | None = MAX_TURN_DEGREES) -> None:
        if isinstance(preset, Runner):
            self.runner = preset
        else:
            self.runner = KerasRunner(preset) if isinstance(preset, Preset) else load_runner(preset, runtime=runtime)
        self.preset: Preset | None = getattr(self.runner, "preset", None)
        self.decoder = self.runner.decoder
        self.attribute_names = self.runner.attribute_names
        self.detector_name, self.min_score = detector, min_score
        self._detector: BlazeFaceDetector | CascadeDetector | None = None
        self.refine = refine
        self.max_turn = max_turn  # detections whose refined crop holds no face are dropped (None: keep all)
        self._tracked: list[Face] = []  # the previous video frame's faces (`track`)
        self._since_detection = 0

    @property
    def detector(self) -> BlazeFaceDetector | CascadeDetector:
        if self._detector is None:
            self._detector = create_detector(self.detector_name, self.min_score)
        return self._detector

    def crops(self, image: np.ndarray, roi_boxes: np.ndarray) -> np.ndarray:
        """uint8 RGB crops (F, S, S, 3) cut at `roi_boxes` (F, 4)."""
        return crops_at(image, roi_boxes, self.runner.image_size)

    def run_rois(self, image: np.ndarray, roi_boxes: np.ndarray, refine: int = 0) -> RoiPass:
        """Network passes on the crops at `roi_boxes` (F, 4) (+ `refine` re-crops), decoded."""
        return reconstruct_rois(image, roi_boxes, self.runner, self.decoder.landmarks_pose, self.runner.image_size, refine)

    def predict_rois(self, image: np.ndarray, roi_boxes: np.ndarray) -> DecodedFaces:
        """Run the network on crops cut at `roi_boxes` (F, 4) and decode."""
        p = self.run_rois(image, roi_boxes)
        return DecodedFaces(p.outputs["params"], p.landmarks, p.pose)

    def from_boxes(self, image: np.ndarray, boxes: np.ndarray, scores: np.ndarray | None = None) -> list[Face]:
        """Faces from your own detector's boxes (F, 4), every box kept."""
        return self._faces(image, boxes, scores, check=False)

    def __call__(self, image: np.ndarray) -> list[Face]:
        detections = self.detector.detect(image)
        return self._faces(image, np.array([d.box for d in detections]), np.array([d.score for d in detections]),
                           check=self.max_turn is not None)

    def track(self, frame: np.ndarray, detect_every: int = 10) -> list[Face]:
        """Video frames in order: faces cropped from the previous frame's landmarks (one network pass, no
        detector), with detection every `detect_every` frames and whenever tracking is lost
        (`tfface.inference.face_path.track_rois`; `python -m benchmarks.video_tracking`)."""
        prev = self._tracked
        if prev and self._since_detection < detect_every:
            p, held = track_rois(frame, np.stack([f.landmarks for f in prev]), np.stack([f.params for f in prev]),
                                 self.runner, self.decoder.landmarks_pose, self.runner.image_size)
            if held:
                p = self._embedding_views(frame, p)
                self._tracked = [self._face(p, i, f.box, f.score) for i, f in enumerate(prev)]
                self._since_detection += 1
                return self._tracked
        self._tracked, self._since_detection = self(frame), 1
        return self._tracked

    def reset_tracking(self) -> None:
        """Forget the faces `track` follows (call before the first frame of another video)."""
        self._tracked, self._since_detection = [], 0

    def _faces(self, image: np.ndarray, boxes: np.ndarray, scores: np.ndarray | None, check: bool) -> list[Face]:
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        if not len(boxes):
            return []
        p = self.run_rois(image, np.stack([roi_from_box(b) for b in boxes]), self.refine)
        keep = np.ones(len(boxes), bool)
        if check:  # a detection is a face only if its refined crop still holds one
            keep = holds_face(image, p, self.runner, self.decoder.landmarks_pose, self.runner.image_size, self.max_turn)
        scores = np.ones(len(boxes)) if scores is None else scores
        p = self._embedding_views(image, p)
        return [self._face(p, i, boxes[i], float(scores[i])) for i in np.flatnonzero(keep)]

    def _embedding_views(self, image: np.ndarray, p: RoiPass) -> RoiPass:
        """With a preset that has an identity template, the embedding also reads each face's aligned crop."""
        template = self.runner.identity_template
        return p if template is None else with_aligned_embedding(image, p, self.runner, template, self.runner.image_size)

    def _face(self, p: RoiPass, i: int, box: np.ndarray, score: float) -> Face:
        probs, embeddings = p.outputs.get("attributes"), p.outputs.get("embedding")
        thresholds = np.asarray(self.runner.attribute_thresholds or 0.5)
        present = None if probs is None else [n for n, on in zip(self.attribute_names, probs[i] >= thresholds) if on]
        return Face(box, score, p.rois[i], p.outputs["params"][i], p.landmarks[i], p.pose[i],
                    attributes=None if probs is None else dict(zip(self.attribute_names, map(float, probs[i]))),
                    embedding=None if embeddings is None else embeddings[i], present=present)

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()
            self._detector = None

    # `with FaceReconstructor() as rec:` closes MediaPipe's detector before interpreter exit, where
    # MediaPipe's own finaliser prints a traceback
    def __enter__(self) -> "FaceReconstructor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
