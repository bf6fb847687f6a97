"""Run by tests/test_distributed.py in a subprocess (a hung tf.data service must not hang the suite):
serve a pipeline YAML through an in-process dispatcher + 2 workers, save 6 batches to an .npz."""

from __future__ import annotations

import sys

import numpy as np


def serve(pipeline_yaml: str, target: str, size: int, n: int = 6) -> list:
    """n batches of the pipeline through the service; its dataset and iterator die with this frame."""
    from tfface.training.config import DataConfig
    from tfface.training.inputs import build_datasets
    from tfface.training.trainer import build_geometry

    data = DataConfig(source="pipeline", pipeline_config=pipeline_yaml, batch_size=8, validation_steps=0,
                      service=target)
    train_ds, _ = build_datasets(data, build_geometry(size))
    return [(x.numpy(), {k: v.numpy() for k, v in y.items()}) for x, y in train_ds.take(n)]


def main(pipeline_yaml: str, out: str, size: int) -> None:
    from tfface.data import service

    with service.local_service(workers=2) as dispatcher:
        served = serve(pipeline_yaml, dispatcher.target, size)
        arrays = {"workers": np.array(dispatcher._num_workers())}
    for i, (x, y) in enumerate(served):
        arrays.update({f"x{i}": x, **{f"{k}{i}": v for k, v in y.items()}})
    np.savez(out, **arrays)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
