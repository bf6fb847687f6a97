"""The joint masked loss of the face model: weights in a dataclass, one value per task.

Every task loss is averaged over the samples labelled for it (see `masked`); a task whose weight is
0 is not computed at all. `JointLoss(labels, outputs)` returns {name: (share, count)} where `share` is
this replica's part of the global masked mean (the shares sum to the loss over the global batch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import tensorflow as tf

from tfface.losses import face3d, recognition
from tfface.losses.geometry import FaceGeometry
from tfface.losses.masked import masked_mean

# Loss name -> (label mask it needs, model output it needs).
TASKS: dict[str, tuple[str, str]] = {
    "param": ("has_params", "params"),
    "wpdc": ("has_params", "params"),
    "vertex": ("has_params", "params"),
    "marn_id": ("has_params", "params"),
    "marn_exp": ("has_params", "params"),
    "marn_pose": ("has_params", "params"),
    "landmarks": ("has_landmarks", "params"),
    "shape": ("has_params", "shape_id"),
    "attributes": ("has_attributes", "attributes"),
    "identity": ("has_identity", "id_logits"),
    "id_consistency": ("has_identity", "shape_id"),
    "distill": ("has_teacher", "embedding"),
    "distill_structure": ("has_teacher", "embedding"),
}


# The numeric fields of LossConfig: (test, what it must be); every one must be finite as well.
_AT_LEAST_0 = (lambda v: v >= 0, ">= 0")
_NUMBER_RULES: dict[str, tuple] = {**{name: _AT_LEAST_0 for name in TASKS}, "attribute_pos_weight": _AT_LEAST_0,
                                   "id_scale": (lambda v: v > 0, "> 0"), "id_margin": (lambda v: True, "finite")}


@dataclass
class LossConfig:
    """Weights of the task losses (0 switches one off) and their options."""

    param: float = 0.0  # MSE of normalised params
    wpdc: float = 1.0  # 3DDFA's weighted parameter distance
    vertex: float = 0.0  # mean 3D distance of posed shapes (crop px)
    marn_id: float = 0.0  # |A_id (a_id - a~_id)|^2 (crop px^2)
    marn_exp: float = 0.0  # |A_exp (a_exp - a~_exp)|^2 (crop px^2)
    marn_pose: float = 0.0  # true shape, predicted vs true camera (crop px)
    landmarks: float = 0.01  # projected landmarks vs "landmarks" labels (crop px)
    shape: float = 0.01  # decoded s_mean + ds_id + ds_res vs the 3DMM shape (crop px)
    attributes: float = 1.0
    identity: float = 0.1
    id_consistency: float = 0.0  # ds_id of one person's photos pulled together (crop px^2)
    distill: float = 0.0  # 1 - cos(embedding, teacher embedding)
    distill_structure: float = 0.0  # in-batch pairwise cosines vs the teacher's (squared difference)
    attribute_pos_weight: float | list[float] = 1.0  # BCE weight of positives, one or one per attribute
    id_loss: str = "arcface"  # softmax | arcface | cosface (must match the model's id_head)
    id_scale: float = 30.0
    id_margin: float = 0.3

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            problem = self.field_problem(f.name, value)
            if problem:
                raise ValueError(f"loss {f.name} {problem}. Received: {value!r}")

    @staticmethod
    def field_problem(name: str, value: object) -> str | None:
        """What is wrong with `value` for the field (or a phase's loss weight) `name`: "must be ...", or
        None. NaN and inf are rejected: a NaN weight fails `w > 0` and would switch its loss off silently."""
        if name == "id_loss":
            return None if value in recognition.ID_LOSSES else f"must be one of {list(recognition.ID_LOSSES)}"
        if name not in _NUMBER_RULES:
            return None
        values = value if name == "attribute_pos_weight" and isinstance(value, list | tuple) else [value]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            return "must be a number" + (" or a list of numbers" if name == "attribute_pos_weight" else "")
        if not all(math.isfinite(v) for v in values):
            return "must be a finite number"
        ok, rule = _NUMBER_RULES[name]
        return None if all(ok(v) for v in values) else f"must be {rule}"

    def weights(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in TASKS}

    def with_weights(self, overrides: dict[str, float]) -> "LossConfig":
        unknown = sorted(set(overrides) - set(TASKS))
        if unknown:
            raise ValueError(f"unknown loss name(s) {unknown}; known: {sorted(TASKS)}")
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return LossConfig(**{**values, **overrides})


class JointLoss:
    """Labels (the batch contract) + model outputs -> per-task (share, count) for the active tasks."""

    def __init__(self, config: LossConfig, geometry: FaceGeometry) -> None:
        self.config = config
        self.geometry = geometry
        self.active = {name: w for name, w in config.weights().items() if w > 0}
        self.pos_weight = tf.constant(config.attribute_pos_weight, tf.float32)

    def __call__(self, labels: dict[str, tf.Tensor], outputs: dict[str, tf.Tensor]) -> dict[str, tuple[tf.Tensor, tf.Tensor]]:
        results = {}
        for name in self.active:
            mask_key, output_key = TASKS[name]
            if output_key not in outputs:
                raise ValueError(f"loss '{name}' needs the model output '{output_key}' "
                                 f"(outputs: {sorted(outputs)}); set its weight to 0 or change the model")
            if name == "id_consistency":
                results[name] = recognition.identity_consistency(
                    outputs["shape_id"], tf.cast(labels["identity"], tf.int32), labels[mask_key],
                    self.geometry.shape_scale)
            elif name == "distill_structure":
                results[name] = recognition.similarity_structure(outputs["embedding"], labels["teacher"],
                                                                 labels[mask_key])
            else:
                results[name] = masked_mean(self._per_sample(name, labels, outputs), labels[mask_key])
        return results

    def total(self, losses: dict[str, tuple[tf.Tensor, tf.Tensor]]) -> tf.Tensor:
        return tf.add_n([self.active[name] * share for name, (share, _) in losses.items()] or [tf.constant(0.0)])

    def _per_sample(self, name: str, labels: dict[str, tf.Tensor], outputs: dict[str, tf.Tensor]) -> tf.Tensor:
        g, c = self.geometry, self.config
        if name == "distill":
            return recognition.distill_cosine(outputs["embedding"], labels["teacher"])
        pred = tf.cast(outputs["params"], tf.float32)
        target = tf.cast(labels["params"], tf.float32)
        if name == "param":
            return face3d.param_mse(g, pred, target)
        if name == "wpdc":
            return face3d.wpdc(g, pred, target)
        if name == "vertex":
            return face3d.vertex_distance(g, pred, target)
        if name in ("marn_id", "marn_exp"):
            return face3d.basis_distance(g, pred, target, name[5:])
        if name == "marn_pose":
            return face3d.pose_projection(g, pred, target)
        if name == "landmarks":
            return face3d.landmark_projection(g, pred, tf.cast(labels["landmarks"], tf.float32))
        if name == "shape":
            return face3d.decoded_shape(g, outputs["shape_id"], outputs["shape_res"], target)
        if name == "attributes":
            return recognition.attribute_bce(outputs["attributes"], labels["attributes"], self.pos_weight)
        if name == "identity":
            return recognition.identity_ce(outputs["id_logits"], labels["identity"], c.id_loss, c.id_scale, c.id_margin)
        raise ValueError(f"unknown loss {name!r}")
