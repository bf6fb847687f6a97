"""Mirror averaging: the identity/attribute branch reads the crop and its left-right mirror image and
averages the two pooled feature vectors. Faces are near-symmetric, so the mirrored crop is a second,
independent-noise view of the same face; test-time flip averaging is standard in face recognition
(insightface's evaluation does it). Inside the graph, every runtime (Keras, TFLite, ONNX, Serving) gets
the same outputs from one rule. The 3DMM path does not read the mirror: its params are not symmetric."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfface")
class MirrorImages(keras.layers.Layer):
    """(B, H, W, C) -> the same images mirrored left-right."""

    def call(self, inputs: Any) -> Any:
        return ops.flip(inputs, axis=2)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return tuple(input_shape)


@keras.saving.register_keras_serializable(package="tfface")
class ViewMean(keras.layers.Layer):
    """(2B, ...) of two stacked views [first; second] -> (B, ...): their mean."""

    def call(self, inputs: Any) -> Any:
        first, second = ops.split(inputs, 2, axis=0)
        return 0.5 * (first + second)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        batch = input_shape[0]
        return (None if batch is None else batch // 2, *input_shape[1:])
