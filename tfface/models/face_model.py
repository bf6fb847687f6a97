"""The joint face model: one backbone, heads for 3DMM, attributes and identity, shape decoders.

Outputs (a dict):
- "params" (B, 62): normalised 3DMM params (de-normalise with the preset's ParamStats), from one
  linear head "fc_param" (so it starts exactly from a converted regressor) or, with
  `param_branches=True`, separate pose / identity / expression heads as in MARN;
- "attributes" (B, 40): CelebA attribute logits;
- "embedding" (B, D): the L2-normalised identity latent c_id;
- "shape_id", "shape_res" (B, L, 3): Liu et al.'s linear decoders of c_id and the residual latent
  c_res, in model units, so the shape is s_mean + shape_id + shape_res;
- "id_logits" (B, num_ids), only when num_ids > 0 (training): cosines for arcface/cosface, logits for softmax.

Training is `model.fit` on (images, labels) batches of the tfface.data contract, with the joint masked
loss of `tfface.losses` (see `compile`).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from tfface.losses.joint import TASKS, JointLoss
from tfface.losses.masked import replica_sum
from tfface.models.heads import CosineClassifier
from tfface.models.mirror import MirrorImages, ViewMean
from tfface.morphable.model import MorphableModel
from tfface.morphable.params import CAMERA_DIM, ID_DIM, PARAM_DIM, ParamStats

ID_HEADS = ("softmax", "arcface", "cosface")
DDFA_SHAPE_SCALE = 3.4926e-4  # 3DDFA's mean camera scale: BFM model units -> 120 px crop pixels
# Trainable parts a training phase can name; "backbone" is the backbone sub-model.
PARTS: dict[str, tuple[str, ...]] = {
    "backbone": (),
    "params": ("fc_param", "fc_pose", "fc_id", "fc_exp"),
    "attributes": ("fc_attributes",),
    "identity": ("id_hidden", "id_latent", "id_classifier"),
    "id_classifier": ("id_classifier",),  # alone: a new classifier catches up with a trained embedding
    "residual": ("res_latent",),
    "decoders": ("id_decoder", "res_decoder"),
    "branch": (),  # the identity/attribute branch's copy of the last backbone blocks (branch_*)
}
BRANCH_PREFIX = "branch_"
# How the branch's last feature map becomes a vector: the mean over positions, or one learned weight
# per position and channel (MobileFaceNet's global depthwise conv), so where a feature lies counts.
BRANCH_POOLINGS = ("avg", "gdc")
# Options only a branch model can use, at the values a model without a branch has.
BRANCH_ONLY_DEFAULTS = {"branch_pooling": "avg", "branch_last_stride": 2, "mirror_average": False}


class RootMeanSquare(keras.metrics.Mean):
    """sqrt of a (weighted) mean of squared errors."""

    def result(self) -> tf.Tensor:
        return tf.sqrt(super().result())


@keras.saving.register_keras_serializable(package="tfface")
class FaceModel(keras.Model):
    """Normalised face crops (B, S, S, 3) -> dict of 3DMM params, attributes, embedding, shapes."""

    def __init__(self, backbone: keras.Model, num_params: int = PARAM_DIM, num_attributes: int = 40,
                 id_latent_dim: int = ID_DIM, res_latent_dim: int = 10, num_landmarks: int = 68,
                 id_hidden_dim: int = 0, branch_blocks: int = 0,
                 num_ids: int = 0, id_head: str = "arcface", param_branches: bool = False,
                 dropout: float = 0.0, shape_scale: float = DDFA_SHAPE_SCALE,
                 sync_batch_norm: bool = False, freeze_batch_norm: bool = False, branch_pooling: str = "avg",
                 branch_last_stride: int = 2, mirror_average: bool = False, **kwargs: Any) -> None:
        _check_args(num_params, num_attributes, id_latent_dim, res_latent_dim, num_landmarks, num_ids,
                    id_head, dropout, shape_scale)
        if branch_pooling not in BRANCH_POOLINGS:
            raise ValueError(f"branch_pooling must be one of {BRANCH_POOLINGS}. Received: branch_pooling={branch_pooling!r}")
        if branch_last_stride not in (1, 2):
            raise ValueError(f"branch_last_stride must be 1 or 2. Received: branch_last_stride={branch_last_stride!r}")
        f32 = {"dtype": "float32"}  # heads and outputs stay float32 under mixed precision
        # === Functional graph ===
        inputs = keras.Input(backbone.input_shape[1:], name="images")
        x, branch = _features(backbone, inputs, branch_blocks, branch_pooling, branch_last_stride, mirror_average)
        if dropout > 0:
            x = layers.Dropout(dropout, name="dropout")(x)
            branch = layers.Dropout(dropout, name="branch_dropout")(branch) if branch_blocks else x
        if param_branches:
            branches = [layers.Dense(n, name=name, **f32)(x) for name, n in (
                ("fc_pose", CAMERA_DIM), ("fc_id", ID_DIM), ("fc_exp", num_params - CAMERA_DIM - ID_DIM))]
            params = layers.Concatenate(name="params", **f32)(branches)
        else:
            params = layers.Dense(num_params, name="fc_param", **f32)(x)
        # an optional hidden layer gives the identity latent room to differ from the 3DMM features
        h = layers.Dense(id_hidden_dim, activation="relu", name="id_hidden", **f32)(branch) if id_hidden_dim else branch
        c_id = layers.Dense(id_latent_dim, name="id_latent", **f32)(h)
        c_res = layers.Dense(res_latent_dim, name="res_latent", **f32)(x)
        outputs = {
            "params": params,
            "attributes": layers.Dense(num_attributes, name="fc_attributes", **f32)(branch),
            "embedding": layers.UnitNormalization(name="embedding", **f32)(c_id),
            "shape_id": _decoder(c_id, "id", num_landmarks, shape_scale),
            "shape_res": _decoder(c_res, "res", num_landmarks, shape_scale),
        }
        if num_ids:
            classifier = (layers.Dense(num_ids, name="id_classifier", **f32) if id_head == "softmax"
                          else CosineClassifier(num_ids, name="id_classifier", **f32))
            outputs["id_logits"] = classifier(outputs["embedding"])
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        # === Config ===
        self.backbone = backbone
        self.num_params, self.num_attributes = num_params, num_attributes
        self.id_latent_dim, self.res_latent_dim, self.id_hidden_dim = id_latent_dim, res_latent_dim, id_hidden_dim
        self.branch_blocks = branch_blocks
        self.num_landmarks, self.num_ids, self.id_head = num_landmarks, num_ids, id_head
        self.param_branches, self.dropout, self.shape_scale = param_branches, dropout, shape_scale
        self.sync_batch_norm, self.freeze_batch_norm = sync_batch_norm, freeze_batch_norm
        self.branch_pooling, self.branch_last_stride = branch_pooling, branch_last_stride
        self.mirror_average = mirror_average
        self.joint_loss: JointLoss | None = None
        self._batch_norms = [la for la in [*backbone._flatten_layers(include_self=False), *self.layers]
                             if isinstance(la, layers.BatchNormalization)]
        for bn in self._batch_norms:  # global-batch statistics under tf.distribute (same as 1 device)
            bn.synchronized = sync_batch_norm
        self.set_trainable_parts(["all"])
        # === Metrics ===
        self._total_tracker = keras.metrics.Mean(name="loss")
        self._loss_trackers = {name: keras.metrics.Mean(name=f"{name}_loss") for name in TASKS}
        self._attribute_accuracy = keras.metrics.Mean(name="attribute_accuracy")
        self._param_rmse = RootMeanSquare(name="param_rmse")

    # --- configuration -------------------------------------------------------------------------
    @property
    def image_size(self) -> int:
        return int(self.backbone.input_shape[1])

    def get_config(self) -> dict[str, Any]:
        return {"backbone": keras.saving.serialize_keras_object(self.backbone),
                "num_params": self.num_params, "num_attributes": self.num_attributes,
                "id_latent_dim": self.id_latent_dim, "res_latent_dim": self.res_latent_dim,
                "id_hidden_dim": self.id_hidden_dim, "branch_blocks": self.branch_blocks,
                "num_landmarks": self.num_landmarks, "num_ids": self.num_ids, "id_head": self.id_head,
                "param_branches": self.param_branches, "dropout": self.dropout,
                "shape_scale": self.shape_scale, "sync_batch_norm": self.sync_batch_norm,
                "freeze_batch_norm": self.freeze_batch_norm, "branch_pooling": self.branch_pooling,
                "branch_last_stride": self.branch_last_stride, "mirror_average": self.mirror_average,
                "name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "FaceModel":
        import tfface.models.backbones  # noqa: F401  (registers the backbone classes a saved model names)

        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)

    @classmethod
    def from_preset(cls, preset: str | None = None, **kwargs: Any) -> "FaceModel":
        """A joint preset as saved, or a 3DDFA regressor preset (the default) turned into a FaceModel
        whose 3DMM head, latents and decoders start from the regressor and the 3DMM bases."""
        from tfface.models.backbones import MobileNetV1Backbone
        from tfface.models.presets import DEFAULT_PRESET, load_preset

        loaded = load_preset(preset or DEFAULT_PRESET)
        if isinstance(loaded.model, FaceModel):
            if kwargs:
                raise ValueError(f"preset {loaded.name} is a FaceModel already; cannot change {sorted(kwargs)}")
            return loaded.model
        backbone = MobileNetV1Backbone.from_config(loaded.model.backbone.get_config())
        kwargs.setdefault("shape_scale", float(np.linalg.norm(loaded.param_stats.mean[:3])))
        model = cls(backbone, num_params=loaded.model.num_params, **kwargs)
        model.initialize_from_regressor(loaded.model, loaded.param_stats, loaded.shape_model)
        return model

    def initialize_from_regressor(self, regressor: keras.Model, stats: ParamStats, shape_model: MorphableModel) -> None:
        """Copy the backbone and fc_param; start c_id / c_res as the normalised alpha_id / alpha_exp and
        the decoders as the 3DMM bases, so shape_id + shape_res = A_id alpha_id + A_exp alpha_exp."""
        self.backbone.set_weights(regressor.backbone.get_weights())
        duplicated = {la.name for la in self.backbone.layers}
        for layer in self.layers:  # the branch starts as a copy of the blocks it duplicates
            if layer.name.startswith(BRANCH_PREFIX) and layer.name[len(BRANCH_PREFIX):] in duplicated and layer.weights:
                layer.set_weights(self.backbone.get_layer(layer.name[len(BRANCH_PREFIX):]).get_weights())
        kernel, bias = regressor.get_layer("fc_param").get_weights()
        if self.param_branches:
            for name, cols in (("fc_pose", slice(0, CAMERA_DIM)), ("fc_id", slice(CAMERA_DIM, CAMERA_DIM + ID_DIM)),
                               ("fc_exp", slice(CAMERA_DIM + ID_DIM, None))):
                self.get_layer(name).set_weights([kernel[:, cols], bias[cols]])
        else:
            self.get_layer("fc_param").set_weights([kernel, bias])
        if shape_model.num_vertices != self.num_landmarks:
            shape_model = shape_model.landmark_model()
        for part, basis, start in (("id", shape_model.id_basis, CAMERA_DIM),
                                   ("res", shape_model.exp_basis, CAMERA_DIM + ID_DIM)):
            k_total = basis.shape[0]
            latent, decoder = self.get_layer(f"{part}_latent"), self.get_layer(f"{part}_decoder")
            lat_k, lat_b = latent.get_weights()
            k = min(k_total, lat_k.shape[1])
            if lat_k.shape[0] == kernel.shape[0]:  # a latent on the pooled features (no hidden layer)
                lat_k[:, :k], lat_b[:k] = kernel[:, start:start + k], bias[start:start + k]
                latent.set_weights([lat_k, lat_b])
            flat = basis.reshape(k_total, -1) * self.shape_scale  # decoders work in crop pixels
            dec_k = np.zeros_like(decoder.get_weights()[0])
            dec_k[:k] = flat[:k] * stats.std[start:start + k, None]
            dec_b = stats.mean[start:start + k_total] @ flat
            decoder.set_weights([dec_k, dec_b.astype(np.float32)])

    def set_trainable_parts(self, parts: list[str]) -> None:
        """Train only the named PARTS (or "all"): one training phase of Liu et al.'s schedule."""
        unknown = sorted(set(parts) - set(PARTS) - {"all"})
        if unknown:
            raise ValueError(f"unknown trainable part(s) {unknown}; known: {['all', *PARTS]}")
        on = set(PARTS) if "all" in parts else set(parts)
        self.backbone.trainable = "backbone" in on
        present = {la.name for la in self.layers}
        for name in {n for names in PARTS.values() for n in names} & present:
            self.get_layer(name).trainable = any(name in PARTS[part] for part in on)
        for layer in self.layers:
            if layer.name.startswith(BRANCH_PREFIX):
                layer.trainable = "branch" in on
        if self.freeze_batch_norm:  # BN in inference mode: small, mixed batches keep pretrained statistics
            for bn in self._batch_norms:
                bn.trainable = False

    # --- training ------------------------------------------------------------------------------
    def compile(self, optimizer: Any = "adam", joint_loss: JointLoss | None = None, **kwargs: Any) -> None:
        """Keras compile plus the joint masked loss that train_step/test_step minimise."""
        super().compile(optimizer=optimizer, **kwargs)
        self.joint_loss = joint_loss

    def get_compile_config(self) -> None:
        # The joint loss holds the 3DMM and data-dependent weights, not a Keras object: a loaded model
        # is compiled again by its user (as `tfface train` does for every phase).
        return None

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        active = self.joint_loss.active if self.joint_loss is not None else {}
        trackers = [self._loss_trackers[name] for name in TASKS if name in active]
        return [self._total_tracker, *trackers, self._attribute_accuracy, self._param_rmse]

    def _forward_losses(self, images: tf.Tensor, labels: dict[str, tf.Tensor], training: bool) -> tuple[Any, ...]:
        if self.joint_loss is None:
            raise ValueError("FaceModel.compile(optimizer, joint_loss=JointLoss(...)) must come before fit/evaluate")
        outputs = self(images, training=training)
        losses = self.joint_loss(labels, outputs)
        total = self.joint_loss.total(losses)
        if self.losses:  # regularisation: identical on every replica, gradients are summed
            total += tf.add_n(self.losses) / tf.distribute.get_strategy().num_replicas_in_sync
        return outputs, losses, total

    def _maybe_symbolic_build(self, iterator: Any = None, data_batch: Any = None) -> None:
        """Keras 3 reduces a sample batch over the replicas here, which MultiWorkerMirroredStrategy cannot
        do for a nested batch (keras-team/keras#20585). The functional model is built at construction,
        so the optimizer is all that is left to build."""
        if self.optimizer is not None and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)

    def train_step(self, data: Any) -> dict[str, tf.Tensor]:
        images, labels = data[0], data[1]
        with tf.GradientTape() as tape:
            outputs, losses, total = self._forward_losses(images, labels, training=True)
            scaled = self.optimizer.scale_loss(total)
        variables = self.trainable_variables
        # A part no active loss reaches gets zero gradients (not None): the optimizer keeps one slot set
        # for all trainable variables, which BackupAndRestore saves and restores as a whole.
        grads = [tf.zeros_like(v) if g is None else g for g, v in zip(tape.gradient(scaled, variables), variables)]
        self.optimizer.apply(_clip_across_replicas(grads, self.optimizer), variables)
        return self._update_metrics(labels, outputs, losses, total)

    def test_step(self, data: Any) -> dict[str, tf.Tensor]:
        images, labels = data[0], data[1]
        outputs, losses, total = self._forward_losses(images, labels, training=False)
        return self._update_metrics(labels, outputs, losses, total)

    def _update_metrics(self, labels: dict[str, tf.Tensor], outputs: dict[str, tf.Tensor],
                        losses: dict[str, tuple[tf.Tensor, tf.Tensor]], total: tf.Tensor) -> dict[str, tf.Tensor]:
        # Every replica records the same global values, so any cross-replica reduction reads them back.
        self._total_tracker.update_state(replica_sum(total))
        for name, (share, count) in losses.items():
            self._loss_trackers[name].update_state(replica_sum(share), sample_weight=count)
        correct = tf.cast(tf.equal(outputs["attributes"] > 0, labels["attributes"] > 0.5), tf.float32)
        _update_masked(self._attribute_accuracy, tf.reduce_mean(correct, axis=-1), labels["has_attributes"])
        if self.joint_loss is not None:
            target = self.joint_loss.geometry.normalize(labels["params"])
            mse = tf.reduce_mean(tf.square(outputs["params"] - target), axis=-1)
            _update_masked(self._param_rmse, mse, labels["has_params"])
        return _reducible({m.name: m.result() for m in self.metrics})


def _clip_across_replicas(grads: list[tf.Tensor], optimizer: keras.optimizers.Optimizer) -> list[tf.Tensor]:
    """Keras clips each replica's gradient (clipnorm / global_clipnorm) before the replicas are summed,
    so N replicas would clip N partial gradients, not the one a single device sees. Clip the summed
    gradient here and hand each replica 1/N of it: the optimizer's own clip, at <= clip/N, is a no-op.
    Under mixed_float16 the optimizer is a LossScaleOptimizer: the clip is its inner optimizer's, and the
    gradients are of the scaled loss, so they are clipped unscaled and handed back scaled."""
    ctx = tf.distribute.get_replica_context()
    n = ctx.num_replicas_in_sync if ctx is not None else 1
    inner = getattr(optimizer, "inner_optimizer", optimizer)  # mixed_float16: the wrapped one clips
    norm, global_norm = getattr(inner, "clipnorm", None), getattr(inner, "global_clipnorm", None)
    if n == 1 or not (norm or global_norm):
        return grads
    # gradients of the scaled loss (loss scaling): clip them in the units the optimizer clips in
    scale = tf.cast(optimizer.scale_loss(tf.constant(1.0)), tf.float32)
    summed = [g / scale for g in ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)]
    if global_norm:
        summed, _ = tf.clip_by_global_norm(summed, global_norm)
    if norm:
        summed = [tf.clip_by_norm(g, norm) for g in summed]
    return [g * scale / n for g in summed]


def _reducible(logs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """Keras 3 averages fit's logs over MultiWorkerMirroredStrategy workers along axis 0, which fails on
    scalars (keras-team/keras#20585): give the (identical) values that axis there."""
    strategy = tf.distribute.get_strategy()
    in_multi_worker = getattr(strategy.extended, "_in_multi_worker_mode", lambda: False)()
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and in_multi_worker:
        return {k: tf.reshape(v, [1]) for k, v in logs.items()}
    return logs


def _update_masked(metric: keras.metrics.Mean, values: tf.Tensor, mask: tf.Tensor) -> None:
    mask = tf.cast(mask, tf.float32)
    total = replica_sum(tf.reduce_sum(tf.where(mask > 0, values, 0.0)))
    count = replica_sum(tf.reduce_sum(mask))
    metric.update_state(total / tf.maximum(count, 1.0), sample_weight=count)


def _features(backbone: keras.Model, inputs: Any, branch_blocks: int, pooling: str = "avg",
              last_stride: int = 2, mirror: bool = False) -> tuple[Any, Any]:
    """(backbone features, identity/attribute features). With `branch_blocks` = k, the last k blocks
    are duplicated as a branch (layers `branch_*`) fed by the backbone's feature map before them, so
    identity and attributes can train without moving what the 3DMM head sees. `last_stride` 1: the
    branch's last stride-2 block keeps its input's resolution (an 8x8 final map at 120 px, not 4x4).
    `mirror`: the branch also reads the mirrored crop (its own early blocks' features of it, stacked
    on the batch axis) and its pooled features are the mean of both views (tfface.models.mirror)."""
    given = {"branch_pooling": pooling, "branch_last_stride": last_stride, "mirror_average": mirror}
    if given != BRANCH_ONLY_DEFAULTS and not branch_blocks:
        raise ValueError(f"branch_pooling={pooling!r}, branch_last_stride={last_stride} and mirror_average="
                         f"{mirror} need an identity/attribute branch (branch_blocks > 0)")
    if not branch_blocks:
        x = backbone(inputs)
        return x, x
    from tfface.models.backbones.mobilenet_v1 import MobileNetV1Backbone, add_blocks, block_names, block_strides

    if not isinstance(backbone, MobileNetV1Backbone) or not 0 < branch_blocks <= len(block_names()):
        raise ValueError(f"branch_blocks needs a MobileNetV1Backbone and 1 <= branch_blocks <= {len(block_names())}. "
                         f"Received: branch_blocks={branch_blocks} with {type(backbone).__name__}")
    names = block_names()[-branch_blocks:]
    trunk = keras.Model(backbone.inputs, [backbone.get_layer(f"{names[0]}_pad").input, backbone.output],
                        name="backbone_trunk")
    early, x = trunk(inputs)
    if mirror:
        stem = keras.Model(backbone.inputs, trunk.outputs[0], name="backbone_stem")  # shares the trunk's layers
        mirrored = stem(MirrorImages(name="mirrored_images")(inputs))
        early = layers.Concatenate(axis=0, name=f"{BRANCH_PREFIX}views")([early, mirrored])
    last = [name for name, stride in zip(block_names(), block_strides()) if stride == 2][-1]
    branch = add_blocks(early, names, backbone.width_multiplier, prefix=BRANCH_PREFIX,
                        strides={last: last_stride} if last in names else None)
    pooled = _pool(branch, pooling)
    return x, ViewMean(name=f"{BRANCH_PREFIX}view_mean")(pooled) if mirror else pooled


def _pool(branch: Any, pooling: str) -> Any:
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name=f"{BRANCH_PREFIX}avgpool")(branch)
    height, width, channels = branch.shape[1:]
    # starts as the average (every weight 1/(h*w)), so a model widened from an "avg" run starts where it ended
    gdc = layers.DepthwiseConv2D((height, width), use_bias=False, name=f"{BRANCH_PREFIX}gdc",
                                 depthwise_initializer=keras.initializers.Constant(1.0 / (height * width)))(branch)
    return layers.Reshape((channels,), name=f"{BRANCH_PREFIX}gdc_flat")(gdc)


def _decoder(latent: Any, part: str, num_landmarks: int, shape_scale: float) -> Any:
    """Linear decoder of a latent to (B, L, 3) shape offsets: Dense in crop pixels, scaled to model units."""
    x = layers.Dense(num_landmarks * 3, name=f"{part}_decoder", dtype="float32")(latent)
    x = layers.Rescaling(1.0 / shape_scale, name=f"{part}_to_model_units", dtype="float32")(x)
    return layers.Reshape((num_landmarks, 3), name=f"shape_{part}", dtype="float32")(x)


def _check_args(num_params: int, num_attributes: int, id_latent_dim: int, res_latent_dim: int,
                num_landmarks: int, num_ids: int, id_head: str, dropout: float, shape_scale: float) -> None:
    checks = {"num_params": num_params > CAMERA_DIM + ID_DIM, "num_attributes": num_attributes > 0,
              "id_latent_dim": id_latent_dim > 0, "res_latent_dim": res_latent_dim > 0,
              "num_landmarks": num_landmarks > 0, "num_ids": num_ids >= 0,
              "dropout": 0.0 <= dropout < 1.0, "shape_scale": shape_scale > 0}
    values = locals()
    for name, ok in checks.items():
        if not ok:
            raise ValueError(f"{name} is out of range. Received: {name}={values[name]}")
    if id_head not in ID_HEADS:
        raise ValueError(f"id_head must be one of {ID_HEADS}. Received: id_head={id_head!r}")
