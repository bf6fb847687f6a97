"""`train(config)`: build the FaceModel under a tf.distribute strategy and `fit` it phase by phase.

Each phase (Liu et al.: encoder on 3DMM targets, then decoders, then end to end) compiles a fresh
optimizer for the parts it trains and the losses it weighs. A finished phase leaves
`phase<i>_<name>.weights.h5`; a killed phase resumes from its last epoch through BackupAndRestore, and
its input stream resumes at the same batch (see `resume_step`), so the rerun ends on the same weights.

Under MultiWorkerMirroredStrategy only the chief writes logs, checkpoints and the model; the other
workers read the chief's backup (output_dir must be on a filesystem all workers share).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any, Iterator

import keras
import tensorflow as tf

from tfface.errors import TffaceError, WorkerLostError
from tfface.losses.geometry import FaceGeometry
from tfface.losses.joint import JointLoss
from tfface.models.backbones import build_backbone
from tfface.models.face_model import FaceModel
from tfface.models.presets import DEFAULT_PRESET, load_preset, morphable_asset
from tfface.training.config import ModelConfig, OptimizerConfig, PhaseConfig, TrainConfig, config_to_dict
from tfface.training.inputs import build_datasets

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


def make_strategy(kind: str = "auto") -> tf.distribute.Strategy:
    """auto: MultiWorkerMirrored when TF_CONFIG is set, Mirrored on several GPUs, else the default."""
    if kind == "multi_worker" or (kind == "auto" and "TF_CONFIG" in os.environ):
        return tf.distribute.MultiWorkerMirroredStrategy()  # AUTO collectives: NCCL on GPUs, RING on CPUs
    if kind == "mirrored" or (kind == "auto" and len(tf.config.list_logical_devices("GPU")) > 1):
        return tf.distribute.MirroredStrategy()
    if kind in ("auto", "none"):
        return tf.distribute.get_strategy()
    raise TffaceError(f"trainer.distribution must be auto, none, mirrored or multi_worker. Received: {kind!r}")


def build_geometry(image_size: int) -> FaceGeometry:
    """The 3DDFA parameter statistics and 68-point BFM the labels are expressed in."""
    stats = load_preset(DEFAULT_PRESET).param_stats
    return FaceGeometry(stats, morphable_asset("bfm_3ddfa_68"), image_size)


def build_model(config: ModelConfig) -> FaceModel:
    heads = {"num_attributes": config.num_attributes, "id_latent_dim": config.id_latent_dim,
             "id_hidden_dim": config.id_hidden_dim, "branch_blocks": config.branch_blocks,
             "branch_pooling": config.branch_pooling, "branch_last_stride": config.branch_last_stride,
             "mirror_average": config.mirror_average,
             "res_latent_dim": config.res_latent_dim, "num_ids": config.num_ids, "id_head": config.id_head,
             "param_branches": config.param_branches, "dropout": config.dropout,
             "sync_batch_norm": config.sync_batch_norm, "freeze_batch_norm": config.freeze_batch_norm}
    if config.init_preset and config.backbone == "mobilenet_v1":
        model = FaceModel.from_preset(config.init_preset, **heads)
        if (model.image_size, model.backbone.width_multiplier) != (config.image_size, config.width_multiplier):
            raise TffaceError(f"model.init_preset {config.init_preset} is {model.image_size} px, width "
                              f"{model.backbone.width_multiplier}; the config asks for {config.image_size} px, "
                              f"width {config.width_multiplier} (set init_preset: null to start from scratch)")
    else:
        model = FaceModel(build_backbone(config.backbone, config.image_size, config.width_multiplier), **heads)
    return _load_weights(model, config.init_weights)


def _load_weights(model: FaceModel, path: str | None) -> FaceModel:
    """Continue from an earlier run's weights (e.g. its model.keras or a phase's .weights.h5)."""
    if path:
        if not Path(path).is_file():
            raise TffaceError(f"model.init_weights: {path}: no such file")
        with warnings.catch_warnings(record=True) as caught:  # Keras warns on its way to the mismatch error
            warnings.simplefilter("always")
            try:
                model.load_weights(path)
            except ValueError as e:  # another architecture, or a shipped preset without its training classifier
                first = str(e).strip().splitlines()
                detail = next((line for line in first if "expected" in line.lower()), first[0] if first else "")
                raise TffaceError(f"model.init_weights: {path} does not fit this model.* config "
                                  f"({detail.strip()[:200]})") from None
        for w in caught:  # a load that worked keeps its warnings
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return model


def make_optimizer(config: OptimizerConfig, phase: PhaseConfig, steps: int) -> keras.optimizers.Optimizer:
    lr: Any = phase.learning_rate or config.learning_rate
    if config.cosine_decay:
        lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(1, steps))
    common = {"learning_rate": lr, "clipnorm": config.clipnorm}
    if config.name == "adamw":
        return keras.optimizers.AdamW(weight_decay=config.weight_decay, **common)
    if config.name == "adam":
        return keras.optimizers.Adam(**common)
    if config.name == "sgd":
        return keras.optimizers.SGD(momentum=0.9, **common)
    raise TffaceError(f"optimizer.name must be adamw, adam or sgd. Received: {config.name!r}")


class ReadOnlyBackup(keras.callbacks.BackupAndRestore):
    """A non-chief worker restores the chief's backup at the start but never writes or deletes it."""

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass


def backup_dir(config: TrainConfig, tag: str) -> Path:
    return Path(config.trainer.output_dir) / "backup" / tag


def resume_step(config: TrainConfig, tag: str) -> int:
    """The training batch a rerun of phase `tag` starts at: BackupAndRestore resumes at the epoch its
    metadata records, and Keras keeps one iterator across a fit's epochs (steps_per_epoch on a repeating
    dataset), so the uninterrupted run was at batch epoch * steps_per_epoch of the stream."""
    meta = backup_dir(config, tag) / "training_metadata.json"
    epoch = int(json.loads(meta.read_text())["epoch"]) if meta.is_file() else 0
    return epoch * config.data.steps_per_epoch


def make_callbacks(config: TrainConfig, tag: str, chief: bool = True) -> list[keras.callbacks.Callback]:
    if not chief:
        return [ReadOnlyBackup(str(backup_dir(config, tag)))]
    out = Path(config.trainer.output_dir)
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.BackupAndRestore(str(backup_dir(config, tag))),
        keras.callbacks.ModelCheckpoint(str(out / "checkpoints" / f"{tag}_last.weights.h5"), save_weights_only=True),
        keras.callbacks.CSVLogger(str(out / f"log_{tag}.csv"), append=True),
    ]
    if config.data.validation_steps:
        callbacks.append(keras.callbacks.ModelCheckpoint(
            str(out / "checkpoints" / f"{tag}_best.weights.h5"), save_weights_only=True,
            monitor="val_loss", save_best_only=True))
    if config.trainer.tensorboard and importlib.util.find_spec("tensorboard") is None:
        warnings.warn("trainer.tensorboard is on but the tensorboard package is not installed; no TensorBoard logs")
    elif config.trainer.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(out / "tensorboard" / tag)))
    return callbacks


def train(config: TrainConfig, callbacks: list[keras.callbacks.Callback] | None = None) -> FaceModel:
    """Train all phases of `config`; extra `callbacks` run after tfface's own."""
    t = config.trainer
    if t.precision not in PRECISIONS:
        raise TffaceError(f"trainer.precision must be one of {PRECISIONS}. Received: {t.precision!r}")
    out = Path(t.output_dir)
    try:  # strict JSON: a NaN or inf (which load_config rejects) must not reach config.json as a bare token
        config_json = json.dumps(config_to_dict(config), indent=2, allow_nan=False)
    except ValueError:
        raise TffaceError(f"{out / 'config.json'}: the training config holds a NaN or infinite value; "
                          "check it with tfface.training.config.check_ranges") from None
    strategy = make_strategy(t.distribution)
    chief = _is_chief(strategy)
    keras.utils.set_random_seed(t.seed)
    out.mkdir(parents=True, exist_ok=True)
    if chief:
        (out / "config.json").write_text(config_json)
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(t.precision)
    try:
        with _peer_errors(strategy):
            model = _train_phases(config, strategy, chief, callbacks or [])
        if chief:
            model.save(out / "model.keras")
        return model
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


def _train_phases(config: TrainConfig, strategy: tf.distribute.Strategy, chief: bool,
                  callbacks: list[keras.callbacks.Callback]) -> FaceModel:
    t, out = config.trainer, Path(config.trainer.output_dir)
    geometry = build_geometry(config.model.image_size)
    with strategy.scope():
        model = build_model(config.model)
    for i, phase in enumerate(config.phases):
        tag = f"phase{i}_{phase.name}"
        done = out / f"{tag}.weights.h5"
        if done.is_file():  # finished in an earlier run
            model.load_weights(done)
            continue
        model.set_trainable_parts(phase.trainable)
        steps = phase.epochs * config.data.steps_per_epoch
        # Each fit starts a fresh iterator: begin it where this phase's uninterrupted stream would be.
        train_ds, val_ds = build_datasets(config.data, geometry, config.model.num_ids, t.seed,
                                          start=resume_step(config, tag))
        with strategy.scope():
            model.compile(optimizer=make_optimizer(config.optimizer, phase, steps),
                          joint_loss=JointLoss(config.loss.with_weights(phase.losses), geometry),
                          jit_compile=t.jit_compile, run_eagerly=t.run_eagerly)
        model.fit(train_ds, epochs=phase.epochs, steps_per_epoch=config.data.steps_per_epoch,
                  validation_data=val_ds, validation_steps=config.data.validation_steps or None,
                  callbacks=[*make_callbacks(config, tag, chief), *callbacks], verbose=t.verbose, shuffle=False)
        if chief:
            model.save_weights(done)
    return model


@contextlib.contextmanager
def _peer_errors(strategy: tf.distribute.Strategy) -> Iterator[None]:
    """A dead peer surfaces as a gRPC/collective error deep in fit: say what happened and what to do."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        yield
        return
    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError,
            tf.errors.AbortedError) as e:
        raise WorkerLostError(f"a training worker stopped answering ({_lost_peer(e)}); restart every worker "
                              f"with the same command to resume from the last backup") from None


def _lost_peer(error: tf.errors.OpError) -> str:
    """The coordination service names the task that stopped sending heartbeats; else the first line."""
    text = str(getattr(error, "message", error))
    task = re.search(r"unhealthy \(stopped sending heartbeats\):\s*/job:(\w+)/replica:\d+/task:(\d+)", text)
    if task:
        return f"{task.group(1)} {task.group(2)} stopped sending heartbeats"
    lines = [line.strip() for line in text.splitlines() if line.strip() and "Graph execution error" not in line]
    return f"{type(error).__name__}: {(lines[0] if lines else '')[:200]}"


def _is_chief(strategy: tf.distribute.Strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0)
