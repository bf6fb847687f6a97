"""`tfface reconstruct clip.mp4 -o OUT`: a JSON line per frame and an overlay video, tracked and smoothed
as MediaPipe's VIDEO mode is; broken videos are one line each and the batch goes on."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from conftest import SAMPLE_IMAGE
from mobile_demo.smoothing_eval import CameraMotion, face_size, write_video
from tfface.cli.main import main
from tfface.inference.reconstructor import FaceReconstructor
from tfface.io.images import read_image

FRAMES = 8


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    write_video(path, read_image(SAMPLE_IMAGE), CameraMotion(frames=FRAMES, still_frames=2, noise=4.0), unit=230.0)
    return path


def _decoded_frames(path) -> list[np.ndarray]:
    cap, frames = cv2.VideoCapture(str(path)), []
    while (frame := cap.read()[1]) is not None:
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    cap.release()
    return frames


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _by_x(faces: list) -> list:
    return sorted(faces, key=lambda f: f["box"][0])


def test_video_gives_a_line_per_frame_equal_to_the_photo_path(clip, tmp_path, capsys):
    """Detecting on every frame, unsmoothed, each frame's faces are exactly those of the frame as a photo;
    the default (detector every 10th frame, One-Euro smoothed) stays within 3 % of the face size of them."""
    raw_out, default_out = tmp_path / "raw", tmp_path / "default"
    assert main(["reconstruct", str(clip), "-o", str(raw_out), "--detect-every", "1", "--no-smooth"]) == 0
    assert main(["reconstruct", str(clip), "-o", str(default_out)]) == 0
    err = capsys.readouterr().err
    assert f"{clip}: {FRAMES} frames, faces in {FRAMES} -> {default_out / 'clip'}.jsonl" in err
    raw, smooth = _lines(raw_out / "clip.jsonl"), _lines(default_out / "clip.jsonl")
    assert [r["frame"] for r in raw] == list(range(FRAMES)) and [r["frame"] for r in smooth] == list(range(FRAMES))
    assert [r["t"] for r in smooth] == pytest.approx([i / 30.0 for i in range(FRAMES)], abs=1e-4)
    with FaceReconstructor() as rec:
        photos = [[f.to_json() for f in rec(frame)] for frame in _decoded_frames(clip)]
    assert len(photos) == FRAMES
    for r, s, p in zip(raw, smooth, photos):
        assert len(r["faces"]) == len(s["faces"]) == len(p) == 2
        for fr, fs, fp in zip(_by_x(r["faces"]), _by_x(s["faces"]), _by_x(p)):
            assert fr["landmarks_3d"] == fp["landmarks_3d"] and fr["params"] == fp["params"]
            truth = np.array(fp["landmarks_2d"])
            assert np.linalg.norm(np.array(fs["landmarks_2d"]) - truth, axis=-1).mean() < 0.03 * face_size(truth)
            assert set(fs["pose"]) == {"yaw", "pitch", "roll"}
    overlay = _decoded_frames(default_out / "clip_overlay.mp4")
    assert len(overlay) == FRAMES and overlay[0].shape == _decoded_frames(clip)[0].shape
    assert sorted(p.name for p in default_out.iterdir()) == ["clip.jsonl", "clip_overlay.mp4"]  # no temp files


def test_broken_videos_are_one_line_each_and_the_batch_goes_on(clip, tmp_path, capsys):
    (tmp_path / "text.mp4").write_text("not a video")
    (tmp_path / "empty.mov").write_bytes(b"")
    (tmp_path / "half.mp4").write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])  # moov atom lost
    photo = tmp_path / "clip.jpg"  # shares the clip's name: each keeps its own outputs
    photo.write_bytes(SAMPLE_IMAGE.read_bytes())
    out = tmp_path / "out"
    inputs = [tmp_path / "text.mp4", tmp_path / "empty.mov", tmp_path / "half.mp4", clip, photo]
    assert main(["reconstruct", *map(str, inputs), "-o", str(out), "--no-overlay"]) == 0
    err = capsys.readouterr().err.splitlines()
    skipped = [line for line in err if line.startswith("tfface: skipped:")]
    assert skipped == [f"tfface: skipped: {tmp_path / n}: cannot open as a video (corrupt, or a codec this "
                        "OpenCV lacks)" for n in ("text.mp4", "empty.mov", "half.mp4")]
    assert err[-1] == f"tfface: wrote 2 results to {out}/ (3 failed)"
    assert sorted(p.name for p in out.iterdir()) == ["clip_jpg.json", "clip_mp4.jsonl"]
    assert len(_lines(out / "clip_mp4.jsonl")) == FRAMES

    # frames over the pixel budget are refused before decoding (a bad --detect-every: tests/test_cli_args.py)
    assert main(["reconstruct", str(clip), "-o", str(tmp_path / "small"), "--max-megapixels", "0.1"]) == 1
    err = capsys.readouterr().err
    height, width = _decoded_frames(clip)[0].shape[:2]
    assert f"{clip}: {width}x{height} frames are over the pixel budget of 0.1 Mpx" in err
    assert not list((tmp_path / "small").iterdir())  # nothing half-written left behind
