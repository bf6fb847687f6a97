"""FaceRecord -> TFRecord shards: labels in the stored crop, rejects with reasons, resumable writing."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import tensorflow as tf

from tfface.data.records import FaceRecord, encode_record, parse_example, read_summary, write_shards
from tfface.data.synthetic import landmarks_from_params, marker_positions, synthetic_records
from tfface.errors import DataFileError, NoFaceError


@pytest.fixture(scope="module")
def records():
    return synthetic_records(5, 120, seed=11)


def _examples(path):
    return [parse_example(x) for x in tf.data.TFRecordDataset([str(path)])]


def test_stored_crop_labels_match_pixels_and_params(records):
    record = replace(records[0], attributes=np.eye(40, dtype=np.int8)[3], identity=7)
    ex = parse_example(encode_record(record, crop_size=160, margin=4 / 3))
    image = tf.io.decode_jpeg(ex["image"]).numpy()
    assert image.shape == (160, 160, 3) and int(ex["crop_size"]) == 160
    landmarks = ex["landmarks"].numpy()
    # The 120 crop is the central 3/4 of the 160 stored crop, at the same resolution: a 20 px shift.
    np.testing.assert_allclose(landmarks, record.landmarks + 20.0, atol=1e-3)
    np.testing.assert_allclose(landmarks_from_params(ex["params"].numpy()[None], 160)[0], landmarks, atol=1e-2)
    for index, xy in marker_positions(image).items():  # the drawn landmarks are where the labels say
        assert np.linalg.norm(xy - landmarks[index]) < 1.0, index
    assert ex["attributes"].numpy()[3] == 1 and ex["attributes"].numpy().sum() == 1 and int(ex["identity"]) == 7
    masks = {k: float(ex[k]) for k in ("has_params", "has_landmarks", "has_attributes", "has_identity", "has_pose")}
    assert masks == {"has_params": 1, "has_landmarks": 1, "has_attributes": 1, "has_identity": 1, "has_pose": 0}


def test_missing_labels_are_zero_with_mask_zero(records):
    record = replace(records[1], params=None, landmarks=None)
    ex = parse_example(encode_record(record))
    assert float(ex["has_params"]) == 0 and float(ex["has_landmarks"]) == 0 and int(ex["identity"]) == -1
    assert not ex["params"].numpy().any() and not ex["landmarks"].numpy().any()


def test_bad_records_are_rejected_with_reasons_and_shards_resume(records, tmp_path):
    nan_landmarks = records[2].landmarks.copy()
    nan_landmarks[5, 0] = np.nan
    bad = [
        replace(records[2], key="nan", landmarks=nan_landmarks),
        FaceRecord(image=tmp_path / "missing.jpg", source="x", box=np.array([0, 0, 10, 10], np.float32)),
        FaceRecord(image=b"\xff\xd8garbage", source="x", key="corrupt", box=np.array([0, 0, 10, 10], np.float32)),
        FaceRecord(image=records[3].image, source="x", key="nobox"),
    ]

    def no_face(image):
        raise NoFaceError("no face")

    summary = write_shards(records + bad, tmp_path / "out", shard_size=4, progress=False, locate=no_face)
    assert summary["written"] == 5 and summary["rejected"] == 4 and len(summary["shards"]) == 3
    reasons = {r["key"]: r["reason"] for r in summary["rejected_records"]}
    assert "landmarks contains NaN" in reasons["nan"] and "file not found" in reasons[str(tmp_path / "missing.jpg")]
    assert "cannot decode" in reasons["corrupt"] and reasons["nobox"] == "no face"
    assert summary["per_task"]["params"] == 5 and summary["per_split"] == {"train": 5}
    assert read_summary(tmp_path / "out")["written"] == 5
    assert sum(len(_examples(tmp_path / "out" / s)) for s in summary["shards"]) == 5

    # Resume: completed shards are kept, a shard whose write was interrupted (no sidecar) is redone.
    (tmp_path / "out" / "data-00001.json").unlink()
    first = (tmp_path / "out" / "data-00000.tfrecord").stat().st_mtime_ns
    again = write_shards(records + bad, tmp_path / "out", shard_size=4, progress=False, locate=no_face)
    assert again["resumed_shards"] == 2 and again["written"] == 5 and again["rejected"] == 4
    assert (tmp_path / "out" / "data-00000.tfrecord").stat().st_mtime_ns == first
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["resumed_shards"] == 2


def test_params_without_roi_and_bad_shapes_are_errors(records):
    with pytest.raises(DataFileError, match="params need the roi"):
        encode_record(replace(records[0], roi=None))
    with pytest.raises(DataFileError, match=r"attributes must have shape \(40,\)"):
        encode_record(replace(records[0], attributes=np.zeros(39, np.int8)))
    with pytest.raises(DataFileError, match="attributes must be 0/1"):
        encode_record(replace(records[0], attributes=-np.ones(40, np.int8)))
