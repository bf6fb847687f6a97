"""`evaluate_aflw2000` and `tfface evaluate aflw2000`: a synthetic AFLW2000-3D folder built from the
sample photo (labels = the default pipeline's own output, so the detector path must reproduce them),
layout errors, and the end-to-end run on the 300 shared images (slow, skipped without shared data)."""

from __future__ import annotations

import csv
import json
import re
import shutil

import numpy as np
import pytest
import scipy.io as sio

from conftest import SAMPLE_IMAGE, shared_path
from tfface.cli.main import main
from tfface.errors import DataFileError
from tfface.evaluation.aflw2000 import NothingEvaluated, evaluate_aflw2000
from tfface.evaluation.aflw2000_report import write_aflw2000_report
from tfface.io.images import read_image


@pytest.fixture(scope="module")
def runner():
    from tfface.runtimes import load_runner

    return load_runner()


def _write_label(path, landmarks, pose_deg, pt3d=True):
    yaw, pitch, roll = np.radians(pose_deg)
    fields = {"Pose_Para": np.array([[pitch, yaw, roll, 0, 0, 0, 1]]), "Shape_Para": np.zeros((199, 1)),
              "Exp_Para": np.zeros((29, 1)), "roi": np.zeros((1, 4))}
    fields["pt3d_68" if pt3d else "pt2d"] = np.asarray(landmarks, np.float64).T
    sio.savemat(path, fields)


@pytest.fixture(scope="module")
def synthetic_aflw(tmp_path_factory, reconstructor):
    """Two images (one per face of the sample photo), labelled with the default pipeline's output."""
    root = tmp_path_factory.mktemp("aflw")
    faces = reconstructor(read_image(SAMPLE_IMAGE))
    assert len(faces) == 2
    for i, face in enumerate(faces, 1):
        shutil.copy(SAMPLE_IMAGE, root / f"image{i:05d}.jpg")
        _write_label(root / f"image{i:05d}.mat", face.landmarks, face.pose)
    return root, faces


def test_detector_crops_reproduce_the_pipeline_and_pick_the_right_face(runner, synthetic_aflw):
    root, faces = synthetic_aflw
    result = evaluate_aflw2000(runner, root, crop="detector", progress=False)
    rows = result["rows"]
    assert [r["found"] for r in rows] == [True, True]
    # Same detector, box rule and refine as FaceReconstructor: the labels come back (two faces in one
    # photo, so picking the wrong detection would cost >100 % NME).
    assert max(r["nme_2d"] for r in rows) < 0.05 and max(r["nme_3d"] for r in rows) < 0.05
    assert max(r["yaw_abs_err"] for r in rows) < 0.1
    assert result["metrics"]["missed"]["total"] == 0


def test_ground_truth_crops_give_a_small_known_error(runner, synthetic_aflw):
    root, faces = synthetic_aflw
    result = evaluate_aflw2000(runner, root, crop="gt", progress=False)
    m, rows = result["metrics"], result["rows"]
    # A crop from the labels differs slightly from the pipeline's crop: small, but not zero.
    nme = np.array([r["nme_2d"] for r in rows])
    assert np.all(nme > 0.01) and np.all(nme < 2.0)
    assert m["images"] == 2 and sum(m["images_per_bin"].values()) == 2
    assert m["nme_2d"]["all_images"] == pytest.approx(nme.mean())
    assert m["pose_mae"]["yaw"] < 3.0
    expected_bins = {"[0,30]" if abs(f.pose[0]) <= 30 else "(30,60]" for f in faces}
    assert {r["yaw_bin"] for r in rows} == expected_bins


def test_report_files(runner, synthetic_aflw, tmp_path):
    root, _ = synthetic_aflw
    result = evaluate_aflw2000(runner, root, progress=False)
    out = write_aflw2000_report(result, tmp_path / "out", "tfface_mb05_3ddfa")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["crop"] == "gt" and metrics["model"] == "tfface_mb05_3ddfa"
    with open(out / "per_image.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["image"] for r in rows] == ["image00001.jpg", "image00002.jpg"]
    assert float(rows[0]["nme_2d"]) == pytest.approx(result["rows"][0]["nme_2d"], rel=1e-5)
    report = (out / "report.md").read_text()
    assert "| 3DDFA (Zhu et al. 2016), published | all 2,000, GT crops | 3.78 | 4.54 | 7.93 | 5.42 | 2.21 |" in report
    assert "3.757" in report and "3.59" in report and "Caveat" in report
    ced = read_image(out / "ced.png")
    assert ced.shape[0] > 200 and ced.std() > 10  # a drawn figure, not a blank image


def test_wrong_layouts_name_what_is_missing(runner, tmp_path):
    with pytest.raises(DataFileError, match="no AFLW2000-3D images"):
        evaluate_aflw2000(runner, tmp_path, progress=False)
    shutil.copy(SAMPLE_IMAGE, tmp_path / "image00007.jpg")
    with pytest.raises(DataFileError, match="image00007.mat"):
        evaluate_aflw2000(runner, tmp_path, progress=False)
    _write_label(tmp_path / "image00007.mat", np.random.default_rng(0).uniform(0, 99, (68, 2)), (0, 0, 0), pt3d=False)
    with pytest.raises(NothingEvaluated) as error:  # a bad label skips its image; with none left, an error
        evaluate_aflw2000(runner, tmp_path, progress=False)
    assert str(error.value).startswith(f"{tmp_path}: none of the 1 images could be evaluated (e.g. "
                                       f"{tmp_path / 'image00007.mat'}: no pt3d_68")
    assert error.value.skipped[0]["image"] == "image00007.jpg"
    with pytest.raises(ValueError, match="crop must be one of"):
        evaluate_aflw2000(runner, tmp_path, crop="box", progress=False)
    with pytest.raises(ValueError, match="limit must be >= 1"):
        evaluate_aflw2000(runner, tmp_path, limit=0, progress=False)


def test_cli_error_is_one_line(tmp_path, capsys):
    assert main(["evaluate", "aflw2000", "--data", str(tmp_path / "nowhere"), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a folder" in err[0]


@pytest.mark.parametrize("option, value, wanted", [("--limit", "0", "an integer >= 1"),
                                                    ("--limit", "-1", "an integer >= 1"),
                                                    ("--refine", "-1", "an integer >= 0 and <= 10")])
def test_out_of_range_options_are_usage_errors(option, value, wanted, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", "aflw2000", "--data", str(tmp_path / "nowhere"), "-o", str(tmp_path / "o"), option, value])
    assert exit_.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == f"tfface evaluate aflw2000: error: argument {option}: must be {wanted}, got '{value}'"


def _bad_copies(folder, good_mat):
    """Label/photo corruptions of a good pair, as image00011... in `folder`; the expected skip reasons."""
    label = {k: v for k, v in sio.loadmat(good_mat).items() if not k.startswith("__")}
    bad = {"pt3d_68 contains NaN or infinite values": {**label, "pt3d_68": np.full((3, 68), np.nan)},
           "missing keys ['Shape_Para'] (a 300W-LP / AFLW2000-3D label needs ['Pose_Para', 'Shape_Para', "
           "'Exp_Para'] and pt3d_68 or pt2d)": {k: v for k, v in label.items() if k != "Shape_Para"},
           "pt3d_68 has shape (2, 68), expected (3, N)": {**label, "pt3d_68": label["pt3d_68"][:2]},
           "expected 68 landmarks, found 60": {**label, "pt3d_68": label["pt3d_68"][:, :60]},
           "Pose_Para must start with finite pitch, yaw, roll; found [nan nan nan]":
               {**label, "Pose_Para": np.full((1, 7), np.nan)},
           "Pose_Para is not a numeric array (found text)": {**label, "Pose_Para": "abc"}}
    expected = []
    for i, (reason, fields) in enumerate(bad.items(), 11):
        shutil.copy(SAMPLE_IMAGE, folder / f"image{i:05d}.jpg")
        sio.savemat(folder / f"image{i:05d}.mat", fields)
        expected.append(f"{folder / f'image{i:05d}.mat'}: {reason}")
    shutil.copy(good_mat, folder / "image00017.mat")  # a good label, an unreadable photo
    (folder / "image00017.jpg").write_bytes(b"")
    expected.append(f"{folder / 'image00017.jpg'}: cannot decode image (corrupt or not a .jpg file)")
    (folder / "image00018.mat").write_bytes(b"MATLAB 5.0 truncated")  # not a .mat file at all
    shutil.copy(SAMPLE_IMAGE, folder / "image00018.jpg")
    return expected + [f"{folder / 'image00018.mat'}: not a readable .mat file"]


def test_bad_labels_and_photos_are_skipped_one_line_each_and_reported(runner, synthetic_aflw, tmp_path, capsys):
    root, _ = synthetic_aflw
    data = tmp_path / "data"
    shutil.copytree(root, data)
    expected = _bad_copies(data, root / "image00001.mat")
    out = tmp_path / "out"
    assert main(["evaluate", "aflw2000", "--data", str(data), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    lines = re.findall(r"tfface[^\r\n]*", captured.err)  # between the progress bar's redraws
    assert lines[:-1] == [f"tfface: skipped: {e}" for e in expected[:-1]]
    assert lines[-1].startswith(f"tfface: skipped: {expected[-1]} (")  # scipy's own words follow
    assert "| **tfface_mb05_3ddfa** | 2 images, gt crops |" in captured.out
    assert "skipped 8 bad images (see metrics.json)" in captured.out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["images"] == 2 and metrics["skipped"]["total"] == 8
    assert [s["image"] for s in metrics["skipped"]["images"]] == [f"image{i:05d}.jpg" for i in range(11, 19)]
    assert [s["reason"] for s in metrics["skipped"]["images"]][:-1] == expected[:-1]
    assert metrics["skipped"]["by_reason"]["pt3d_68 contains NaN or infinite values"] == 1
    clean = evaluate_aflw2000(runner, root, progress=False)  # the good images' figures are unchanged
    assert metrics["nme_2d"]["all_images"] == pytest.approx(clean["metrics"]["nme_2d"]["all_images"])
    with open(out / "per_image.csv") as f:
        assert [r["image"] for r in csv.DictReader(f)] == ["image00001.jpg", "image00002.jpg"]
    assert "Skipped images: 8 (bad label or unreadable photo" in (out / "report.md").read_text()


def test_every_image_bad_exits_1_without_a_report(synthetic_aflw, tmp_path, capsys):
    root, _ = synthetic_aflw
    data = tmp_path / "data"
    data.mkdir()
    expected = _bad_copies(data, root / "image00001.mat")[:2]
    for extra in data.glob("image0001[3-8].*"):
        extra.unlink()
    out = tmp_path / "out"
    assert main(["evaluate", "aflw2000", "--data", str(data), "-o", str(out)]) == 1
    lines = re.findall(r"tfface[^\r\n]*", capsys.readouterr().err)
    assert lines == [*(f"tfface: skipped: {e}" for e in expected),
                     f"tfface: error: none of the 2 images in {data} could be evaluated (each skipped above); "
                     "no report written"]
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("crop", ["gt", "detector"])
def test_cli_on_the_300_shared_images(crop, tmp_path, capsys):
    data = shared_path("aflw2000_3d")
    out = tmp_path / crop
    assert main(["evaluate", "aflw2000", "--data", str(data), "--crop", crop, "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"| 300 images, {crop} crops |" in printed
    m = json.loads((out / "metrics.json").read_text())
    nme = m["nme_2d"]
    assert m["images_per_bin"] == {"[0,30]": 100, "(30,60]": 100, "(60,90]": 100}
    assert nme["[0,30]"] < nme["(30,60]"] < nme["(60,90]"]  # harder with yaw; a broken decode loses this
    assert nme["mean"] < 4.5 and m["nme_3d"]["mean"] < 7.0
    assert m["pose_median_abs_err"]["yaw"] < 4.0
    assert m["missed"]["total"] == 0 if crop == "gt" else m["missed"]["total"] <= 6
    with open(out / "per_image.csv") as f:
        assert sum(1 for _ in csv.DictReader(f)) == 300
