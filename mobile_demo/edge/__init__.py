"""The edge app: BlazeFace + the tfface TFLite model on LiteRT, NumPy and OpenCV only."""
