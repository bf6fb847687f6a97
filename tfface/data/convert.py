"""`tfface data convert`'s work: a dataset folder in one of the known formats -> TFRecord shards + summary."""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfface.errors import TffaceError

if TYPE_CHECKING:  # records import TensorFlow; `tfface data --help` should not
    from tfface.data.records import FaceRecord

FORMATS = ("celeba", "aflw2000", "300w_lp", "identity_folders", "3ddfa_list")
TEACHERS = ("dlib",)  # identity teachers for distillation labels (the optional `teacher` extra)
NEEDS_DETECTOR = ("celeba", "identity_folders")
# The stored crop must hold the whole 3DDFA crop (margin >= 1) and keep it big enough to train on: at
# margin 4 and 32 px the face is 8 px wide. 4096 px is far above any model input (120 px by default).
MARGIN_RANGE = (1.0, 4.0)
CROP_SIZE_RANGE = (32, 4096)


def read_dataset(fmt: str, root: str | os.PathLike, problems: list[str], split: str | None = None,
                 image_dir: str = "img_celeba", list_file: str | None = None, param_file: str | None = None,
                 whitening: str | None = None, convention: str = "v2") -> tuple[list[FaceRecord], dict[str, Any]]:
    """(records, extra summary entries) of one dataset; reader problems are appended to `problems`."""
    from tfface.data import celeba, ddfa_lists, identity_folders, mat3d

    root = Path(root)
    if fmt == "celeba":
        records, classes = celeba.celeba_records(root, image_dir, split, problems)
        return records, {"num_ids": len(classes), "identity_classes": classes}
    if fmt == "identity_folders":
        records, classes = identity_folders.identity_folder_records(root, split=split or "train")
        return records, {"num_ids": len(classes), "identity_classes": classes}
    if fmt == "aflw2000":
        return mat3d.mat3d_records(mat3d.aflw2000_pairs(root), "aflw2000", split or "test", problems), {}
    if fmt == "300w_lp":
        return mat3d.mat3d_records(mat3d.lp300w_pairs(root), "300w_lp", split or "train", problems), {}
    if fmt == "3ddfa_list":
        if not list_file or not param_file:
            raise TffaceError("format 3ddfa_list needs --list-file and --param-file")
        stats = ddfa_lists.whitening_stats(whitening) if whitening else None
        return ddfa_lists.read_3ddfa_list(list_file, root, param_file, stats, convention=convention,
                                          split=split or "train", problems=problems), {}
    raise TffaceError(f"unknown dataset format {fmt!r} (known: {', '.join(FORMATS)})")


def convert_dataset(fmt: str, root: str | os.PathLike, out_dir: str | os.PathLike, shard_size: int = 1000,
                    crop_size: int | None = None, margin: float | None = None, limit: int | None = None,
                    detector: str = "auto", progress: bool = True, overwrite: bool = False,
                    teacher: str | None = None, on_problem: Callable[[str], None] | None = None,
                    **reader_args: Any) -> dict[str, Any]:
    """Read, crop and write; returns the summary (also in out_dir/summary.json). `crop_size` and
    `margin` default to tfface.data.records' DEFAULT_CROP_SIZE and DEFAULT_MARGIN (ranges:
    CROP_SIZE_RANGE, MARGIN_RANGE); `limit` (>= 1) keeps the first records. A rerun resumes only
    the same run (tfface.data.manifest); `overwrite` starts over. `teacher` ("dlib"): every record also
    gets the teacher's 128-d unit-norm embedding and mask, computed on the photo at the record's face.
    `on_problem` is called with one line (naming the file) per skipped input: each reader problem once
    the dataset is read, each rejected record as it is rejected."""
    from tfface.data.records import DEFAULT_CROP_SIZE, DEFAULT_MARGIN, write_shards

    crop_size = DEFAULT_CROP_SIZE if crop_size is None else crop_size
    margin = DEFAULT_MARGIN if margin is None else margin
    check_arguments(crop_size, margin, limit, shard_size)
    problems: list[str] = []
    records, extra = read_dataset(fmt, root, problems, **reader_args)
    for problem in problems if on_problem is not None else ():
        on_problem(problem)
    records = records[:limit] if limit is not None else records
    label = teacher_model(teacher) if teacher else None  # before the locator: a missing extra leaks nothing
    locate = None
    if fmt in NEEDS_DETECTOR:
        from tfface.data.detect import FaceLocator

        locate = FaceLocator(detector)
    try:
        summary = write_shards(records, out_dir, prefix=fmt, shard_size=shard_size, crop_size=crop_size,
                               margin=margin, total=len(records), progress=progress, locate=locate,
                               extra_summary={"format": fmt, "input": str(root), **extra,
                                              "reader_problems": len(problems), "reader_problem_lines": problems[:1000]},
                               run={"format": fmt, "input": str(Path(root).resolve()), "limit": limit,
                                    "detector": detector, **reader_args,
                                    **({"teacher": teacher} if teacher else {})},
                               overwrite=overwrite, teacher=label, on_reject=on_problem)
    finally:
        if locate is not None:
            locate.close()
    return summary


def check_arguments(crop_size: int, margin: float, limit: int | None, shard_size: int) -> None:
    """One-line TffaceErrors for values the CLI's argument types refuse (for library callers)."""
    (lo_m, hi_m), (lo_c, hi_c) = MARGIN_RANGE, CROP_SIZE_RANGE
    if not (isinstance(margin, numbers.Real) and math.isfinite(margin) and lo_m <= margin <= hi_m):
        raise TffaceError(f"margin must be a number in [{lo_m:g}, {hi_m:g}]. Received: margin={margin}")
    if not (isinstance(crop_size, numbers.Integral) and lo_c <= crop_size <= hi_c):
        raise TffaceError(f"crop_size must be an integer in [{lo_c}, {hi_c}]. Received: crop_size={crop_size}")
    if limit is not None and not (isinstance(limit, numbers.Integral) and limit >= 1):
        raise TffaceError(f"limit must be an integer >= 1 (or None for all). Received: limit={limit}")
    if not (isinstance(shard_size, numbers.Integral) and shard_size >= 1):
        raise TffaceError(f"shard_size must be an integer >= 1. Received: shard_size={shard_size}")


def teacher_model(name: str):
    """The labelling-time teacher by name; a one-line TffaceError when unknown or its extra is missing."""
    if name not in TEACHERS:
        raise TffaceError(f"unknown teacher {name!r} (known: {', '.join(TEACHERS)})")
    from tfface.data.teacher import DlibTeacher

    return DlibTeacher()
