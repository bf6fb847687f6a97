"""`tfface fit`'s work as a library: photos (in one of three layouts) -> landmarks -> 3DMM fits ->
TFRecord shards (tfface.data.records), `labels.jsonl` and `fit_summary.json`."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tfface.errors import DataFileError


def label_items(paths: list[Path], layout: str = "folder", identities: Path | None = None,
                limit: int = 0) -> list[tuple[Path, str | None]]:
    """(image, person or None) for every photo under `paths` in `layout` (at most `limit`; 0: all)."""
    from tfface.io.images import list_images

    if layout == "identity":
        from tfface.data.identity_folders import identity_samples, read_identity_folders

        items = [(p, person) for root in paths for p, person in identity_samples(read_identity_folders(root))]
    elif layout == "celeba":
        from tfface.data.celeba import read_identities

        if identities is None:
            raise DataFileError("--layout celeba needs --identities (identity_CelebA.txt or a subset of it)")
        ids = read_identities(identities)
        items = [(p, str(ids[p.name])) for p in list_images(paths) if p.name in ids]
    else:
        items = [(p, None) for p in list_images(paths)]
    if not items:
        raise DataFileError(f"no images found in {', '.join(map(str, paths))} for layout '{layout}'")
    return items[:limit] if limit > 0 else items


def label_photos(items: list[tuple[Path, str | None]], output: Path, landmarks: str = "network",
                 per_identity: bool = False, max_nme: float = 5.0, shard_size: int = 1000,
                 source_name: str = "fitted", run_args: dict[str, Any] | None = None,
                 overwrite: bool = False, on_failed: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Fit every photo's faces and write shards, labels.jsonl and fit_summary.json into `output`;
    returns the summary. `max_nme` is in percent. A rerun into `output` resumes only when `run_args`
    (what the run was asked) match the stored manifest; `overwrite` starts over. `on_failed` is called
    with one line, "FILE: reason", per photo that fails (unreadable, no face, refused) as it fails."""
    from tfface.data.manifest import build_manifest, check_resume
    from tfface.data.records import FaceRecord, write_shards
    from tfface.io.outputs import write_json_atomic
    from tfface.fitting.dataset import LabelRun, find_landmarks, fit_faces
    from tfface.landmarks.sources import landmark_source
    from tfface.quiet import native_stderr_silenced

    if not (math.isfinite(max_nme) and max_nme > 0):
        raise DataFileError(f"--max-nme must be a finite number > 0. Received: {max_nme}")
    if shard_size < 1:
        raise DataFileError(f"--shard-size must be >= 1. Received: {shard_size}")
    run_args = run_args or {}
    check_resume(output, "fitted", build_manifest("fitted", {}, run_args, []), overwrite,
                 keys=("tfface_version", "run"))  # before minutes of fitting
    with native_stderr_silenced():
        source = landmark_source(landmarks)
    labelled = LabelRun(on_failed=on_failed)
    try:
        found = find_landmarks(items, source, labelled)
    finally:
        source.close()
    fit_faces(found, labelled, per_identity, max_nme / 100)
    people = sorted({f.person for f in labelled.kept if f.person is not None})
    classes = {p: i for i, p in enumerate(people)}
    records = [FaceRecord(image=f.path, source=source_name, key=str(f.path), roi=f.roi, landmarks=f.landmarks,
                          params=f.params, pose=f.pose, identity=classes.get(f.person, -1))
               for f in labelled.kept]
    mode = "per-identity" if per_identity else "single-image"
    summary = labelled.summary(max_nme / 100, mode, landmarks)
    output.mkdir(parents=True, exist_ok=True)
    with open(output / "labels.jsonl", "w") as fh:
        for f in labelled.kept:
            fh.write(json.dumps({"image": str(f.path), "person": f.person, "identity": classes.get(f.person, -1),
                                 "roi": [round(float(v), 2) for v in f.roi],
                                 "landmarks": [[round(float(v), 2) for v in p] for p in f.landmarks],
                                 "params": [float(f"{v:.6g}") for v in f.params],
                                 "pose": [round(float(v), 3) for v in f.pose], "nme": round(f.nme, 5)}) + "\n")
    shards = write_shards(records, output, prefix="fitted", shard_size=shard_size, total=len(records), run=run_args,
                          extra_summary={"fit": {k: v for k, v in summary.items()
                                                 if k not in ("flagged_faces", "failed_images")}},
                          on_reject=on_failed)
    summary["written_records"] = shards["written"]
    summary["classes"] = classes
    write_json_atomic(output / "fit_summary.json", summary)  # strict JSON: NaN statistics as null
    return summary
