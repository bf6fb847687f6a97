"""`tfface fit`: labels photos into the data layer's TFRecords; bad fits are flagged, not kept."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import tensorflow as tf
from conftest import SAMPLE_IMAGE

from tfface.cli.main import main


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
