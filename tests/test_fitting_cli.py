"""`tfface fit`: labels photos into the data layer's TFRecords; bad fits are flagged, not kept."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import tensorflow as tf
from conftest import SAMPLE_IMAGE
from hostile import png_bomb

from tfface.cli.main import main
from tfface.errors import DataFileError


@pytest.fixture
def identity_root(tmp_path):
    """Two 'people' from the sample photo (its two halves), plus a corrupt file."""
    import cv2

    image = cv2.imread(str(SAMPLE_IMAGE))
    h, w = image.shape[:2]
    root = tmp_path / "people"
    for person, half in (("left", image[:, : w // 2]), ("right", image[:, w // 2:])):
        (root / person).mkdir(parents=True)
        cv2.imwrite(str(root / person / "a.jpg"), half)
        cv2.imwrite(str(root / person / "b.jpg"), cv2.resize(half, None, fx=0.8, fy=0.8))
    (root / "left" / "broken.jpg").write_bytes(b"not a jpeg")
    return root


@pytest.mark.slow
def test_fit_identity_folders_into_records(identity_root, tmp_path):
    out = tmp_path / "out"
    assert main(["fit", str(identity_root), "--layout", "identity", "--per-identity", "-o", str(out)]) == 0
    summary = json.loads((out / "fit_summary.json").read_text())
    assert summary["kept"] == 4 and summary["failed"] == 1 and summary["flagged"] == 0
    assert "broken.jpg" in summary["failed_images"][0]["image"]
    assert summary["fit_nme_percent"]["max"] < 2.0  # the network's points are BFM vertices: tight fits
    labels = [json.loads(line) for line in (out / "labels.jsonl").read_text().splitlines()]
    by_person = {}
    for lab in labels:
        by_person.setdefault(lab["person"], []).append(np.array(lab["params"][12:52]))
    for ids in by_person.values():  # one shared identity per person
        assert np.allclose(ids[0], ids[1], rtol=1e-4)
    from tfface.data.records import parse_example

    examples = [parse_example(r) for r in tf.data.TFRecordDataset(sorted(map(str, out.glob("fitted-*.tfrecord"))))]
    assert len(examples) == 4
    assert all(float(e["has_params"]) == 1.0 and float(e["has_landmarks"]) == 1.0 for e in examples)
    assert sorted(int(e["identity"]) for e in examples) == [0, 0, 1, 1]
    # A rerun with other arguments would mix two runs' shards: refused, before any fitting.
    assert main(["fit", str(identity_root), "--layout", "identity", "-o", str(out)]) == 2
    assert json.loads((out / "fitted.run.json").read_text())["run"]["per_identity"] is True


@pytest.mark.slow
def test_fits_above_the_residual_bound_are_flagged(identity_root, tmp_path):
    out = tmp_path / "out"
    shutil.rmtree(identity_root / "right")
    assert main(["fit", str(identity_root), "--layout", "identity", "--max-nme", "0.001", "-o", str(out)]) == 1
    summary = json.loads((out / "fit_summary.json").read_text())
    assert summary["kept"] == 0 and summary["flagged"] == 2 and len(summary["flagged_faces"]) == 2
    assert all(f["nme_percent"] > 0.001 for f in summary["flagged_faces"])


def test_fit_refuses_bad_arguments(tmp_path, capsys):
    assert main(["fit", str(tmp_path), "-o", str(tmp_path / "o")]) == 2
    assert "no images found" in capsys.readouterr().err
    assert main(["fit", str(SAMPLE_IMAGE), "--layout", "celeba", "-o", str(tmp_path / "o")]) == 2
    assert "--identities" in capsys.readouterr().err


@pytest.mark.parametrize("option, value, wanted", [
    ("--max-nme", "nan", "a finite number > 0"), ("--max-nme", "inf", "a finite number > 0"),
    ("--max-nme", "0", "a finite number > 0"), ("--max-nme", "-1", "a finite number > 0"),
    ("--shard-size", "-1", "an integer >= 1"), ("--shard-size", "0", "an integer >= 1"),
    ("--limit", "-1", "an integer >= 0"),
])
def test_out_of_range_options_are_usage_errors_before_any_fitting(option, value, wanted, tmp_path, capsys):
    out = tmp_path / "o"
    with pytest.raises(SystemExit) as exit_:
        main(["fit", str(SAMPLE_IMAGE), "-o", str(out), option, value])
    assert exit_.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == f"tfface fit: error: argument {option}: must be {wanted}, got '{value}'"
    assert not out.exists()


def test_label_photos_refuses_bad_bounds_before_fitting(tmp_path):
    from tfface.fitting.labelling import label_photos

    with pytest.raises(DataFileError, match="--max-nme must be a finite number > 0. Received: nan"):
        label_photos([(SAMPLE_IMAGE, None)], tmp_path / "o", max_nme=float("nan"))
    with pytest.raises(DataFileError, match="--shard-size must be >= 1. Received: -1"):
        label_photos([(SAMPLE_IMAGE, None)], tmp_path / "o", shard_size=-1)
    assert not (tmp_path / "o").exists()


def test_each_failed_photo_is_one_stderr_line_and_the_good_one_is_kept(tmp_path, capsys, monkeypatch):
    import cv2

    monkeypatch.delenv("TFFACE_MAX_PIXELS", raising=False)
    src = tmp_path / "fitin"
    src.mkdir()
    (src / "empty.jpg").write_bytes(b"")  # zero bytes
    cv2.imwrite(str(src / "grey.jpg"), np.full((200, 200, 3), 128, np.uint8))  # no face
    png_bomb(src / "bomb.png", 30000, 30000)  # 900 Mpx claimed: refused before decoding
    shutil.copy(SAMPLE_IMAGE, src / "photo.jpg")
    out = tmp_path / "fit1"
    assert main(["fit", str(src), "-o", str(out)]) == 0
    lines = re.findall(r"tfface[^\r\n]*", capsys.readouterr().err)  # between the progress bars
    assert lines[0].startswith(f"tfface: skipped: {src / 'bomb.png'}: 900 Mpx image is over the pixel budget")
    assert lines[1:3] == [f"tfface: skipped: {src / 'empty.jpg'}: cannot decode image (corrupt or not a .jpg file)",
                          f"tfface: skipped: {src / 'grey.jpg'}: no face found"]
    assert re.fullmatch(r"tfface fit: 1 kept, 0 flagged \(NME > 5%\), 3 failed; fit NME median [0-9.]+%, "
                        rf"p95 [0-9.]+% -> {re.escape(str(out))}", lines[3]) and len(lines) == 4
    summary = json.loads((out / "fit_summary.json").read_text())  # the reasons stay in the summary
    assert summary["kept"] == 1 and summary["written_records"] == 1
    failed = [str(src / n) for n in ("bomb.png", "empty.jpg", "grey.jpg")]
    assert [f["image"] for f in summary["failed_images"]] == failed
    assert summary["failed_images"][2]["reason"] == "no face found"
    (src / "photo.jpg").unlink()  # nothing left to keep: exit 1, and no NaN statistics in the summary line
    assert main(["fit", str(src), "-o", str(tmp_path / "fit2")]) == 1
    lines = re.findall(r"tfface[^\r\n]*", capsys.readouterr().err)
    assert len(lines) == 4
    assert lines[3] == f"tfface fit: 0 kept, 0 flagged (NME > 5%), 3 failed; no fits -> {tmp_path / 'fit2'}"
