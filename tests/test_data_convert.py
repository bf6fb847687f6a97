"""`tfface data convert` end to end: real shared samples (skipped when absent) and the 3DDFA-list fixture."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import scipy.io as sio
from conftest import REPO, SAMPLE_IMAGE, shared_path

from tfface.cli.main import main
from tfface.data import mat3d
from tfface.data.convert import convert_dataset
from tfface.errors import TffaceError
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


def _aflw_like(folder, n):
    """n AFLW2000-3D-style pairs: the sample photo with a 68-point ring as pt3d_68 (convert crops from it)."""
    folder.mkdir()
    t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    label = {"pt3d_68": np.stack([400 + 80 * np.cos(t), 250 + 100 * np.sin(t), np.zeros(68)]),
             "Pose_Para": np.zeros((1, 7)), "Shape_Para": np.zeros((199, 1)), "Exp_Para": np.zeros((29, 1))}
    for i in range(1, n + 1):
        shutil.copy(SAMPLE_IMAGE, folder / f"image{i:05d}.jpg")
        sio.savemat(folder / f"image{i:05d}.mat", label)
    return folder, label


@pytest.mark.parametrize("option, value, wanted", [
    ("--margin", "nan", "a finite number >= 1 and <= 4"), ("--margin", "-1", "a finite number >= 1 and <= 4"),
    ("--margin", "0.5", "a finite number >= 1 and <= 4"), ("--margin", "inf", "a finite number >= 1 and <= 4"),
    ("--crop-size", "0", "an integer >= 32 and <= 4096"), ("--crop-size", "8", "an integer >= 32 and <= 4096"),
    ("--limit", "-1", "an integer >= 1"), ("--limit", "0", "an integer >= 1"),
    ("--shard-size", "0", "an integer >= 1"), ("--shard-size", "-1", "an integer >= 1"),
])
def test_out_of_range_options_are_usage_errors_before_any_work(option, value, wanted, tmp_path, capsys):
    out = tmp_path / "o"  # the input does not exist either: refused before it is looked at
    with pytest.raises(SystemExit) as exit_:
        main(["data", "convert", "aflw2000", str(tmp_path / "nothing"), "-o", str(out), option, value])
    assert exit_.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == f"tfface data convert: error: argument {option}: must be {wanted}, got '{value}'"
    assert not out.exists()


def test_convert_dataset_refuses_out_of_range_arguments(tmp_path):
    src, _ = _aflw_like(tmp_path / "aflw", 1)
    for kwargs, text in (({"margin": float("nan")}, "margin must be a number in [1, 4]"),
                         ({"crop_size": 0}, "crop_size must be an integer in [32, 4096]"),
                         ({"limit": -1}, "limit must be an integer >= 1"), ({"limit": 0}, "limit must be"),
                         ({"shard_size": 0}, "shard_size must be an integer >= 1")):
        with pytest.raises(TffaceError, match=re.escape(text)):
            convert_dataset("aflw2000", src, tmp_path / "o", progress=False, **kwargs)
    assert not (tmp_path / "o").exists()


def test_each_skipped_input_is_one_stderr_line_and_the_good_ones_are_written(tmp_path, capsys):
    src, label = _aflw_like(tmp_path / "aflw", 5)
    sio.savemat(src / "image00002.mat", {**label, "pt3d_68": np.full((3, 68), np.nan)})
    (src / "image00003.jpg").write_bytes(b"")
    sio.savemat(src / "image00004.mat", {**label, "Pose_Para": "abc"})
    out = tmp_path / "o"
    assert main(["data", "convert", "aflw2000", str(src), "-o", str(out), "--no-progress", "--shard-size", "2"]) == 0
    captured = capsys.readouterr()
    assert [line for line in captured.err.splitlines() if line.startswith("tfface")] == [
        f"tfface: skipped: {src / 'image00002.mat'}: pt3d_68 contains NaN or infinite values",
        f"tfface: skipped: {src / 'image00004.mat'}: Pose_Para is not a numeric array (found text)",
        f"tfface: skipped: {src / 'image00003.jpg'}: cannot decode image (corrupt or not a .jpg file)",
    ]
    s = _summary(out)
    assert s["written"] == 2 and s["rejected"] == 1 and s["reader_problems"] == 2 and s["input_records"] == 3
    assert [r["key"] for r in s["rejected_records"]] == ["image00003.jpg"]
    assert len(s["reader_problem_lines"]) == 2  # the summary keeps them too
    assert "wrote 2 shards" in captured.out
    assert main(["data", "convert", "aflw2000", str(src), "-o", str(tmp_path / "o2"), "--no-progress",
                 "--limit", "1", "--margin", "1", "--crop-size", "32"]) == 0
    s = _summary(tmp_path / "o2")
    assert s["written"] == 1 and s["input_records"] == 1 and s["margin"] == 1 and s["crop_size"] == 32
