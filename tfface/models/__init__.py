"""Keras models: backbones (images -> features) and tasks (heads on top).

The model classes load lazily, so `tfface.models.presets` / `.attributes` (asset lookup, names) import
without Keras or TensorFlow.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MobileNetV1Backbone", "ParamRegressor"]


def __getattr__(name: str) -> Any:
    if name == "MobileNetV1Backbone":
        from tfface.models.backbones.mobilenet_v1 import MobileNetV1Backbone

        return MobileNetV1Backbone
    if name == "ParamRegressor":
        from tfface.models.param_regressor import ParamRegressor

        return ParamRegressor
    raise AttributeError(f"module 'tfface.models' has no attribute {name!r}")
