"""Run by tests/test_distributed.py in a subprocess (a hung tf.data service must not hang the suite):
serve a pipeline YAML through an in-process dispatcher + 2 workers, save 6 batches to an .npz."""

from __future__ import annotations

import sys

import numpy as np


def main(pipeline_yaml: str, out: str, size: int) -> None:
    from tfface.data import service
    from tfface.training.config import DataConfig
    from tfface.training.inputs import build_datasets
    from tfface.training.trainer import build_geometry

    dispatcher = service.start_dispatcher()
    workers = [service.start_worker(dispatcher.target) for _ in range(2)]
    try:
        data = DataConfig(source="pipeline", pipeline_config=pipeline_yaml, batch_size=8, validation_steps=0,
                          service=dispatcher.target)
        train_ds, _ = build_datasets(data, build_geometry(size))
        served = [(x.numpy(), {k: v.numpy() for k, v in y.items()}) for x, y in train_ds.take(6)]
        arrays = {"workers": np.array(dispatcher._num_workers())}
        for i, (x, y) in enumerate(served):
            arrays.update({f"x{i}": x, **{f"{k}{i}": v for k, v in y.items()}})
        np.savez(out, **arrays)
    finally:
        for server in (*workers, dispatcher):
            server.stop()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
