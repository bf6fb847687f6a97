"""`tfface reconstruct PATH... -o OUTDIR`: landmarks, pose and 3DMM parameters for every face (and, with a
joint preset, 40 attribute probabilities and the identity embedding)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tfface.cli.args import bounded
from tfface.errors import DataFileError, NoFaceError, TffaceError
from tfface.quiet import native_stderr_silenced
from tfface.detection import DETECTORS
from tfface.runtimes import RUNTIMES


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reconstruct", help="3D landmarks, head pose and 3DMM parameters for every face")
    p.add_argument("paths", nargs="+", help="image files, folders (searched recursively for images) and/or "
                   "video files (.mp4, .mov, .avi, .mkv, .webm, .m4v)")
    p.add_argument("-o", "--output", type=Path, help="folder for <name>.json and <name>_overlay.jpg (a video: "
                   "<name>.jsonl, a line per frame, and <name>_overlay.mp4): inputs keep their path relative to a "
                   "folder argument; clashing names get their suffix, then _2, ...")
    p.add_argument("--json", action="store_true", help="print the results as JSON lines on stdout (a video: a line "
                   "per frame)")
    p.add_argument("--preset", "--model", dest="preset", default=None,
                   help="model preset name or preset folder (default: tfface_mb05_3ddfa), or a file `tfface export` "
                        "wrote (.tflite, .onnx, SavedModel folder); a joint model such as tfface_mb05_joint adds "
                        "'attributes' and 'embedding' to every face")
    p.add_argument("--detector", choices=DETECTORS, default="auto",
                   help="BlazeFace: 'auto' (default) short-range, then full-range + tiles where it finds no face; "
                        "'short' for portraits/close faces only; 'full' for group photos with small faces")
    p.add_argument("--min-score", type=bounded(float, 0, 1), default=0.5, help="minimum detection score (default 0.5)")
    p.add_argument("--refine", type=bounded(int, 0, 10), default=1,
                   help="re-crop from the predicted landmarks this many times (default 1)")
    p.add_argument("--no-overlay", action="store_true", help="do not write overlay images")
    p.add_argument("--max-megapixels", type=bounded(float, above=0), default=None,
                   help="skip images whose header claims more pixels (default 100; or TFFACE_MAX_PIXELS)")
    p.add_argument("--mesh", action="store_true",
                   help="also write dense ICT-FaceKit meshes (<stem>.obj/.ply, per face <stem>_face<k>.* when "
                        "several) and depth / PNCC / mesh-overlay renders (needs -o)")
    p.add_argument("--detect-every", type=bounded(int, 1), default=10,
                   help="video: run the detector every N frames (and whenever tracking is lost), following faces "
                        "from the previous frame's landmarks in between (default 10; 1: detect on every frame)")
    p.add_argument("--no-smooth", action="store_true",
                   help="video: raw per-frame results (default: One-Euro smoothed landmarks, pose and params)")
    p.add_argument("--runtime", choices=RUNTIMES, default="auto",
                   help="how a preset runs: 'auto' (default) its shipped TFLite file on LiteRT, no TensorFlow; "
                        "'keras' the Keras model (imports TensorFlow)")
    p.set_defaults(run=run, tensorflow=False)


def reconstruct_file(reconstructor: Any, path: Path, budget: int | None = None) -> tuple[dict, Any, list]:
    from tfface.io.images import read_image
    from tfface.io.outputs import finite_faces

    image = read_image(path, budget)
    faces = reconstructor(image)
    if not faces:
        raise NoFaceError(f"{path}: no face found")
    return finite_faces({"image": str(path), "faces": [f.to_json() for f in faces]}), image, faces


def one_line(error: BaseException, path: Path) -> str:
    """A TffaceError already names the file; anything else gets the file and the exception's first line."""
    if isinstance(error, TffaceError | FileNotFoundError):
        return str(error)
    first = (str(error).strip().splitlines() or [""])[0][:300]
    return f"{path}: {type(error).__name__}: {first}"


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from tfface.inference.reconstructor import FaceReconstructor
    from tfface.inference.smoothing import OneEuroConfig
    from tfface.inference.video import VideoFaces, is_video, write_video_results
    from tfface.io.images import max_pixels, write_image
    from tfface.io.outputs import check_output_folder, list_inputs, output_stems, write_json_atomic
    from tfface.models.presets import DEFAULT_PRESET
    from tfface.render.overlay import draw_faces

    if args.output is None and not args.json:
        raise DataFileError("give an output folder (-o OUTDIR) and/or --json")
    if args.mesh and args.output is None:
        raise DataFileError("--mesh writes files: give an output folder (-o OUTDIR)")
    inputs = list_inputs(args.paths, args.output)
    if not inputs:
        raise DataFileError(f"no images found in {', '.join(map(str, args.paths))}")
    files, (stems, notes) = [f for f, _ in inputs], output_stems(inputs)
    budget = max_pixels() if args.max_megapixels is None else int(args.max_megapixels * 1e6)
    if args.output:
        check_output_folder(args.output)
        for note in notes:
            print(f"tfface: note: {note}", file=sys.stderr)
    with native_stderr_silenced():  # device start-up notices
        reconstructor = FaceReconstructor(args.preset or DEFAULT_PRESET, args.detector, args.min_score, args.refine,
                                          args.runtime)
        reconstructor.detector  # noqa: B018 - start the detector here, not inside the progress bar
    fitter = None
    if args.mesh:
        from tfface.fitting.dense import DenseFitter
        from tfface.render.mesh_outputs import write_dense_outputs

        fitter = DenseFitter()
    videos = VideoFaces(reconstructor, args.detect_every, None if args.no_smooth else OneEuroConfig())
    if args.mesh and any(map(is_video, files)):
        print("tfface: note: --mesh is for photos; videos get <name>.jsonl and <name>_overlay.mp4", file=sys.stderr)
    failed = 0
    for path, stem in tqdm(list(zip(files, stems)), desc="reconstruct", unit="img", disable=len(files) < 2,
                           file=sys.stderr):
        try:
            if is_video(path):
                done = write_video_results(videos, path, budget, args.output, stem, not args.no_overlay, args.json)
                tqdm.write(done, file=sys.stderr)
                continue
            result, image, faces = reconstruct_file(reconstructor, path, budget)
            if args.json:
                print(json.dumps(result), flush=True)
            if args.output:
                write_json_atomic(args.output / f"{stem}.json", result, indent=None)  # indent: 8x slower encoder
                if not args.no_overlay:  # JPEG: 7 ms per 1536x689 overlay where PNG took 105 ms
                    write_image(args.output / f"{stem}_overlay.jpg", draw_faces(image, faces))
                if args.mesh:
                    write_dense_outputs(args.output, stem, image, faces, fitter)
        except Exception as e:  # noqa: BLE001 - whatever one input does, it is that input's one line
            failed += 1
            tqdm.write(f"tfface: skipped: {one_line(e, path)}", file=sys.stderr)
    reconstructor.close()
    print(summary_line(len(files), failed, args.output), file=sys.stderr)
    return 1 if failed == len(files) else 0


def summary_line(total: int, failed: int, output: Path | None) -> str:
    """One line on how the run went, e.g. "tfface: wrote 298 results to out/ (2 failed)"."""
    done = f"wrote {total - failed} results to {output}/" if output else f"printed {total - failed} results"
    return f"tfface: {done}" + (f" ({failed} failed)" if failed else "")
