"""Identity folders (`root/<person>/<image>`: CASIA-WebFace, VGGFace2, LFW) and LFW's `pairs.txt`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from tfface.errors import DataFileError
from tfface.io.images import IMAGE_EXTENSIONS


def read_identity_folders(root: str | os.PathLike, min_images: int = 1) -> dict[str, list[Path]]:
    """{person (folder name): sorted image paths} for every sub-folder holding >= `min_images` images.

    Files directly under `root` belong to no person and are ignored. `identity_samples` flattens the
    result into (path, person) pairs.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataFileError(f"{root}: not a folder of identity folders (root/<person>/<image>)")
    people: dict[str, list[Path]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        images = sorted(f for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
        if len(images) >= min_images:
            people[folder.name] = images
    if not people:
        raise DataFileError(f"{root}: no identity folders with images (expected root/<person>/<image>)")
    return people


def identity_samples(people: dict[str, list[Path]]) -> list[tuple[Path, str]]:
    """(path, person) for every image, people in sorted order."""
    return [(path, person) for person in sorted(people) for path in people[person]]


def identity_classes(people: dict[str, list[Path]] | list[str]) -> dict[str, int]:
    """person -> class id 0..n-1 in sorted name order (stable across runs)."""
    return {name: i for i, name in enumerate(sorted(set(people)))}


class LfwPair(NamedTuple):
    name1: str
    index1: int  # 1-based image number: <name1>/<name1>_<index1:04d>.jpg
    name2: str
    index2: int
    same: bool
    fold: int  # 0..num_folds-1

    def paths(self, root: str | os.PathLike, ext: str = ".jpg") -> tuple[Path, Path]:
        root = Path(root)
        return (root / self.name1 / f"{self.name1}_{self.index1:04d}{ext}",
                root / self.name2 / f"{self.name2}_{self.index2:04d}{ext}")


def read_lfw_pairs(path: str | os.PathLike) -> list[LfwPair]:
    """LFW `pairs.txt` (first line: folds and pairs per half; each fold = N same then N different pairs).

    Same pairs are `name i j`, different pairs `name1 i name2 j`. Returns all pairs in file order with
    their fold; a malformed line raises DataFileError naming the line (the file defines the protocol,
    so a partial read would silently change it).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: file not found")
    lines = path.read_text().splitlines()
    try:
        num_folds, per_half = (int(v) for v in lines[0].split())
    except (ValueError, IndexError):
        raise DataFileError(f"{path}:1: expected '<folds> <pairs per half>', found {lines[:1]!r}") from None
    pairs: list[LfwPair] = []
    for number, line in enumerate(lines[1:], 2):
        parts = line.split()
        if not parts:
            continue
        fold = len(pairs) // (2 * per_half)
        try:
            if len(parts) == 3:
                pairs.append(LfwPair(parts[0], int(parts[1]), parts[0], int(parts[2]), True, fold))
            elif len(parts) == 4:
                pairs.append(LfwPair(parts[0], int(parts[1]), parts[2], int(parts[3]), False, fold))
            else:
                raise ValueError
        except ValueError:
            raise DataFileError(f"{path}:{number}: expected 'name i j' or 'name1 i name2 j', found {line!r}") from None
        expect_same = (len(pairs) - 1) % (2 * per_half) < per_half
        if pairs[-1].same != expect_same:
            raise DataFileError(f"{path}:{number}: expected a {'same' if expect_same else 'different'}-person "
                                f"pair here (each fold is {per_half} same then {per_half} different pairs)")
    if len(pairs) != num_folds * 2 * per_half:
        raise DataFileError(f"{path}: header promises {num_folds} x {2 * per_half} pairs, found {len(pairs)}")
    return pairs


def lfw_folds(pairs: list[LfwPair]) -> list[list[LfwPair]]:
    """The pairs grouped by fold (10 lists of 600 for LFW view 2)."""
    folds: list[list[LfwPair]] = [[] for _ in range(max(p.fold for p in pairs) + 1)]
    for p in pairs:
        folds[p.fold].append(p)
    return folds


def identity_folder_records(root: str | os.PathLike, source: str = "identity_folders", split: str = "train",
                            min_images: int = 1) -> tuple[list, dict[str, int]]:
    """FaceRecords (identity = class id of the person folder, sorted names) and {person: class id}.

    No boxes: faces are found by the detector at convert time.
    """
    from tfface.data.records import FaceRecord

    people = read_identity_folders(root, min_images)
    classes = identity_classes(people)
    records = [FaceRecord(image=path, source=source, split=split, key=f"{person}/{path.name}",
                          identity=classes[person]) for path, person in identity_samples(people)]
    return records, classes
