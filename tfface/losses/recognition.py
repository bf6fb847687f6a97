"""Per-sample attribute and identity losses, the pairwise identity-consistency loss, and distillation
from a teacher recognizer (cosine to its embedding, and its in-batch similarity structure)."""

from __future__ import annotations

import tensorflow as tf

from tfface.losses.masked import replica_sum

ID_LOSSES = ("softmax", "arcface", "cosface")


def attribute_bce(logits: tf.Tensor, labels: tf.Tensor, pos_weight: tf.Tensor) -> tf.Tensor:
    """Binary cross-entropy with per-attribute positive weights, mean over attributes (B,)."""
    loss = tf.nn.weighted_cross_entropy_with_logits(tf.cast(labels, tf.float32), logits, pos_weight)
    return tf.reduce_mean(loss, axis=-1)


def margin_logits(cosines: tf.Tensor, ids: tf.Tensor, kind: str, scale: float, margin: float) -> tf.Tensor:
    """Cosines (B, C) -> logits with the additive angular (ArcFace) or cosine (CosFace) margin on the target."""
    onehot = tf.one_hot(tf.maximum(ids, 0), tf.shape(cosines)[-1], dtype=cosines.dtype)
    target = tf.reduce_sum(cosines * onehot, axis=-1, keepdims=True)
    if kind == "arcface":
        theta = tf.acos(tf.clip_by_value(target, -1.0 + 1e-6, 1.0 - 1e-6))
        # Past pi - m, cos(theta + m) stops decreasing; fall back to CosFace there (as insightface does).
        shifted = tf.where(theta + margin < 3.14159265, tf.cos(theta + margin), target - margin * tf.sin(margin))
    else:
        shifted = target - margin
    return scale * (cosines + onehot * (shifted - target))


def identity_ce(outputs: tf.Tensor, ids: tf.Tensor, kind: str, scale: float, margin: float) -> tf.Tensor:
    """Softmax cross-entropy on logits, or on margin logits from cosines (B,)."""
    ids = tf.cast(ids, tf.int32)
    tf.debugging.assert_less(ids, tf.shape(outputs)[-1], message="an identity label is >= the model's num_ids")
    logits = outputs if kind == "softmax" else margin_logits(outputs, ids, kind, scale, margin)
    return tf.nn.sparse_softmax_cross_entropy_with_logits(tf.maximum(ids, 0), logits)


def identity_consistency(shape_id: tf.Tensor, ids: tf.Tensor, mask: tf.Tensor,
                         scale: float) -> tuple[tf.Tensor, tf.Tensor]:
    """Mean squared distance (crop px^2) between ds_id of photos of the same person in the batch.

    Returns (this replica's share, global pair count); pairs are formed within a replica's batch.
    """
    flat = tf.reshape(shape_id, [tf.shape(shape_id)[0], -1]) * scale
    labelled = tf.cast(mask, tf.float32) * tf.cast(ids >= 0, tf.float32)
    same = tf.cast(tf.equal(ids[:, None], ids[None, :]), tf.float32) * labelled[:, None] * labelled[None, :]
    pairs = same * (1.0 - tf.eye(tf.shape(ids)[0]))
    num_points = tf.cast(tf.shape(flat)[1] // 3, tf.float32)
    sq = tf.reduce_sum(tf.square(flat[:, None, :] - flat[None, :, :]), axis=-1) / num_points
    count = tf.stop_gradient(replica_sum(tf.reduce_sum(pairs)))
    return tf.reduce_sum(tf.where(pairs > 0, sq, 0.0)) / tf.maximum(count, 1.0), count


def _unit(x: tf.Tensor) -> tf.Tensor:
    return tf.math.l2_normalize(tf.cast(x, tf.float32), axis=-1)


def distill_cosine(embedding: tf.Tensor, teacher: tf.Tensor) -> tf.Tensor:
    """1 - cos(student, teacher) per sample (B,); the student's embedding lives in the teacher's space."""
    return 1.0 - tf.reduce_sum(_unit(embedding) * _unit(teacher), axis=-1)


def similarity_structure(embedding: tf.Tensor, teacher: tf.Tensor, mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Mean squared difference of the student's and the teacher's pairwise cosines over the labelled
    pairs (i != j) of the batch: who looks alike to the teacher should look alike to the student.

    Returns (this replica's share, global pair count); pairs are formed within a replica's batch."""
    s, t = _unit(embedding), _unit(teacher)
    labelled = tf.cast(mask, tf.float32)
    pairs = labelled[:, None] * labelled[None, :] * (1.0 - tf.eye(tf.shape(s)[0]))
    sq = tf.square(tf.matmul(s, s, transpose_b=True) - tf.matmul(t, t, transpose_b=True))
    count = tf.stop_gradient(replica_sum(tf.reduce_sum(pairs)))
    return tf.reduce_sum(tf.where(pairs > 0, sq, 0.0)) / tf.maximum(count, 1.0), count
