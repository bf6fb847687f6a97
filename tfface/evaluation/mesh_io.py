"""Reading scans and predicted meshes: .obj/.ply/.off/.stl through trimesh, VRML .wrl here (the
IndexedFaceSet coordinates and faces only; MICC Florence ships its scans as VRML)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfface.errors import DataFileError

MESH_SUFFIXES = (".obj", ".ply", ".off", ".stl", ".wrl")
_LIST = r"\[([^\]]*)\]"


@dataclass(frozen=True)
class Mesh:
    vertices: np.ndarray  # (N, 3) float64
    faces: np.ndarray  # (F, 3) int64 triangles (may be empty for point clouds)


def read_mesh(path: str | os.PathLike) -> Mesh:
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix not in MESH_SUFFIXES:
        raise DataFileError(f"{path}: unsupported mesh format (use one of {', '.join(MESH_SUFFIXES)})")
    mesh = read_vrml(path) if suffix == ".wrl" else _read_trimesh(path)
    if len(mesh.vertices) == 0:
        raise DataFileError(f"{path}: the mesh has no vertices")
    if not np.all(np.isfinite(mesh.vertices)):
        raise DataFileError(f"{path}: vertices contain NaN or infinite values")
    return mesh


def _read_trimesh(path: Path) -> Mesh:
    import trimesh

    try:
        loaded = trimesh.load(path, process=False)
    except Exception as e:  # trimesh raises many types for broken files
        raise DataFileError(f"{path}: not a readable mesh ({type(e).__name__}: {e})") from e
    if isinstance(loaded, trimesh.Scene):
        loaded = loaded.to_geometry()
    faces = np.asarray(getattr(loaded, "faces", np.zeros((0, 3))), np.int64).reshape(-1, 3)
    return Mesh(np.asarray(loaded.vertices, np.float64), faces)


def read_vrml(path: str | os.PathLike) -> Mesh:
    """All IndexedFaceSet nodes of a VRML 2.0 file (`coord Coordinate { point [...] }` + `coordIndex`),
    polygons fan-triangulated; DEF/USE references are not resolved."""
    path = Path(path)
    text = re.sub(r"#[^\n]*", "", path.read_text(errors="replace"))  # comments (the header is one too)
    vertices, faces, offset = [], [], 0
    for node in text.split("IndexedFaceSet")[1:]:
        points = re.search(r"\bCoordinate\s*\{[^}]*?\bpoint\s*" + _LIST, node)
        if points is None:
            continue
        v = _numbers(points.group(1), float, path).reshape(-1, 3) if points.group(1).strip() else np.zeros((0, 3))
        index = re.search(r"\bcoordIndex\s*" + _LIST, node)
        if index is not None:
            faces.append(_triangulate(_numbers(index.group(1), int, path), len(v), path) + offset)
        vertices.append(v)
        offset += len(v)
    if not vertices:
        raise DataFileError(f"{path}: no IndexedFaceSet with 'point [...]' coordinates found (not a VRML mesh?)")
    return Mesh(np.concatenate(vertices), np.concatenate(faces) if faces else np.zeros((0, 3), np.int64))


def _numbers(block: str, kind: type, path: Path) -> np.ndarray:
    tokens = block.replace(",", " ").split()
    try:
        values = np.array([kind(t) for t in tokens])
    except ValueError as e:
        raise DataFileError(f"{path}: bad number in VRML list ({e})") from e
    if kind is float and len(values) % 3:
        raise DataFileError(f"{path}: VRML point list has {len(values)} numbers, not a multiple of 3")
    return values


def _triangulate(index: np.ndarray, num_vertices: int, path: Path) -> np.ndarray:
    tris = []
    for poly in np.split(index, np.flatnonzero(index == -1)):
        poly = poly[poly != -1]
        tris += [(poly[0], poly[i], poly[i + 1]) for i in range(1, len(poly) - 1)]
    tris = np.array(tris, np.int64).reshape(-1, 3)
    if tris.size and (tris.min() < 0 or tris.max() >= num_vertices):
        raise DataFileError(f"{path}: coordIndex refers to vertex {tris.max()} of {num_vertices}")
    return tris
