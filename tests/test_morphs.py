"""Teacher-labelled face morphs (tfface.data.morphs): blends, pairs, the stored frame, the teacher's view."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tfface.data.morphs import blend, morph_pairs
from tfface.data.records import FaceRecord, encode_record, parse_example, stored_roi
from tfface.io.images import read_image
from conftest import shared_path



def test_blend_is_the_weighted_mean_rounded():
    a = np.full((2, 2, 3), 200, np.uint8)
    b = np.full((2, 2, 3), 11, np.uint8)
    assert blend(a, b, 0.25)[0, 0, 0] == round(0.25 * 200 + 0.75 * 11)  # 58.25 -> 58
    assert (blend(a, b, 1.0) == a).all() and (blend(a, b, 0.0) == b).all()
    with pytest.raises(ValueError, match="one shape"):
        blend(a, b[:1], 0.5)


def test_morph_pairs_are_two_distinct_candidates_with_middle_weights():
    candidates = np.array([3, 8, 9, 40])
    pairs, weights = morph_pairs(candidates, 500, seed=1)
    assert pairs.shape == (500, 2) and weights.shape == (500,)
    assert np.isin(pairs, candidates).all() and (pairs[:, 0] != pairs[:, 1]).all()
    assert weights.min() >= 0.2 and weights.max() <= 0.8
    assert len({tuple(p) for p in pairs}) == 12  # every ordered pair of 4 faces occurs
    again, _ = morph_pairs(candidates, 500, seed=1)
    assert (again == pairs).all()
    with pytest.raises(ValueError, match="two faces"):
        morph_pairs(candidates[:1], 3)


def test_a_stored_crop_with_stored_roi_is_written_back_unchanged():
    """A morph is already in a record's stored frame: encode_record must cut that very square again."""
    rng = np.random.default_rng(0)
    crop = cv2.GaussianBlur(rng.integers(0, 255, (160, 160, 3), np.uint8), (0, 0), 4.0)
    crop = cv2.normalize(crop, None, 0, 255, cv2.NORM_MINMAX)  # a smooth texture with full contrast
    png = cv2.imencode(".png", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))[1].tobytes()
    example = parse_example(encode_record(FaceRecord(image=png, source="morph", roi=stored_roi(),
                                                     teacher=np.eye(128, dtype=np.float32)[0])))
    stored = cv2.imdecode(np.frombuffer(example["image"].numpy(), np.uint8), cv2.IMREAD_COLOR)[..., ::-1].astype(int)
    assert stored.shape == crop.shape
    same = np.abs(stored - crop).mean()
    shifted = min(np.abs(stored[:, 1:] - crop[:, :-1]).mean(), np.abs(stored[1:] - crop[:-1]).mean())
    assert same < 3.0 and same < 0.5 * shifted  # JPEG noise only: no shift, no zoom
    assert float(example["has_teacher"]) == 1.0 and float(example["has_params"]) == 0.0


def test_the_teachers_view_of_a_morph_lies_between_the_two_people():
    pytest.importorskip("dlib", reason="the teacher is an optional extra: pip install -e .[teacher]")
    pytest.importorskip("face_recognition_models")
    import dlib

    from tfface.data.teacher import DlibTeacher

    root = shared_path("identity_photos")
    first = [read_image(sorted((root / name).glob("*.jpg"))[0]) for name in ("obama", "clapton")]
    detector = dlib.get_frontal_face_detector()
    teacher = DlibTeacher()
    chips, whole = [], []
    for image in first:
        d = detector(image, 1)[0]
        box = np.array([d.left(), d.top(), d.right(), d.bottom()], np.float32)
        chips.append(teacher.chip(image, box=box))
        whole.append(teacher(image, box=box))
    assert chips[0].shape == (150, 150, 3) and chips[0].dtype == np.uint8
    a, b = teacher.embed_chips(chips)
    np.testing.assert_allclose(a, whole[0], atol=1e-6)  # the chip path is the labelling path
    middle = teacher.embed_chips([blend(chips[0], chips[1], 0.5)])[0]
    assert np.linalg.norm(middle) == pytest.approx(1.0, abs=1e-5)
    assert min(middle @ a, middle @ b) > a @ b + 0.02  # closer to each of the two than they are to each other
