"""Morphable model loaders (3DDFA sparse text, 3DDFA_V2 dense pickle, ICT-FaceKit) and the container."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from conftest import shared_path
from tfface.errors import DataFileError
from tfface.models.presets import morphable_asset
from tfface.morphable.model import (
    MorphableModel,
    load_3ddfa_dense,
    load_3ddfa_sparse,
    load_ict_facekit,
    load_npz,
)

# --------------------------------------------------------------------------- 3DDFA sparse base


@pytest.mark.shared_data
def test_load_3ddfa_sparse_shapes_and_interleaving():
    folder = shared_path("3ddfa/sparse_base")
    model = load_3ddfa_sparse(folder)
    assert model.mean.shape == (68, 3)
    assert model.id_basis.shape == (40, 68, 3)
    assert model.exp_basis.shape == (10, 68, 3)
    assert model.mean.dtype == np.float32
    np.testing.assert_array_equal(model.landmarks, np.arange(68))
    assert model.triangles is None

    # Rows of the text files interleave x, y, z per vertex: row 3*v + c is coordinate c of vertex v.
    u = np.loadtxt(folder / "u_base.txt")
    w_shp = np.loadtxt(folder / "w_shp_base.txt")
    w_exp = np.loadtxt(folder / "w_exp_base.txt")
    assert model.mean[1, 1] == np.float32(u[4])  # vertex 1, y
    assert model.mean[0, 2] == np.float32(u[2])  # vertex 0, z
    assert model.mean[67, 0] == np.float32(u[201])  # vertex 67, x
    assert model.id_basis[7, 30, 2] == np.float32(w_shp[92, 7])  # mode 7, vertex 30, z
    assert model.exp_basis[3, 45, 1] == np.float32(w_exp[136, 3])  # mode 3, vertex 45, y
    # and the whole arrays, by a different reshaping than the loader's
    expected_mean = np.stack([u[0::3], u[1::3], u[2::3]], axis=-1)
    np.testing.assert_array_equal(model.mean, expected_mean.astype(np.float32))
    expected_id = np.stack([w_shp[c::3].T for c in range(3)], axis=-1)
    np.testing.assert_array_equal(model.id_basis, expected_id.astype(np.float32))

    # the BFM face: y up, z towards the viewer (nose tip 30 in front of and below the eyes 36/45)
    assert model.mean[30, 2] > model.mean[36, 2] and model.mean[30, 2] > model.mean[45, 2]
    assert model.mean[30, 1] < model.mean[36, 1]
    assert model.mean[36, 0] < 0 < model.mean[45, 0]


@pytest.mark.shared_data
def test_load_3ddfa_sparse_equals_shipped_asset():
    loaded = load_3ddfa_sparse(shared_path("3ddfa/sparse_base"))
    shipped = morphable_asset("bfm_3ddfa_68")
    for field in ("mean", "id_basis", "exp_basis", "landmarks"):
        a, b = getattr(loaded, field), getattr(shipped, field)
        assert a.dtype == b.dtype, field
        np.testing.assert_array_equal(a, b, err_msg=field)
    assert shipped.name == loaded.name == "bfm-3ddfa-68"


def test_load_3ddfa_sparse_missing_file_names_it(tmp_path):
    with pytest.raises(DataFileError, match="u_base.txt"):
        load_3ddfa_sparse(tmp_path)


# --------------------------------------------------------------------------- 3DDFA_V2 dense pickle

N_DENSE = 100


def _dense_arrays(tri_layout: str = "3xT") -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    lm_ids = rng.choice(N_DENSE, size=68, replace=False)
    tri = rng.integers(0, N_DENSE, size=(150, 3)).astype(np.int32)
    return {
        "u": rng.normal(0, 1e4, size=(3 * N_DENSE, 1)).astype(np.float32),
        "w_shp": rng.normal(0, 1e3, size=(3 * N_DENSE, 40)).astype(np.float32),
        "w_exp": rng.normal(0, 1e3, size=(3 * N_DENSE, 10)).astype(np.float32),
        "tri": tri.T.copy() if tri_layout == "3xT" else tri,  # 3DDFA_V2 stores 3 x T
        "keypoints": (3 * lm_ids[:, None] + np.arange(3)).reshape(-1).astype(np.int64),
        "lm_ids": lm_ids,  # not a key of the format: what the test expects back
        "tri_rows": tri,
    }


def _write_pickle(path, data, protocol=pickle.DEFAULT_PROTOCOL):
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=protocol)
    return path


@pytest.mark.parametrize("tri_layout", ["3xT", "Tx3"])
def test_load_3ddfa_dense(tmp_path, tri_layout):
    arrays = _dense_arrays(tri_layout)
    keys = ("u", "w_shp", "w_exp", "tri", "keypoints")
    path = _write_pickle(tmp_path / "bfm_small.pkl", {k: arrays[k] for k in keys}, protocol=4)
    model = load_3ddfa_dense(path)

    assert model.num_vertices == N_DENSE and model.num_id == 40 and model.num_exp == 10
    u = arrays["u"][:, 0]
    np.testing.assert_array_equal(model.mean, np.stack([u[0::3], u[1::3], u[2::3]], axis=-1))
    # a basis value at a chosen index: mode 11, vertex 57, coordinate y = row 3*57+1 of w_shp
    assert model.id_basis[11, 57, 1] == arrays["w_shp"][172, 11]
    assert model.exp_basis[9, 3, 2] == arrays["w_exp"][11, 9]
    np.testing.assert_array_equal(model.id_basis, np.stack([arrays["w_shp"][c::3].T for c in range(3)], -1))
    np.testing.assert_array_equal(model.landmarks, arrays["lm_ids"])
    assert model.landmarks.dtype == np.int32
    assert model.triangles.shape == (150, 3)
    np.testing.assert_array_equal(model.triangles, arrays["tri_rows"])
    assert model.name == "bfm_small"
    # the landmark model picks the chosen vertices
    np.testing.assert_array_equal(model.landmark_model().mean, model.mean[arrays["lm_ids"]])


def test_load_3ddfa_dense_python2_style_pickle(tmp_path):
    """3DDFA_V2's own files are old-protocol pickles; protocol 2 must load the same."""
    arrays = _dense_arrays()
    keys = ("u", "w_shp", "w_exp", "tri", "keypoints")
    model = load_3ddfa_dense(_write_pickle(tmp_path / "old.pkl", {k: arrays[k] for k in keys}, protocol=2))
    np.testing.assert_array_equal(model.landmarks, arrays["lm_ids"])


def test_load_3ddfa_dense_protocol5_pickle(tmp_path):
    arrays = _dense_arrays()
    keys = ("u", "w_shp", "w_exp", "tri", "keypoints")
    model = load_3ddfa_dense(_write_pickle(tmp_path / "p5.pkl", {k: arrays[k] for k in keys}, protocol=5))
    np.testing.assert_array_equal(model.landmarks, arrays["lm_ids"])


def test_load_3ddfa_dense_missing_key_names_file_and_key(tmp_path):
    arrays = _dense_arrays()
    path = _write_pickle(tmp_path / "no_kpt.pkl", {k: arrays[k] for k in ("u", "w_shp", "w_exp", "tri")}, 4)
    with pytest.raises(DataFileError) as err:
        load_3ddfa_dense(path)
    message = str(err.value)
    assert str(path) in message
    named_missing = message.replace(str(path), "").split("expected")[0]  # the message may list all keys after "expected"
    assert "keypoints" in named_missing and "w_shp" not in named_missing


def test_load_3ddfa_dense_inconsistent_sizes(tmp_path):
    arrays = _dense_arrays()
    data = {k: arrays[k] for k in ("u", "w_shp", "w_exp", "tri", "keypoints")}
    data["w_exp"] = data["w_exp"][:-3]
    with pytest.raises(DataFileError, match="w_exp"):
        load_3ddfa_dense(_write_pickle(tmp_path / "bad.pkl", data, 4))


def test_load_3ddfa_dense_not_a_pickle(tmp_path):
    path = tmp_path / "junk.pkl"
    path.write_bytes(b"this is not a pickle")
    with pytest.raises(DataFileError, match="junk.pkl"):
        load_3ddfa_dense(path)
    with pytest.raises(DataFileError, match="not found"):
        load_3ddfa_dense(tmp_path / "absent.pkl")


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


def test_load_3ddfa_dense_refuses_code_in_pickle(tmp_path):
    marker = tmp_path / "pwned"
    arrays = _dense_arrays()
    data = {k: arrays[k] for k in ("u", "w_shp", "w_exp", "tri", "keypoints")}
    data["u"] = _Exploit(marker)
    path = _write_pickle(tmp_path / "evil.pkl", data, 4)
    with pytest.raises(DataFileError) as err:
        load_3ddfa_dense(path)
    assert "system" in str(err.value) and str(path) in str(err.value)
    assert not marker.exists()
    # sanity: the file really does run code when loaded with plain pickle
    with open(path, "rb") as f:
        pickle.load(f)
    assert marker.exists()


# --------------------------------------------------------------------------- ICT-FaceKit


@pytest.fixture(scope="module")
def ict_model():
    return load_ict_facekit(shared_path("ict_facekit/ict_face_model_full_face.npz"))


@pytest.mark.shared_data
def test_load_ict_facekit(ict_model):
    m = ict_model
    assert m.mean.shape == (9409, 3)
    assert m.id_basis.shape == (100, 9409, 3) and m.num_id == 100
    assert m.exp_basis.shape == (53, 9409, 3) and m.num_exp == 53
    assert m.triangles.shape == (18460, 3) and m.triangles.dtype == np.int32
    assert m.triangles.min() >= 0 and m.triangles.max() < 9409
    assert m.landmarks.shape == (68,) and m.landmarks.min() >= 0 and m.landmarks.max() < 9409
    assert len(np.unique(m.landmarks)) == 68
    assert m.units == "cm" and m.name == "ict-facekit"
    # centimetres: outer eye corners ~9 cm apart; y up and z towards the viewer like the BFM
    eyes = np.linalg.norm(m.mean[m.landmarks[36]] - m.mean[m.landmarks[45]])
    assert 7.0 < eyes < 11.0
    nose, chin, eye = m.mean[m.landmarks[30]], m.mean[m.landmarks[8]], m.mean[m.landmarks[36]]
    assert nose[2] > eye[2] and chin[1] < nose[1] < eye[1]


@pytest.mark.shared_data
def test_ict_landmark_model_and_truncated(ict_model):
    m = ict_model
    lm = m.landmark_model()
    assert lm.mean.shape == (68, 3) and lm.id_basis.shape == (100, 68, 3) and lm.exp_basis.shape == (53, 68, 3)
    np.testing.assert_array_equal(lm.landmarks, np.arange(68))
    assert lm.triangles is None
    np.testing.assert_array_equal(lm.mean[36], m.mean[m.landmarks[36]])
    np.testing.assert_array_equal(lm.id_basis[5, 30], m.id_basis[5, m.landmarks[30]])
    np.testing.assert_array_equal(lm.exp_basis[52, 8], m.exp_basis[52, m.landmarks[8]])

    t = m.truncated(10, 5)
    assert t.num_id == 10 and t.num_exp == 5 and t.num_vertices == 9409
    np.testing.assert_array_equal(t.id_basis, m.id_basis[:10])
    np.testing.assert_array_equal(t.exp_basis, m.exp_basis[:5])
    assert t.triangles is m.triangles and t.units == "cm"
    assert m.truncated(100, 0).num_exp == 0
    for bad in ((0, 5), (101, 5), (10, 54), (10, -1)):
        with pytest.raises(ValueError):
            m.truncated(*bad)


def test_load_ict_facekit_missing_array(tmp_path):
    path = tmp_path / "partial.npz"
    np.savez(path, mean=np.zeros((4, 3)), id_basis=np.zeros((1, 4, 3)))
    with pytest.raises(DataFileError, match="exp_basis"):
        load_ict_facekit(path)


# --------------------------------------------------------------------------- container


def _small(n=70, k_id=4, k_exp=3, triangles=True, seed=0) -> MorphableModel:
    rng = np.random.default_rng(seed)
    return MorphableModel(
        mean=rng.normal(size=(n, 3)).astype(np.float32),
        id_basis=rng.normal(size=(k_id, n, 3)).astype(np.float32),
        exp_basis=rng.normal(size=(k_exp, n, 3)).astype(np.float32),
        landmarks=rng.choice(n, 68, replace=False).astype(np.int32),
        triangles=rng.integers(0, n, size=(20, 3)).astype(np.int32) if triangles else None,
        name="tiny", units="mm",
    )


@pytest.mark.parametrize("change, message", [
    (dict(mean=np.zeros((70, 2), np.float32)), "mean"),
    (dict(mean=np.zeros((70 * 3,), np.float32)), "mean"),
    (dict(id_basis=np.zeros((4, 69, 3), np.float32)), "id_basis"),
    (dict(id_basis=np.zeros((70, 3), np.float32)), "id_basis"),
    (dict(exp_basis=np.zeros((3, 70, 2), np.float32)), "exp_basis"),
    (dict(landmarks=np.arange(67, dtype=np.int32)), "68"),
    (dict(landmarks=np.arange(68, dtype=np.int32) + 3), "landmark ids"),
    (dict(landmarks=np.arange(68, dtype=np.int32) - 1), "landmark ids"),
    (dict(triangles=np.zeros((20, 4), np.int32)), "triangles"),
    (dict(triangles=np.zeros((60,), np.int32)), "triangles"),
])
def test_model_validation(change, message):
    good = _small()
    fields = dict(mean=good.mean, id_basis=good.id_basis, exp_basis=good.exp_basis,
                  landmarks=good.landmarks, triangles=good.triangles, name="tiny")
    fields.update(change)
    with pytest.raises(ValueError, match=message):
        MorphableModel(**fields)


@pytest.mark.parametrize("triangles", [True, False])
def test_save_load_npz_round_trip(tmp_path, triangles):
    model = _small(triangles=triangles)
    path = tmp_path / "model.npz"
    model.save_npz(path)
    back = load_npz(path)
    for field in ("mean", "id_basis", "exp_basis", "landmarks"):
        a, b = getattr(model, field), getattr(back, field)
        assert a.dtype == b.dtype, field
        np.testing.assert_array_equal(a, b, err_msg=field)
    if triangles:
        np.testing.assert_array_equal(back.triangles, model.triangles)
    else:
        assert back.triangles is None
    assert back.name == "tiny" and back.units == "mm"


def test_load_npz_missing_file(tmp_path):
    with pytest.raises(DataFileError, match="not found"):
        load_npz(tmp_path / "absent.npz")
