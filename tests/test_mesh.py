"""Dense meshes: rasteriser, .obj/.ply export, ICT-FaceKit fit placement, `reconstruct --mesh`."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from conftest import SAMPLE_IMAGE

from tfface.fitting.ict_asset import ict_face_model
from tfface.render.maps import depth_image, ncc_code, pncc_image
from tfface.render.mesh_export import write_mesh
from tfface.render.rasterize import rasterize, vertex_normals

SQUARE = np.array([[10, 10, 0], [50, 10, 0], [50, 40, 0], [10, 40, 0]], float)
SQUARE_TRIS = np.array([[0, 1, 2], [0, 2, 3]])


def test_rasterizer_covers_the_area_and_keeps_the_nearest():
    r = rasterize(SQUARE, SQUARE_TRIS, 60, 80)
    assert r.mask.sum() == 41 * 31  # pixel centres 10..50 x 10..40 inclusive
    assert r.mask[10, 10] and not r.mask[9, 10] and not r.mask[41, 30]
    near = SQUARE + [0, 0, 5]  # the same square 5 px nearer, half as wide
    near[[1, 2], 0] = 30
    both = rasterize(np.r_[SQUARE, near], np.r_[SQUARE_TRIS, SQUARE_TRIS + 4], 60, 80)
    assert np.all(both.depth[20, 12:30] == 5) and np.all(both.depth[20, 31:50] == 0)
    assert np.all(both.triangle[20, 12:30] >= 2)
    uv = both.interpolate(np.r_[SQUARE, near][:, :2].astype(np.float32), np.r_[SQUARE_TRIS, SQUARE_TRIS + 4])
    assert np.allclose(uv[25, 40], [40, 25], atol=1e-4)  # barycentric interpolation is exact on planes


def test_renders_have_photo_size_and_signal():
    model = ict_face_model()
    verts = model.mean * [10, -10, 10] + [150, 150, 0]  # cm -> px, y down, centred in a 300x300 image
    tris = model.triangles[:, ::-1]
    depth = depth_image([(verts, tris)], 300, 300)
    pncc = pncc_image([(verts, tris)], [ncc_code(model.mean)], 300, 300)
    assert depth.shape == pncc.shape == (300, 300, 3)
    nose = verts[np.argmax(model.mean[:, 2])]
    assert depth[int(nose[1]), int(nose[0]), 0] > 230  # the nose tip is the nearest point
    assert depth[5, 5, 0] == 0 and pncc[5, 5].sum() == 0
    normals = vertex_normals(verts, tris)
    assert normals[np.argmax(model.mean[:, 2]), 2] > 0.8  # reversed winding: normals face the viewer


@pytest.mark.parametrize("suffix", [".obj", ".ply"])
def test_mesh_files_load_in_trimesh(tmp_path, suffix):
    model = ict_face_model()
    colours = np.random.default_rng(0).integers(0, 256, (model.num_vertices, 3), dtype=np.uint8)
    path = write_mesh(tmp_path / f"face{suffix}", model.mean, model.triangles, colours)
    mesh = trimesh.load(path, process=False)
    assert mesh.vertices.shape == (8480, 3) and mesh.faces.shape == (16614, 3)
    assert np.allclose(mesh.vertices, model.mean, atol=1e-5)
    assert np.array_equal(mesh.visual.vertex_colors[:, :3], colours)


@pytest.mark.slow
def test_dense_mesh_lands_on_the_network_landmarks(reconstructor):
    from tfface.fitting.dense import DenseFitter
    from tfface.io.images import read_image

    faces = reconstructor(read_image(SAMPLE_IMAGE))
    dense = DenseFitter()(np.stack([f.landmarks for f in faces]))
    assert len(dense) == 2
    for face, mesh in zip(faces, dense):
        err = np.linalg.norm(mesh.landmarks[:, :2] - face.landmarks[:, :2], axis=1)
        assert err.mean() < 3.5 and err.max() < 10.0, err  # px; faces are ~330 px crops
        assert mesh.vertices.shape == (8480, 3)
        inside = (mesh.vertices[:, 0] > face.roi_box[0]) & (mesh.vertices[:, 0] < face.roi_box[2])
        assert inside.mean() > 0.95
        face_height = face.landmarks[8, 1] - face.landmarks[19:25, 1].mean()
        assert mesh.vertices[:, 1].max() < face.landmarks[8, 1] + 0.2 * face_height  # no neck over the collar


def test_face_region_drops_the_neck_and_keeps_the_ears():
    from tfface.morphable.model import MorphableModel

    full, face = ict_face_model(region="full"), ict_face_model()
    bfm_points = ict_face_model(landmark_set="bfm")
    chin = face.mean[face.landmarks[8]]
    # the full model reaches ~9 cm below the chin (the neck); the face region ends under the jaw
    assert full.mean[:, 1].min() < chin[1] - 8 and face.mean[:, 1].min() > chin[1] - 2
    # the ears (beyond the outer contour points, at eye height) stay; the landmarks are the same points
    assert np.abs(face.mean[:, 0]).max() == pytest.approx(np.abs(full.mean[:, 0]).max())
    np.testing.assert_array_equal(face.mean[face.landmarks], full.mean[full.landmarks])
    assert bfm_points.num_vertices == face.num_vertices
    # a closed submesh: every triangle refers to kept vertices, nothing dangling
    assert face.triangles.max() == face.num_vertices - 1 and len(np.unique(face.triangles)) == face.num_vertices
    drop_chin = np.ones(full.num_vertices, bool)
    drop_chin[full.landmarks[8]] = False
    with pytest.raises(ValueError, match="drops landmark vertices"):
        MorphableModel.submesh(full, drop_chin)


@pytest.mark.slow
def test_reconstruct_mesh_cli(tmp_path):
    from tfface.cli.main import main

    assert main(["reconstruct", str(SAMPLE_IMAGE), "-o", str(tmp_path), "--mesh"]) == 0
    for name in ("trump_hillary.obj", "trump_hillary.ply"):
        mesh = trimesh.load(tmp_path / name, process=False)
        assert mesh.vertices.shape == (2 * 8480, 3) and mesh.faces.shape == (2 * 16614, 3)
    for k in (0, 1):
        mesh = trimesh.load(tmp_path / f"trump_hillary_face{k}.ply", process=False)
        assert mesh.vertices.shape == (8480, 3) and mesh.visual.vertex_colors.shape == (8480, 4)
    from tfface.io.images import read_image

    depth = read_image(tmp_path / "trump_hillary_depth.png")
    assert depth.shape == read_image(SAMPLE_IMAGE).shape and (depth > 0).mean() > 0.05
    assert (tmp_path / "trump_hillary_pncc.png").is_file() and (tmp_path / "trump_hillary_mesh.png").is_file()


def test_dense_basis_in_network_coefficients():
    """The ICT face as a linear function of the 3DDFA coefficients: its landmark vertices follow the
    network's 68 landmarks for any coefficients (a ridge fit's residual, ~1.3% of the face size)."""
    from tfface.fitting.dense_basis import dense_shape_basis, similarity, simplified
    from tfface.fitting.prior import default_prior
    from tfface.models.presets import morphable_asset

    rng = np.random.default_rng(0)
    pts = rng.normal(size=(30, 3))
    rot, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rot *= np.sign(np.linalg.det(rot))
    s, r, t = similarity(pts, 2.5 * pts @ rot.T + [1, 2, 3])
    assert s == pytest.approx(2.5) and np.allclose(r, rot) and np.allclose(t, [1, 2, 3])

    bfm = morphable_asset("bfm_3ddfa_68")
    dense = dense_shape_basis(bfm)
    assert dense.id_basis.shape[0] == bfm.num_id and dense.exp_basis.shape[0] == bfm.num_exp
    prior = default_prior(bfm)
    aid = prior.id_mean + rng.normal(size=(40, bfm.num_id)) * prior.id_std
    aexp = prior.exp_mean + rng.normal(size=(40, bfm.num_exp)) * prior.exp_std
    shape = lambda m: m.mean + np.einsum("bk,knc->bnc", aid, m.id_basis) + np.einsum("bk,knc->bnc", aexp, m.exp_basis)  # noqa: E731
    target, ours = shape(bfm), shape(dense)[:, dense.landmarks]
    size = np.sqrt(np.ptp(target[..., 0], axis=1) * np.ptp(target[..., 1], axis=1))
    err = np.linalg.norm(ours - target, axis=-1).mean(axis=1) / size
    assert err.max() < 0.02, err.max()
    # the landmarks' motion away from the mean face is followed, not just the mean shape matched
    motion = target - bfm.mean
    followed = ours - dense.mean[dense.landmarks]
    miss = np.linalg.norm(followed - motion, axis=-1).mean(axis=1) / np.linalg.norm(motion, axis=-1).mean(axis=1)
    assert np.median(miss) < 0.35, np.median(miss)

    coarse = simplified(dense, 0.07 * float(size.mean()))
    assert 500 < coarse.num_vertices < 2000 and coarse.triangles.max() < coarse.num_vertices
    assert len(np.unique(coarse.triangles)) > 0.95 * coarse.num_vertices
    np.testing.assert_allclose(coarse.mean[coarse.landmarks], dense.mean[dense.landmarks], atol=0.07 * size.mean())
