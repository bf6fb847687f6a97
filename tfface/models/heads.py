"""Small layers for the joint model's heads that Keras does not ship."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfface")
class CosineClassifier(keras.layers.Layer):
    """Cosines between L2-normalised inputs and L2-normalised class centres: (B, D) -> (B, units).

    The angular-margin losses (ArcFace, CosFace) add their margin to the target class's cosine and
    scale; the layer itself stays margin-free so it is the same at training and inference.
    """

    def __init__(self, units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if units <= 0:
            raise ValueError(f"units must be > 0. Received: units={units}")
        self.units = units

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.kernel = self.add_weight(shape=(int(input_shape[-1]), self.units),
                                      initializer="glorot_uniform", name="kernel")

    def call(self, inputs: Any) -> Any:
        return ops.matmul(ops.normalize(inputs, axis=-1), ops.normalize(self.kernel, axis=0))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units}
