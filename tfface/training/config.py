"""The typed training config: dataclasses with working defaults; YAML files override what differs.

`load_config("configs/x.yaml")` rejects unknown keys with the key's full path and the file's name.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tfface.errors import TffaceError
from tfface.losses.joint import TASKS, LossConfig
from tfface.models.backbones import BACKBONES, MIN_IMAGE_SIZE
from tfface.models.face_model import BRANCH_ONLY_DEFAULTS, BRANCH_POOLINGS, ID_HEADS


@dataclass
class ModelConfig:
    backbone: str = "mobilenet_v1"  # mobilenet_v1 | mobilenet_v3_small | mobilenet_v3_large | resnet50
    init_preset: str | None = "tfface_mb05_3ddfa"  # start from the converted regressor (mobilenet_v1 only)
    width_multiplier: float = 0.5
    image_size: int = 120
    num_attributes: int = 40
    id_latent_dim: int = 40  # the identity embedding's size (128 to distil a 128-d teacher)
    id_hidden_dim: int = 0  # a hidden ReLU layer before the identity latent; 0 = none
    branch_blocks: int = 0  # last backbone blocks duplicated as an identity/attribute branch; 0 = shared
    branch_pooling: str = "avg"  # avg | gdc (a learned weight per position and channel; needs a branch)
    branch_last_stride: int = 2  # 1: the branch's last stride-2 block keeps the resolution (8x8 map at 120 px)
    mirror_average: bool = False  # the branch also reads the mirror image, features averaged (needs a branch)
    init_weights: str | None = None  # weights of an earlier run of the same model to continue from
    res_latent_dim: int = 10
    num_ids: int = 0  # identity classes; 0 = no identity classifier
    id_head: str = "arcface"  # softmax | arcface | cosface
    param_branches: bool = False  # MARN: separate pose / identity / expression heads
    dropout: float = 0.0
    sync_batch_norm: bool = True  # batch statistics over the global batch under tf.distribute
    freeze_batch_norm: bool = False


@dataclass
class SyntheticConfig:
    num_batches: int = 8  # distinct batches, repeated; identities are drawn from model.num_ids (or 8)
    label_rate: float = 0.75


@dataclass
class DataConfig:
    source: str = "synthetic"  # synthetic | pipeline (tfface.data.pipeline, the hybrid builder)
    batch_size: int = 32  # global batch, split over replicas
    steps_per_epoch: int = 50
    validation_steps: int = 5
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    pipeline_config: str | None = None  # YAML of tfface.data.pipeline's config (sources, quotas)
    service: str | None = None  # tf.data service dispatcher "grpc://HOST:PORT" for the training batches; None: in-process


@dataclass
class OptimizerConfig:
    name: str = "adamw"  # adamw | adam | sgd
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4  # adamw only
    clipnorm: float | None = 5.0
    cosine_decay: bool = True  # cosine decay of the learning rate over each phase


@dataclass
class PhaseConfig:
    name: str = "joint"
    epochs: int = 10
    trainable: list[str] = field(default_factory=lambda: ["all"])  # see tfface.models.face_model.PARTS
    losses: dict[str, float] = field(default_factory=dict)  # loss weights overriding `loss`
    learning_rate: float | None = None  # overrides optimizer.learning_rate

    def __post_init__(self) -> None:
        from tfface.models.face_model import PARTS

        unknown = sorted(set(self.losses) - set(TASKS)) + sorted(set(self.trainable) - set(PARTS) - {"all"})
        if unknown:
            raise ValueError(f"phase '{self.name}': unknown loss or part {unknown} "
                             f"(losses: {sorted(TASKS)}; parts: {['all', *PARTS]})")
        if self.epochs <= 0:
            raise ValueError(f"phase '{self.name}': epochs must be > 0. Received: {self.epochs}")


@dataclass
class TrainerConfig:
    output_dir: str = "runs/face_model"
    precision: str = "float32"  # float32 | mixed_float16 (GPU) | mixed_bfloat16 (CPU/TPU)
    jit_compile: bool = False  # XLA
    run_eagerly: bool = False  # debugging (and tiny test runs): no tf.function around the train step
    distribution: str = "auto"  # auto (Mirrored on >1 GPU, MultiWorker with TF_CONFIG) | none | mirrored | multi_worker
    seed: int = 0
    tensorboard: bool = True
    verbose: int = 1  # Keras progress bar: 0 silent, 1 bar, 2 one line per epoch


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    phases: list[PhaseConfig] = field(default_factory=lambda: [PhaseConfig()])
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


def load_config(path: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults, then the YAML file, then `overrides` ({"trainer": {"output_dir": ...}})."""
    data: dict[str, Any] = {}
    source = str(path) if path else "<defaults>"
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise TffaceError(f"{p}: config file not found")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise TffaceError(f"{p}: not valid YAML ({e})") from None
        if not isinstance(data, dict):
            raise TffaceError(f"{p}: the top level must be a mapping of sections")
    merged = _merge(data, overrides or {})
    try:
        config = _build(TrainConfig, merged, source, "")
    except TffaceError:
        raise  # names the file already
    except (TypeError, ValueError) as e:  # a dataclass's own __post_init__ check
        raise TffaceError(f"{source}: {e}") from None
    return check_ranges(config, source)


def config_to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out.get(key) or {}, value) if isinstance(value, dict) and isinstance(out.get(key), dict | None) else value
    return out


def _build(cls: type, data: Any, source: str, prefix: str) -> Any:
    """`cls` from a YAML mapping; every value type-checked against its annotation. `prefix`: the key path
    of the section ('' at the top, 'data.synthetic', 'phases[0]')."""
    if not isinstance(data, dict):
        raise TffaceError(f"{source}: '{prefix or 'top level'}' must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known, key=str)
    if unknown:
        raise TffaceError(f"{source}: unknown config key '{_key(prefix, unknown[0])}' "
                          f"(known in this section: {sorted(known)})")
    values = {key: _value(hints[key], value, source, _key(prefix, key)) for key, value in data.items()}
    field_problem = getattr(cls, "field_problem", None)  # a class's own rule per field (LossConfig)
    for key, value in values.items():
        problem = field_problem(key, value) if field_problem else None
        if problem:
            raise TffaceError(f"{source}: '{_key(prefix, key)}' {problem}. Received: {value!r}")
    return cls(**values)


def _key(prefix: str, key: Any) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def _value(hint: Any, value: Any, source: str, key: str) -> Any:
    """`value` checked against the type annotation `hint` (dataclasses, X | None, list[X], dict[str, X],
    int, float, bool, str), ints given for floats made floats."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, source, key)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        arm = next((a for a in args if a is not type(None) and _fits(a, value)), None)
        if arm is None:
            raise TffaceError(f"{source}: '{key}' must be {' or '.join(map(_describe, args))}, got {value!r}")
        return _value(arm, value, source, key)
    if origin is list:
        if not isinstance(value, list):
            raise TffaceError(f"{source}: '{key}' must be {_describe(hint)}, got {value!r}")
        return [_value(args[0], item, source, f"{key}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise TffaceError(f"{source}: '{key}' must be {_describe(hint)}, got {value!r}")
        return {k: _value(args[1], v, source, _key(key, k)) for k, v in value.items()}  # keys: the class checks
    if hint in (int, float, bool, str) and not _fits(hint, value):
        raise TffaceError(f"{source}: '{key}' must be {hint.__name__}, got {value!r}")
    return float(value) if hint is float else value


def _fits(hint: Any, value: Any) -> bool:
    """Whether `value` has the outer type of `hint` (the items of a list or dict are checked later)."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint) or origin is dict:
        return isinstance(value, dict)
    if origin is list:
        return isinstance(value, list)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is type(None):
        return "null"
    if dataclasses.is_dataclass(hint):
        return "a mapping"
    if origin is list:
        return f"a list of {_describe(args[0])}" if args[0] in (int, float, bool, str) else "a list"
    if origin is dict:
        return f"a mapping of {_describe(args[0])} to {_describe(args[1])}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(map(_describe, args))
    return getattr(hint, "__name__", str(hint))


def _floats(value: Any, key: str = "") -> typing.Iterator[tuple[str, float]]:
    """(key path, value) of every float in a built config: dataclass fields, list items, dict values."""
    if dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            yield from _floats(getattr(value, f.name), _key(key, f.name))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _floats(item, f"{key}[{i}]")
    elif isinstance(value, dict):
        for k, item in value.items():
            yield from _floats(item, _key(key, k))
    elif isinstance(value, float):
        yield key, value


# Value ranges, checked once the config is built: (key path, test, what it must be). `steps_per_epoch: 0`
# would train one endless epoch on the repeating dataset; `batch_size: 0` fails deep inside tf.data.
# Every float must be finite as well (checked first); each test is written so that NaN fails it too.
# The model's choices come from the model code (BACKBONES, MIN_IMAGE_SIZE, ID_HEADS, BRANCH_POOLINGS).
_POSITIVE = lambda v: v > 0  # noqa: E731
_RANGES: tuple[tuple[str, Any, str], ...] = (
    ("data.batch_size", _POSITIVE, "> 0"),
    ("data.steps_per_epoch", _POSITIVE, "> 0"),
    ("data.validation_steps", lambda v: v >= 0, ">= 0"),
    ("data.synthetic.num_batches", _POSITIVE, "> 0"),
    ("data.synthetic.label_rate", lambda v: 0 <= v <= 1, "in [0, 1]"),
    ("model.backbone", lambda v: v in BACKBONES, f"one of {list(BACKBONES)}"),
    ("model.image_size", lambda v: v >= MIN_IMAGE_SIZE, f">= {MIN_IMAGE_SIZE}"),
    ("model.width_multiplier", _POSITIVE, "> 0"),
    ("model.num_attributes", _POSITIVE, "> 0"),
    ("model.id_latent_dim", _POSITIVE, "> 0"),
    ("model.res_latent_dim", _POSITIVE, "> 0"),
    ("model.num_ids", lambda v: v >= 0, ">= 0"),
    ("model.dropout", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("model.id_head", lambda v: v in ID_HEADS, f"one of {list(ID_HEADS)}"),
    ("model.branch_pooling", lambda v: v in BRANCH_POOLINGS, " or ".join(BRANCH_POOLINGS)),
    ("model.branch_last_stride", lambda v: v in (1, 2), "1 or 2"),
    ("optimizer.learning_rate", _POSITIVE, "> 0"),
    ("optimizer.weight_decay", lambda v: v >= 0, ">= 0"),
    ("optimizer.clipnorm", lambda v: v is None or v > 0, "> 0 or null"),
    ("trainer.verbose", lambda v: v in (0, 1, 2), "0, 1 or 2"),
)


def check_ranges(config: TrainConfig, source: str = "<config>") -> TrainConfig:
    """The config, or a one-line TffaceError naming the first key whose value is out of range."""
    if not config.phases:
        raise TffaceError(f"{source}: 'phases' must hold at least one phase. Received: []")
    for key, value in _floats(config):
        if not math.isfinite(value):
            raise TffaceError(f"{source}: '{key}' must be a finite number. Received: {value!r}")
    for key, ok, rule in _RANGES:
        value: Any = config
        for part in key.split("."):
            value = getattr(value, part)
        if not ok(value):
            raise TffaceError(f"{source}: '{key}' must be {rule}. Received: {value!r}")
    m = config.model
    for key, default in BRANCH_ONLY_DEFAULTS.items():
        if getattr(m, key) != default and m.branch_blocks <= 0:
            raise TffaceError(f"{source}: 'model.{key}' needs an identity/attribute branch: set "
                              f"'model.branch_blocks' > 0. Received: {key}={getattr(m, key)!r}, branch_blocks={m.branch_blocks}")
    for i, phase in enumerate(config.phases):
        if phase.learning_rate is not None and not phase.learning_rate > 0:
            raise TffaceError(f"{source}: 'phases[{i}].learning_rate' must be > 0 or null. Received: {phase.learning_rate!r}")
        for name, weight in phase.losses.items():  # the same rule as the `loss` section's weights
            problem = LossConfig.field_problem(name, weight)
            if problem:
                raise TffaceError(f"{source}: 'phases[{i}].losses.{name}' {problem}. Received: {weight!r}")
    return config
