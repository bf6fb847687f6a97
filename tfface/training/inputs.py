"""The one function `tfface train` builds its datasets with: synthetic batches or the hybrid pipeline.

Both give (images, labels) batches of the tfface.data contract with the GLOBAL batch size; Keras
splits each batch over the replicas of a tf.distribute strategy. `start` begins the training stream at
that batch of the uninterrupted stream (exact resume); with data.service set, the training batches
come from a tf.data service instead of this process.
"""

from __future__ import annotations

import tensorflow as tf

from tfface.errors import TffaceError
from tfface.losses.geometry import FaceGeometry
from tfface.training.config import DataConfig
from tfface.training.synthetic import synthetic_dataset


def build_datasets(config: DataConfig, geometry: FaceGeometry, num_ids: int = 0, seed: int = 0,
                   start: int = 0) -> tuple[tf.data.Dataset, tf.data.Dataset | None]:
    """(training dataset from batch `start`, validation dataset or None), both repeating; `num_ids`: the
    model's classes."""
    if config.source == "synthetic":
        s, ids = config.synthetic, num_ids or 8
        train = synthetic_dataset(geometry, config.batch_size, s.num_batches, ids, s.label_rate, seed)
        val = synthetic_dataset(geometry, config.batch_size, max(1, config.validation_steps), ids,
                                s.label_rate, seed + 100_000)
        datasets = (train.repeat().skip(start), val.repeat() if config.validation_steps else None)
    elif config.source == "pipeline":
        datasets = _pipeline_datasets(config, geometry, start)
    else:
        raise TffaceError(f"data.source must be 'synthetic' or 'pipeline'. Received: {config.source!r}")
    if config.service:
        from tfface.data import service

        datasets = (service.distribute(datasets[0], config.service), datasets[1])
    options = tf.data.Options()  # multi-worker: every worker reads all files, keeps its share of elements
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return tuple(ds.with_options(options) if ds is not None else None for ds in datasets)  # type: ignore[return-value]


def _pipeline_datasets(config: DataConfig, geometry: FaceGeometry,
                       start: int) -> tuple[tf.data.Dataset, tf.data.Dataset | None]:
    """The hybrid tf.data builder of tfface.data.pipeline (sources + per-batch quotas)."""
    try:
        from tfface.data import pipeline
    except ImportError as e:
        raise TffaceError(f"data.source 'pipeline' needs tfface.data.pipeline ({e})") from None
    if not config.pipeline_config:
        raise TffaceError("data.source 'pipeline' needs data.pipeline_config (a YAML of the data pipeline)")
    source = pipeline.load_pipeline_config(config.pipeline_config)
    if config.service:
        from tfface.data.service import servable

        source = servable(source)
    train, val = pipeline.build_train_val(source, batch_size=config.batch_size, image_size=geometry.image_size,
                                          start=start)
    return train.repeat(), (val.repeat() if val is not None else None)
