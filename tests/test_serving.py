"""TF Serving clients against an in-process server that executes the exported SavedModel with TF
Serving's REST and gRPC request/response formats."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import SAMPLE_IMAGE
from export_helpers import exported, sample_crops

from tfface.errors import TffaceError

pytestmark = pytest.mark.slow
MODEL = "tfface_mb05_3ddfa"


@pytest.fixture(scope="module")
def executor():
    from tfface.serving.local_server import SavedModelExecutor

    return SavedModelExecutor(MODEL, exported().files["saved_model"])


@pytest.fixture(scope="module")
def rest_url(executor):
    from tfface.serving.local_server import serve_rest

    server = serve_rest(executor)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def grpc_url(executor):
    from tfface.serving.local_server import serve_grpc

    server, port = serve_grpc(executor)
    yield f"grpc://127.0.0.1:{port}"
    server.stop(0)


def test_rest_and_grpc_predict_match_the_saved_model(rest_url, grpc_url, executor):
    from tfface.serving import make_client

    crops = sample_crops()
    local = executor.run("reconstruct", {"images": crops})
    for url in (rest_url, grpc_url):
        out = make_client(url, MODEL).predict(crops, "reconstruct")
        assert set(out) == {"params", "landmarks", "pose"}
        np.testing.assert_allclose(out["landmarks"], local["landmarks"], atol=1e-4)
        np.testing.assert_allclose(out["params"], local["params"], rtol=1e-6)


@pytest.mark.parametrize("which", ["rest", "grpc"])
def test_round_trip_returns_local_landmarks(which, rest_url, grpc_url, reconstructor):
    from tfface.io.images import read_image
    from tfface.serving import make_client
    from tfface.serving.remote import ServedReconstructor

    image = read_image(SAMPLE_IMAGE)
    local = reconstructor(image)
    served = ServedReconstructor(make_client(rest_url if which == "rest" else grpc_url, MODEL))
    try:
        remote = served(image)
    finally:
        served.close()
    assert len(remote) == len(local) == 2
    for a, b in zip(remote, local):
        np.testing.assert_allclose(a.roi_box, b.roi_box, atol=1e-3)
        np.testing.assert_allclose(a.landmarks, b.landmarks, atol=1e-2)
        np.testing.assert_allclose(a.pose, b.pose, atol=1e-3)


def test_serve_request_cli_prints_reconstruct_json(rest_url, capsys):
    from tfface.cli.main import main

    assert main(["reconstruct", str(SAMPLE_IMAGE), "--json"]) == 0
    local = json.loads(capsys.readouterr().out)
    assert main(["serve-request", str(SAMPLE_IMAGE), "--url", rest_url]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert remote.keys() == local.keys() and len(remote["faces"]) == 2
    for a, b in zip(remote["faces"], local["faces"]):
        assert a.keys() == b.keys()
        np.testing.assert_allclose(a["landmarks_3d"], b["landmarks_3d"], atol=0.02)
        assert a["box"] == b["box"]


def test_client_errors(rest_url):
    from tfface.serving import RestClient, ServingError, make_client

    crops = sample_crops()
    with pytest.raises(ServingError, match="HTTP 400.*nope"):
        RestClient(rest_url, MODEL).predict(crops, "nope")
    with pytest.raises(ServingError, match="HTTP 404"):
        RestClient(rest_url, "other_model").predict(crops)
    with pytest.raises(ServingError, match="cannot reach"):
        RestClient("http://127.0.0.1:9", MODEL, timeout=2).predict(crops)
    with pytest.raises(TffaceError, match="grpc://"):
        make_client("ftp://x", MODEL)
    with pytest.raises(TffaceError, match="uint8"):
        RestClient(rest_url, MODEL).predict(crops.astype(np.float32))
