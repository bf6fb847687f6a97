"""Per-input output files: collision-free names, atomic JSON writes, JSON without NaN.

Naming (`output_stems`): an image found inside a folder argument keeps its path relative to that folder,
a file argument keeps its name; the suffix is dropped (`photos/bob/001.jpg` given as `photos/` ->
`OUT/bob/001.json`, `OUT/bob/001_overlay.png`). Inputs that would still share a name (`face.jpg` and
`face.png`; `a/face.jpg` and `b/face.jpg` given as two files) keep their suffix in the name
(`face_jpg`, `face_png`), and a name that is still taken gets `_2`, `_3`, ... in input order; every
such rename is reported in one line, so no input's result silently replaces another's.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from tfface.errors import DataFileError
from tfface.io.atomic import atomic_path
from tfface.io.images import IMAGE_EXTENSIONS, broken_link


def list_inputs(paths: Iterable[str | os.PathLike], output: str | os.PathLike | None = None) -> list[tuple[Path, Path]]:
    """(file, name relative to its argument) for files as given and image files in folders (recursive);
    the same file reached twice is listed once. With the `output` folder: a folder argument's scan skips
    it (`tfface reconstruct . -o out` does not read back its own outputs), and an input inside it, or
    a folder argument that is it, is refused: outputs there could overwrite inputs."""
    out = Path(output).resolve() if output is not None else None
    found: list[tuple[Path, Path]] = []
    seen: set[Path] = set()
    for arg in map(Path, paths):
        if arg.is_dir():
            _outside(arg, out)
            # a link to nothing is listed, so its photo is reported missing rather than silently left out
            items = [(f, f.relative_to(arg)) for f in sorted(arg.rglob("*"))
                     if (f.is_file() or broken_link(f)) and f.suffix.lower() in IMAGE_EXTENSIONS
                     and (out is None or not f.resolve().is_relative_to(out))]
        else:
            _outside(arg, out)
            items = [(arg, Path(arg.name))]
        for file, rel in items:
            key = file.resolve() if file.exists() else file.absolute()
            if key not in seen:
                seen.add(key)
                found.append((file, rel))
    return found


def _outside(arg: Path, out: Path | None) -> None:
    if out is not None and arg.exists() and arg.resolve().is_relative_to(out):
        where = "is the output folder" if arg.resolve() == out else f"is inside the output folder {out}/"
        raise DataFileError(f"{arg}: this input {where}, where outputs could overwrite inputs or be read as "
                            "inputs by the next run: choose another output folder (-o)")


# Names an input's outputs add to its stem (`<stem>_overlay.jpg`, `<stem>_face1.obj`, ...): an input whose
# own stem is another's plus one of these (`g_face0.jpg` beside `g.jpg`) counts as sharing its name.
DERIVED_NAME = re.compile(r"_(overlay|face\d+|depth|pncc|mesh)$", re.IGNORECASE)


def output_stems(inputs: list[tuple[Path, Path]]) -> tuple[list[str], list[str]]:
    """(one output stem per input, notes on renamed ones); stems are '/'-separated relative paths and
    unique case-insensitively (macOS and Windows folders are case-insensitive), and no stem is another's
    plus a DERIVED_NAME suffix, so no input's output files can be another's."""
    plain = [rel.with_suffix("").as_posix() for _, rel in inputs]
    shared = Counter(s.lower() for s in plain)
    derived = {s for s in shared if DERIVED_NAME.search(s) and DERIVED_NAME.sub("", s) in shared}
    taken: set[str] = set()
    stems: list[str] = []
    notes: list[str] = []
    for (file, rel), stem in zip(inputs, plain):
        if (shared[stem.lower()] > 1 or stem.lower() in derived) and rel.suffix:
            stem = f"{stem}_{rel.suffix[1:].lower()}"
        base, n = stem, 2
        while stem.lower() in taken:
            stem, n = f"{base}_{n}", n + 1
        taken.add(stem.lower())
        stems.append(stem)
        name = plain[len(stems) - 1]
        if stem != name:
            clash = ("another input is also named" if shared[name.lower()] > 1 or name.lower() not in derived
                     else "another input's outputs are also named")
            notes.append(f"{file}: {clash} '{name}'; its outputs are '{stem}.*'")
    return stems, notes


def finite_json(value: Any) -> tuple[Any, int]:
    """(value with every NaN/inf float replaced by None, how many were replaced); numpy scalars and arrays
    become plain Python values."""
    if isinstance(value, dict):
        pairs = [(k, finite_json(v)) for k, v in value.items()]
        return {k: v for k, (v, _) in pairs}, sum(n for _, (_, n) in pairs)
    if isinstance(value, list | tuple | np.ndarray):
        items = [finite_json(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
        return [v for v, _ in items], sum(n for _, n in items)
    if isinstance(value, float | np.floating):
        return (float(value), 0) if math.isfinite(value) else (None, 1)
    if isinstance(value, np.integer | np.bool_):
        return value.item(), 0
    return value, 0


def finite_faces(result: dict[str, Any]) -> dict[str, Any]:
    """A reconstruct result whose faces hold no NaN/inf: those become null, and the face gets a 'warning'."""
    faces = []
    for face in result.get("faces", []):
        clean, bad = finite_json(face)
        if bad:
            clean["warning"] = f"{bad} non-finite model outputs (NaN/inf) written as null: degenerate prediction"
        faces.append(clean)
    return {**result, "faces": faces}


def write_json_atomic(path: str | os.PathLike, data: Any, indent: int | None = 1) -> Path:
    """Write strict JSON (NaN/inf as null) atomically (`atomic_path`)."""
    text = json.dumps(finite_json(data)[0], indent=indent, allow_nan=False)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def check_output_folder(path: str | os.PathLike) -> Path:
    """Create the output folder or say in one line why it cannot be used (a file, read-only, ...)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataFileError(f"{path}: cannot create the output folder ({e.strerror or e})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise DataFileError(f"{path}: the output folder is not writable")
    return path
