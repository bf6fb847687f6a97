"""CelebA lists, identity folders and LFW pairs: real files when shared/ is there, and broken copies."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import shared_path
from tfface.data.celeba import read_attributes, read_boxes, read_identities, read_partition
from tfface.data.identity_folders import read_identity_folders
from tfface.errors import DataFileError

NAMES = " ".join(f"A{i}" for i in range(40))


def _attr_file(tmp_path, rows: list[str]):
    path = tmp_path / "list_attr_celeba.txt"
    path.write_text("\n".join(["202599", NAMES, *rows]) + "\n")
    return path


def test_attributes_partial_file_and_malformed_lines_are_reported(tmp_path):
    good = "000001.jpg " + " ".join(["1", "-1"] * 20)
    short = "000002.jpg " + " ".join(["1"] * 39)
    not_pm1 = "000003.jpg " + " ".join(["0"] * 40)
    path = _attr_file(tmp_path, [good, short, not_pm1, "", "000004.jpg " + " ".join(["-1"] * 40)])
    problems: list[str] = []
    names, labels = read_attributes(path, problems)
    assert names[0] == "A0" and len(names) == 40
    assert sorted(labels) == ["000001.jpg", "000004.jpg"]
    np.testing.assert_array_equal(labels["000001.jpg"][:4], [1, -1, 1, -1])
    assert len(problems) == 2 and problems[0].startswith(f"{path}:4:") and "39" not in problems[1]
    with pytest.warns(UserWarning, match="skipped 2 malformed"):
        read_attributes(path)


def test_attributes_wrong_header_names_file(tmp_path):
    path = tmp_path / "attr.txt"
    path.write_text("3\nA B C\n")
    with pytest.raises(DataFileError, match=r"attr.txt:2: expected the 40 attribute names, found 3"):
        read_attributes(path)
    with pytest.raises(DataFileError, match="file not found"):
        read_attributes(tmp_path / "missing.txt")


def test_boxes_partition_identities(tmp_path):
    (tmp_path / "bbox.txt").write_text("2\nimage_id x_1 y_1 width height\na.jpg 95 71 226 313\nb.jpg 1 2 0 5\n")
    problems: list[str] = []
    boxes = read_boxes(tmp_path / "bbox.txt", problems)
    np.testing.assert_array_equal(boxes["a.jpg"], [95, 71, 321, 384])
    assert "b.jpg" not in boxes and "positive" in problems[0]
    (tmp_path / "part.txt").write_text("a.jpg 0\nb.jpg 2\nc.jpg 7\n")
    assert read_partition(tmp_path / "part.txt", problems) == {"a.jpg": 0, "b.jpg": 2}
    (tmp_path / "id.txt").write_text("a.jpg 12\nb.jpg x\n")
    assert read_identities(tmp_path / "id.txt", problems) == {"a.jpg": 12}
    assert len(problems) == 3


def test_real_celeba_lists():
    root = shared_path("celeba")
    names, labels = read_attributes(root / "list_attr_celeba_first20000.txt")
    assert names[:2] == ["5_o_Clock_Shadow", "Arched_Eyebrows"] and names[-1] == "Young"
    assert len(labels) == 20000 and "020000.jpg" in labels and "020001.jpg" not in labels
    partition = read_partition(root / "list_eval_partition.txt")
    assert len(partition) == 202599 and np.bincount(list(partition.values())).tolist() == [162770, 19867, 19962]
    ids = read_identities(root / "identity_CelebA.txt")
    assert len(set(ids.values())) == 10177


def test_identity_folders(tmp_path):
    for person, n in (("ann", 2), ("bob", 1)):
        (tmp_path / person).mkdir()
        for i in range(n):
            (tmp_path / person / f"{i}.jpg").write_bytes(b"")
    (tmp_path / "bob" / "notes.txt").write_text("x")
    people = read_identity_folders(tmp_path)
    assert {k: len(v) for k, v in people.items()} == {"ann": 2, "bob": 1}
    assert list(read_identity_folders(tmp_path, min_images=2)) == ["ann"]
    with pytest.raises(DataFileError, match="no identity folders"):
        read_identity_folders(tmp_path / "bob")
