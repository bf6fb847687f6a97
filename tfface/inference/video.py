"""Video files in, faces per frame out: MediaPipe's VIDEO mode for `FaceReconstructor`.

Frames are read with OpenCV in order; faces are tracked from the previous frame's landmarks and the
detector runs every `detect_every` frames and whenever tracking is lost (`FaceReconstructor.track`);
landmarks, pose and params are then One-Euro smoothed per face (`tfface.inference.smoothing`), on the
video's own clock (frame index / fps), so results do not depend on how fast this machine runs.
`write_video_results` is `tfface reconstruct`'s video output: JSON lines and an overlay video.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from tfface.errors import DataFileError
from tfface.io.images import check_input_file
from tfface.inference.reconstructor import Face, FaceReconstructor
from tfface.inference.smoothing import FaceTracker, OneEuroConfig
from tfface.quiet import native_stderr_silenced

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm")
DEFAULT_FPS = 30.0  # when the container states none (or nonsense)


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    fps: float
    frames: int | None  # the container's frame count; None when it states none
    size: tuple[int, int]  # width, height


def is_video(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def open_video(path: str | os.PathLike) -> tuple[cv2.VideoCapture, VideoInfo]:
    """An opened capture and what the container says about it; one-line errors naming the file."""
    path = check_input_file(path, "a video file")
    with native_stderr_silenced():  # FFmpeg's own lines ("moov atom not found") would follow our one line
        cap = cv2.VideoCapture(os.fspath(path))
    if not cap.isOpened():
        cap.release()
        raise DataFileError(f"{path}: cannot open as a video (corrupt, or a codec this OpenCV lacks)")
    fps, count = cap.get(cv2.CAP_PROP_FPS), cap.get(cv2.CAP_PROP_FRAME_COUNT)
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    return cap, VideoInfo(path, fps if np.isfinite(fps) and 1 <= fps <= 1000 else DEFAULT_FPS,
                          int(count) if np.isfinite(count) and count > 0 else None, size)


def read_frames(cap: cv2.VideoCapture, info: VideoInfo, budget: int) -> Iterator[np.ndarray]:
    """RGB uint8 frames in order until the stream ends (or stops decoding); frames over `budget` pixels
    are refused before the first decode, as photos are."""
    width, height = info.size
    if width * height > budget:
        raise DataFileError(f"{info.path}: {width}x{height} frames are over the pixel budget of "
                            f"{budget / 1e6:g} Mpx (--max-megapixels / TFFACE_MAX_PIXELS)")
    while True:
        try:
            with native_stderr_silenced():
                ok, bgr = cap.read()
        except cv2.error as e:  # a decoder failure mid-stream ends the video like its end does
            raise DataFileError(f"{info.path}: cannot decode a frame ({str(e).strip().splitlines()[-1][:200]})") from None
        if not ok or bgr is None:
            return
        yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=bgr)


class VideoFaces:
    """`for index, t, frame, faces in VideoFaces(reconstructor)(path)`: every frame's faces, tracked
    and (unless `smoothing` is None) One-Euro smoothed."""

    def __init__(self, reconstructor: FaceReconstructor, detect_every: int = 10,
                 smoothing: OneEuroConfig | None = OneEuroConfig()) -> None:
        if detect_every < 1:
            raise ValueError(f"detect_every must be >= 1. Received: detect_every={detect_every}")
        self.reconstructor, self.detect_every, self.smoothing = reconstructor, detect_every, smoothing
        self.info: VideoInfo | None = None  # of the video being read

    def __call__(self, path: str | os.PathLike, budget: int) -> Iterator[tuple[int, float, np.ndarray, list[Face]]]:
        cap, self.info = open_video(path)
        self.reconstructor.reset_tracking()  # a new video: nothing to follow from the last one
        tracker = FaceTracker(self.smoothing) if self.smoothing is not None else None
        try:
            for index, frame in enumerate(read_frames(cap, self.info, budget)):
                t = index / self.info.fps
                faces = self.reconstructor.track(frame, self.detect_every)
                yield index, t, frame, smoothed(tracker, t, faces) if tracker else faces
        finally:
            cap.release()


def smoothed(tracker: FaceTracker, t: float, faces: list[Face]) -> list[Face]:
    """Faces with landmarks, pose and params filtered alike (params are crop-relative, so they move
    with the crop; smoothing them with the landmarks keeps the three consistent)."""
    values = tracker(t, [{"landmarks": f.landmarks, "pose": f.pose, "params": f.params} for f in faces])
    return [replace(f, landmarks=v["landmarks"], pose=v["pose"], params=v["params"]) for f, v in zip(faces, values)]


def write_video_results(videos: VideoFaces, path: Path, budget: int, output: Path | None, stem: str,
                        overlay: bool = True, echo: bool = False) -> str:
    """A video's faces per frame as JSON lines: `output`/<stem>.jsonl (and `output`/<stem>_overlay.mp4 with
    `overlay`), written atomically, and/or on stdout (`echo`); returns the line saying what was written."""
    from tfface.io.atomic import atomic_path
    from tfface.io.outputs import finite_faces
    from tfface.render.overlay import draw_faces

    with contextlib.ExitStack() as stack:
        lines = movie = writer = None
        if output is not None:
            lines = stack.enter_context(open(stack.enter_context(atomic_path(output / f"{stem}.jsonl")), "w"))
            if overlay:
                movie = stack.enter_context(atomic_path(output / f"{stem}_overlay.mp4"))
        frames = with_faces = 0
        for index, t, frame, faces in videos(path, budget):
            text = json.dumps(finite_faces({"video": str(path), "frame": index, "t": round(t, 4),
                                            "faces": [f.to_json() for f in faces]}))
            if echo:
                print(text, flush=True)
            if lines is not None:
                lines.write(text + "\n")
            if movie is not None:
                if writer is None:
                    writer = cv2.VideoWriter(str(movie), cv2.VideoWriter_fourcc(*"mp4v"), videos.info.fps,
                                             (frame.shape[1], frame.shape[0]))
                    stack.callback(writer.release)  # before the rename: the file is complete then
                    if not writer.isOpened():
                        raise DataFileError(f"{output / (stem + '_overlay.mp4')}: cannot write a video there")
                writer.write(cv2.cvtColor(draw_faces(frame, faces), cv2.COLOR_RGB2BGR))
            frames, with_faces = frames + 1, with_faces + bool(faces)
        if not frames:
            raise DataFileError(f"{path}: no frames could be read (empty, or a codec this OpenCV lacks)")
    listed = videos.info.frames
    short = f" of the {listed} the file lists (truncated?)" if listed and frames < 0.9 * listed else ""
    where = f" -> {output / stem}.jsonl" if output is not None else ""
    return f"tfface: {path}: {frames} frames{short}, faces in {with_faces}{where}"
