"""The detector names and their model files (under tfface/assets/mediapipe): no heavy imports, so the CLI
can offer them before loading anything."""

MODEL_FILES = {
    "short": "face_detection_short_range.tflite",
    "full": "face_detection_full_range_sparse.tflite",
}
DETECTORS = ("auto", *MODEL_FILES)  # `auto`: short-range, then full-range and tiles where it finds nothing
