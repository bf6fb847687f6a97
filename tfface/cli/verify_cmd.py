"""`tfface verify A B`: are the largest faces in two photos the same person? One JSON line out.
`tfface verify --pairs FILE`: the same for every pair of a list, a JSON line each; a photo in several
pairs is embedded once, and a pair that fails is one line on stderr while the others go on."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tfface.cli.args import bounded
from tfface.detection import DETECTORS
from tfface.errors import DataFileError
from tfface.quiet import native_stderr_silenced


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="same person? cosine similarity of two photos' identity embeddings")
    p.add_argument("a", type=Path, nargs="?", help="first photo (its largest face is used)")
    p.add_argument("b", type=Path, nargs="?", help="second photo (its largest face is used)")
    p.add_argument("--pairs", type=Path, default=None,
                   help="a text file of pairs instead: two photo paths per line (tab-separated, or separated "
                        "by spaces when the line has no tab; relative to the file's folder; # comments)")
    p.add_argument("--preset", "--model", dest="preset", default=None,
                   help="a joint preset name or folder with an identity embedding, or its export "
                        "(.tflite, .onnx, SavedModel; default: tfface_mb05_joint)")
    p.add_argument("--threshold", type=bounded(float, -1, 1), default=None,
                   help="cosine similarity at or above which the faces are the same person "
                        "(default: the preset's verification_threshold)")
    p.add_argument("--detector", choices=DETECTORS, default="auto",
                   help="BlazeFace: 'auto' (default) short-range, then full-range + tiles where it finds no face; "
                        "'short' for portraits/close faces only; 'full' for group photos with small faces")
    p.set_defaults(run=run, tensorflow=False)


def run(args: argparse.Namespace) -> int:
    from tfface.inference.verification import FaceVerifier, read_pairs
    from tfface.models.presets import JOINT_PRESET

    photos = [p for p in (args.a, args.b) if p is not None]
    if (args.pairs is None and len(photos) != 2) or (args.pairs is not None and photos):
        raise DataFileError("give two photos (tfface verify A B) or a list of pairs (--pairs FILE), not both")
    pairs, problems = read_pairs(args.pairs) if args.pairs else ([(0, args.a, args.b)], [])
    with native_stderr_silenced():  # device start-up notices
        verifier = FaceVerifier(args.preset or JOINT_PRESET, args.threshold, args.detector)
        verifier.reconstructor.detector  # noqa: B018 - start the detector here
    try:
        if args.pairs is None:  # one pair: its error is the command's
            print(_json(verifier(args.a, args.b)), flush=True)
            return 0
        return _verify_all(verifier, pairs, problems, args.pairs)
    finally:
        verifier.close()


def _verify_all(verifier, pairs: list[tuple[int, Path, Path]], problems: list[str], source: Path) -> int:
    from tqdm import tqdm

    from tfface.cli.reconstruct_cmd import one_line
    from tfface.inference.verification import Verification, cosine_similarity

    embeddings: dict[Path, object] = {}  # path -> embedding, or the exception embedding it raised

    def embed(path: Path):
        if path not in embeddings:
            try:
                embeddings[path] = verifier.embed(path)
            except Exception as e:  # noqa: BLE001 - whatever one photo does, it is its pairs' one line
                embeddings[path] = e
        if isinstance(embeddings[path], Exception):
            raise embeddings[path]
        return embeddings[path]

    for problem in problems:
        print(f"tfface: skipped: {problem}", file=sys.stderr)
    failed = len(problems)
    for line, a, b in tqdm(pairs, desc="verify", unit="pair", disable=len(pairs) < 2, file=sys.stderr):
        try:
            similarity = cosine_similarity(embed(a), embed(b))
        except Exception as e:  # noqa: BLE001
            failed += 1
            bad = a if isinstance(embeddings.get(a), Exception) else b
            tqdm.write(f"tfface: skipped: {source}:{line}: {one_line(e, bad)}", file=sys.stderr)
            continue
        result = Verification(similarity, similarity >= verifier.threshold, verifier.threshold, str(a), str(b),
                              verifier.far)
        print(_json(result, line=line), flush=True)
    total = len(pairs) + len(problems)
    print(f"tfface: verified {total - failed} pairs" + (f" ({failed} failed)" if failed else ""), file=sys.stderr)
    return 1 if failed == total else 0


def _json(result, **first: object) -> str:
    """One result as a JSON line (`first`: keys before its own, e.g. the pairs file's line number)."""
    from tfface.io.outputs import finite_json

    return json.dumps(finite_json({**first, **result.to_json()})[0])  # a NaN similarity prints as null
