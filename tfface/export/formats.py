"""The export formats `tfface export --formats` knows (light: imported when the CLI parser is built)."""

FORMATS: tuple[str, ...] = ("saved_model", "tflite_fp32", "tflite_fp16", "tflite_int8", "onnx")
