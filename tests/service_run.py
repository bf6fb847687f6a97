"""Run by tests/test_distributed.py in a subprocess (a hung tf.data service must not hang the suite):
serve a pipeline YAML through an in-process dispatcher, one in-process worker and one `tfface service
worker` process (as on another host), save 6 batches to an .npz."""

from __future__ import annotations

import subprocess
import sys
import time

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

    with service.local_service(workers=1) as dispatcher:
        port = dispatcher.target.rsplit(":", 1)[1]
        remote = subprocess.Popen([sys.executable, "-m", "tfface", "service", "worker", "--dispatcher",
                                   f"localhost:{port}", "--port", "0", "--host", "localhost"])
        try:
            deadline = time.monotonic() + 60
            while dispatcher._num_workers() < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            arrays = {"workers": np.array(dispatcher._num_workers())}
            served = serve(pipeline_yaml, dispatcher.target, size)
        finally:
            remote.kill()
            remote.wait()
    for i, (x, y) in enumerate(served):
        arrays.update({f"x{i}": x, **{f"{k}{i}": v for k, v in y.items()}})
    np.savez(out, **arrays)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
