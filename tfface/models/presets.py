"""Named model bundles shipped inside the package: config + weights + decoding assets.

A preset is a folder with `config.json`, `model.weights.h5` and `param_stats.npz`; a name here maps
to a folder under `tfface/assets/presets/`. Nothing is downloaded: every preset ships in the wheel.
`save_preset` writes that layout for any task model (a ParamRegressor or a joint FaceModel).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tfface.errors import TffaceError
from tfface.io.guard import model_file_errors
from tfface.models.attributes import ATTRIBUTE_NAMES
from tfface.models.preprocessor import FacePreprocessor
from tfface.morphable.decode import ParamStats
from tfface.morphable.model import MorphableModel, load_npz

if TYPE_CHECKING:  # Keras only where a model is built: finding assets and stats needs none
    import keras

    from tfface.models.face_model import FaceModel
    from tfface.models.param_regressor import ParamRegressor

PRESETS: dict[str, str] = {
    "tfface_mb05_3ddfa": "3DDFA_V2 MobileNetV1 x0.5, 120x120, 62 3DMM params (converted; MIT)",
    "tfface_mb05_joint": "joint: 3DMM + 40 CelebA attributes + identity embedding (research-only data, see README)",
}
DEFAULT_PRESET = "tfface_mb05_3ddfa"
JOINT_PRESET = "tfface_mb05_joint"  # the default of `tfface verify` / `tfface edit`
_RESERVED_KEYS = ("task", "model", "preprocessor", "morphable_model")
# Task classes by config.json "task", found by name: the model modules build presets (from_preset), so
# importing them here would close an import circle.
TASK_MODULES = {"ParamRegressor": "tfface.models.param_regressor", "FaceModel": "tfface.models.face_model"}
BACKBONE_MODULE = "tfface.models.backbones.mobilenet_v1"


@dataclass
class Preset:
    name: str
    model: ParamRegressor | FaceModel
    preprocessor: FacePreprocessor
    param_stats: ParamStats
    shape_model: MorphableModel  # the 68-landmark morphable model the parameters decode with
    config: dict[str, Any]

    @property
    def outputs(self) -> tuple[str, ...]:
        """The model's output names ("params" only for a regressor)."""
        out = self.model.output
        return tuple(out) if isinstance(out, dict) else ("params",)

    @property
    def attribute_names(self) -> list[str]:
        """Names of the "attributes" outputs: the config's list, else CelebA's 40 (or attribute_<i>)."""
        if "attributes" not in self.outputs:
            return []
        count = int(self.model.output["attributes"].shape[-1])
        names = self.config.get("attribute_names")
        if names is None:
            names = list(ATTRIBUTE_NAMES) if count == len(ATTRIBUTE_NAMES) else [f"attribute_{i}" for i in range(count)]
        return list(names)

    def require(self, output: str, purpose: str) -> None:
        """A one-line error when the model lacks `output` (e.g. an embedding for verification)."""
        if output not in self.outputs:
            raise TffaceError(f"preset '{self.name}' ({type(self.model).__name__}) has no '{output}' output, "
                              f"needed for {purpose}; use a joint preset such as {JOINT_PRESET}")


def assets_dir() -> Path:
    return Path(str(resources.files("tfface.assets")))


def morphable_asset(name: str) -> MorphableModel:
    path = assets_dir() / "morphable" / f"{name}.npz"
    if not path.is_file():
        raise TffaceError(f"unknown morphable model '{name}' (no {path})")
    return load_npz(path)


def preset_dir(preset: str | os.PathLike) -> Path:
    if preset in PRESETS:
        folder = assets_dir() / "presets" / str(preset)
        if not (folder / "config.json").is_file():
            raise TffaceError(f"preset '{preset}' is not installed yet ({folder} has no config.json); "
                              "pass a preset folder written by tfface.models.presets.save_preset")
        return folder
    path = Path(preset)
    if path.is_dir() and (path / "config.json").is_file():
        return path
    raise TffaceError(f"unknown preset '{preset}': not one of {sorted(PRESETS)} "
                      "and not a folder with config.json")


@model_file_errors
def load_preset(preset: str | os.PathLike = DEFAULT_PRESET) -> Preset:
    """The preset as a Keras model (imports TensorFlow; inference runs the shipped TFLite file instead,
    see `tfface.runtimes.load_runner`)."""
    import importlib

    import keras

    folder = preset_dir(preset)
    config = json.loads((folder / "config.json").read_text())
    if config["task"] not in TASK_MODULES:
        raise TffaceError(f"{folder}/config.json: unknown task {config['task']!r} (known: {sorted(TASK_MODULES)})")
    for module in {TASK_MODULES[config["task"]], BACKBONE_MODULE}:  # registers "tfface>..." classes
        importlib.import_module(module)
    model = keras.saving.deserialize_keras_object(
        {"class_name": config["task"], "config": config["model"], "module": None, "registered_name": f"tfface>{config['task']}"})
    model.load_weights(folder / "model.weights.h5")
    return Preset(
        name=str(preset),
        model=model,
        preprocessor=FacePreprocessor(**config["preprocessor"]),
        param_stats=ParamStats.from_npz(folder / "param_stats.npz"),
        shape_model=morphable_asset(config["morphable_model"]),
        config=config,
    )


def inference_copy(model: keras.Model, **changes: Any) -> keras.Model:
    """The model as a preset ships it: a FaceModel loses its identity classifier (num_ids=0; a
    training-only head whose size grows with the number of training identities), same weights
    otherwise; `changes`: other config values that add no weights (e.g. mirror_average=True).
    Other models are returned as they are."""
    if type(model).__name__ != "FaceModel":
        return model
    config = {**model.get_config(), "num_ids": 0, **changes}
    if config == model.get_config():
        return model
    copy = type(model).from_config(config)
    source = {layer.name: layer for layer in model.layers}
    copied: set[int] = set()
    for layer in copy.layers:
        if layer.weights and layer.name in source:
            layer.set_weights(source[layer.name].get_weights())
            copied |= {id(v) for v in layer.weights}
    missed = [v.path for v in copy.weights if id(v) not in copied]  # e.g. a view sharing the trunk's layers
    if missed:
        raise ValueError(f"inference_copy: no weights in {model.name} for {missed[:3]}")
    return copy


def save_preset(model: keras.Model, folder: str | os.PathLike, param_stats: ParamStats,
                preprocessor: FacePreprocessor | dict[str, Any], morphable_model: str = "bfm_3ddfa_68",
                extra: dict[str, Any] | None = None) -> Path:
    """Write `model` as a preset folder that `load_preset(folder)` (and `--preset folder`) reads.

    `extra` adds keys to config.json, e.g. "description", "attribute_names", "verification_threshold".
    A FaceModel's attribute names default to CelebA's 40 when it has 40 attribute outputs.
    """
    preprocessor = preprocessor if isinstance(preprocessor, FacePreprocessor) else FacePreprocessor(**preprocessor)
    extra = dict(extra or {})
    _check_preset_parts(model, param_stats, preprocessor, morphable_model, extra)
    model = inference_copy(model)
    if (type(model).__name__ == "FaceModel" and "attribute_names" not in extra
            and model.num_attributes == len(ATTRIBUTE_NAMES)):
        extra["attribute_names"] = list(ATTRIBUTE_NAMES)
    config = {"task": type(model).__name__, "model": model.get_config(),
              "preprocessor": preprocessor.get_config(), "morphable_model": morphable_model, **extra}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2, default=_json_scalar) + "\n")
    model.save_weights(folder / "model.weights.h5")
    param_stats.save_npz(folder / "param_stats.npz")
    return folder


def _check_preset_parts(model: keras.Model, stats: ParamStats, preprocessor: FacePreprocessor,
                        morphable_model: str, extra: dict[str, Any]) -> None:
    if type(model).__name__ not in ("ParamRegressor", "FaceModel"):
        raise TffaceError(f"save_preset takes a ParamRegressor or FaceModel. Received: {type(model).__name__}")
    clash = sorted(set(extra) & set(_RESERVED_KEYS))
    if clash:
        raise TffaceError(f"extra keys {clash} would overwrite the preset's own config keys {list(_RESERVED_KEYS)}")
    if stats.mean.shape[0] != model.num_params:
        raise TffaceError(f"param_stats have {stats.mean.shape[0]} dims, the model predicts {model.num_params}")
    if preprocessor.image_size != model.image_size:
        raise TffaceError(f"preprocessor image_size {preprocessor.image_size} != model input size {model.image_size}")
    names = extra.get("attribute_names")
    if names is not None and len(names) != getattr(model, "num_attributes", -1):
        raise TffaceError(f"{len(names)} attribute_names for a model with "
                          f"{getattr(model, 'num_attributes', 0)} attribute outputs")
    morphable_asset(morphable_model)  # an unknown name fails now, not at load time


def _json_scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
