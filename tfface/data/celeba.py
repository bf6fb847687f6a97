"""CelebA's annotation files: attributes, identities, the train/val/test partition, boxes, landmarks.

Files may be partial (e.g. the first 20,000 rows of `list_attr_celeba.txt`): an image without a row
simply has no label of that kind.
"""

from __future__ import annotations

import os

import numpy as np

from tfface.data.text_tables import open_table, parse_lines
from tfface.errors import DataFileError

NUM_ATTRIBUTES = 40
SPLITS = {"train": 0, "val": 1, "test": 2}


def read_attributes(path: str | os.PathLike, problems: list[str] | None = None
                    ) -> tuple[list[str], dict[str, np.ndarray]]:
    """`list_attr_celeba.txt` -> (40 names, {image: int8 (40,) of +1/-1})."""
    path = open_table(path)
    with open(path, encoding="utf-8", errors="replace") as f:
        f.readline()  # the image count of the full file; partial files keep it, so it is not checked
        names = f.readline().split()
    if len(names) != NUM_ATTRIBUTES:
        raise DataFileError(f"{path}:2: expected {NUM_ATTRIBUTES} attribute names, found {len(names)}")

    def row(fields: list[str]) -> tuple[str, np.ndarray]:
        if len(fields) != NUM_ATTRIBUTES + 1:
            raise ValueError(f"expected an image name and {NUM_ATTRIBUTES} values, found {len(fields)} fields")
        values = np.array([int(v) for v in fields[1:]], np.int8)
        if not np.all(np.abs(values) == 1):
            raise ValueError("attribute values must be 1 or -1")
        return fields[0], values

    return names, dict(r for _, r in parse_lines(path, row, problems, skip=2))


def read_identities(path: str | os.PathLike, problems: list[str] | None = None) -> dict[str, int]:
    """`identity_CelebA.txt` -> {image: identity id}."""
    return dict(r for _, r in parse_lines(open_table(path), _name_and_int, problems))


def read_partition(path: str | os.PathLike, problems: list[str] | None = None) -> dict[str, int]:
    """`list_eval_partition.txt` -> {image: 0 train | 1 val | 2 test}."""
    def row(fields: list[str]) -> tuple[str, int]:
        name, split = _name_and_int(fields)
        if split not in SPLITS.values():
            raise ValueError(f"partition must be 0, 1 or 2, found {split}")
        return name, split

    return dict(r for _, r in parse_lines(open_table(path), row, problems))


def read_boxes(path: str | os.PathLike, problems: list[str] | None = None) -> dict[str, np.ndarray]:
    """`list_bbox_celeba.txt` (count, header, image x_1 y_1 width height) -> {image: (x0, y0, x1, y1)}."""
    def row(fields: list[str]) -> tuple[str, np.ndarray]:
        x, y, w, h = _numbers(fields, 4)
        if w <= 0 or h <= 0:
            raise ValueError(f"box width and height must be positive, found {w} x {h}")
        return fields[0], np.array([x, y, x + w, y + h], np.float32)

    return dict(r for _, r in parse_lines(open_table(path), row, problems, skip=2))


def read_landmarks5(path: str | os.PathLike, problems: list[str] | None = None) -> dict[str, np.ndarray]:
    """`list_landmarks[_align]_celeba.txt` -> {image: (5, 2)}: eyes, nose, mouth corners (subject's left first)."""
    def row(fields: list[str]) -> tuple[str, np.ndarray]:
        return fields[0], np.array(_numbers(fields, 10), np.float32).reshape(5, 2)

    return dict(r for _, r in parse_lines(open_table(path), row, problems, skip=2))


def _name_and_int(fields: list[str]) -> tuple[str, int]:
    if len(fields) != 2:
        raise ValueError(f"expected 'image value', found {len(fields)} fields")
    return fields[0], int(fields[1])


def _numbers(fields: list[str], count: int) -> list[float]:
    if len(fields) != count + 1:
        raise ValueError(f"expected an image name and {count} numbers, found {len(fields)} fields")
    values = [float(v) for v in fields[1:]]
    if not np.all(np.isfinite(values)):
        raise ValueError("values must be finite")
    return values
