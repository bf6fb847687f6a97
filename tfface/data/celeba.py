"""CelebA's annotation files: attributes, identities, the train/val/test partition, boxes and landmarks.

Every reader skips malformed lines instead of failing the whole file, and reports each one (file and
line number) in the `problems` list it is given, so `tfface data convert` can count them. A partial
file (e.g. the first 20,000 rows of `list_attr_celeba.txt`) is fine: images without a row simply have
no label. `strict=True` turns the first bad line into a DataFileError instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tfface.data.text_tables import TableLines
from tfface.errors import DataFileError
from tfface.models.attributes import ATTRIBUTE_NAMES

# CelebA's 40 attributes, in the column order of list_attr_celeba.txt (the joint model's output order).
NUM_ATTRIBUTES = len(ATTRIBUTE_NAMES)
SPLITS = {"train": 0, "val": 1, "test": 2}
SPLIT_NAMES = {v: k for k, v in SPLITS.items()}


def held_out_people(people: "np.ndarray | list[int]", every: int = 5) -> set[int]:
    """tfface's held-out split of a CelebA identity sample: every `every`-th person in id order (the
    joint preset's report, `benchmarks/identity_peer.py`); all their photos stay out of training."""
    return set(sorted(set(np.asarray(people).tolist()))[::every])


def read_attributes(path: str | os.PathLike, problems: list[str] | None = None,
                    strict: bool = False) -> tuple[list[str], dict[str, np.ndarray]]:
    """`list_attr_celeba.txt` -> (40 attribute names, {image file: int8 (40,) of +1 / -1 as in the file}).

    Labels keep the file's +1/-1 coding; `to_binary` turns them into the training contract's {0, 1}.
    The first line (the image count) is optional; the names line is the first line of 40 words.
    """
    lines = TableLines(path, problems, strict)
    names: list[str] | None = None
    labels: dict[str, np.ndarray] = {}
    for number, line in lines:
        parts = line.split()
        if names is None:
            if len(parts) == 1 and parts[0].isdigit():
                continue  # the count line
            if len(parts) != NUM_ATTRIBUTES:
                raise DataFileError(f"{lines.path}:{number}: expected the {NUM_ATTRIBUTES} attribute names, "
                                    f"found {len(parts)} fields")
            names = parts
            continue
        if len(parts) != NUM_ATTRIBUTES + 1:
            lines.bad(number, f"expected an image name and {NUM_ATTRIBUTES} labels, found {len(parts)} fields")
            continue
        try:
            values = np.array([int(v) for v in parts[1:]], np.int8)
        except ValueError:
            lines.bad(number, f"labels must be 1 or -1, found {' '.join(parts[1:])!r}")
            continue
        if not np.all(np.abs(values) == 1):
            lines.bad(number, f"labels must be 1 or -1, found {sorted(set(values.tolist()))}")
            continue
        labels[parts[0]] = values
    if names is None:
        raise DataFileError(f"{lines.path}: no attribute-name line (not a list_attr_celeba.txt file)")
    return names, labels


def to_binary(labels: np.ndarray) -> np.ndarray:
    """+1/-1 attribute labels -> {0, 1} int8 (the training contract)."""
    return (np.asarray(labels) > 0).astype(np.int8)


def _read_int_column(path: str | os.PathLike, what: str, problems: list[str] | None, strict: bool,
                     allowed: set[int] | None = None) -> dict[str, int]:
    lines = TableLines(path, problems, strict)
    out: dict[str, int] = {}
    for number, line in lines:
        parts = line.split()
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            lines.bad(number, f"expected '<image> <{what}>', found {line[:80]!r}")
            continue
        value = int(parts[1])
        if allowed is not None and value not in allowed:
            lines.bad(number, f"{what} must be one of {sorted(allowed)}, found {value}")
            continue
        out[parts[0]] = value
    return out


def read_identities(path: str | os.PathLike, problems: list[str] | None = None,
                    strict: bool = False) -> dict[str, int]:
    """`identity_CelebA.txt` -> {image file: CelebA identity (1..10177, as in the file)}."""
    return _read_int_column(path, "identity", problems, strict)


def read_partition(path: str | os.PathLike, problems: list[str] | None = None,
                   strict: bool = False) -> dict[str, int]:
    """`list_eval_partition.txt` -> {image file: 0 train, 1 val, 2 test}."""
    return _read_int_column(path, "partition", problems, strict, allowed={0, 1, 2})


def _read_table(path: str | os.PathLike, columns: int, problems: list[str] | None,
                strict: bool, positive: tuple[int, ...] = ()) -> dict[str, np.ndarray]:
    """Count line, header line, then '<image> <columns numbers>' rows (boxes and landmark files)."""
    lines = TableLines(path, problems, strict)
    out: dict[str, np.ndarray] = {}
    for number, line in lines:
        parts = line.split()
        if len(parts) != columns + 1:
            if not out and (len(parts) == 1 or not parts[0].lower().endswith((".jpg", ".png"))):
                continue  # the count and header lines
            lines.bad(number, f"expected an image name and {columns} numbers, found {len(parts)} fields")
            continue
        try:
            values = np.array([float(v) for v in parts[1:]], np.float32)
        except ValueError:
            if not out:
                continue  # header
            lines.bad(number, f"non-numeric values {' '.join(parts[1:])[:60]!r}")
            continue
        if not np.all(np.isfinite(values)):
            lines.bad(number, "NaN or infinite values")
            continue
        if positive and np.any(values[list(positive)] <= 0):
            lines.bad(number, f"box width and height must be positive, found {values[2]:g} x {values[3]:g}")
            continue
        out[parts[0]] = values
    return out


def read_boxes(path: str | os.PathLike, problems: list[str] | None = None,
               strict: bool = False) -> dict[str, np.ndarray]:
    """`list_bbox_celeba.txt` (x_1 y_1 width height) -> {image file: float32 (x0, y0, x1, y1)}."""
    table = _read_table(path, 4, problems, strict, positive=(2, 3))
    return {k: np.array([v[0], v[1], v[0] + v[2], v[1] + v[3]], np.float32) for k, v in table.items()}


def _find(root: Path, names: tuple[str, ...]) -> Path | None:
    for pattern in names:
        hits = sorted(root.glob(pattern)) + sorted(root.glob(f"Anno/{pattern}")) + sorted(root.glob(f"Eval/{pattern}"))
        if hits:
            return hits[0]
    return None


def celeba_records(root: str | os.PathLike, image_dir: str = "img_celeba", split: str | None = None,
                   problems: list[str] | None = None, limit: int | None = None) -> tuple[list, dict[str, int]]:
    """FaceRecords for the images under root/image_dir, and {CelebA identity: class id} of those written.

    Labels come from whichever annotation files exist under root (or Anno/, Eval/): attributes
    (list_attr_celeba*.txt; images without a row get none), identities (identity_CelebA*.txt, mapped
    to class ids 0..n-1 in sorted CelebA-id order), the partition (split; "train" when absent) and
    boxes (list_bbox_celeba.txt, in-the-wild photos at their original size only). Without a box the
    face is found by the detector at convert time. `split` keeps one partition only.
    """
    from tfface.data.records import FaceRecord
    from tfface.io.images import IMAGE_EXTENSIONS

    root = Path(root)
    folder = root / image_dir
    if not folder.is_dir():
        raise DataFileError(f"{folder}: not a folder (expected a CelebA image folder such as img_celeba)")
    problems = problems if problems is not None else []
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    attr_file = _find(root, ("list_attr_celeba.txt", "list_attr_celeba*.txt"))
    id_file = _find(root, ("identity_CelebA.txt", "identity_CelebA*.txt"))
    part_file = _find(root, ("list_eval_partition.txt",))
    box_file = _find(root, ("list_bbox_celeba.txt",)) if image_dir == "img_celeba" else None
    attributes = read_attributes(attr_file, problems)[1] if attr_file else {}
    identities = read_identities(id_file, problems) if id_file else {}
    partition = read_partition(part_file, problems) if part_file else {}
    boxes = read_boxes(box_file, problems) if box_file else {}
    if split is not None:
        images = [p for p in images if SPLIT_NAMES.get(partition.get(p.name, 0)) == split]
    images = images[:limit]
    classes = {cid: i for i, cid in enumerate(sorted({identities[p.name] for p in images if p.name in identities}))}
    records = []
    for path in images:
        name = path.name
        records.append(FaceRecord(
            image=path, source=f"celeba/{image_dir}", split=SPLIT_NAMES[partition.get(name, 0)], key=name,
            box=boxes.get(name), attributes=to_binary(attributes[name]) if name in attributes else None,
            identity=classes.get(identities.get(name, -1), -1)))
    return records, {str(k): v for k, v in classes.items()}
