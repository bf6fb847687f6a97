"""Backbones map normalised face crops to a feature vector, and nothing else.

`build_backbone(name, ...)` is the one place a config names a backbone:
- "mobilenet_v1": 3DDFA_V2's MobileNetV1 (the default model's; initialisable from the converted preset),
- "mobilenet_v3_small", "mobilenet_v3_large", "resnet50": keras.applications, random initialisation.
"""

from __future__ import annotations

import keras

from tfface.models.backbones.applications import _APPLICATIONS, ApplicationBackbone
from tfface.models.backbones.mobilenet_v1 import MIN_IMAGE_SIZE, MobileNetV1Backbone

BACKBONES: tuple[str, ...] = ("mobilenet_v1", *sorted(_APPLICATIONS))


def build_backbone(name: str = "mobilenet_v1", image_size: int = 120,
                   width_multiplier: float = 0.5) -> keras.Model:
    """A backbone by name: images (B, S, S, 3) -> features (B, F)."""
    if name == "mobilenet_v1":
        return MobileNetV1Backbone(width_multiplier=width_multiplier, image_size=image_size)
    if name in _APPLICATIONS:
        return ApplicationBackbone(name, image_size=image_size, width_multiplier=width_multiplier)
    raise ValueError(f"backbone must be one of {list(BACKBONES)}. Received: backbone={name!r}")


__all__ = ["BACKBONES", "MIN_IMAGE_SIZE", "ApplicationBackbone", "MobileNetV1Backbone", "build_backbone"]
