"""`auto` detection: short-range BlazeFace for faces that fill the photo, full-range and tiles for the
small faces short-range misses, nothing on photos without faces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import SAMPLE_IMAGE

from tfface.detection import BlazeFaceDetector, CascadeDetector, Detection, create_detector
from tfface.detection.cascade import _starts, non_max_suppression
from tfface.io.images import read_image


@pytest.fixture(scope="module")
def sample():
    image = read_image(SAMPLE_IMAGE)
    with BlazeFaceDetector("short") as short:
        boxes = np.stack([d.box for d in short.detect(image)])
    return image, boxes


@pytest.fixture(scope="module")
def auto():
    with CascadeDetector() as detector:
        yield detector


def _small_faces(image: np.ndarray, boxes: np.ndarray, scale: float, size=(1200, 1600)):
    """The photo shrunk by `scale` on a plain 1600x1200 canvas (a group photo from further away)."""
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.full((*size, 3), 90, np.uint8)
    y, x = 300, 400
    canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
    return canvas, boxes * scale + [x, y, x, y]


@pytest.mark.parametrize("scale", [0.5, 0.2])  # faces of ~145 px (full-range) and ~58 px (tiles)
def test_auto_finds_small_faces_short_range_misses(sample, auto, scale):
    canvas, truth = _small_faces(*sample, scale)
    assert auto.short.detect(canvas) == []
    found = auto.detect(canvas)
    assert len(found) == 2
    for box in truth:
        side = box[2] - box[0]
        centre_error = min(np.linalg.norm((d.box[:2] + d.box[2:]) / 2 - (box[:2] + box[2:]) / 2) for d in found)
        assert centre_error < 0.2 * side, (scale, centre_error / side)


def test_auto_equals_short_range_when_it_finds_faces(sample, auto):
    image, boxes = sample
    np.testing.assert_array_equal(np.stack([d.box for d in auto.detect(image)]), boxes)


def test_auto_finds_nothing_without_faces(sample, auto):
    image, _ = sample
    background = cv2.resize(np.ascontiguousarray(image[420:]), (1600, 1200))  # suits, lectern, lettering
    assert auto.detect(background) == []
    assert auto.detect(np.full((900, 1200, 3), 127, np.uint8)) == []


def test_reconstructs_small_faces(sample):
    from tfface.inference.reconstructor import FaceReconstructor

    canvas, truth = _small_faces(*sample, 0.5)
    with FaceReconstructor() as rec:
        assert rec.detector_name == "auto"
        faces = rec(canvas)
    assert len(faces) == 2
    for face in faces:
        box = min(truth, key=lambda b: np.linalg.norm(b[:2] - face.box[:2]))
        inside = (face.landmarks[:, 0] > box[0] - 10) & (face.landmarks[:, 0] < box[2] + 10)
        assert inside.all() and -60 < face.pose[0] < 60


def test_tiles_cover_and_duplicates_merge():
    for length, side in ((1600, 600), (4000, 1024), (500, 600)):
        starts = _starts(length, side, 0.25)
        assert starts[0] == 0 and min(starts[-1] + side, length) == length
        assert all(b - a <= 0.75 * side + 1 for a, b in zip(starts, starts[1:], strict=False))
    whole = Detection(np.array([100, 100, 200, 200], np.float32), 0.9, np.zeros((6, 2)))
    cut = Detection(np.array([150, 100, 200, 200], np.float32), 0.95, np.zeros((6, 2)))  # same face, tile edge
    other = Detection(np.array([400, 100, 500, 200], np.float32), 0.7, np.zeros((6, 2)))
    assert [d.score for d in non_max_suppression([whole, cut, other], 0.3)] == [0.95, 0.7]
    # the cut box scored higher, but a whole box of the face wins over one cut by a tile edge
    merged = non_max_suppression([whole, cut, other], 0.3, demoted=[False, True, False])
    assert [d.score for d in merged] == [0.9, 0.7] and merged[0] is whole
    with pytest.raises(ValueError, match="detector model must be one of"):
        create_detector("medium")
