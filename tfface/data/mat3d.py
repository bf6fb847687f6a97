"""The `.mat` labels of 300W-LP and AFLW2000-3D (Zhu et al., 3DDFA).

Keys: `pt2d` (2x68 in 300W-LP, 2x21 AFLW points in AFLW2000-3D, -1 where invisible), `pt3d_68`
(3x68, AFLW2000-3D only: the re-annotated 68 landmarks in image pixels), `Pose_Para` 1x7
[pitch, yaw, roll (radians), tx, ty, tz, scale], `Shape_Para` 199x1, `Exp_Para` 29x1, `roi` 1x4.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.io as sio

from tfface.errors import DataFileError

if TYPE_CHECKING:  # records imports this module's readers
    from tfface.data.records import FaceRecord

_REQUIRED = ("Pose_Para", "Shape_Para", "Exp_Para")


@dataclass(frozen=True)
class Mat3DLabel:
    path: Path
    landmarks: np.ndarray  # (68, 2 or 3) image pixels: pt3d_68 when present, else pt2d (300W-LP)
    pose: np.ndarray  # (3,) yaw, pitch, roll in degrees, tfface's (= Pose_Para's) convention
    shape_para: np.ndarray  # (199,) BFM identity coefficients
    exp_para: np.ndarray  # (29,) FaceWarehouse expression coefficients
    roi: np.ndarray | None  # (4,) as stored; not a reliable face box in AFLW2000-3D

    @property
    def has_3d_landmarks(self) -> bool:
        return self.landmarks.shape[1] == 3


def read_3d_mat(path: str | os.PathLike) -> Mat3DLabel:
    """Read one 300W-LP / AFLW2000-3D label file; wrong or missing fields raise DataFileError."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: file not found")
    try:
        m = sio.loadmat(path)
    except Exception as e:  # scipy raises several types for truncated/non-mat files
        raise DataFileError(f"{path}: not a readable .mat file ({type(e).__name__}: {e})") from e
    missing = [k for k in _REQUIRED if k not in m]
    if "pt3d_68" not in m and "pt2d" not in m:
        missing.append("pt3d_68 or pt2d")
    if missing:
        raise DataFileError(f"{path}: missing keys {missing} (a 300W-LP / AFLW2000-3D label needs "
                            f"{list(_REQUIRED)} and pt3d_68 or pt2d)")
    if "pt3d_68" in m:
        landmarks = _matrix(m, "pt3d_68", path, rows=(3,)).T
    else:
        landmarks = _matrix(m, "pt2d", path, rows=(2,)).T
        if landmarks.shape[0] != 68:
            raise DataFileError(f"{path}: pt2d holds {landmarks.shape[0]} points and there is no pt3d_68")
    if landmarks.shape[0] != 68:
        raise DataFileError(f"{path}: expected 68 landmarks, found {landmarks.shape[0]}")
    if not (np.ptp(landmarks[:, 0]) > 0 and np.ptp(landmarks[:, 1]) > 0):  # no face box, no NME scale
        raise DataFileError(f"{path}: the 68 landmarks span no area (all on one point or line)")
    pose_para = _numbers(m, "Pose_Para", path).reshape(-1)
    if pose_para.shape[0] < 3 or not np.all(np.isfinite(pose_para[:3])):
        raise DataFileError(f"{path}: Pose_Para must start with finite pitch, yaw, roll; found {pose_para[:3]}")
    pitch, yaw, roll = np.degrees(pose_para[:3])
    roi = _numbers(m, "roi", path).reshape(-1).astype(np.float32) if "roi" in m else None
    return Mat3DLabel(path, landmarks.astype(np.float32), np.array([yaw, pitch, roll], np.float32),
                      _numbers(m, "Shape_Para", path).reshape(-1).astype(np.float32),
                      _numbers(m, "Exp_Para", path).reshape(-1).astype(np.float32), roi)


def _numbers(m: dict, key: str, path: Path) -> np.ndarray:
    """m[key] as float64; text, cell arrays and structs are a DataFileError naming the key."""
    try:
        return np.asarray(m[key], np.float64)
    except (TypeError, ValueError):
        kinds = {"U": "text", "S": "text", "O": "a cell array or struct"}
        kind = kinds.get(np.asarray(m[key]).dtype.kind, "other data")
        raise DataFileError(f"{path}: {key} is not a numeric array (found {kind})") from None


def _matrix(m: dict, key: str, path: Path, rows: tuple[int, ...]) -> np.ndarray:
    a = _numbers(m, key, path)
    if a.ndim != 2 or a.shape[0] not in rows:
        raise DataFileError(f"{path}: {key} has shape {a.shape}, expected ({'/'.join(map(str, rows))}, N)")
    if not np.all(np.isfinite(a)):
        raise DataFileError(f"{path}: {key} contains NaN or infinite values")
    return a


def aflw2000_pairs(folder: str | os.PathLike) -> list[tuple[Path, Path]]:
    """(image, .mat) pairs of an AFLW2000-3D folder (the official flat layout or with an AFLW2000/ subfolder)."""
    root = Path(folder)
    if not root.is_dir():
        raise DataFileError(f"{root}: not a folder")
    if (root / "AFLW2000").is_dir():
        root = root / "AFLW2000"
    pairs = [(jpg, jpg.with_suffix(".mat")) for jpg in sorted(root.glob("image*.jpg"))]
    missing = [str(mat.name) for _, mat in pairs if not mat.is_file()]
    if not pairs:
        raise DataFileError(f"{folder}: no AFLW2000-3D images (imageNNNNN.jpg with a .mat beside each) found")
    if missing:
        raise DataFileError(f"{folder}: {len(missing)} images have no .mat label, e.g. {missing[:3]}")
    return pairs


def mat3d_records(pairs: list[tuple[Path, Path]], source: str, split: str = "train",
                  problems: list[str] | None = None) -> list[FaceRecord]:
    """(image, .mat) pairs -> FaceRecords with 68 landmarks (image px) and pose; a bad .mat is reported
    in `problems` (file and reason) and skipped.

    The .mat's Shape_Para / Exp_Para are BFM-199 / FaceWarehouse-29 coefficients, not the 3DDFA 62-d
    parameters, so these records carry no `params`.
    """
    from tfface.data.records import FaceRecord

    records = []
    for image, mat in pairs:
        try:
            label = read_3d_mat(mat)
        except DataFileError as e:
            if problems is None:
                raise
            problems.append(str(e))
            continue
        records.append(FaceRecord(image=Path(image), source=source, split=split, key=Path(image).name,
                                  landmarks=label.landmarks, pose=label.pose))
    return records


def lp300w_pairs(folder: str | os.PathLike) -> list[tuple[Path, Path]]:
    """(image, .mat) pairs of a 300W-LP folder (any depth: AFW/, HELEN/, ..., *_Flip/); images without
    a .mat beside them are skipped (300W-LP keeps landmarks/ as a separate tree)."""
    root = Path(folder)
    if not root.is_dir():
        raise DataFileError(f"{root}: not a folder")
    pairs = [(jpg, jpg.with_suffix(".mat")) for jpg in sorted(root.rglob("*.jpg")) if jpg.with_suffix(".mat").is_file()]
    if not pairs:
        raise DataFileError(f"{root}: no 300W-LP images (NAME.jpg with NAME.mat beside it) found")
    return pairs
