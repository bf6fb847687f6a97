"""Face detection: MediaPipe's BlazeFace models (shipped with the package) on LiteRT, offline.

The names load lazily, so the CLI can offer `DETECTORS` without importing NumPy, OpenCV or LiteRT.
"""

from __future__ import annotations

from typing import Any

from tfface.detection.names import DETECTORS, MODEL_FILES

__all__ = ["DETECTORS", "MODEL_FILES", "BlazeFaceDetector", "CascadeDetector", "Detection", "create_detector"]


def create_detector(name: str = "auto", min_score: float = 0.5) -> Any:
    """`auto`, `short` or `full` (see tfface.detection.cascade and .blazeface)."""
    from tfface.detection.blazeface import BlazeFaceDetector
    from tfface.detection.cascade import CascadeDetector

    if name == "auto":
        return CascadeDetector(min_score)
    return BlazeFaceDetector(name, min_score)


def __getattr__(name: str) -> Any:
    if name in ("BlazeFaceDetector", "Detection"):
        from tfface.detection import blazeface

        return getattr(blazeface, name)
    if name == "CascadeDetector":
        from tfface.detection.cascade import CascadeDetector

        return CascadeDetector
    raise AttributeError(f"module 'tfface.detection' has no attribute {name!r}")
