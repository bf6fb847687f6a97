"""Writing meshes as .obj / .ply (with optional per-vertex colour) through trimesh."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def write_mesh(path: str | os.PathLike, vertices: np.ndarray, triangles: np.ndarray,
               colours: np.ndarray | None = None) -> Path:
    """Vertices (N, 3), triangles (T, 3), colours (N, 3) uint8 RGB -> `path` (.obj or .ply)."""
    import trimesh

    path = Path(path)
    if path.suffix.lower() not in (".obj", ".ply"):
        raise ValueError(f"{path}: mesh files must end in .obj or .ply")
    mesh = trimesh.Trimesh(np.asarray(vertices, np.float64), np.asarray(triangles, np.int64),
                           vertex_colors=None if colours is None else np.asarray(colours, np.uint8),
                           process=False)
    mesh.export(path)
    return path
