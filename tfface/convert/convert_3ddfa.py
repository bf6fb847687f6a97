"""Convert a 3DDFA_V2 MobileNetV1 checkpoint (.pth) into a tfface preset folder, without torch.

The preset folder holds `config.json` (model, preprocessor, decoding assets, provenance),
`model.weights.h5` and `param_stats.npz`. Conversion is verified on the spot against an independent
NumPy forward pass of the checkpoint itself.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from tfface.convert.numpy_reference import mobilenet_forward
from tfface.convert.torch_checkpoint import CheckpointError, load_torch_checkpoint, state_dict_from_checkpoint
from tfface.errors import DataFileError
from tfface.models.backbones.mobilenet_v1 import _BLOCKS, MobileNetV1Backbone
from tfface.models.param_regressor import ParamRegressor
from tfface.morphable.params import ParamStats


def _conv_kernel(w: np.ndarray) -> np.ndarray:
    return np.transpose(w, (2, 3, 1, 0))  # (O, I, kh, kw) -> (kh, kw, I, O)


def _depthwise_kernel(w: np.ndarray) -> np.ndarray:
    return np.transpose(w, (2, 3, 0, 1))  # (C, 1, kh, kw) -> (kh, kw, C, 1)


def _bn(sd: dict[str, np.ndarray], name: str) -> list[np.ndarray]:
    return [sd[f"{name}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]


def _layer_weights(sd: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Keras layer name -> weights, from PyTorch state-dict names."""
    out = {"conv1": [_conv_kernel(sd["conv1.weight"])], "conv1_bn": _bn(sd, "bn1")}
    for name, _, _ in _BLOCKS:
        out[f"{name}_dw"] = [_depthwise_kernel(sd[f"{name}.conv_dw.weight"])]
        out[f"{name}_dw_bn"] = _bn(sd, f"{name}.bn_dw")
        out[f"{name}_sep"] = [_conv_kernel(sd[f"{name}.conv_sep.weight"])]
        out[f"{name}_sep_bn"] = _bn(sd, f"{name}.bn_sep")
    return out


def _check_keys(sd: dict[str, np.ndarray], path: str) -> None:
    need = ["conv1.weight", "bn1.weight", "fc_param.weight", "fc_param.bias"]
    need += [f"{n}.conv_dw.weight" for n, _, _ in _BLOCKS] + [f"{n}.conv_sep.weight" for n, _, _ in _BLOCKS]
    missing = [k for k in need if k not in sd]
    if missing:
        raise DataFileError(f"{path}: not a 3DDFA_V2 MobileNetV1 checkpoint; missing {missing[:5]}"
                            f"{' ...' if len(missing) > 5 else ''}")


def build_regressor(state_dict: dict[str, np.ndarray], image_size: int = 120) -> ParamRegressor:
    """A Keras ParamRegressor carrying the checkpoint's weights (width read off conv1)."""
    width = state_dict["conv1.weight"].shape[0] / 32.0
    model = ParamRegressor(MobileNetV1Backbone(width, image_size),
                           num_params=state_dict["fc_param.weight"].shape[0], name="param_regressor")
    for name, weights in _layer_weights(state_dict).items():
        model.backbone.get_layer(name).set_weights([w.astype(np.float32) for w in weights])
    model.get_layer("fc_param").set_weights([state_dict["fc_param.weight"].T.astype(np.float32),
                                             state_dict["fc_param.bias"].astype(np.float32)])
    return model


def conversion_error(model: ParamRegressor, state_dict: dict[str, np.ndarray], images: np.ndarray) -> float:
    """Max |Keras - NumPy reference| over the outputs for `images` (normalised network input)."""
    keras_out = model.predict(images, verbose=0)
    return float(np.abs(keras_out - mobilenet_forward(state_dict, images)).max())


def convert_3ddfa(checkpoint: str | os.PathLike, out_dir: str | os.PathLike, param_stats: ParamStats,
                  image_size: int = 120, seed: int = 0) -> dict:
    """Write a preset folder; returns its config (with the measured conversion error)."""
    checkpoint = os.fspath(checkpoint)
    try:
        sd = state_dict_from_checkpoint(load_torch_checkpoint(checkpoint))
    except CheckpointError as e:  # state-dict errors do not know the file name
        raise CheckpointError(e if checkpoint in str(e) else f"{checkpoint}: {e}") from e
    _check_keys(sd, checkpoint)
    model = build_regressor(sd, image_size)
    probe = np.random.default_rng(seed).uniform(-1.0, 1.0, (2, image_size, image_size, 3)).astype(np.float32)
    error = conversion_error(model, sd, probe)
    if error > 1e-3:
        raise RuntimeError(f"{checkpoint}: converted model differs from the checkpoint by {error:.2e}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_weights(out / "model.weights.h5")
    param_stats.save_npz(out / "param_stats.npz")
    config = {
        "task": "ParamRegressor",
        "model": model.get_config(),
        "preprocessor": {"image_size": image_size, "channel_order": "bgr", "offset": 127.5, "scale": 1 / 128},
        "morphable_model": "bfm_3ddfa_68",
        "source": {"checkpoint": Path(checkpoint).name, "max_abs_error_vs_numpy": error},
    }
    (out / "config.json").write_text(json.dumps(config, indent=2))
    return config
