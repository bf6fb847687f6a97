"""Readers of the real dataset formats: shared samples (skipped when absent) and small fixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio
from conftest import REPO, shared_path

from tfface.data import celeba, ddfa_lists, identity_folders, mat3d
from tfface.data.synthetic import landmarks_from_params
from tfface.errors import DataFileError

DDFA = REPO / "tests" / "fixtures" / "data" / "ddfa_list"
NAMES = " ".join(f"Attr_{i}" for i in range(40))


def test_attribute_file_with_bad_lines_reports_file_and_line(tmp_path):
    good = " ".join(["1", "-1"] * 20)
    path = tmp_path / "list_attr_celeba.txt"
    path.write_text(f"4\n{NAMES}\n000001.jpg {good}\n000002.jpg 1 -1\n000003.jpg {good.replace('-1', '0', 1)}\n"
                    f"000004.jpg {good.replace('1', 'x', 1)}\n000005.jpg {good}\n")
    problems: list[str] = []
    names, labels = celeba.read_attributes(path, problems)
    assert names[:2] == ["Attr_0", "Attr_1"] and len(names) == 40
    assert sorted(labels) == ["000001.jpg", "000005.jpg"]
    np.testing.assert_array_equal(labels["000001.jpg"][:4], [1, -1, 1, -1])
    np.testing.assert_array_equal(celeba.to_binary(labels["000001.jpg"])[:4], [1, 0, 1, 0])
    assert [p.split(": ")[0] for p in problems] == [f"{path}:{n}" for n in (4, 5, 6)]
    with pytest.raises(DataFileError, match=r"list_attr_celeba.txt:4: expected an image name"):
        celeba.read_attributes(path, strict=True)


def test_partition_and_identity_files_with_bad_lines(tmp_path):
    path = tmp_path / "list_eval_partition.txt"
    path.write_text("a.jpg 0\nb.jpg 2\nc.jpg 7\nd.jpg\ne.jpg 1\n")
    problems: list[str] = []
    assert celeba.read_partition(path, problems) == {"a.jpg": 0, "b.jpg": 2, "e.jpg": 1}
    assert len(problems) == 2 and f"{path}:3" in problems[0] and f"{path}:4" in problems[1]
    with pytest.raises(DataFileError, match="file not found"):
        celeba.read_identities(tmp_path / "missing.txt")


def test_bbox_file(tmp_path):
    path = tmp_path / "list_bbox_celeba.txt"
    path.write_text("2\nimage_id x_1 y_1 width height\n000001.jpg 95 71 226 313\n000002.jpg 72 94 nan 1\n")
    problems: list[str] = []
    boxes = celeba.read_boxes(path, problems)
    np.testing.assert_array_equal(boxes["000001.jpg"], [95, 71, 321, 384])
    assert list(boxes) == ["000001.jpg"] and "NaN" in problems[0]


def test_real_partial_celeba_attributes_and_records():
    root = shared_path("celeba")
    names, labels = celeba.read_attributes(root / "list_attr_celeba_first20000.txt")
    assert len(names) == 40 and names[20] == "Male" and len(labels) == 20_000
    assert all(set(np.unique(v)) <= {-1, 1} for v in list(labels.values())[:100])
    records, classes = celeba.celeba_records(root, "img_celeba")
    assert len(records) == 5279 and len(classes) == 250
    with_attr = [r for r in records if r.attributes is not None]
    assert len(with_attr) == 528  # only the photos within the first 20,000 rows
    assert all(set(np.unique(r.attributes)) <= {0, 1} for r in with_attr)
    assert all(0 <= r.identity < 250 for r in records)
    partition = celeba.read_partition(root / "list_eval_partition.txt")
    assert len(partition) == 202_599 and partition["000001.jpg"] == 0
    assert {r.split for r in records} <= {"train", "val", "test"}
    assert all(r.split == celeba.SPLIT_NAMES[partition[r.key]] for r in records[:200])


def test_real_lfw_pairs_and_identity_folders():
    pairs = identity_folders.read_lfw_pairs(shared_path("lfw/pairs.txt"))
    folds = identity_folders.lfw_folds(pairs)
    assert len(pairs) == 6000 and [len(f) for f in folds] == [600] * 10
    assert pairs[0] == ("Abel_Pacheco", 1, "Abel_Pacheco", 4, True, 0)
    assert all(p.same == (p.name1 == p.name2) for p in pairs)
    assert pairs[0].paths("/lfw")[1] == Path("/lfw/Abel_Pacheco/Abel_Pacheco_0004.jpg")
    people = identity_folders.read_identity_folders(shared_path("identity_photos"))
    assert people["obama"][0].name == "obama.jpg" and len(people["obama"]) == 5 and "aflw-test.jpg" not in people
    records, classes = identity_folders.identity_folder_records(shared_path("identity_photos"))
    assert len(records) == sum(map(len, people.values())) and classes == {n: i for i, n in enumerate(sorted(people))}


def test_lfw_pairs_malformed(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("1\t1\nA\t1\t2\nB\t1\n")
    with pytest.raises(DataFileError, match=r"pairs.txt:3: expected"):
        identity_folders.read_lfw_pairs(path)
    path.write_text("1\t1\nA\t1\tB\t2\nC\t1\t2\n")
    with pytest.raises(DataFileError, match=r"pairs.txt:2: expected a same-person pair"):
        identity_folders.read_lfw_pairs(path)


def test_mat_records_skip_bad_files_with_reasons(tmp_path):
    folder = shared_path("aflw2000_3d")
    pairs = mat3d.aflw2000_pairs(folder)[:3]
    sio.savemat(tmp_path / "nokeys.mat", {"pt2d": np.zeros((2, 68))})
    (tmp_path / "garbage.mat").write_bytes(b"not a mat file")
    bad = [(tmp_path / "x.jpg", tmp_path / "nokeys.mat"), (tmp_path / "y.jpg", tmp_path / "garbage.mat")]
    problems: list[str] = []
    records = mat3d.mat3d_records(pairs + bad, "aflw2000", "test", problems)
    assert len(records) == 3 and len(problems) == 2
    assert "nokeys.mat: missing keys" in problems[0] and "garbage.mat: not a readable .mat" in problems[1]
    r = records[0]
    assert r.landmarks.shape == (68, 3) and r.params is None and r.pose.shape == (3,) and r.masks["has_landmarks"] == 1
    lp = mat3d.mat3d_records(mat3d.lp300w_pairs(shared_path("300w_lp")), "300w_lp")
    assert lp[0].landmarks.shape == (68, 2) and abs(lp[0].pose[0]) > 10  # IBUG_image_008_1_0: a turned face


def test_3ddfa_list_reader_denormalises_params_that_decode_onto_the_crop():
    stats = ddfa_lists.whitening_stats(DDFA / "param_whitening.pkl")
    records = ddfa_lists.read_3ddfa_list(DDFA / "train.list", DDFA, DDFA / "param_norm.pkl", normalized_with=stats)
    assert len(records) == 3 and records[0].image == DDFA / "crops" / "face_0.jpg"
    np.testing.assert_array_equal(records[0].roi, [0, 0, 120, 120])
    decoded = landmarks_from_params(np.stack([r.params for r in records]), 120)
    np.testing.assert_allclose(decoded, np.load(DDFA / "landmarks.npy"), atol=1e-2)
    v1 = ddfa_lists.read_3ddfa_list(DDFA / "train.list", DDFA, DDFA / "param_norm.pkl", stats, convention="v1")
    shift = landmarks_from_params(v1[0].params[None], 120)[0] - decoded[0]
    np.testing.assert_allclose(shift, np.tile([1.0, 1.0], (68, 1)), atol=1e-3)  # v1 frame is one pixel off


def test_3ddfa_list_reader_rejects_bad_files(tmp_path):
    np.save(tmp_path / "p.npy", np.ones((2, 62), np.float32))
    (tmp_path / "l.txt").write_text("a.jpg\n")
    with pytest.raises(DataFileError, match="1 images but .* 2 parameter rows"):
        ddfa_lists.read_3ddfa_list(tmp_path / "l.txt", tmp_path, tmp_path / "p.npy")
    np.save(tmp_path / "p.npy", np.array([[np.nan] * 62, [0.0] * 62], np.float32))
    (tmp_path / "l.txt").write_text("a.jpg\nb.jpg\n")
    problems: list[str] = []
    records = ddfa_lists.read_3ddfa_list(tmp_path / "l.txt", tmp_path, tmp_path / "p.npy", problems=problems)
    assert [r.key for r in records] == ["b.jpg"] and "row 1 (a.jpg)" in problems[0]
    np.save(tmp_path / "p.npy", np.ones((2, 10), np.float32))
    with pytest.raises(DataFileError, match=r"expected an \(N, 62\)"):
        ddfa_lists.read_param_file(tmp_path / "p.npy")


def test_mat3d_labels_with_text_cells_or_flat_landmarks_are_one_line_errors(tmp_path):
    t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    good = {"pt3d_68": np.stack([100 + 30 * np.cos(t), 100 + 40 * np.sin(t), np.zeros(68)]),
            "Pose_Para": np.zeros((1, 7)), "Shape_Para": np.zeros((199, 1)), "Exp_Para": np.zeros((29, 1))}
    cells = np.empty((1, 2), dtype=object)
    cells[0, 0], cells[0, 1] = np.array([1.0, 2.0]), "x"
    cases = {"text.mat": ({**good, "Pose_Para": "abc"}, "Pose_Para is not a numeric array (found text)"),
             "cell.mat": ({**good, "Exp_Para": cells},
                          "Exp_Para is not a numeric array (found a cell array or struct)"),
             "lmtext.mat": ({**good, "pt3d_68": "abc"}, "pt3d_68 is not a numeric array (found text)"),
             "flat.mat": ({**good, "pt3d_68": np.zeros((3, 68))},
                          "the 68 landmarks span no area (all on one point or line)")}
    for name, (fields, message) in cases.items():
        sio.savemat(tmp_path / name, fields)
        with pytest.raises(DataFileError) as error:
            mat3d.read_3d_mat(tmp_path / name)
        assert str(error.value) == f"{tmp_path / name}: {message}"
    sio.savemat(tmp_path / "good.mat", good)
    assert mat3d.read_3d_mat(tmp_path / "good.mat").landmarks.shape == (68, 3)
