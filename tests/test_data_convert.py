"""`tfface data convert` end to end: real shared samples (skipped when absent) and the 3DDFA-list fixture."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import REPO, shared_path

from tfface.cli.main import main
from tfface.data import mat3d
from tfface.data.pipeline import PipelineConfig, SourceConfig, build_hybrid_dataset
from tfface.data.synthetic import landmarks_from_params
from tfface.morphable.crop import roi_from_landmarks

DDFA = REPO / "tests" / "fixtures" / "data" / "ddfa_list"


def _summary(folder):
    return json.loads((folder / "summary.json").read_text())


def test_convert_aflw2000_then_pipeline_gives_3ddfa_crop_landmarks(tmp_path):
    folder = shared_path("aflw2000_3d")
    out = tmp_path / "aflw"
    assert main(["data", "convert", "aflw2000", str(folder), "-o", str(out), "--limit", "12",
                 "--shard-size", "5", "--no-progress"]) == 0
    s = _summary(out)
    assert s["written"] == 12 and s["per_task"]["landmarks"] == 12 and s["per_split"] == {"test": 12}
    assert s["shards"] == [f"aflw2000-0000{i}.tfrecord" for i in range(3)]
    config = PipelineConfig([SourceConfig([str(out / "*.tfrecord")], 12)])
    _, labels = next(iter(build_hybrid_dataset(config, training=False)))
    truth = []
    for _, mat in mat3d.aflw2000_pairs(folder)[:12]:  # the 3DDFA_V2 crop from the 68 landmarks, at 120 px
        lm = mat3d.read_3d_mat(mat).landmarks[:, :2]
        roi = roi_from_landmarks(lm)
        truth.append((lm - roi[:2]) * 120 / (roi[2] - roi[0]))
    for got in labels["landmarks"].numpy():  # files are interleaved: match each face to its label file
        assert min(np.abs(got - t).max() for t in truth) < 0.05


def test_convert_identity_folders_with_a_corrupt_photo(tmp_path):
    src = tmp_path / "people"
    shutil.copytree(shared_path("identity_photos"), src, ignore=shutil.ignore_patterns("aflw-test.jpg"))
    (src / "obama" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "ids"
    assert main(["data", "convert", "identity_folders", str(src), "-o", str(out), "--no-progress"]) == 0
    s = _summary(out)
    assert s["input_records"] == 19 and s["written"] == 18 and s["num_ids"] == 7
    assert s["rejected_records"] == [{"key": "obama/broken.jpg", "reason": f"{src / 'obama' / 'broken.jpg'}: "
                                      "cannot decode image (corrupt or not a .jpg file)"}]
    assert s["per_task"]["identity"] == 18 and s["identity_classes"]["obama"] == 5


def test_convert_3ddfa_list_fixture_is_resumable(tmp_path, capsys):
    args = ["data", "convert", "3ddfa_list", str(DDFA), "-o", str(tmp_path / "out"), "--list-file",
            str(DDFA / "train.list"), "--param-file", str(DDFA / "param_norm.pkl"), "--whitening",
            str(DDFA / "param_whitening.pkl"), "--shard-size", "2", "--no-progress"]
    assert main(args) == 0
    assert _summary(tmp_path / "out")["per_task"]["params"] == 3
    assert main(args) == 0 and _summary(tmp_path / "out")["resumed_shards"] == 2
    config = PipelineConfig([SourceConfig([str(tmp_path / "out" / "*.tfrecord")], 3)])
    _, labels = next(iter(build_hybrid_dataset(config, training=False)))
    decoded = landmarks_from_params(labels["params"].numpy(), 120)
    expected = np.load(DDFA / "landmarks.npy")
    for got in decoded:  # the un-augmented 120 crop is the original crop again
        assert min(np.abs(got - e).max() for e in expected) < 0.05
    assert "wrote 2 shards" in capsys.readouterr().out


def test_convert_reports_bad_input_as_one_line(tmp_path, capsys):
    assert main(["data", "convert", "aflw2000", str(tmp_path / "nothing"), "-o", str(tmp_path / "o")]) == 2
    assert "not a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["data", "convert", "unknown_format", str(tmp_path), "-o", str(tmp_path / "o")])


def test_convert_with_the_dlib_teacher_labels_every_face_and_resumes_only_the_same_run(tmp_path, capsys):
    pytest.importorskip("dlib", reason="the teacher is an optional extra: pip install -e .[teacher]")
    pytest.importorskip("face_recognition_models")
    from tfface.data.records import parse_example
    from tfface.data.teacher import DlibTeacher
    from tfface.io.images import read_image

    src = tmp_path / "people"
    for name in ("obama", "clapton"):
        shutil.copytree(shared_path("identity_photos") / name, src / name)
    (src / "obama" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "ids"
    args = ["data", "convert", "identity_folders", str(src), "-o", str(out), "--no-progress", "--shard-size", "4"]
    assert main([*args, "--teacher", "dlib"]) == 0
    s = _summary(out)
    photos = sorted(p for p in src.rglob("*.jpg") if p.name != "broken.jpg")
    assert s["written"] == len(photos) == s["per_task"]["teacher"] and s["rejected"] == 1
    import tensorflow as tf

    examples = [parse_example(r) for r in tf.data.TFRecordDataset(sorted(map(str, out.glob("*.tfrecord"))))]
    from tfface.data.detect import FaceLocator

    teacher, locate = DlibTeacher(), FaceLocator("auto")
    by_key = {e["key"].numpy().decode(): e for e in examples}
    embeddings, people = [], []
    for key, e in by_key.items():
        assert float(e["has_teacher"]) == 1.0
        v = e["teacher"].numpy()
        assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-5)
        photo = read_image(src / key)  # the face convert found -> dlib's own alignment
        assert float(v @ teacher(photo, box=locate(photo))) > 0.999
        embeddings.append(v)
        people.append(key.split("/")[0])
    sims = np.array(embeddings) @ np.array(embeddings).T
    same = np.equal.outer(people, people) & ~np.eye(len(people), dtype=bool)
    assert sims[same].mean() > sims[~np.equal.outer(people, people)].mean() + 0.05  # who is who, to the teacher
    locate.close()
    assert main([*args, "--teacher", "dlib"]) == 0 and _summary(out)["resumed_shards"] == 2
    assert main(args) == 2  # shards labelled by a teacher are not resumed by a run without one
    assert "overwrite" in capsys.readouterr().err
