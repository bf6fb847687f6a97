"""BlazeFace (MediaPipe's face detector models, shipped in tfface) on LiteRT; MediaPipe Tasks' own
FaceDetector as the reference.

`short` (128x128 input) is made for faces that fill a good part of the photo (selfies, portraits,
cropped datasets); `full` (192x192, sparse) also finds small faces further away.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from tfface.detection.names import MODEL_FILES
from tfface.detection.litert_blazeface import DETECTORS, BlazeFace, Detection
from tfface.quiet import native_stderr_silenced

MODELS = MODEL_FILES


class BlazeFaceDetector:
    """RGB uint8 image -> faces, best first: BlazeFace on LiteRT with NumPy pre/post-processing
    (`tfface.detection.litert_blazeface`; MediaPipe's boxes within 1 px, tests/test_mobile_demo.py). It
    starts in milliseconds where MediaPipe's graph took ~2.5 s. A context manager, like the cascade."""

    def __init__(self, model: str = "short", min_score: float = 0.5, nms_iou: float = 0.3) -> None:
        if model not in MODELS:
            raise ValueError(f"detector model must be one of {sorted(MODELS)}. Received: {model!r}")
        self._detector: BlazeFace | None = BlazeFace(DETECTORS[model], min_score, nms_iou)
        self.model = model

    def detect(self, image: np.ndarray) -> list[Detection]:
        if self._detector is None:
            raise ValueError("detector is closed")
        return sorted(self._detector(image), key=lambda f: -f.score)

    def close(self) -> None:
        self._detector = None

    def __enter__(self) -> "BlazeFaceDetector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _mediapipe_tasks():
    """MediaPipe Tasks, imported only when detecting. Its optional_dependencies module imports
    TensorFlow (for doc decorators) whenever TF is installed, 3-5 s here; unless TF is loaded already,
    that import is made to fail the way MediaPipe expects when TF is absent."""
    import sys

    blocked = "tensorflow" not in sys.modules
    if blocked:
        sys.modules["tensorflow"] = None  # type: ignore[assignment]  # -> ModuleNotFoundError, handled there
    try:
        from mediapipe.tasks.python import BaseOptions, vision
    finally:
        if blocked:
            del sys.modules["tensorflow"]
    return BaseOptions, vision


class MediaPipeBlazeFace:
    """The same models through MediaPipe Tasks' FaceDetector: the reference the LiteRT detector is tested
    against. RGB uint8 image -> faces, best first; a context manager."""

    def __init__(self, model: str = "short", min_score: float = 0.5, nms_iou: float = 0.3) -> None:
        BaseOptions, vision = _mediapipe_tasks()

        if model not in MODELS:
            raise ValueError(f"detector model must be one of {sorted(MODELS)}. Received: {model!r}")
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1]. Received: min_score={min_score}")
        path = resources.files("tfface.assets") / "mediapipe" / MODELS[model]
        options = vision.FaceDetectorOptions(
            base_options=BaseOptions(model_asset_buffer=path.read_bytes()),
            min_detection_confidence=min_score, min_suppression_threshold=nms_iou)
        with native_stderr_silenced():  # LiteRT prints INFO lines on every start
            self._detector = vision.FaceDetector.create_from_options(options)
        self.model = model

    def detect(self, image: np.ndarray) -> list[Detection]:
        import mediapipe as mp

        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image (H, W, 3). Received: {image.shape} {image.dtype}")
        h, w = image.shape[:2]
        with native_stderr_silenced():  # and alignment warnings on the first call
            result = self._detector.detect(mp.Image(image_format=mp.ImageFormat.SRGB,
                                                    data=np.ascontiguousarray(image)))
        faces = []
        for d in result.detections:
            b = d.bounding_box
            box = np.array([b.origin_x, b.origin_y, b.origin_x + b.width, b.origin_y + b.height], np.float32)
            kps = np.array([[k.x * w, k.y * h] for k in d.keypoints], np.float32).reshape(-1, 2)
            faces.append(Detection(box, float(d.categories[0].score), kps))
        return sorted(faces, key=lambda f: -f.score)

    def close(self) -> None:
        if self._detector is not None:
            with native_stderr_silenced():
                self._detector.close()
            self._detector = None

    def __enter__(self) -> "MediaPipeBlazeFace":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # closing at interpreter shutdown raises inside mediapipe
        try:
            self.close()
        except Exception:
            pass
