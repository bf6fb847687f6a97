"""keras.applications networks as tfface backbones: images -> pooled features, random initialisation.

Weights are never downloaded (weights=None); the networks take the preprocessor's normalised input
as is (include_preprocessing=False where keras.applications offers it).
"""

from __future__ import annotations

from typing import Any

import keras

from tfface.models.backbones.mobilenet_v1 import MIN_IMAGE_SIZE

# name -> (constructor, whether it takes a width multiplier `alpha`)
_APPLICATIONS: dict[str, tuple[Any, bool]] = {
    "mobilenet_v3_small": (keras.applications.MobileNetV3Small, True),
    "mobilenet_v3_large": (keras.applications.MobileNetV3Large, True),
    "resnet50": (keras.applications.ResNet50, False),
}


@keras.saving.register_keras_serializable(package="tfface")
class ApplicationBackbone(keras.Model):
    """A keras.applications network without its top: (B, S, S, 3) -> (B, F) average-pooled features."""

    def __init__(self, architecture: str = "mobilenet_v3_small", image_size: int = 120,
                 width_multiplier: float = 1.0, **kwargs: Any) -> None:
        if architecture not in _APPLICATIONS:
            raise ValueError(f"architecture must be one of {sorted(_APPLICATIONS)}. "
                             f"Received: architecture={architecture!r}")
        if image_size < MIN_IMAGE_SIZE:
            raise ValueError(f"image_size must be >= {MIN_IMAGE_SIZE}. Received: image_size={image_size}")
        build, has_alpha = _APPLICATIONS[architecture]
        extra: dict[str, Any] = {"alpha": width_multiplier, "include_preprocessing": False} if has_alpha else {}
        # === Layers ===
        network = build(input_shape=(image_size, image_size, 3), include_top=False, weights=None,
                        pooling="avg", **extra)
        # === Functional graph ===
        inputs = keras.Input((image_size, image_size, 3), name="images")
        features = network(inputs)
        super().__init__(inputs=inputs, outputs=features, **kwargs)
        # === Config ===
        self.architecture = architecture
        self.image_size = image_size
        self.width_multiplier = width_multiplier
        self.feature_dim = int(features.shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {"architecture": self.architecture, "image_size": self.image_size,
                "width_multiplier": self.width_multiplier, "name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "ApplicationBackbone":
        return cls(**config)
