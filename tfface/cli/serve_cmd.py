"""`tfface serve-request IMAGE --url URL`: detect and crop locally, run the network on a TF Serving server
(REST or gRPC), print the same JSON as `tfface reconstruct --json`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tfface.cli.args import bounded
from tfface.detection import DETECTORS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve-request", help="reconstruct faces with a model served by TF Serving")
    p.add_argument("images", nargs="+", type=Path, help="image files")
    p.add_argument("--url", default="http://localhost:8501",
                   help="server: http://host:8501 (REST) or grpc://host:8500 (gRPC); default the local REST port")
    p.add_argument("--model", default="tfface_mb05_3ddfa", help="model name in the server's models.config")
    p.add_argument("--version", type=bounded(int, 1), default=None, help="model version (default: the server's latest)")
    p.add_argument("--image-size", type=bounded(int, 32, 1024), default=120, help="the served model's crop size (default 120)")
    p.add_argument("--detector", choices=DETECTORS, default="auto")
    p.add_argument("--min-score", type=bounded(float, 0, 1), default=0.5)
    p.add_argument("--refine", type=bounded(int, 0, 10), default=1, help="re-crops from the predicted landmarks (default 1)")
    p.add_argument("--timeout", type=bounded(float, above=0), default=30.0, help="seconds per request")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tfface.errors import NoFaceError
    from tfface.io.images import read_image
    from tfface.io.outputs import finite_faces
    from tfface.quiet import native_stderr_silenced
    from tfface.serving.client import make_client
    from tfface.serving.remote import ServedReconstructor

    client = make_client(args.url, args.model, args.version, args.timeout)
    with native_stderr_silenced():
        rec = ServedReconstructor(client, args.image_size, args.detector, args.min_score, args.refine)
    try:
        for path in args.images:
            faces = rec(read_image(path))
            if not faces:
                raise NoFaceError(f"{path}: no face found")
            print(json.dumps(finite_faces({"image": str(path), "faces": [f.to_json() for f in faces]})), flush=True)
    finally:
        rec.close()
    return 0
