"""The typed training config: dataclasses with working defaults; YAML files override what differs.

`load_config("configs/x.yaml")` rejects unknown keys with the key's full path and the file's name.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tfface.errors import TffaceError
from tfface.losses.joint import TASKS, LossConfig
from tfface.models.face_model import BRANCH_ONLY_DEFAULTS


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
    except (TypeError, ValueError) as e:
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
    if not isinstance(data, dict):
        raise TffaceError(f"{source}: '{prefix or 'top level'}' must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise TffaceError(f"{source}: unknown config key '{prefix}{unknown[0]}' (known in this section: {sorted(known)})")
    return cls(**{key: _value(hints[key], value, source, f"{prefix}{key}") for key, value in data.items()})


def _value(hint: Any, value: Any, source: str, key: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, source, f"{key}.")
    if origin is list and args and dataclasses.is_dataclass(args[0]):
        if not isinstance(value, list):
            raise TffaceError(f"{source}: '{key}' must be a list")
        return [_build(args[0], item, source, f"{key}[{i}].") for i, item in enumerate(value)]
    if origin in (typing.Union, types.UnionType) and value is None and type(None) in args:
        return None
    if hint in (int, float, bool, str) and not _accepts(hint, value):
        raise TffaceError(f"{source}: '{key}' must be {hint.__name__}, got {value!r}")
    return float(value) if hint is float else value


def _accepts(hint: type, value: Any) -> bool:
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


# Value ranges, checked once the config is built: (key path, test, what it must be). `steps_per_epoch: 0`
# would train one endless epoch on the repeating dataset; `batch_size: 0` fails deep inside tf.data.
_POSITIVE = lambda v: v > 0  # noqa: E731
_RANGES: tuple[tuple[str, Any, str], ...] = (
    ("data.batch_size", _POSITIVE, "> 0"),
    ("data.steps_per_epoch", _POSITIVE, "> 0"),
    ("data.validation_steps", lambda v: v >= 0, ">= 0"),
    ("data.synthetic.num_batches", _POSITIVE, "> 0"),
    ("data.synthetic.label_rate", lambda v: 0 <= v <= 1, "in [0, 1]"),
    ("model.image_size", _POSITIVE, "> 0"),
    ("model.width_multiplier", _POSITIVE, "> 0"),
    ("model.num_attributes", lambda v: v >= 0, ">= 0"),
    ("model.id_latent_dim", _POSITIVE, "> 0"),
    ("model.res_latent_dim", lambda v: v >= 0, ">= 0"),
    ("model.num_ids", lambda v: v >= 0, ">= 0"),
    ("model.dropout", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("model.branch_pooling", lambda v: v in ("avg", "gdc"), "avg or gdc"),
    ("model.branch_last_stride", lambda v: v in (1, 2), "1 or 2"),
    ("optimizer.learning_rate", _POSITIVE, "> 0"),
    ("optimizer.weight_decay", lambda v: v >= 0, ">= 0"),
    ("optimizer.clipnorm", lambda v: v is None or v > 0, "> 0 or null"),
    ("trainer.verbose", lambda v: v in (0, 1, 2), "0, 1 or 2"),
)


def check_ranges(config: TrainConfig, source: str = "<config>") -> TrainConfig:
    """The config, or a one-line TffaceError naming the first key whose value is out of range."""
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
        if phase.learning_rate is not None and phase.learning_rate <= 0:
            raise TffaceError(f"{source}: 'phases[{i}].learning_rate' must be > 0 or null. Received: {phase.learning_rate!r}")
    return config
