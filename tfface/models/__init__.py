"""Keras models: backbones (images -> features) and tasks (heads on top)."""

from tfface.models.backbones.mobilenet_v1 import MobileNetV1Backbone
from tfface.models.param_regressor import ParamRegressor

__all__ = ["MobileNetV1Backbone", "ParamRegressor"]
