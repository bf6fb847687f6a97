"""Tests for the torch-free checkpoint reader (torch itself is never imported)."""

from __future__ import annotations

import collections
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tfface.convert.torch_checkpoint import (
    CheckpointError,
    load_torch_checkpoint,
    state_dict_from_checkpoint,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "torch"
REAL_CKPT = Path(__file__).resolve().parents[2] / "shared/data/3ddfa_v2/weights/mb05_120x120.pth"
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _flatten(obj: Any, prefix: str = "") -> dict[str, np.ndarray]:
    # Same key scheme as make_fixtures.py: dotted paths through dicts/lists.
    out: dict[str, np.ndarray] = {}
    if isinstance(obj, np.ndarray):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else key))
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            out.update(_flatten(value, f"{prefix}.{i}"))
    return out


def _legacy_bytes(main_pickle: bytes, storages: dict[str, bytes], counts: dict[str, int]) -> bytes:
    """Assemble a legacy-format checkpoint around a hand-written main pickle."""
    sys_info = {"protocol_version": 1001, "little_endian": True,
                "type_sizes": {"short": 2, "int": 4, "long": 4}}
    parts = [pickle.dumps(LEGACY_MAGIC, 2), pickle.dumps(1001, 2), pickle.dumps(sys_info, 2),
             main_pickle, pickle.dumps(list(storages), 2)]
    for key, raw in storages.items():
        parts += [struct.pack("<q", counts[key]), raw]
    return b"".join(parts)


@pytest.mark.parametrize("name", ["tiny_legacy.pth", "tiny_zip.pth"])
def test_fixture_matches_torch_exactly(name: str) -> None:
    obj = load_torch_checkpoint(FIXTURES / name)
    got = _flatten(obj)
    with np.load(FIXTURES / "expected.npz") as expected:
        assert sorted(got) == sorted(expected.files)
        for key in expected.files:
            want = expected[key]
            assert got[key].dtype == want.dtype, key
            assert got[key].shape == want.shape, key
            assert got[key].tobytes() == want.tobytes(), key  # bit-identical
            assert got[key].flags.c_contiguous, key


@pytest.mark.parametrize("name", ["tiny_legacy.pth", "tiny_zip.pth"])
def test_fixture_structure(name: str) -> None:
    obj = load_torch_checkpoint(FIXTURES / name)
    assert obj["meta"] == {"name": "tiny", "epoch": 3, "lr": 0.5, "flag": None}
    assert type(obj["nested"]["od"]) is collections.OrderedDict
    assert list(obj["nested"]["od"]) == ["first", "second"]
    assert obj["nested"]["od"]["second"] == [1, 2]
    assert isinstance(obj["nested"]["list"][1], tuple)
    assert obj["nested"]["list"][1][1:] == ("tag", 7)
    # The strided view (offset 7, stride (2, 6) into base) equals numpy slicing.
    np.testing.assert_array_equal(obj["strided"], obj["base"][1:4, 1:6:2].T)
    assert obj["scalar"].shape == () and obj["scalar"] == 42


@pytest.mark.shared_data
def test_real_3ddfa_checkpoint() -> None:
    if not REAL_CKPT.exists():
        pytest.skip(f"{REAL_CKPT} not available")
    ckpt = load_torch_checkpoint(REAL_CKPT)
    assert set(ckpt) == {"epoch", "state_dict"}
    assert all(k.startswith("module.") for k in ckpt["state_dict"])
    sd = state_dict_from_checkpoint(ckpt)
    assert len(sd) == 166
    assert not any(k.startswith("module.") for k in sd)
    assert sd["fc_param.weight"].shape == (62, 512)
    assert sd["fc_param.bias"].shape == (62,)
    assert sd["fc_lm.weight"].shape == (136, 512)
    assert sd["conv1.weight"].shape == (16, 3, 3, 3)
    assert sd["bn1.num_batches_tracked"].dtype == np.int64
    assert sd["bn1.num_batches_tracked"].shape == ()
    floats = [v for k, v in sd.items() if not k.endswith("num_batches_tracked")]
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in floats)


def _os_system_pickle(marker: Path) -> bytes:
    # Protocol-0 opcodes for os.system("touch <marker>"): a classic pickle exploit.
    return b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."


def test_malicious_legacy_pickle_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    path.write_bytes(_legacy_bytes(_os_system_pickle(marker), {}, {}))
    with pytest.raises(CheckpointError, match=r"os\.system") as info:
        load_torch_checkpoint(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_malicious_zip_pickle_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", _os_system_pickle(marker))
    with pytest.raises(CheckpointError, match=r"os\.system"):
        load_torch_checkpoint(path)
    assert not marker.exists()


def test_reduce_pickle_of_real_callable_is_refused(tmp_path: Path) -> None:
    class Exploit:
        def __reduce__(self) -> tuple:
            return (print, ("should never print",))

    path = tmp_path / "evil.pth"
    path.write_bytes(_legacy_bytes(pickle.dumps(Exploit(), 2), {}, {}))
    with pytest.raises(CheckpointError, match="forbidden global"):
        load_torch_checkpoint(path)


@pytest.mark.parametrize("name,cut", [
    ("tiny_legacy.pth", -10),   # inside the last storage's bytes
    ("tiny_legacy.pth", 400),   # inside the main pickle
    ("tiny_zip.pth", 3000),     # zip without its central directory
])
def test_truncated_file_raises(tmp_path: Path, name: str, cut: int) -> None:
    path = tmp_path / f"cut_{name}"
    path.write_bytes((FIXTURES / name).read_bytes()[:cut])
    with pytest.raises(CheckpointError, match="truncated") as info:
        load_torch_checkpoint(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("content", [b"", b"hello, not a checkpoint\n", b"\x80\x02K\x01."])
def test_non_checkpoint_raises(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "junk.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="junk.pth"):
        load_torch_checkpoint(path)


def test_missing_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_torch_checkpoint(path)


def test_bfloat16_storage(tmp_path: Path) -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    values = np.array([1.5, -2.0, 3.0], dtype=ml_dtypes.bfloat16)
    # _rebuild_tensor_v2(storage, offset=1, size=(2,), stride=(1,), False, None)
    main = (b"ctorch._utils\n_rebuild_tensor_v2\n("
            b"(S'storage'\nctorch\nBFloat16Storage\nS'0'\nS'cpu'\nI3\nNtQ"
            b"I1\n(I2\nt(I1\ntI00\nNtR.")
    path = tmp_path / "bf16.pth"
    path.write_bytes(_legacy_bytes(main, {"0": values.tobytes()}, {"0": 3}))
    got = load_torch_checkpoint(path)
    assert got.dtype == np.dtype(ml_dtypes.bfloat16)
    assert got.tobytes() == values[1:].tobytes()


def test_view_out_of_storage_bounds_is_refused(tmp_path: Path) -> None:
    # size (4,) stride (1,) from offset 1 would read past a 3-element storage.
    main = (b"ctorch._utils\n_rebuild_tensor_v2\n("
            b"(S'storage'\nctorch\nFloatStorage\nS'0'\nS'cpu'\nI3\nNtQ"
            b"I1\n(I4\nt(I1\ntI00\nNtR.")
    path = tmp_path / "oob.pth"
    raw = np.zeros(3, np.float32).tobytes()
    path.write_bytes(_legacy_bytes(main, {"0": raw}, {"0": 3}))
    with pytest.raises(CheckpointError, match="exceeds its storage"):
        load_torch_checkpoint(path)


def test_state_dict_unwrapping() -> None:
    a, b = np.zeros(2), np.ones(3)
    wrapped = {"model": collections.OrderedDict([("module.x", a), ("y", b)]), "epoch": 1}
    sd = state_dict_from_checkpoint(wrapped)
    assert list(sd) == ["x", "y"] and sd["x"] is a
    assert list(state_dict_from_checkpoint({"state_dict": {"module.z": a}})) == ["z"]
    assert list(state_dict_from_checkpoint({"w": b})) == ["w"]
    with pytest.raises(CheckpointError):
        state_dict_from_checkpoint([a])
