"""`tfface reconstruct` on the bundled sample photo: files, JSON contract, values and errors."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from conftest import SAMPLE_IMAGE
from tfface.cli.main import main
from tfface.io.images import read_image


def _run(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(["reconstruct", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_sample_photo_two_faces(tmp_path, capsys):
    rc, _, err = _run(capsys, str(SAMPLE_IMAGE), "-o", str(tmp_path))
    assert rc == 0, err
    result = json.loads((tmp_path / "trump_hillary.json").read_text())
    assert result["image"] == str(SAMPLE_IMAGE)
    faces = result["faces"]
    assert len(faces) == 2
    for face in faces:
        lm2, lm3 = np.array(face["landmarks_2d"]), np.array(face["landmarks_3d"])
        assert lm2.shape == (68, 2) and lm3.shape == (68, 3) and len(face["params"]) == 62
        np.testing.assert_allclose(lm3[:, :2], lm2, atol=0.01)
        x0, y0, x1, y1 = face["box"]
        side = x1 - x0
        # landmarks sit on the detected face: inside the box grown by a quarter of its side
        assert lm2[:, 0].min() > x0 - side / 4 and lm2[:, 0].max() < x1 + side / 4
        assert lm2[:, 1].min() > y0 - side / 4 and lm2[:, 1].max() < y1 + side / 4
        # eyes above the nose tip above the chin; outer eye corners a plausible distance apart
        eye_y = (lm2[36, 1] + lm2[45, 1]) / 2
        assert eye_y < lm2[30, 1] < lm2[8, 1]
        assert 0.25 * side < np.linalg.norm(lm2[45] - lm2[36]) < 0.8 * side
        # both people look towards the image's right: negative yaw by the documented convention
        assert -45 < face["pose"]["yaw"] < -5
        assert abs(face["pose"]["pitch"]) < 25 and abs(face["pose"]["roll"]) < 25
    overlay = cv2.imread(str(tmp_path / "trump_hillary_overlay.jpg"))
    assert overlay.shape == read_image(SAMPLE_IMAGE).shape
    assert np.abs(overlay[..., ::-1].astype(int) - read_image(SAMPLE_IMAGE)).sum() > 0


def test_json_to_stdout_matches_library(capsys, reconstructor):
    rc, out, _ = _run(capsys, str(SAMPLE_IMAGE), "--json")
    assert rc == 0
    printed = json.loads(out.strip().splitlines()[0])
    faces = reconstructor(read_image(SAMPLE_IMAGE))
    np.testing.assert_allclose(np.array(printed["faces"][0]["landmarks_2d"]), faces[0].landmarks[:, :2], atol=0.01)


def test_bad_inputs_are_reported_and_the_run_goes_on(tmp_path, capsys):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff not really a jpeg")
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((240, 320, 3), 127, np.uint8))
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    missing = tmp_path / "missing.jpg"
    rc, _, err = _run(capsys, str(corrupt), str(blank), str(text), str(missing), str(SAMPLE_IMAGE),
                      "-o", str(tmp_path / "out"))
    assert rc == 0  # one input worked
    assert f"{corrupt}: cannot decode image" in err
    assert f"{blank}: no face found" in err
    assert f"{text}: unsupported format '.txt'" in err
    assert f"{missing}: file not found" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["trump_hillary.json", "trump_hillary_overlay.jpg"]


def test_every_input_failing_gives_non_zero_exit(tmp_path, capsys):
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.zeros((64, 64, 3), np.uint8))
    rc, _, err = _run(capsys, str(blank), "--json")
    assert rc == 1 and "no face found" in err


def test_folder_input_and_unknown_preset(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(SAMPLE_IMAGE.read_bytes())
    rc, out, _ = _run(capsys, str(folder), "--json")
    assert rc == 0 and len(out.strip().splitlines()) == 1
    rc, _, err = _run(capsys, str(folder), "--json", "--preset", "no_such_preset")
    assert rc == 2 and "unknown preset 'no_such_preset'" in err


def test_version_and_module_entry_point(capsys):
    import subprocess
    import sys

    import tfface

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"tfface {tfface.__version__}"
    proc = subprocess.run([sys.executable, "-m", "tfface", "--version"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == f"tfface {tfface.__version__}"
