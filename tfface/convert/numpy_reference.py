"""An independent NumPy forward pass of 3DDFA_V2's MobileNetV1, straight from its PyTorch state dict.

It shares nothing with the Keras model (NCHW layout, PyTorch weight layout, explicit padding and
batch-norm algebra), so agreement between the two checks the conversion, not the converter's own maths.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

_BLOCK_STRIDES = {"dw2_1": 1, "dw2_2": 2, "dw3_1": 1, "dw3_2": 2, "dw4_1": 1, "dw4_2": 2,
                  "dw5_1": 1, "dw5_2": 1, "dw5_3": 1, "dw5_4": 1, "dw5_5": 1, "dw5_6": 2, "dw6": 1}


def _conv(x: np.ndarray, w: np.ndarray, stride: int, pad: int, depthwise: bool) -> np.ndarray:
    """x (N, C, H, W), PyTorch weight (O, C/groups, kh, kw) -> (N, O, H', W')."""
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    kh, kw = w.shape[2:]
    win = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]  # N C H' W' kh kw
    if depthwise:
        return np.einsum("nchwij,cij->nchw", win, w[:, 0], optimize=True)
    return np.einsum("nchwij,ocij->nohw", win, w, optimize=True)


def _bn_relu(x: np.ndarray, sd: dict[str, np.ndarray], name: str, eps: float = 1e-5) -> np.ndarray:
    g, b = sd[f"{name}.weight"], sd[f"{name}.bias"]
    m, v = sd[f"{name}.running_mean"], sd[f"{name}.running_var"]
    y = (x - m[:, None, None]) / np.sqrt(v[:, None, None] + eps) * g[:, None, None] + b[:, None, None]
    return np.maximum(y, 0.0)


def mobilenet_forward(state_dict: dict[str, np.ndarray], images_nhwc: np.ndarray) -> np.ndarray:
    """Normalised images (N, H, W, 3) in the network's channel order -> `fc_param` outputs (N, 62)."""
    sd = {k: np.asarray(v, np.float64) for k, v in state_dict.items()}
    x = np.transpose(np.asarray(images_nhwc, np.float64), (0, 3, 1, 2))
    x = _bn_relu(_conv(x, sd["conv1.weight"], 2, 1, False), sd, "bn1")
    for name, stride in _BLOCK_STRIDES.items():
        x = _bn_relu(_conv(x, sd[f"{name}.conv_dw.weight"], stride, 1, True), sd, f"{name}.bn_dw")
        x = _bn_relu(_conv(x, sd[f"{name}.conv_sep.weight"], 1, 0, False), sd, f"{name}.bn_sep")
    pooled = x.mean(axis=(2, 3))
    return pooled @ sd["fc_param.weight"].T + sd["fc_param.bias"]
