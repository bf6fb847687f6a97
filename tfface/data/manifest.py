"""Run manifests of resumable writers: what a shard folder was made with, so a rerun resumes only its own run.

`<out>/<prefix>.run.json` holds the tfface version, the shard arguments (shard size, crop size, margin,
JPEG quality), the caller's run arguments (dataset format, input folder, split, limit, ...) and a digest of
the input records. A rerun whose manifest differs would mix two runs' shards (another --shard-size
duplicates records; another --split or --limit leaves stale shards the pipeline's glob reads), so it
stops with one line naming what changed and how to start over (`--overwrite`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tfface.errors import TffaceError


def manifest_path(out_dir: str | os.PathLike, prefix: str) -> Path:
    return Path(out_dir) / f"{prefix}.run.json"


def records_digest(records: Sequence[Any]) -> dict[str, Any]:
    """Count and sha256 of what the records are (keys, files, splits, labels): other inputs, other digest."""
    h = hashlib.sha256()
    for r in records:
        image = r.image if isinstance(r.image, bytes) else os.fspath(r.image).encode()
        h.update(f"{r.key}\0{r.source}\0{r.split}\0{r.identity}\0".encode())
        h.update(hashlib.sha256(image).digest())
        for name in ("roi", "box", "landmarks", "params", "pose", "attributes"):
            value = getattr(r, name, None)
            h.update(b"-" if value is None else np.ascontiguousarray(value, np.float64).tobytes())
    return {"count": len(records), "sha256": h.hexdigest()}


def build_manifest(prefix: str, shard_args: dict[str, Any], run: dict[str, Any] | None,
                   records: Iterable[Any]) -> dict[str, Any]:
    from tfface import __version__

    manifest = {"tfface_version": __version__, "prefix": prefix, "shards": shard_args,
                "run": json.loads(json.dumps(run or {}, default=str))}
    if isinstance(records, Sequence):
        manifest["records"] = records_digest(records)
    return manifest


def _existing(out: Path, prefix: str) -> list[Path]:
    return sorted(p for pattern in (f"{prefix}-*.tfrecord", f"{prefix}-*.json", f"{prefix}-*.tfrecord.tmp")
                  for p in out.glob(pattern))


def _differences(old: dict[str, Any], new: dict[str, Any], keys: Iterable[str]) -> list[str]:
    changed = []
    for key in keys:
        a, b = old.get(key), new.get(key)
        if key in ("shards", "run") and isinstance(a, dict) and isinstance(b, dict):
            changed += [f"{key}.{k} {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            changed.append("input records differ" if key == "records" else f"{key} {a!r} -> {b!r}")
    return changed


def check_resume(out_dir: str | os.PathLike, prefix: str, manifest: dict[str, Any], overwrite: bool = False,
                 keys: Iterable[str] | None = None) -> bool:
    """Before writing into `out_dir`: with `overwrite`, delete this prefix's shards, sidecars and manifest
    and return False; else return True when a matching manifest lets finished shards be resumed, False
    when there is nothing to resume, and raise a one-line TffaceError when the folder holds another run's
    (or unknown) shards. `keys`: compare only these manifest entries (an early check before slow work)."""
    out, path = Path(out_dir), manifest_path(out_dir, prefix)
    if overwrite:
        for p in [*_existing(out, prefix), path]:
            p.unlink(missing_ok=True)
        return False
    how = f"rerun with --overwrite to start over, or choose another output folder than {out}"
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise TffaceError(f"{path}: unreadable run manifest ({e}); {how}") from None
        changed = _differences(old if isinstance(old, dict) else {}, manifest, keys or manifest.keys())
        if changed:
            raise TffaceError(f"{out}: holds {prefix} shards of another run ({'; '.join(changed[:4])}); {how}")
        return True
    stale = [p for p in _existing(out, prefix) if not p.name.endswith(".tmp")]
    if stale:
        raise TffaceError(f"{out}: holds {len(stale)} {prefix} shard files with no run manifest ({path.name}); {how}")
    return False


# `tfface train` resumes finished phases (phase<i>_<name>.weights.h5) and a killed phase (backup/); its
# config.json is the manifest. Only the progress bar's verbosity may change between the runs.
_TRAIN_FREE_KEYS = ("trainer.verbose", "trainer.output_dir")


def flat_differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """'key.path old -> new' for every leaf that differs between two nested dicts."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for k in sorted(set(old) | set(new), key=str)
                for d in flat_differences(old.get(k), new.get(k), f"{prefix}{k}.")]
    return [] if old == new else [f"{prefix.rstrip('.')} {old!r} -> {new!r}"]


def check_training_resume(out_dir: str | os.PathLike, config: dict[str, Any], overwrite: bool = False) -> None:
    """Before `tfface train` writes into `out_dir`: with `overwrite`, delete the earlier run's weights and
    backups; else raise a one-line TffaceError when they were trained with another config."""
    import shutil

    out = Path(out_dir)
    progress = [*out.glob("phase*.weights.h5"),
                *[p for p in (out / "backup", out / "checkpoints", out / "model.keras") if p.exists()]]
    if overwrite:  # the CSV logs append: they go too
        for p in [*progress, *out.glob("log_phase*.csv")]:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
        return
    if not progress:
        return
    how = f"rerun with --overwrite to start over, or choose another output folder than {out}"
    try:
        old = json.loads((out / "config.json").read_text())
    except (OSError, ValueError):
        raise TffaceError(f"{out}: holds training progress without a readable config.json; {how}") from None
    config = json.loads(json.dumps(config, default=str))  # as the trainer wrote it: tuples are lists
    changed = [d for d in flat_differences(old, config) if not d.startswith(_TRAIN_FREE_KEYS)]
    if changed:
        raise TffaceError(f"{out}: holds a training run with another config ({'; '.join(changed[:4])}); {how}")
