"""Mesh reading (.wrl reader, .obj/.ply through trimesh), ICP recovering known transforms, and the
MICC-style scan RMSE on a real face mesh (ICT-FaceKit mean, skipped without shared data)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from conftest import REPO, shared_path
from tfface.errors import DataFileError
from tfface.evaluation.mesh_io import Mesh, read_mesh, read_vrml
from tfface.evaluation.meshes import (crop_face, evaluate_meshes, icp, nose_tip, pair_meshes, scan_error,
                                      surface_points, write_meshes_report)

FIXTURES = REPO / "tests" / "fixtures" / "evaluation"


def _surface(n: int = 60) -> Mesh:
    """A face-like height field in mm (head, nose, brows, chin and a mole: no symmetry to slide along)."""
    x, y = np.meshgrid(np.linspace(-60, 60, n), np.linspace(-80, 70, n))
    z = 30 * np.exp(-(x ** 2 / 900 + y ** 2 / 2500))
    for cx, cy, a, w in ((0, -5, 15, 120), (-25, 20, 6, 200), (25, 20, 6, 200), (0, -40, 8, 300), (30, -30, 5, 150)):
        z = z + a * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / w)
    i = np.arange(n * n).reshape(n, n)
    a, b, c, d = i[:-1, :-1].ravel(), i[:-1, 1:].ravel(), i[1:, :-1].ravel(), i[1:, 1:].ravel()
    return Mesh(np.stack([x, y, z], -1).reshape(-1, 3), np.r_[np.c_[a, b, c], np.c_[b, d, c]])


def _ict_mean() -> Mesh:
    data = np.load(shared_path("ict_facekit/ict_face_model_full_face.npz"))
    return Mesh(data["mean"].astype(np.float64) * 10.0, data["tri"].astype(np.int64))  # cm -> mm


def test_vrml_reader_reads_every_indexed_face_set():
    mesh = read_vrml(FIXTURES / "two_shapes.wrl")
    np.testing.assert_allclose(mesh.vertices, [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0],
                                               [0, 0, 1], [2.5, 0, 1], [0, 2.5, 1]])
    # the quad fan-triangulated, the triangle's indices offset past the first shape's points
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2], [0, 2, 3], [4, 5, 6]])


def test_obj_and_ply_round_trip_and_bad_files(tmp_path):
    import trimesh

    surface = _surface(8)
    for suffix in (".obj", ".ply"):
        trimesh.Trimesh(surface.vertices, surface.faces, process=False).export(tmp_path / f"s{suffix}")
        mesh = read_mesh(tmp_path / f"s{suffix}")
        np.testing.assert_allclose(mesh.vertices, surface.vertices, atol=1e-5)
        np.testing.assert_array_equal(mesh.faces, surface.faces)
    (tmp_path / "x.wrl").write_text("#VRML V2.0 utf8\nShape { geometry Box { size 1 1 1 } }\n")
    with pytest.raises(DataFileError, match="no IndexedFaceSet"):
        read_mesh(tmp_path / "x.wrl")
    with pytest.raises(DataFileError, match="unsupported mesh format"):
        read_mesh(FIXTURES.parent.parent / "conftest.py")


@pytest.mark.parametrize("scale", [False, True])
def test_point_to_plane_icp_recovers_a_known_transform_on_a_synthetic_surface(scale):
    surface = _surface()
    v = surface.vertices
    target, normals = surface_points(surface, spacing=10.0)  # no subdivision: the grid itself + normals
    assert len(target) == len(v)
    R = Rotation.from_euler("xyz", [6, -9, 4], degrees=True).as_matrix()
    t = np.array([4.0, -7.0, 3.0])
    s = 1.15 if scale else 1.0
    face = crop_face(v, nose_tip(v), 60.0)  # a crop inside the target, as in the protocol
    a = icp(s * face @ R.T + t, target, normals, scale=scale)  # should find x -> R^T (x - t) / s
    np.testing.assert_allclose(a.matrix[:3, :3], R.T / s, atol=1e-6)
    np.testing.assert_allclose(a.matrix[:3, 3], -R.T @ t / s, atol=1e-4)
    assert a.scale == pytest.approx(1 / s) and a.distances.max() < 1e-4


def test_icp_recovers_a_rigid_transform_of_a_real_face_mesh():
    mesh = _ict_mean()
    R = Rotation.from_euler("xyz", [8, -12, 5], degrees=True).as_matrix()
    t = np.array([5.0, -3.0, 10.0])
    a = icp(mesh.vertices @ R.T + t, mesh.vertices)  # point-to-point: same vertices, exact pairs exist
    angle = np.degrees(Rotation.from_matrix(a.matrix[:3, :3] @ R).magnitude())
    assert angle < 0.01 and np.abs(a.matrix[:3, 3] + R.T @ t).max() < 0.01 and a.distances.max() < 1e-3


def test_scan_error_undoes_pose_and_scale_and_measures_real_differences():
    mesh = _ict_mean()
    R = Rotation.from_euler("xyz", [5, 10, -3], degrees=True).as_matrix()
    scan = Mesh(1.1 * mesh.vertices @ R.T + [2.0, 1.0, -4.0], mesh.faces)
    assert scan_error(mesh, scan, radius=95.0, scale=True, spacing=2.0)["rmse"] < 1e-3
    # rigid only: the 10 % scale difference remains, in the scan's millimetres
    assert scan_error(mesh, scan, radius=95.0, scale=False, spacing=2.0)["rmse"] > 1.0
    # a prediction 2 mm too deep in the cheeks/nose region (a smooth shape change) is measured
    deeper = mesh.vertices.copy()
    near_nose = np.linalg.norm(deeper - deeper[np.argmax(deeper[:, 2])], axis=1) < 40
    deeper[near_nose, 2] += 2.0
    err = scan_error(Mesh(deeper, mesh.faces), Mesh(mesh.vertices, mesh.faces), radius=95.0, scale=False, spacing=2.0)
    assert 0.3 < err["rmse"] < 2.0


def test_evaluate_meshes_folders_and_layout_errors(tmp_path):
    import trimesh

    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir(), gt.mkdir()
    surface = _surface(40)
    R = Rotation.from_euler("y", 7, degrees=True).as_matrix()
    for name, noise in (("a", 0.0), ("b", 0.5)):
        trimesh.Trimesh(surface.vertices, surface.faces, process=False).export(pred / f"{name}.obj")
        moved = surface.vertices @ R.T + np.random.default_rng(0).normal(0, noise, surface.vertices.shape)
        trimesh.Trimesh(moved, surface.faces, process=False).export(gt / f"{name}.ply")
    result = evaluate_meshes(pred, gt, radius=95.0, spacing=1.0, progress=False)
    rows = {r["scan"]: r for r in result["rows"]}
    assert rows["a.ply"]["rmse"] < 0.01 and 0.2 < rows["b.ply"]["rmse"] < 0.9
    out = write_meshes_report(result, tmp_path / "out")
    assert json.loads((out / "metrics.json").read_text())["scans"] == 2
    (gt / "c.wrl").write_text((FIXTURES / "two_shapes.wrl").read_text())
    with pytest.raises(DataFileError, match=r"no prediction for 1 scan\(s\).*'c'"):
        pair_meshes(pred, gt)
    with pytest.raises(DataFileError, match="does not exist"):
        pair_meshes(tmp_path / "nothing", gt)
