"""A stand-in for TF Serving for tests and development: executes an exported SavedModel behind the
same REST predict API (columnar JSON) and gRPC PredictionService. Not for production: use the
tensorflow/serving image (export/README.md)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np


class SavedModelExecutor:
    """model name + SavedModel folder -> run(signature, {"images": array}) -> {name: array}."""

    def __init__(self, name: str, saved_model_dir: str | Path) -> None:
        import tensorflow as tf

        self.name = name
        self.loaded = tf.saved_model.load(str(saved_model_dir))
        self._lock = threading.Lock()

    def run(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if signature not in self.loaded.signatures:
            raise KeyError(f"Serving signature name: \"{signature}\" not found in signature def")
        fn = self.loaded.signatures[signature]
        with self._lock:
            out = fn(**{k: np.asarray(v, np.uint8) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in out.items()}


def serve_rest(executor: SavedModelExecutor, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Start `POST /v1/models/<name>[/versions/<v>]:predict` in a daemon thread; `.server_address` has the port."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            path = self.path
            if not (path.startswith(f"/v1/models/{executor.name}") and path.endswith(":predict")):
                return self._send(404, {"error": f"Servable not found for request: {path}"})
            try:
                req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                inputs = req["inputs"] if "inputs" in req else {"images": req["instances"]}
                out = executor.run(req.get("signature_name", "serving_default"), inputs)
            except (KeyError, ValueError, TypeError) as e:
                return self._send(400, {"error": str(e)})
            if "instances" in req:  # row format in, row format out
                n = len(req["instances"])
                return self._send(200, {"predictions": [{k: v[i].tolist() for k, v in out.items()} for i in range(n)]})
            return self._send(200, {"outputs": {k: v.tolist() for k, v in out.items()}})

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def serve_grpc(executor: SavedModelExecutor, host: str = "127.0.0.1", port: int = 0) -> tuple[Any, int]:
    """Start a PredictionService (Predict only) on a free port; returns (server, port)."""
    from concurrent import futures

    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):  # noqa: N802 (the proto's name)
            if request.model_spec.name != executor.name:
                context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found: {request.model_spec.name}")
            inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            try:
                out = executor.run(request.model_spec.signature_name or "serving_default", inputs)
            except KeyError as e:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
            resp = predict_pb2.PredictResponse()
            resp.model_spec.CopyFrom(request.model_spec)
            for k, v in out.items():
                resp.outputs[k].CopyFrom(tf.make_tensor_proto(v))
            return resp

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    server.start()
    return server, bound
