"""Masked averaging that stays exact under tf.distribute.

Every task loss is sum(mask * l) / max(sum(mask), 1) over the GLOBAL batch: each replica divides its
local sum by the labelled count summed over all replicas, so summing gradients across replicas (what
the optimizer does) gives exactly the single-device gradient, and a batch with no labels gives 0.
"""

from __future__ import annotations

import tensorflow as tf


def replica_sum(value: tf.Tensor) -> tf.Tensor:
    """Sum over the replicas of a tf.distribute strategy; the value itself outside one."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return value
    return ctx.all_reduce(tf.distribute.ReduceOp.SUM, value)


def masked_mean(values: tf.Tensor, mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-sample values (B,) and a {0, 1} mask (B,) -> (this replica's share of the mean, global count)."""
    mask = tf.cast(mask, tf.float32)
    values = tf.where(mask > 0, tf.cast(values, tf.float32), 0.0)  # unlabelled samples: exactly 0 gradient
    count = tf.stop_gradient(replica_sum(tf.reduce_sum(mask)))
    return tf.reduce_sum(values * mask) / tf.maximum(count, 1.0), count


def safe_norm(x: tf.Tensor, axis: int = -1) -> tf.Tensor:
    """Euclidean norm with a finite gradient at 0."""
    return tf.sqrt(tf.reduce_sum(tf.square(x), axis=axis) + 1e-8)
