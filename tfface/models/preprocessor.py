"""Crop, resize, colour order and normalisation of face crops: the model's input contract.

Images enter tfface as RGB uint8 (H, W, 3). Each model states the colour order and normalisation it
was trained with; the 3DDFA_V2 regressor wants BGR and (x - 127.5) / 128.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tfface.morphable.crop import warp_crop


@dataclass(frozen=True)
class FacePreprocessor:
    image_size: int = 120
    channel_order: str = "bgr"  # what the network expects; inputs are always RGB
    offset: float = 127.5
    scale: float = 1.0 / 128.0

    def __post_init__(self) -> None:
        if self.channel_order not in ("rgb", "bgr"):
            raise ValueError(f"channel_order must be 'rgb' or 'bgr'. Received: {self.channel_order!r}")
        if self.image_size <= 0:
            raise ValueError(f"image_size must be > 0. Received: image_size={self.image_size}")

    def crop(self, image: np.ndarray, roi_box: np.ndarray) -> np.ndarray:
        """RGB uint8 image + box (x0, y0, x1, y1) -> (S, S, 3) uint8 crop, zeros outside the image."""
        return warp_crop(image, roi_box, self.image_size)

    def normalize(self, crops: np.ndarray) -> np.ndarray:
        """RGB uint8 crops (..., S, S, 3) -> float32 network input."""
        x = crops[..., ::-1] if self.channel_order == "bgr" else crops
        return ((x.astype(np.float32) - self.offset) * self.scale).astype(np.float32)

    def __call__(self, image: np.ndarray, roi_boxes: np.ndarray) -> np.ndarray:
        """One image, boxes (F, 4) -> network input (F, S, S, 3)."""
        crops = [self.crop(image, box) for box in np.asarray(roi_boxes).reshape(-1, 4)]
        return self.normalize(np.stack(crops)) if crops else np.zeros(
            (0, self.image_size, self.image_size, 3), np.float32)

    def get_config(self) -> dict[str, Any]:
        return asdict(self)
