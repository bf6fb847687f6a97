"""Hostile inputs to `tfface reconstruct`: decompression bombs, colliding names, NaN model outputs and
unusable output folders each give one line, and the batch goes on. A stub reconstructor stands in for the
model where the behaviour under test does not need it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from hostile import png_bomb
from tfface.cli.main import main
from tfface.errors import DataFileError
from tfface.inference.reconstructor import Face
from tfface.io.images import read_image
from tfface.io.outputs import finite_json, list_inputs, output_stems, write_json_atomic


class StubReconstructor:
    """One face per image; params all zero (a degenerate output: NaN pose) when the image is black, and a
    RuntimeError for images 3 pixels wide, to stand for any failure inside the model or detector."""

    def __init__(self, *args: object) -> None:
        self.detector = object()

    def __call__(self, image: np.ndarray) -> list[Face]:
        if image.shape[1] == 3:
            raise RuntimeError("runner exploded\nsecond line of a long native message")
        landmarks = np.stack([np.linspace(2, 10, 68), np.linspace(2, 12, 68), np.zeros(68)], 1)
        pose = np.array([10.0, -5.0, 2.0])
        if image.max() == 0:
            landmarks, pose = np.full((68, 3), np.nan), np.array([np.nan, np.nan, np.inf])
        return [Face(box=np.array([1.0, 1.0, 12.0, 14.0]), score=0.9, roi_box=np.array([0.0, 0.0, 14.0, 14.0]),
                     params=np.zeros(62) if image.max() == 0 else np.ones(62), landmarks=landmarks, pose=pose)]

    def close(self) -> None:
        pass


@pytest.fixture
def stub(monkeypatch):
    monkeypatch.setattr("tfface.inference.reconstructor.FaceReconstructor", StubReconstructor)


def _photo(path: Path, value: int = 128, width: int = 16) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((16, width, 3), value, np.uint8))
    return path


def _run(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(["reconstruct", *map(str, args)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_undecodable_kinds_and_folders_are_named(tmp_path):
    from PIL import Image

    tif = tmp_path / "float.tif"  # a 32-bit float TIFF: PIL reads its header, OpenCV cannot decode it
    Image.fromarray(np.linspace(0, 1, 400, dtype=np.float32).reshape(20, 20), mode="F").save(tif)
    with pytest.raises(DataFileError, match=r"float.tif: cannot decode image \(a TIFF, mode F image, which OpenCV cannot read\)$"):
        read_image(tif)
    folder = tmp_path / "looks.jpg"
    folder.mkdir()
    with pytest.raises(DataFileError, match=r"looks.jpg: a folder, not an image file$"):
        read_image(folder)


def test_bomb_headers_are_refused_before_decoding(tmp_path):
    tiny = png_bomb(tmp_path / "tiny.png", 50000, 50000)
    assert tiny.stat().st_size < 100
    with pytest.raises(DataFileError, match=r"tiny.png: 2500 Mpx image is over the pixel budget of 100 Mpx"):
        read_image(tiny)
    one_bit = png_bomb(tmp_path / "one_bit.png", 30000, 30000, with_pixels=True)  # ~110 KB -> 2.7 GB as RGB
    with pytest.raises(DataFileError, match="900 Mpx image is over the pixel budget"):
        read_image(one_bit)
    mid = png_bomb(tmp_path / "mid.png", 12000, 12000)  # under PIL's own bomb limit: our budget decides
    with pytest.raises(DataFileError, match="12000x12000 image is over the pixel budget of 100 Mpx"):
        read_image(mid)
    small = _photo(tmp_path / "small.png")
    with pytest.raises(DataFileError, match="16x16 image is over the pixel budget of 0.0001 Mpx"):
        read_image(small, budget=100)
    # With the budget lifted, OpenCV's own ceiling refuses the header: still one line, not an exception.
    with pytest.raises(DataFileError, match="tiny.png: cannot decode image"):
        read_image(tiny, budget=10**12)


def test_bomb_is_one_line_and_the_batch_goes_on(tmp_path, capsys, stub, monkeypatch):
    (tmp_path / "in").mkdir()
    bomb = png_bomb(tmp_path / "in" / "0_bomb.png", 50000, 50000)
    big = png_bomb(tmp_path / "in" / "1_big.png", 5000, 5000)
    _photo(tmp_path / "in" / "2_good.jpg")
    rc, _, err = _run(capsys, tmp_path / "in", "-o", tmp_path / "out", "--max-megapixels", "20")
    assert rc == 0, err
    assert f"tfface: skipped: {bomb}: 2500 Mpx image is over the pixel budget of 20 Mpx" in err
    assert f"tfface: skipped: {big}: 5000x5000 image is over the pixel budget of 20 Mpx" in err
    assert "wrote 1 results to" in err and "(2 failed)" in err and "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["2_good.json", "2_good_overlay.jpg"]
    monkeypatch.setenv("TFFACE_MAX_PIXELS", "100")  # the same budget for every command
    rc, _, err = _run(capsys, tmp_path / "in" / "2_good.jpg", "--json")
    assert rc == 1 and "16x16 image is over the pixel budget of 0.0001 Mpx" in err


def test_colliding_names_never_overwrite(tmp_path, capsys, stub):
    a, b, people = tmp_path / "a", tmp_path / "b", tmp_path / "people"
    inputs = [_photo(a / "face.jpg"), _photo(a / "face.png"), _photo(b / "face.jpg"),
              _photo(people / "ann" / "001.jpg"), _photo(people / "bob" / "001.jpg")]
    rc, _, err = _run(capsys, a, b / "face.jpg", people, a / "face.jpg", "-o", tmp_path / "out")
    assert rc == 0, err
    out = tmp_path / "out"
    images = {str(p.relative_to(out)): json.loads(p.read_text())["image"] for p in out.rglob("*.json")}
    assert images == {"face_jpg.json": str(inputs[0]), "face_png.json": str(inputs[1]),
                      "face_jpg_2.json": str(inputs[2]), "ann/001.json": str(inputs[3]),
                      "bob/001.json": str(inputs[4])}  # a/face.jpg given twice is processed once
    assert (out / "bob" / "001_overlay.jpg").is_file() and (out / "face_jpg_2_overlay.jpg").is_file()
    assert f"tfface: note: {inputs[2]}: another input is also named 'face'; its outputs are 'face_jpg_2.*'" in err


def test_no_input_is_overwritten_or_read_back(tmp_path, capsys, stub):
    """An output folder that is (or holds) an input is refused before anything is written; a folder
    argument that holds the output folder does not read it; an input named like another's outputs
    (`g_face0.jpg` beside `g.jpg`, whose per-face meshes are `g_face0.obj`) gets its own names."""
    photos = tmp_path / "photos"
    a, overlay_named = _photo(photos / "a.jpg"), _photo(photos / "a_overlay.jpg", value=90)
    before = overlay_named.read_bytes()
    rc, _, err = _run(capsys, photos, "-o", photos)
    assert rc == 2 and err == (f"tfface: error: {photos}: this input is the output folder, where outputs could "
                               "overwrite inputs or be read as inputs by the next run: choose another output "
                               "folder (-o)\n")
    rc, _, err = _run(capsys, a, "-o", tmp_path)
    assert rc == 2 and f"{a}: this input is inside the output folder {tmp_path}/" in err
    assert overlay_named.read_bytes() == before and sorted(p.name for p in photos.iterdir()) == ["a.jpg", "a_overlay.jpg"]

    out = photos / "out"  # inside the folder argument: skipped by its scan, so a rerun reads the same inputs
    for _ in range(2):
        rc, _, err = _run(capsys, photos, "-o", out)
        assert rc == 0 and err.endswith(f"tfface: wrote 2 results to {out}/\n")
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "a_overlay.jpg", "a_overlay_jpg.json",
                                                     "a_overlay_jpg_overlay.jpg"]
    assert json.loads((out / "a_overlay_jpg.json").read_text())["image"] == str(overlay_named)

    stems, notes = output_stems([(Path("g.jpg"), Path("g.jpg")), (Path("g_face0.jpg"), Path("g_face0.jpg")),
                                 (Path("h_depth.png"), Path("h_depth.png"))])
    assert stems == ["g", "g_face0_jpg", "h_depth"]
    assert notes == ["g_face0.jpg: another input's outputs are also named 'g_face0'; its outputs are 'g_face0_jpg.*'"]


def test_a_broken_link_in_a_folder_is_reported_not_dropped(tmp_path, capsys, stub):
    photos = tmp_path / "photos"
    _photo(photos / "a.jpg")
    (photos / "gone.jpg").symlink_to(tmp_path / "deleted.jpg")
    rc, _, err = _run(capsys, photos, "-o", tmp_path / "out")
    assert rc == 0 and f"tfface: skipped: {photos / 'gone.jpg'}: a link to a file that does not exist\n" in err
    assert err.endswith(f"tfface: wrote 1 results to {tmp_path / 'out'}/ (1 failed)\n")


def test_output_stems_are_unique_case_insensitively():
    inputs = [(Path("x/Face.JPG"), Path("Face.JPG")), (Path("y/face.jpg"), Path("face.jpg")),
              (Path("z/face_jpg.png"), Path("face_jpg.png"))]
    stems, notes = output_stems(inputs)
    assert stems == ["Face_jpg", "face_jpg_2", "face_jpg_3"] and len(notes) == 3
    assert output_stems(list_inputs([])) == ([], [])


def test_nan_outputs_give_valid_json_with_a_warning(tmp_path, capsys, stub):
    black, good = _photo(tmp_path / "black.png", 0), _photo(tmp_path / "good.png")
    rc, out, err = _run(capsys, black, good, "-o", tmp_path / "out", "--json")
    assert rc == 0, err

    def strict(text: str) -> dict:
        return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))

    face = strict((tmp_path / "out" / "black.json").read_text())["faces"][0]
    assert face["pose"] == {"yaw": None, "pitch": None, "roll": None}
    assert face["landmarks_2d"][0] == [None, None] and face["params"][0] == 0.0
    assert face["warning"].startswith("343 non-finite model outputs (NaN/inf) written as null")
    assert strict(out.splitlines()[0])["faces"][0]["pose"]["yaw"] is None
    assert "warning" not in strict((tmp_path / "out" / "good.json").read_text())["faces"][0]
    overlay = read_image(tmp_path / "out" / "black_overlay.jpg")
    assert overlay.max() == 0  # the degenerate face is skipped, not drawn, and nothing crashed
    assert read_image(tmp_path / "out" / "good_overlay.jpg").max() > 128


def test_any_exception_is_that_inputs_line(tmp_path, capsys, stub):
    narrow, good = _photo(tmp_path / "narrow.png", width=3), _photo(tmp_path / "good.png")
    rc, _, err = _run(capsys, narrow, good, "-o", tmp_path / "out")
    assert rc == 0
    assert f"tfface: skipped: {narrow}: RuntimeError: runner exploded\n" in err and "second line" not in err
    assert (tmp_path / "out" / "good.json").is_file()


def test_unusable_output_folders_are_one_line(tmp_path, capsys, stub):
    good = _photo(tmp_path / "good.png")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    for out in (a_file, a_file / "sub"):  # a file; a folder under a file (NotADirectoryError, even as root)
        rc, _, err = _run(capsys, good, "-o", out)
        assert rc == 2 and err.startswith(f"tfface: error: {out}: cannot create the output folder") and "\n" == err[-1]
        assert err.count("\n") == 1
    (tmp_path / "out" / "good.json").mkdir(parents=True)  # a folder where the JSON goes: that input's line
    rc, _, err = _run(capsys, good, _photo(tmp_path / "other.png"), "-o", tmp_path / "out")
    assert rc == 0 and f"tfface: skipped: {tmp_path / 'out' / 'good.json'}: cannot write (Is a directory)" in err
    assert (tmp_path / "out" / "other.json").is_file()
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: a read-only folder is still writable here")
        rc, _, err = _run(capsys, good, "-o", locked)
        assert rc == 2 and err == f"tfface: error: {locked}: the output folder is not writable\n"
    finally:
        locked.chmod(0o700)


def test_json_writes_are_atomic_and_strict(tmp_path):
    path = write_json_atomic(tmp_path / "r.json", {"a": float("nan"), "b": [np.float32(1.5), np.inf], "c": np.int64(3)})
    assert json.loads(path.read_text()) == {"a": None, "b": [1.5, None], "c": 3}
    write_json_atomic(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1} and [p.name for p in tmp_path.iterdir()] == ["r.json"]
    assert finite_json({"x": [np.nan, 1.0], "y": {"z": -np.inf}}) == ({"x": [None, 1.0], "y": {"z": None}}, 2)


def test_shard_writer_rejects_bombs_and_any_exception_per_record(tmp_path):
    from tfface.data.records import FaceRecord, write_shards

    box = np.array([0, 0, 10, 10], np.float32)
    bomb = png_bomb(tmp_path / "bomb.png", 50000, 50000)
    good = _photo(tmp_path / "good.png")
    records = [FaceRecord(image=bomb.read_bytes(), source="x", key="bomb_bytes", box=box),
               FaceRecord(image=bomb, source="x", key="bomb_file", box=box),
               FaceRecord(image=good, source="x", key="boom"),  # no box: the locator runs, and raises
               FaceRecord(image=good, source="x", key="good", box=box)]

    def locate(image: np.ndarray) -> np.ndarray:
        raise RuntimeError("detector crashed")

    summary = write_shards(records, tmp_path / "out", shard_size=10, progress=False, locate=locate)
    reasons = {r["key"]: r["reason"] for r in summary["rejected_records"]}
    assert summary["written"] == 1 and reasons == {
        "bomb_bytes": "bomb_bytes: 2500 Mpx image is over the pixel budget of 100 Mpx (--max-megapixels / TFFACE_MAX_PIXELS)",
        "bomb_file": f"{bomb}: 2500 Mpx image is over the pixel budget of 100 Mpx (--max-megapixels / TFFACE_MAX_PIXELS)",
        "boom": "boom: RuntimeError: detector crashed"}


def test_any_oserror_from_a_command_is_one_line(tmp_path, capsys, monkeypatch):
    def denied(args):
        raise PermissionError(13, "Permission denied", str(tmp_path / "out" / "labels.jsonl"))

    monkeypatch.setattr("tfface.cli.verify_cmd.run", denied)
    assert main(["verify", "a.jpg", "b.jpg"]) == 2
    assert capsys.readouterr().err == f"tfface: error: {tmp_path / 'out' / 'labels.jsonl'}: Permission denied\n"
    monkeypatch.setattr("tfface.cli.verify_cmd.run", lambda args: (_ for _ in ()).throw(OSError("disk gone")))
    assert main(["verify", "a.jpg", "b.jpg"]) == 2
    assert capsys.readouterr().err == "tfface: error: disk gone\n"
