"""Export tfface models: SavedModel (TF Serving layout, one signature per head), TFLite fp32/fp16/int8
(built-in ops only), ONNX, a metadata sidecar, and a parity report against Keras.

`export_preset(preset, out_dir, formats=...)` is what `tfface export` runs.
"""

from typing import Any

from tfface.export.formats import FORMATS

__all__ = ["FORMATS", "ExportResult", "export_preset"]


def __getattr__(name: str) -> Any:  # lazy: importing TensorFlow is slow and noisy for `tfface --help`
    if name in ("ExportResult", "export_preset"):
        from tfface.export import exporter

        return getattr(exporter, name)
    raise AttributeError(name)
