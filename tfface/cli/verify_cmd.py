"""`tfface verify A B`: are the largest faces in two photos the same person? One JSON line out."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tfface.quiet import native_stderr_silenced
from tfface.detection import DETECTORS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="same person? cosine similarity of two photos' identity embeddings")
    p.add_argument("a", type=Path, help="first photo (its largest face is used)")
    p.add_argument("b", type=Path, help="second photo (its largest face is used)")
    p.add_argument("--preset", "--model", dest="preset", default=None,
                   help="a joint preset name or folder with an identity embedding, or its export "
                        "(.tflite, .onnx, SavedModel; default: tfface_mb05_joint)")
    p.add_argument("--threshold", type=float, default=None,
                   help="cosine similarity at or above which the faces are the same person "
                        "(default: the preset's verification_threshold)")
    p.add_argument("--detector", choices=DETECTORS, default="auto",
                   help="BlazeFace: 'auto' (default) short-range, then full-range + tiles where it finds no face; "
                        "'short' for portraits/close faces only; 'full' for group photos with small faces")
    p.set_defaults(run=run, tensorflow=False)


def run(args: argparse.Namespace) -> int:
    from tfface.inference.verification import FaceVerifier
    from tfface.io.outputs import finite_json
    from tfface.models.presets import JOINT_PRESET

    with native_stderr_silenced():  # device start-up notices
        verifier = FaceVerifier(args.preset or JOINT_PRESET, args.threshold, args.detector)
        verifier.reconstructor.detector  # noqa: B018 - start the detector here
    try:
        result = verifier(args.a, args.b)
    finally:
        verifier.close()
    print(json.dumps(finite_json(result.to_json())[0]), flush=True)  # a NaN similarity prints as null
    return 0
