"""The morphable model container and loaders for the supported 3DMM files.

All models are stored the same way: vertices are (N, 3) rows of x, y, z; a basis is (K, N, 3), so
shape = mean + sum_k alpha_k * basis[k]. Bases keep the scaling of their source, which defines what
the coefficients mean (3DDFA: the 40/10 coefficients of its 62-d parameters; ICT: N(0, 1) identity
weights and [0, 1] blendshape weights).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfface.errors import DataFileError
from tfface.morphable.safe_pickle import safe_load_pickle

NUM_LANDMARKS = 68


@dataclass(frozen=True)
class MorphableModel:
    """A linear face model: mean shape, identity and expression bases, landmark vertex ids."""

    mean: np.ndarray  # (N, 3) float32
    id_basis: np.ndarray  # (K_id, N, 3) float32
    exp_basis: np.ndarray  # (K_exp, N, 3) float32
    landmarks: np.ndarray  # (68,) int32 vertex ids of the iBUG-68 landmarks
    triangles: np.ndarray | None = None  # (T, 3) int32, when the model is dense
    name: str = "morphable"
    units: str = "model"

    def __post_init__(self) -> None:
        n = self.mean.shape[0]
        if self.mean.ndim != 2 or self.mean.shape[1] != 3:
            raise ValueError(f"{self.name}: mean must be (N, 3). Received: {self.mean.shape}")
        for label, basis in (("id_basis", self.id_basis), ("exp_basis", self.exp_basis)):
            if basis.ndim != 3 or basis.shape[1:] != (n, 3):
                raise ValueError(f"{self.name}: {label} must be (K, {n}, 3). Received: {basis.shape}")
        if self.landmarks.shape != (NUM_LANDMARKS,):
            raise ValueError(f"{self.name}: landmarks must be 68 ids. Received: {self.landmarks.shape}")
        if self.landmarks.min() < 0 or self.landmarks.max() >= n:
            raise ValueError(f"{self.name}: landmark ids outside 0..{n - 1}")
        if self.triangles is not None and (self.triangles.ndim != 2 or self.triangles.shape[1] != 3):
            raise ValueError(f"{self.name}: triangles must be (T, 3). Received: {self.triangles.shape}")

    @property
    def num_vertices(self) -> int:
        return int(self.mean.shape[0])

    @property
    def num_id(self) -> int:
        return int(self.id_basis.shape[0])

    @property
    def num_exp(self) -> int:
        return int(self.exp_basis.shape[0])

    def landmark_model(self) -> "MorphableModel":
        """The same model restricted to its 68 landmark vertices (cheap to evaluate)."""
        ids = self.landmarks
        return MorphableModel(
            mean=self.mean[ids],
            id_basis=self.id_basis[:, ids],
            exp_basis=self.exp_basis[:, ids],
            landmarks=np.arange(NUM_LANDMARKS, dtype=np.int32),
            name=f"{self.name}-68",
            units=self.units,
        )

    def truncated(self, num_id: int, num_exp: int) -> "MorphableModel":
        """Keep the first `num_id` identity and `num_exp` expression components."""
        if not (0 < num_id <= self.num_id and 0 <= num_exp <= self.num_exp):
            raise ValueError(
                f"{self.name}: cannot keep {num_id} id / {num_exp} exp of {self.num_id} / {self.num_exp}"
            )
        return MorphableModel(
            self.mean, self.id_basis[:num_id], self.exp_basis[:num_exp], self.landmarks,
            self.triangles, self.name, self.units,
        )

    def submesh(self, keep: np.ndarray, name: str | None = None) -> "MorphableModel":
        """The model on the vertices where `keep` (N,) bool is true: triangles with a dropped corner go,
        the rest and the landmark ids are renumbered. Every landmark vertex must be kept."""
        keep = np.asarray(keep, bool)
        if keep.shape != (self.num_vertices,):
            raise ValueError(f"{self.name}: keep must be ({self.num_vertices},) bool. Received: {keep.shape}")
        if not keep[self.landmarks].all():
            raise ValueError(f"{self.name}: the submesh drops landmark vertices {self.landmarks[~keep[self.landmarks]]}")
        new_ids = np.cumsum(keep, dtype=np.int64) - 1
        tris = None
        if self.triangles is not None:
            tris = new_ids[self.triangles[keep[self.triangles].all(axis=1)]].astype(np.int32)
        return MorphableModel(self.mean[keep], self.id_basis[:, keep], self.exp_basis[:, keep],
                              new_ids[self.landmarks].astype(np.int32), tris, name or self.name, self.units)

    def save_npz(self, path: str | os.PathLike) -> None:
        arrays = dict(mean=self.mean, id_basis=self.id_basis, exp_basis=self.exp_basis,
                      landmarks=self.landmarks, name=np.array(self.name), units=np.array(self.units))
        if self.triangles is not None:
            arrays["triangles"] = self.triangles
        np.savez_compressed(path, **arrays)


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def _interleaved_to_rows(vec: np.ndarray) -> np.ndarray:
    """[x0, y0, z0, x1, ...] (3N,) -> (N, 3)."""
    return vec.reshape(-1, 3)


def _interleaved_basis(w: np.ndarray) -> np.ndarray:
    """(3N, K) basis with interleaved xyz rows -> (K, N, 3)."""
    return w.T.reshape(w.shape[1], -1, 3)


def _require_file(path: Path) -> Path:
    if not path.is_file():
        raise DataFileError(f"{path}: file not found")
    return path


def _load_txt(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    try:
        a = np.loadtxt(_require_file(path), dtype=np.float64)
    except ValueError as e:
        raise DataFileError(f"{path}: not a numeric text table ({e})") from e
    if a.shape != shape:
        raise DataFileError(f"{path}: expected shape {shape}, found {a.shape}")
    return a


def load_3ddfa_sparse(folder: str | os.PathLike) -> MorphableModel:
    """The 3DDFA 68-landmark base: `u_base.txt` (204), `w_shp_base.txt` (204x40), `w_exp_base.txt` (204x10)."""
    folder = Path(folder)
    u = _load_txt(folder / "u_base.txt", (204,))
    w_shp = _load_txt(folder / "w_shp_base.txt", (204, 40))
    w_exp = _load_txt(folder / "w_exp_base.txt", (204, 10))
    return MorphableModel(
        mean=_f32(_interleaved_to_rows(u)),
        id_basis=_f32(_interleaved_basis(w_shp)),
        exp_basis=_f32(_interleaved_basis(w_exp)),
        landmarks=np.arange(NUM_LANDMARKS, dtype=np.int32),
        name="bfm-3ddfa-68",
    )


_DENSE_KEYS = ("u", "w_shp", "w_exp", "tri", "keypoints")


def load_3ddfa_dense(path: str | os.PathLike) -> MorphableModel:
    """A 3DDFA_V2-style dense BFM pickle: {u (3N,1), w_shp (3N,40), w_exp (3N,10), tri, keypoints}.

    `keypoints` index the interleaved 3N vector (3 entries per landmark); `tri` may be (3, T) or (T, 3).
    """
    data = safe_load_pickle(path)
    if not isinstance(data, dict):
        raise DataFileError(f"{path}: expected a dict with keys {_DENSE_KEYS}, found {type(data).__name__}")
    missing = [k for k in _DENSE_KEYS if k not in data]
    if missing:
        raise DataFileError(f"{path}: missing keys {missing} (expected {_DENSE_KEYS})")
    u = np.asarray(data["u"], np.float64).reshape(-1)
    n3 = u.shape[0]
    w_shp, w_exp = np.asarray(data["w_shp"]), np.asarray(data["w_exp"])
    if w_shp.ndim != 2 or w_exp.ndim != 2:
        raise DataFileError(f"{path}: w_shp {w_shp.shape} and w_exp {w_exp.shape} must be 2-d (3N, K)")
    if n3 % 3 or w_shp.shape[0] != n3 or w_exp.shape[0] != n3:
        raise DataFileError(f"{path}: u {u.shape}, w_shp {w_shp.shape}, w_exp {w_exp.shape} disagree")
    tri = np.asarray(data["tri"], np.int32)
    tri = tri.T if tri.shape[0] == 3 and tri.shape[1] != 3 else tri
    kpt = np.asarray(data["keypoints"], np.int64).reshape(-1)
    if kpt.shape != (3 * NUM_LANDMARKS,):
        raise DataFileError(f"{path}: keypoints must hold 204 entries, found {kpt.shape}")
    if tri.ndim != 2 or tri.shape[1] != 3 or tri.min() < 0 or tri.max() >= n3 // 3:
        raise DataFileError(f"{path}: tri {tri.shape} must be (T, 3) vertex ids below {n3 // 3}")
    if kpt.min() < 0 or kpt.max() >= n3:
        raise DataFileError(f"{path}: keypoints must index the {n3}-entry shape vector")
    return MorphableModel(
        mean=_f32(_interleaved_to_rows(u)),
        id_basis=_f32(_interleaved_basis(w_shp)),
        exp_basis=_f32(_interleaved_basis(w_exp)),
        landmarks=(kpt[::3] // 3).astype(np.int32),
        triangles=np.ascontiguousarray(tri),
        name=Path(path).stem,
    )


def load_ict_facekit(path: str | os.PathLike) -> MorphableModel:
    """ICT-FaceKit face-area model (.npz: mean, id_basis, exp_basis, tri, landmarks68), centimetres."""
    path = _require_file(Path(path))
    try:
        z = np.load(path)
        mean, id_b, exp_b = z["mean"], z["id_basis"], z["exp_basis"]
        tri, lm = z["tri"], z["landmarks68"]
    except KeyError as e:
        raise DataFileError(f"{path}: missing array {e} (need mean, id_basis, exp_basis, tri, landmarks68)") from e
    except (ValueError, OSError) as e:
        raise DataFileError(f"{path}: not a readable .npz ({e})") from e
    return MorphableModel(_f32(mean), _f32(id_b), _f32(exp_b), lm.astype(np.int32),
                          tri.astype(np.int32), name="ict-facekit", units="cm")


def load_npz(path: str | os.PathLike) -> MorphableModel:
    """A model written by `MorphableModel.save_npz` (the format tfface ships its assets in)."""
    path = _require_file(Path(path))
    with np.load(path) as z:
        return MorphableModel(
            mean=z["mean"], id_basis=z["id_basis"], exp_basis=z["exp_basis"],
            landmarks=z["landmarks"], triangles=z["triangles"] if "triangles" in z.files else None,
            name=str(z["name"]), units=str(z["units"]),
        )
