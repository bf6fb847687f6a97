"""The export formats `tfface export --formats` knows (light: imported when the CLI parser is built)."""

FORMATS: tuple[str, ...] = ("saved_model", "tflite_fp32", "tflite_fp16", "tflite_int8", "tflite_int16x8", "onnx")
TFLITE_KINDS: tuple[str, ...] = tuple(f.removeprefix("tflite_") for f in FORMATS if f.startswith("tflite_"))
QUANTISED_FORMATS: tuple[str, ...] = ("tflite_int8", "tflite_int16x8")  # need representative face crops
FLOAT_INPUT_FORMATS: tuple[str, ...] = ("tflite_int16x8",)  # float32 crops (RGB 0..255): no int16 CAST


def input_dtype(fmt: str) -> str:
    """The crop dtype a format's file takes: uint8, or float32 holding the same 0..255 RGB values."""
    return "float32" if fmt in FLOAT_INPUT_FORMATS else "uint8"
