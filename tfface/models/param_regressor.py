"""The 3DMM parameter regressor task: a backbone plus a linear head to normalised 62-d parameters.

Outputs are normalised (as 3DDFA trains them); `tfface.morphable.ParamStats` turns them into 3DMM
parameters, and `tfface.inference.decode` into landmarks and pose.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

from tfface.morphable.params import PARAM_DIM


@keras.saving.register_keras_serializable(package="tfface")
class ParamRegressor(keras.Model):
    """Normalised face crops (B, S, S, 3) -> normalised 3DMM parameters (B, num_params)."""

    def __init__(self, backbone: keras.Model, num_params: int = PARAM_DIM, **kwargs: Any) -> None:
        if num_params <= 12:
            raise ValueError(f"num_params must be > 12 (12 are the camera). Received: num_params={num_params}")
        # === Layers ===
        head = layers.Dense(num_params, name="fc_param")
        # === Functional graph ===
        inputs = keras.Input(backbone.input_shape[1:], name="images")
        outputs = head(backbone(inputs))
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        # === Config ===
        self.backbone = backbone
        self.num_params = num_params

    @property
    def image_size(self) -> int:
        return int(self.backbone.input_shape[1])

    def get_config(self) -> dict[str, Any]:
        return {"backbone": keras.saving.serialize_keras_object(self.backbone),
                "num_params": self.num_params, "name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "ParamRegressor":
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)

    @classmethod
    def from_preset(cls, preset: str) -> "ParamRegressor":
        """A named preset shipped in the package (see `tfface.models.presets`) or a preset folder."""
        from tfface.models.presets import load_preset

        return load_preset(preset).model
