"""`tfface reconstruct PATH... -o OUTDIR`: landmarks, pose and 3DMM parameters for every face (and, with a
joint preset, 40 attribute probabilities and the identity embedding)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tfface.errors import DataFileError, NoFaceError
from tfface.quiet import native_stderr_silenced
from tfface.detection import DETECTORS
from tfface.runtimes import RUNTIMES


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reconstruct", help="3D landmarks, head pose and 3DMM parameters for every face")
    p.add_argument("paths", nargs="+", help="image files and/or folders (searched recursively)")
    p.add_argument("-o", "--output", type=Path, help="folder for <stem>.json and <stem>_overlay.jpg")
    p.add_argument("--json", action="store_true", help="print the results as JSON lines on stdout")
    p.add_argument("--preset", "--model", dest="preset", default=None,
                   help="model preset name or preset folder (default: tfface_mb05_3ddfa), or a file `tfface export` "
                        "wrote (.tflite, .onnx, SavedModel folder); a joint model such as tfface_mb05_joint adds "
                        "'attributes' and 'embedding' to every face")
    p.add_argument("--detector", choices=DETECTORS, default="auto",
                   help="BlazeFace: 'auto' (default) short-range, then full-range + tiles where it finds no face; "
                        "'short' for portraits/close faces only; 'full' for group photos with small faces")
    p.add_argument("--min-score", type=float, default=0.5, help="minimum detection score (default 0.5)")
    p.add_argument("--refine", type=int, default=1,
                   help="re-crop from the predicted landmarks this many times (default 1)")
    p.add_argument("--no-overlay", action="store_true", help="do not write overlay images")
    p.add_argument("--mesh", action="store_true",
                   help="also write dense ICT-FaceKit meshes (<stem>.obj/.ply, per face <stem>_face<k>.* when "
                        "several) and depth / PNCC / mesh-overlay renders (needs -o)")
    p.add_argument("--runtime", choices=RUNTIMES, default="auto",
                   help="how a preset runs: 'auto' (default) its shipped TFLite file on LiteRT, no TensorFlow; "
                        "'keras' the Keras model (imports TensorFlow)")
    p.set_defaults(run=run, tensorflow=False)


def reconstruct_file(reconstructor: Any, path: Path) -> tuple[dict, Any, list]:
    from tfface.io.images import read_image

    image = read_image(path)
    faces = reconstructor(image)
    if not faces:
        raise NoFaceError(f"{path}: no face found")
    return {"image": str(path), "faces": [f.to_json() for f in faces]}, image, faces


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from tfface.inference.reconstructor import FaceReconstructor
    from tfface.io.images import list_images, write_image
    from tfface.models.presets import DEFAULT_PRESET
    from tfface.render.overlay import draw_faces

    if args.output is None and not args.json:
        raise DataFileError("give an output folder (-o OUTDIR) and/or --json")
    files = list_images(args.paths)
    if not files:
        raise DataFileError(f"no images found in {', '.join(map(str, args.paths))}")
    if args.output:
        args.output.mkdir(parents=True, exist_ok=True)
    with native_stderr_silenced():  # device start-up notices
        reconstructor = FaceReconstructor(args.preset or DEFAULT_PRESET, args.detector, args.min_score, args.refine,
                                          args.runtime)
        reconstructor.detector  # noqa: B018 - start the detector here, not inside the progress bar
    fitter = None
    if args.mesh:
        from tfface.fitting.dense import DenseFitter
        from tfface.render.mesh_outputs import write_dense_outputs

        fitter = DenseFitter()
    failed = 0
    for path in tqdm(files, desc="reconstruct", unit="img", disable=len(files) < 2, file=sys.stderr):
        try:
            result, image, faces = reconstruct_file(reconstructor, path)
        except (DataFileError, NoFaceError) as e:
            failed += 1
            tqdm.write(f"tfface: skipped: {e}", file=sys.stderr)
            continue
        if args.json:
            print(json.dumps(result), flush=True)
        if args.output:
            (args.output / f"{path.stem}.json").write_text(json.dumps(result))  # indent: 8x slower (Python encoder)
            if not args.no_overlay:  # JPEG: 7 ms per 1536x689 overlay where PNG took 105 ms
                write_image(args.output / f"{path.stem}_overlay.jpg", draw_faces(image, faces))
            if args.mesh:
                write_dense_outputs(args.output, path.stem, image, faces, fitter)
    reconstructor.close()
    print(summary_line(len(files), failed, args.output), file=sys.stderr)
    return 1 if failed == len(files) else 0


def summary_line(total: int, failed: int, output: Path | None) -> str:
    """One line on how the run went, e.g. "tfface: wrote 298 results to out/ (2 failed)"."""
    done = f"wrote {total - failed} results to {output}/" if output else f"printed {total - failed} results"
    return f"tfface: {done}" + (f" ({failed} failed)" if failed else "")
