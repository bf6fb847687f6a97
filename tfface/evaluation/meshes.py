"""3D reconstruction error against scans, the MICC Florence / BU-3DFE protocol.

Per scan: crop the ground-truth scan to the face region (points within `radius` of the nose tip, 95 mm
in the MICC protocol), align it to the predicted mesh with ICP (rigid, optionally with one scale),
then take each cropped scan point's distance to the nearest point of the (subdivided) predicted
surface. RMSE and mean distance are stated in the scan's units (the alignment's scale is undone).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial import cKDTree
from tqdm.auto import tqdm

from tfface.errors import DataFileError
from tfface.evaluation.mesh_io import MESH_SUFFIXES, Mesh, read_mesh


@dataclass(frozen=True)
class Alignment:
    matrix: np.ndarray  # (4, 4) maps the source points onto the target
    scale: float
    aligned: np.ndarray  # (N, 3) the source points after the transform
    distances: np.ndarray  # (N,) each aligned point's nearest-target distance (target units)


def nose_tip(vertices: np.ndarray) -> np.ndarray:
    """The frontmost point (largest z): the nose tip of a roughly frontal face looking along +z."""
    return vertices[np.argmax(vertices[:, 2])]


def crop_face(vertices: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    return vertices[np.linalg.norm(vertices - centre, axis=1) <= radius]


def icp(source: np.ndarray, target: np.ndarray, target_normals: np.ndarray | None = None, scale: bool = False,
        initial: np.ndarray | None = None, max_iterations: int = 200, tolerance: float = 1e-10,
        keep: float = 0.9) -> Alignment:
    """Align `source` points onto `target` points with trimmed ICP: each step uses only the `keep`
    fraction of closest pairs (scan borders and holes do not pull). With `target_normals` it minimises
    point-to-plane distances (fast and exact on smooth surfaces), else point-to-point (trimesh's
    Procrustes). Rigid, or with one scale. Default start: centroids matched."""
    from trimesh.transformations import transform_points

    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    matrix = np.eye(4) if initial is None else np.asarray(initial, np.float64).copy()
    if initial is None:
        matrix[:3, 3] = target.mean(axis=0) - source.mean(axis=0)
    tree, previous = cKDTree(target), np.inf
    for _ in range(max_iterations):
        moved = transform_points(source, matrix)
        dist, idx = tree.query(moved)
        close = dist <= np.quantile(dist, keep)
        a, b = moved[close], target[idx[close]]
        if target_normals is None:
            cost = float(np.mean(dist[close] ** 2))
            step = _procrustes(a, b, scale)
        else:
            n = target_normals[idx[close]]
            cost = float(np.mean(np.sum((a - b) * n, axis=1) ** 2))
            step = _plane_step(a, b, n, scale)
        if previous - cost < tolerance:
            break
        matrix, previous = step @ matrix, cost
    aligned = transform_points(source, matrix)
    return Alignment(matrix, float(np.cbrt(np.linalg.det(matrix[:3, :3]))), aligned, tree.query(aligned)[0])


def _procrustes(a: np.ndarray, b: np.ndarray, scale: bool) -> np.ndarray:
    from trimesh.registration import procrustes

    return procrustes(a, b, reflection=False, scale=scale, return_cost=False)


def _plane_step(a: np.ndarray, b: np.ndarray, n: np.ndarray, scale: bool) -> np.ndarray:
    """One linearised point-to-plane step: minimise sum (n . (a + w x a + ds a + t - b))^2 about the
    centroid of `a`, then apply the exact rotation exp(w)."""
    from scipy.spatial.transform import Rotation

    c = a.mean(axis=0)
    p = a - c
    cols = [np.cross(p, n), n] + ([np.sum(p * n, axis=1, keepdims=True)] if scale else [])
    x, *_ = np.linalg.lstsq(np.hstack(cols), np.sum((b - a) * n, axis=1), rcond=None)
    s = 1.0 + (x[6] if scale else 0.0)
    step = np.eye(4)
    step[:3, :3] = s * Rotation.from_rotvec(x[:3]).as_matrix()
    step[:3, 3] = c + x[3:6] - step[:3, :3] @ c
    return step


def surface_points(mesh: Mesh, spacing: float) -> tuple[np.ndarray, np.ndarray | None]:
    """Mesh vertices plus subdivision points so no edge is longer than `spacing`, with vertex normals
    (None for a point cloud: point-to-point ICP then)."""
    if not len(mesh.faces):
        return mesh.vertices, None
    import trimesh

    vertices, faces = trimesh.remesh.subdivide_to_size(mesh.vertices, mesh.faces, max_edge=spacing, max_iter=12)
    return vertices, np.asarray(trimesh.Trimesh(vertices, faces, process=False).vertex_normals)


def scan_error(prediction: Mesh, scan: Mesh, radius: float = 95.0, scale: bool = True,
               spacing: float = 1.0) -> dict[str, float]:
    """RMSE (and mean, median) of the cropped scan's distance to the predicted surface after ICP."""
    face = crop_face(scan.vertices, nose_tip(scan.vertices), radius)
    if len(face) < 10:
        raise DataFileError(f"only {len(face)} scan points lie within {radius} of the nose tip; check units/radius")
    target, normals = surface_points(prediction, spacing)
    initial = np.eye(4)
    initial[:3, 3] = nose_tip(prediction.vertices) - nose_tip(face)  # nose tips together to start
    a = icp(face, target, normals, scale=scale, initial=initial)
    d = a.distances / a.scale  # back to the scan's units
    return {"rmse": float(np.sqrt(np.mean(d ** 2))), "mean": float(d.mean()), "median": float(np.median(d)),
            "scale": a.scale, "points": int(len(face))}


def pair_meshes(pred_dir: str | os.PathLike, gt_dir: str | os.PathLike) -> list[tuple[Path, Path]]:
    """Predicted and ground-truth meshes with the same file stem, in any supported format."""
    found = {}
    for name, folder in (("predictions", Path(pred_dir)), ("ground truth", Path(gt_dir))):
        if not folder.is_dir():
            raise DataFileError(f"{folder}: the {name} folder does not exist")
        files = {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in MESH_SUFFIXES}
        if not files:
            raise DataFileError(f"{folder}: no meshes ({', '.join(MESH_SUFFIXES)}) in the {name} folder")
        found[name] = files
    pred, gt = found["predictions"], found["ground truth"]
    missing = sorted(set(gt) - set(pred))
    if missing:
        raise DataFileError(f"{pred_dir}: no prediction for {len(missing)} scan(s) of {gt_dir}, e.g. {missing[:3]} "
                            "(predictions are matched to scans by file name without suffix)")
    return [(pred[s], gt[s]) for s in sorted(gt)]


def evaluate_meshes(pred_dir: str | os.PathLike, gt_dir: str | os.PathLike, radius: float = 95.0,
                    scale: bool = True, spacing: float = 1.0, progress: bool = True) -> dict[str, Any]:
    rows = []
    for pred_path, gt_path in tqdm(pair_meshes(pred_dir, gt_dir), desc="meshes", disable=not progress):
        prediction, scan = read_mesh(pred_path), read_mesh(gt_path)
        try:
            err = scan_error(prediction, scan, radius, scale, spacing)
        except DataFileError as e:
            raise DataFileError(f"{gt_path}: {e}") from e
        rows.append({"scan": gt_path.name, "prediction": pred_path.name, **err})
    rmse = np.array([r["rmse"] for r in rows])
    metrics = {"scans": len(rows), "rmse_mean": float(rmse.mean()), "rmse_std": float(rmse.std()),
               "protocol": f"scan cropped to {radius} (scan units) around its nose tip (largest z); "
                           f"ICP ({'rigid + scale' if scale else 'rigid'}) of the crop onto the prediction; "
                           f"distance to the prediction subdivided to edges <= {spacing}"}
    return {"metrics": metrics, "rows": rows}


def write_meshes_report(result: dict[str, Any], out_dir: str | os.PathLike) -> Path:
    from tfface.evaluation.outputs import markdown_table, write_csv, write_json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    m = result["metrics"]
    write_json(m, out / "metrics.json")
    write_csv(result["rows"], out / "per_scan.csv")
    table = markdown_table(["scans", "RMSE mean", "RMSE std"], [[m["scans"], m["rmse_mean"], m["rmse_std"]]], 3)
    (out / "report.md").write_text(f"# 3D reconstruction error\n\nProtocol: {m['protocol']}.\n\n{table}\n")
    return out
