"""Face detection (MediaPipe BlazeFace, shipped with the package, runs offline)."""

from tfface.detection.blazeface import MODELS, BlazeFaceDetector, Detection
from tfface.detection.cascade import CascadeDetector

DETECTORS = ("auto", *MODELS)  # `auto`: short-range, then full-range and tiles where it finds nothing


def create_detector(name: str = "auto", min_score: float = 0.5) -> BlazeFaceDetector | CascadeDetector:
    """`auto`, `short` or `full` (see tfface.detection.cascade and .blazeface)."""
    if name == "auto":
        return CascadeDetector(min_score)
    return BlazeFaceDetector(name, min_score)


__all__ = ["DETECTORS", "BlazeFaceDetector", "CascadeDetector", "Detection", "create_detector"]
