"""TF Serving clients: the REST predict API (JSON) and the gRPC PredictionService.

Both send uint8 RGB face crops (N, S, S, 3) to one signature of the exported SavedModel
("serving_default", "reconstruct", "attributes", "embedding") and return its outputs as NumPy arrays.
REST uses the columnar format ({"signature_name", "inputs"} -> {"outputs"}).
"""

from __future__ import annotations

import json
from typing import Any
from urllib import error, request
from urllib.parse import urlparse

import numpy as np

from tfface.errors import TffaceError


class ServingError(TffaceError):
    """The server could not be reached or answered with an error."""


class RestClient:
    """`RestClient("http://host:8501", "tfface_mb05_3ddfa").predict(crops, "reconstruct")`."""

    def __init__(self, url: str = "http://localhost:8501", model: str = "tfface_mb05_3ddfa",
                 version: int | None = None, timeout: float = 30.0) -> None:
        self.base = url.rstrip("/")
        self.model, self.version, self.timeout = model, version, timeout
        path = f"/v1/models/{model}" + (f"/versions/{version}" if version is not None else "")
        self.predict_url = f"{self.base}{path}:predict"

    def predict(self, crops: np.ndarray, signature: str = "serving_default") -> dict[str, np.ndarray]:
        body = json.dumps({"signature_name": signature, "inputs": {"images": _check_crops(crops).tolist()}})
        req = request.Request(self.predict_url, body.encode(), {"Content-Type": "application/json"})
        try:
            with request.urlopen(req, timeout=self.timeout) as resp:
                answer = json.loads(resp.read())
        except error.HTTPError as e:
            raise ServingError(f"{self.predict_url}: HTTP {e.code}: {_server_message(e)}") from None
        except (error.URLError, OSError) as e:
            raise ServingError(f"{self.predict_url}: cannot reach the server ({getattr(e, 'reason', e)})") from None
        outputs = answer.get("outputs")
        if outputs is None:
            raise ServingError(f"{self.predict_url}: no 'outputs' in the answer: {str(answer)[:200]}")
        if not isinstance(outputs, dict):  # TF Serving drops the name when a signature has one output
            outputs = {"output": outputs}
        return {k: np.asarray(v, np.float32) for k, v in outputs.items()}


def _server_message(e: error.HTTPError) -> str:
    try:
        return json.loads(e.read()).get("error", "")
    except (ValueError, OSError):
        return str(e.reason)


class GrpcClient:
    """`GrpcClient("host:8500", "tfface_mb05_3ddfa").predict(crops, "reconstruct")` (tensorflow-serving-api)."""

    def __init__(self, target: str = "localhost:8500", model: str = "tfface_mb05_3ddfa",
                 version: int | None = None, timeout: float = 30.0) -> None:
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        self.target, self.model, self.version, self.timeout = target, model, version, timeout
        self.channel = grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", 64 << 20),
                                                              ("grpc.max_send_message_length", 64 << 20)])
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)

    def predict(self, crops: np.ndarray, signature: str = "serving_default") -> dict[str, np.ndarray]:
        import grpc
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        req = predict_pb2.PredictRequest()
        req.model_spec.name = self.model
        req.model_spec.signature_name = signature
        if self.version is not None:
            req.model_spec.version.value = self.version
        req.inputs["images"].CopyFrom(tf.make_tensor_proto(_check_crops(crops)))
        try:
            resp = self.stub.Predict(req, timeout=self.timeout)
        except grpc.RpcError as e:
            raise ServingError(f"grpc://{self.target}: {e.code().name}: {e.details()}") from None
        return {k: tf.make_ndarray(v).astype(np.float32) for k, v in resp.outputs.items()}

    def close(self) -> None:
        self.channel.close()


def _check_crops(crops: np.ndarray) -> np.ndarray:
    crops = np.asarray(crops)
    if crops.ndim != 4 or crops.shape[-1] != 3 or crops.dtype != np.uint8:
        raise TffaceError(f"expected uint8 RGB crops (N, S, S, 3). Received: {crops.dtype} {crops.shape}")
    return crops


def make_client(url: str, model: str, version: int | None = None, timeout: float = 30.0) -> Any:
    """http(s)://host:port -> RestClient; grpc://host:port -> GrpcClient."""
    scheme = urlparse(url).scheme
    if scheme in ("http", "https"):
        return RestClient(url, model, version, timeout)
    if scheme == "grpc":
        return GrpcClient(url[len("grpc://"):], model, version, timeout)
    raise TffaceError(f"--url must start with http://, https:// (REST) or grpc:// (gRPC). Received: {url!r}")
