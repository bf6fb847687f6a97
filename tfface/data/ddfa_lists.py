"""3DDFA-style training lists: a text file of face-crop image names plus a matching file of 62-d params.

The layout of 3DDFA (v1)'s `train_aug_120x120.list.train` + `param_all_norm.pkl`: line i of the list
names a size x size crop (already cut around the face) and row i of the parameter file holds its
62 params (12 camera + 40 identity + 10 expression) in that crop's 3DDFA frame, usually normalised
with `param_whitening.pkl` ({'param_mean', 'param_std'}). Param files may be .pkl, .npy or text.

3DDFA v1 maps the frame to pixels as (u, size + 1 - v); 3DDFA_V2 (and tfface) as (u - 1, size - v).
`convention="v1"` shifts v1 params by that one pixel so they decode into the same crop pixels.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tfface.data.records import FaceRecord
from tfface.errors import DataFileError
from tfface.morphable.params import PARAM_DIM, ParamStats
from tfface.morphable.safe_pickle import safe_load_pickle


def read_param_file(path: str | os.PathLike) -> np.ndarray:
    """(N, 62) float32 from .pkl (an array), .npy or whitespace text."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: file not found")
    try:
        if path.suffix == ".pkl":
            data = np.asarray(safe_load_pickle(path), np.float32)
        elif path.suffix == ".npy":
            data = np.load(path, allow_pickle=False).astype(np.float32)
        else:
            data = np.loadtxt(path, dtype=np.float32, ndmin=2)
    except (ValueError, OSError) as e:
        raise DataFileError(f"{path}: not a readable parameter file ({e})") from None
    if data.ndim != 2 or data.shape[1] != PARAM_DIM:
        raise DataFileError(f"{path}: expected an (N, {PARAM_DIM}) parameter array, found {data.shape}")
    return data


def whitening_stats(path: str | os.PathLike) -> ParamStats:
    """3DDFA's `param_whitening.pkl` ({'param_mean', 'param_std'}) or a {'mean', 'std'} pickle/npz."""
    if str(path).endswith(".npz"):
        return ParamStats.from_npz(path)
    data = safe_load_pickle(path)
    if isinstance(data, dict) and {"param_mean", "param_std"} <= set(data):
        return ParamStats(np.asarray(data["param_mean"], np.float32), np.asarray(data["param_std"], np.float32))
    return ParamStats.from_pickle(path)


def read_3ddfa_list(list_file: str | os.PathLike, image_root: str | os.PathLike, param_file: str | os.PathLike,
                    normalized_with: ParamStats | None = None, crop_size: int = 120, convention: str = "v2",
                    source: str = "3ddfa", split: str = "train",
                    problems: list[str] | None = None) -> list[FaceRecord]:
    """FaceRecords (crop image, de-normalised params in the crop's frame, roi = the whole crop).

    Rows with NaN params are reported in `problems` (file and line) and skipped; a list and a
    parameter file of different lengths is an error (the pairing would be wrong).
    """
    if convention not in ("v1", "v2"):
        raise ValueError(f"convention must be 'v1' or 'v2'. Received: {convention!r}")
    list_file, root = Path(list_file), Path(image_root)
    if not list_file.is_file():
        raise DataFileError(f"{list_file}: file not found")
    names = [line.strip() for line in list_file.read_text().splitlines() if line.strip()]
    params = read_param_file(param_file)
    if len(names) != len(params):
        raise DataFileError(f"{list_file}: {len(names)} images but {param_file} holds {len(params)} parameter rows")
    if normalized_with is not None:
        params = normalized_with.denormalize(params)
    if convention == "v1":  # (u, S + 1 - v) -> (u' - 1, S - v'): t_x + 1, t_y - 1
        params = params.copy()
        params[:, 3] += 1.0
        params[:, 7] -= 1.0
    roi = np.array([0, 0, crop_size, crop_size], np.float32)
    records = []
    for line, (name, p) in enumerate(zip(names, params), 1):
        if not np.all(np.isfinite(p)):
            message = f"{param_file}: row {line} ({name}): params contain NaN or infinite values"
            if problems is None:
                raise DataFileError(message)
            problems.append(message)
            continue
        records.append(FaceRecord(image=root / name, source=source, split=split, key=name, roi=roi,
                                  params=p.astype(np.float32), param_size=crop_size))
    return records
