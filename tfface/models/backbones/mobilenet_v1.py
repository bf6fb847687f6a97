"""MobileNetV1 as 3DDFA_V2 uses it: plain ReLU, symmetric padding 1, global average pooling.

Explicit ZeroPadding2D + 'valid' convolutions reproduce PyTorch's `padding=1` (Keras 'same' pads
stride-2 convolutions on the bottom/right only, which would shift every feature by half a pixel).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

# (output channels at width 1.0, stride) for the 13 depthwise-separable blocks, named as in 3DDFA_V2.
_BLOCKS = (
    ("dw2_1", 64, 1), ("dw2_2", 128, 2), ("dw3_1", 128, 1), ("dw3_2", 256, 2),
    ("dw4_1", 256, 1), ("dw4_2", 512, 2), ("dw5_1", 512, 1), ("dw5_2", 512, 1),
    ("dw5_3", 512, 1), ("dw5_4", 512, 1), ("dw5_5", 512, 1), ("dw5_6", 1024, 2),
    ("dw6", 1024, 1),
)
BN_EPSILON = 1e-5  # PyTorch's default; Keras' 1e-3 would change converted outputs
MIN_IMAGE_SIZE = 32  # the smallest input of every backbone (keras.applications' limit too)


def block_names() -> tuple[str, ...]:
    return tuple(name for name, _, _ in _BLOCKS)


def block_strides() -> tuple[int, ...]:
    return tuple(stride for _, _, stride in _BLOCKS)


def add_blocks(x: Any, names: tuple[str, ...], width_multiplier: float, prefix: str = "",
               strides: dict[str, int] | None = None) -> Any:
    """The named depthwise-separable blocks on feature map x (layer names `prefix` + 3DDFA_V2's);
    `strides` overrides some blocks' strides (the weights do not depend on them)."""
    for name, out, stride in _BLOCKS:
        stride = (strides or {}).get(name, stride)
        if name in names:
            n = f"{prefix}{name}"
            x = layers.ZeroPadding2D(1, name=f"{n}_pad")(x)
            x = layers.DepthwiseConv2D(3, strides=stride, use_bias=False, name=f"{n}_dw")(x)
            x = _bn_relu(x, f"{n}_dw")
            x = layers.Conv2D(int(out * width_multiplier), 1, use_bias=False, name=f"{n}_sep")(x)
            x = _bn_relu(x, f"{n}_sep")
    return x


def _bn_relu(x: Any, name: str) -> Any:
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.9, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


@keras.saving.register_keras_serializable(package="tfface")
class MobileNetV1Backbone(keras.Model):
    """Normalised image crops (B, S, S, 3) -> pooled features (B, 1024 * width_multiplier)."""

    def __init__(self, width_multiplier: float = 0.5, image_size: int = 120, **kwargs: Any) -> None:
        if width_multiplier <= 0:
            raise ValueError(f"width_multiplier must be > 0. Received: width_multiplier={width_multiplier}")
        if image_size < MIN_IMAGE_SIZE:
            raise ValueError(f"image_size must be >= {MIN_IMAGE_SIZE}. Received: image_size={image_size}")

        def ch(c: int) -> int:
            return int(c * width_multiplier)

        # === Functional graph ===
        inputs = keras.Input((image_size, image_size, 3), name="images")
        x = layers.ZeroPadding2D(1, name="conv1_pad")(inputs)
        x = layers.Conv2D(ch(32), 3, strides=2, use_bias=False, name="conv1")(x)
        x = _bn_relu(x, "conv1")
        x = add_blocks(x, block_names(), width_multiplier)
        features = layers.GlobalAveragePooling2D(name="avgpool")(x)
        super().__init__(inputs=inputs, outputs=features, **kwargs)

        # === Config ===
        self.width_multiplier = width_multiplier
        self.image_size = image_size
        self.feature_dim = ch(1024)

    def get_config(self) -> dict[str, Any]:
        return {"width_multiplier": self.width_multiplier, "image_size": self.image_size,
                "name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "MobileNetV1Backbone":
        return cls(**config)
