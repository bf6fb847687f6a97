"""Named model bundles shipped inside the package: config + weights + decoding assets.

A preset is a folder with `config.json`, `model.weights.h5` and `param_stats.npz`; a name here maps
to a folder under `tfface/assets/presets/`. Nothing is downloaded: every preset ships in the wheel.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import keras

from tfface.errors import TffaceError
from tfface.models.param_regressor import ParamRegressor
from tfface.models.preprocessor import FacePreprocessor
from tfface.morphable.model import MorphableModel, load_npz
from tfface.morphable.params import ParamStats

PRESETS: dict[str, str] = {
    "tfface_mb05_3ddfa": "3DDFA_V2 MobileNetV1 x0.5, 120x120, 62 3DMM params (converted; MIT)",
}
DEFAULT_PRESET = "tfface_mb05_3ddfa"


@dataclass
class Preset:
    name: str
    model: ParamRegressor
    preprocessor: FacePreprocessor
    param_stats: ParamStats
    shape_model: MorphableModel  # the 68-landmark morphable model the parameters decode with
    config: dict[str, Any]


def assets_dir() -> Path:
    return Path(str(resources.files("tfface.assets")))


def morphable_asset(name: str) -> MorphableModel:
    path = assets_dir() / "morphable" / f"{name}.npz"
    if not path.is_file():
        raise TffaceError(f"unknown morphable model '{name}' (no {path})")
    return load_npz(path)


def preset_dir(preset: str) -> Path:
    if preset in PRESETS:
        return assets_dir() / "presets" / preset
    path = Path(preset)
    if path.is_dir() and (path / "config.json").is_file():
        return path
    raise TffaceError(f"unknown preset '{preset}': not one of {sorted(PRESETS)} "
                      "and not a folder with config.json")


def load_preset(preset: str = DEFAULT_PRESET) -> Preset:
    folder = preset_dir(preset)
    config = json.loads((folder / "config.json").read_text())
    model = keras.saving.deserialize_keras_object(
        {"class_name": config["task"], "config": config["model"], "module": None, "registered_name": f"tfface>{config['task']}"})
    model.load_weights(folder / "model.weights.h5")
    return Preset(
        name=preset,
        model=model,
        preprocessor=FacePreprocessor(**config["preprocessor"]),
        param_stats=ParamStats.from_npz(folder / "param_stats.npz"),
        shape_model=morphable_asset(config["morphable_model"]),
        config=config,
    )
