"""Face detection (MediaPipe BlazeFace, shipped with the package, runs offline)."""

from tfface.detection.blazeface import BlazeFaceDetector, Detection

__all__ = ["BlazeFaceDetector", "Detection"]
