"""The tf.data service: input processing on other CPU hosts, batches streamed to the trainer.

A dispatcher hands the pipeline's graph to workers; each worker runs the whole hybrid pipeline on its
share of the shard files and the trainer reads finished batches over gRPC. Start them with
`tfface service dispatcher --port 5050` and `tfface service worker --dispatcher HOST:5050 --port 5051`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import socket
from typing import TYPE_CHECKING, Iterator
from urllib.parse import urlsplit

import tensorflow as tf

from tfface.errors import DataServiceError

if TYPE_CHECKING:
    from tfface.data.pipeline import PipelineConfig

PROTOCOL = "grpc"


def host_port(address: str) -> tuple[str, int]:
    """"grpc://host:port" or "host:port" -> (host, port)."""
    parts = urlsplit(address if "://" in address else f"{PROTOCOL}://{address}")
    if not parts.hostname or not parts.port:
        raise DataServiceError(f"data.service must be 'grpc://HOST:PORT'. Received: {address!r}")
    return parts.hostname, parts.port


def check_dispatcher(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast: the service client itself retries an unreachable dispatcher for ever."""
    host, port = host_port(address)
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as e:
        raise DataServiceError(f"data.service: no tf.data dispatcher at {host}:{port} ({e.strerror or e}); start "
                               f"one with `tfface service dispatcher --port {port}`") from None


def servable(config: "PipelineConfig") -> "PipelineConfig":
    """The pipeline as a service worker can run it: graph ops only. The OpenCV warp is a numpy_function,
    whose Python callback exists only in the process that built the graph: a worker in another process
    cannot call it, and one in this process deadlocks on the GIL when it is stopped mid-batch."""
    return dataclasses.replace(config, warp="tf")


def distribute(dataset: tf.data.Dataset, address: str) -> tf.data.Dataset:
    """`dataset`'s batches, produced by the service's workers.

    Each worker runs the whole pipeline, so every batch keeps its exact quotas. DYNAMIC sharding hands
    each worker different shard files: with OFF every worker would run the same seeded stream and the
    trainer would see each batch once per worker. The order then depends on worker timing (not
    reproducible), and each worker enumerates its own samples, so workers share augmentation draws."""
    check_dispatcher(address)
    host, port = host_port(address)
    return dataset.apply(tf.data.experimental.service.distribute(
        processing_mode=tf.data.experimental.service.ShardingPolicy.DYNAMIC, service=f"{PROTOCOL}://{host}:{port}"))


def start_dispatcher(port: int = 0) -> tf.data.experimental.service.DispatchServer:
    config = tf.data.experimental.service.DispatcherConfig(port=port, protocol=PROTOCOL)
    return tf.data.experimental.service.DispatchServer(config)


def start_worker(dispatcher: str, port: int = 0, host: str = "localhost") -> tf.data.experimental.service.WorkerServer:
    """A worker that registers as `host`:port: the name the trainer reaches it by (not localhost across hosts)."""
    dhost, dport = host_port(dispatcher)
    config = tf.data.experimental.service.WorkerConfig(dispatcher_address=f"{dhost}:{dport}", port=port,
                                                       worker_address=f"{host}:%port%", protocol=PROTOCOL)
    return tf.data.experimental.service.WorkerServer(config)


@contextlib.contextmanager
def local_service(workers: int = 1) -> Iterator[tf.data.experimental.service.DispatchServer]:
    """A dispatcher and `workers` workers in this process (tests, benchmarks, one-host runs).

    Datasets read from it must be gone before it stops: a service iterator released after its
    dispatcher stopped retries that dispatcher for `dispatcher_timeout_ms` (an hour) and blocks
    the process there. So build and read them inside a function called within the block."""
    dispatcher = start_dispatcher()
    servers = [start_worker(dispatcher.target) for _ in range(workers)]
    try:
        yield dispatcher
    finally:
        gc.collect()  # release iterators (and their service jobs) while the dispatcher still answers
        for server in (*servers, dispatcher):
            server.stop()
