"""Identity datasets stored as `root/<person>/<image>` (CASIA-WebFace, VGGFace2, LFW) and LFW's pairs.txt."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tfface.data.text_tables import open_table, report
from tfface.errors import DataFileError
from tfface.io.images import IMAGE_EXTENSIONS


def read_identity_folders(root: str | os.PathLike, min_images: int = 1) -> dict[str, list[Path]]:
    """{person: sorted image paths} for every sub-folder of `root` holding at least `min_images` images."""
    root = Path(root)
    if not root.is_dir():
        raise DataFileError(f"{root}: not a folder")
    people = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if len(images) >= min_images:
            people[folder.name] = images
    if not people:
        raise DataFileError(f"{root}: no identity folders with images (expected root/<person>/<image>)")
    return people


@dataclass(frozen=True)
class LfwPair:
    name1: str
    index1: int
    name2: str
    index2: int
    same: bool
    fold: int


def read_lfw_pairs(path: str | os.PathLike, problems: list[str] | None = None) -> list[LfwPair]:
    """LFW view-2 `pairs.txt`: a 'folds per_fold' line, then per fold `per_fold` same pairs
    ('name i j') followed by `per_fold` different pairs ('name1 i name2 j')."""
    path = open_table(path)
    lines = [line.split() for line in path.read_text().splitlines()]
    try:
        folds, per_fold = (int(v) for v in lines[0])
    except (ValueError, IndexError):
        raise DataFileError(f"{path}:1: expected 'folds pairs_per_fold', found {lines[:1]}") from None
    pairs, bad = [], []
    for number, fields in enumerate(lines[1:], 2):
        fold, rest = divmod(number - 2, 2 * per_fold)
        expect_same = rest < per_fold
        try:
            pairs.append(_lfw_pair(fields, expect_same, fold))
        except (ValueError, IndexError) as e:
            bad.append(f"{path}:{number}: {e}")
    report(bad, problems)
    if len(pairs) + len(bad) != folds * 2 * per_fold:
        raise DataFileError(f"{path}: header promises {folds} x {2 * per_fold} pairs, "
                            f"found {len(pairs) + len(bad)} lines")
    return pairs


def _lfw_pair(fields: list[str], same: bool, fold: int) -> LfwPair:
    if same and len(fields) == 3:
        return LfwPair(fields[0], int(fields[1]), fields[0], int(fields[2]), True, fold)
    if not same and len(fields) == 4:
        return LfwPair(fields[0], int(fields[1]), fields[2], int(fields[3]), False, fold)
    kind = "same-person 'name i j'" if same else "different-person 'name1 i name2 j'"
    raise ValueError(f"expected a {kind} line, found {len(fields)} fields")
