"""The edge app: a photo, a video file or a webcam in; an annotated photo or video out, with ms/frame.

    python -m mobile_demo.edge photo.jpg -o out.png
    python -m mobile_demo.edge clip.mp4 -o out.mp4 [--min-cutoff 0.5 --beta 20 | --no-smooth]
    python -m mobile_demo.edge 0 -o cam.mp4 --max-frames 300      # webcam 0

Needs only ai-edge-litert, numpy and OpenCV, and the repo's `tfface` folder for its NumPy face rules and
detector (no TensorFlow or MediaPipe is imported).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from mobile_demo.edge.draw import draw_face, draw_mesh, draw_speed
from mobile_demo.edge.face_model import DEFAULT_MODEL
from mobile_demo.edge.io import InputError, read_rgb
from tfface.litert import ModelFileError
from mobile_demo.edge.pipeline import EdgePipeline, Face
from tfface.inference.smoothing import OneEuroConfig

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mobile_demo.edge", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="photo, video file, or webcam index (0, 1, ...)")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="annotated photo (.png/.jpg) or video (.mp4); default: <input>_edge.png/.mp4 here")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="tfface .tflite (metadata.json beside it)")
    p.add_argument("--detector", default="auto",
                   help="auto (short-range, full-range on frames where it finds no face), short, full, or a "
                        "BlazeFace .tflite path (default auto)")
    p.add_argument("--min-score", type=float, default=0.5, help="detection threshold (0.5)")
    p.add_argument("--refine", type=int, default=1, help="re-crops from the landmarks per frame (1)")
    p.add_argument("--threads", type=int, default=None, help="LiteRT CPU threads (default: LiteRT's choice)")
    p.add_argument("--max-faces", type=int, default=8)
    p.add_argument("--detect-every", type=int, default=1,
                   help="video: run the detector every N frames, tracking from the landmarks in between "
                        "(and whenever tracking is lost); 1: detect on every frame")
    p.add_argument("--mesh", action="store_true", help="draw the face mesh (a coarse dense 3DMM, ~950 vertices)")
    p.add_argument("--no-smooth", action="store_true", help="video: no temporal smoothing")
    p.add_argument("--min-cutoff", type=float, default=OneEuroConfig.min_cutoff,
                   help=f"One-Euro cutoff at rest, Hz ({OneEuroConfig.min_cutoff:g}; lower = steadier)")
    p.add_argument("--beta", type=float, default=OneEuroConfig.beta,
                   help=f"One-Euro speed gain per face size/s ({OneEuroConfig.beta:g}; higher = less lag)")
    p.add_argument("--d-cutoff", type=float, default=OneEuroConfig.d_cutoff, help="One-Euro speed cutoff, Hz")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--json", type=Path, default=None, help="also write per-frame results as JSON lines")
    p.add_argument("--show", action="store_true", help="show frames in a window (needs a GUI OpenCV)")
    return p


def face_json(face: Face) -> dict:
    out = {"box": np.round(face.box, 2).tolist(), "score": round(face.score, 4),
           "landmarks_2d": np.round(face.landmarks[:, :2], 2).tolist(),
           "pose": dict(zip(("yaw", "pitch", "roll"), np.round(face.pose, 3).tolist()))}
    if face.attributes:
        out["attributes"] = {k: round(v, 4) for k, v in face.attributes.items()}
    return out


def annotate(frame: np.ndarray, faces: list[Face], pipeline: EdgePipeline, fps: float) -> np.ndarray:
    out = frame.copy()
    thick = max(1, int(round(max(frame.shape[:2]) / 600)))
    for face in faces:
        if face.vertices is not None:
            draw_mesh(out, face.vertices, pipeline.model.mesh.triangles)
        draw_face(out, face, thick)
    tm = pipeline.timings
    draw_speed(out, tm.total, fps, f"detect {tm.detect:.1f} + model {tm.model:.1f} ms, {len(faces)} faces")
    return out


def open_video(source: str) -> tuple[cv2.VideoCapture, float]:
    cap = cv2.VideoCapture(int(source)) if source.isdigit() else cv2.VideoCapture(source)
    if not cap.isOpened():
        kind = "webcam" if source.isdigit() else "video file"
        raise InputError(f"{source}: cannot open as a {kind}")
    fps = cap.get(cv2.CAP_PROP_FPS)
    return cap, fps if fps and 1 <= fps <= 240 else 30.0


def run(args: argparse.Namespace) -> int:
    smoothing = None if args.no_smooth else OneEuroConfig(args.min_cutoff, args.beta, args.d_cutoff)
    pipeline = EdgePipeline(args.model, args.detector, args.min_score, args.refine, smoothing,
                            args.threads, args.max_faces, args.mesh, args.detect_every)
    source = str(args.input)
    is_image = Path(source).suffix.lower() in IMAGE_SUFFIXES
    if not is_image and not source.isdigit() and not Path(source).is_file():
        raise InputError(f"{source}: no such file")
    stem = "webcam" + source if source.isdigit() else Path(source).stem
    output = args.output or Path(f"{stem}_edge{'.png' if is_image else '.mp4'}")
    log = args.json.open("w") if args.json else None
    try:
        if is_image:
            image = read_rgb(source)
            faces = pipeline(image)
            ms = pipeline.timings.total
            _write_image(output, annotate(image, faces, pipeline, 1e3 / max(ms, 1e-6)))
            if log:
                log.write(json.dumps({"frame": 0, "ms": round(ms, 3), "faces": [face_json(f) for f in faces]}) + "\n")
            print(f"{source}: {len(faces)} faces, {ms:.1f} ms -> {output}")
            return 0
        return _run_video(source, output, pipeline, args, log)
    finally:
        if log:
            log.close()


def _write_image(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise InputError(f"{path}: cannot write (unknown image extension?)")


def _run_video(source: str, output: Path, pipeline: EdgePipeline, args: argparse.Namespace, log) -> int:
    cap, fps_in = open_video(source)
    output.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    frame_index, start, last_report = 0, time.perf_counter(), time.perf_counter()
    try:
        while args.max_frames is None or frame_index < args.max_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            frame = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            t = frame_index / fps_in if not source.isdigit() else time.perf_counter() - start
            faces = pipeline(frame, t)
            recent = pipeline.timings.history[-30:]
            out = annotate(frame, faces, pipeline, 1e3 / max(float(np.mean(recent)), 1e-6))
            if writer is None:
                writer = cv2.VideoWriter(str(output), cv2.VideoWriter_fourcc(*"mp4v"), fps_in,
                                         (frame.shape[1], frame.shape[0]))
                if not writer.isOpened():
                    raise InputError(f"{output}: cannot write a video there (use .mp4)")
            writer.write(cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
            if args.show:
                _show(out)
            if log:
                log.write(json.dumps({"frame": frame_index, "t": round(t, 4), "ms": round(pipeline.timings.total, 3),
                                      "faces": [face_json(f) for f in faces]}) + "\n")
            frame_index += 1
            if time.perf_counter() - last_report > 2.0:
                last_report = time.perf_counter()
                print(f"frame {frame_index}: {np.mean(recent):.1f} ms/frame", file=sys.stderr)
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    if frame_index == 0:
        raise InputError(f"{source}: no frames could be read")
    ms = np.array(pipeline.timings.history)
    print(f"{source}: {frame_index} frames, {ms.mean():.1f} ms/frame (median {np.median(ms):.1f}), "
          f"{1e3 / ms.mean():.0f} fps -> {output}")
    return 0


def _show(frame: np.ndarray) -> None:
    try:
        cv2.imshow("tfface edge", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        cv2.waitKey(1)
    except cv2.error:
        raise InputError("--show needs an OpenCV build with GUI support (opencv-python, not -headless)") from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (InputError, ModelFileError, ValueError) as e:
        print(f"mobile_demo: {e}", file=sys.stderr)
        return 2
