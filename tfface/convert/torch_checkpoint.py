"""Read PyTorch ``torch.save`` checkpoints without importing torch.

Both on-disk layouts are supported:

* the legacy (pre-1.6, ``_use_new_zipfile_serialization=False``) stream: a
  magic number, protocol version and sys_info pickle, the main pickle, a
  pickled list of storage keys, then per key an 8-byte little-endian element
  count followed by the raw storage bytes;
* the zip layout (torch >= 1.6): ``<top>/data.pkl`` plus raw storages in
  ``<top>/data/<key>``.

Tensors come back as contiguous numpy arrays; everything else as plain Python
containers.  Unpickling goes through an explicit allowlist of globals so a
checkpoint can never run code: anything else raises :class:`CheckpointError`.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from tfface.errors import DataFileError

__all__ = ["CheckpointError", "load_torch_checkpoint", "state_dict_from_checkpoint"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_ZIP_SIGNATURE = b"PK\x03\x04"


class CheckpointError(DataFileError):
    """The file is not a readable PyTorch checkpoint, or it is unsafe."""


# slots: a pickle BUILD opcode can neither reach a __dict__ nor setattr these.
@dataclass(frozen=True, slots=True)
class _StorageType:
    """Stand-in for a ``torch.*Storage`` class: only its element dtype matters."""

    name: str
    dtype: np.dtype | None  # None: dtype needs an optional package that is missing


def _bfloat16() -> np.dtype | None:
    try:
        import ml_dtypes  # optional: numpy has no bfloat16 of its own
    except ImportError:
        return None
    return np.dtype(ml_dtypes.bfloat16)


# torch storage class name / dtype attribute name -> numpy dtype.
_STORAGE_DTYPES: dict[str, np.dtype | None] = {
    "DoubleStorage": np.dtype(np.float64),
    "FloatStorage": np.dtype(np.float32),
    "HalfStorage": np.dtype(np.float16),
    "BFloat16Storage": _bfloat16(),
    "LongStorage": np.dtype(np.int64),
    "IntStorage": np.dtype(np.int32),
    "ShortStorage": np.dtype(np.int16),
    "CharStorage": np.dtype(np.int8),
    "ByteStorage": np.dtype(np.uint8),
    "BoolStorage": np.dtype(np.bool_),
    "ComplexFloatStorage": np.dtype(np.complex64),
    "ComplexDoubleStorage": np.dtype(np.complex128),
    "UntypedStorage": np.dtype(np.uint8),  # raw bytes
}
_TORCH_DTYPES: dict[str, np.dtype | None] = {
    "float64": np.dtype(np.float64),
    "double": np.dtype(np.float64),
    "float32": np.dtype(np.float32),
    "float": np.dtype(np.float32),
    "float16": np.dtype(np.float16),
    "half": np.dtype(np.float16),
    "bfloat16": _bfloat16(),
    "int64": np.dtype(np.int64),
    "long": np.dtype(np.int64),
    "int32": np.dtype(np.int32),
    "int": np.dtype(np.int32),
    "int16": np.dtype(np.int16),
    "short": np.dtype(np.int16),
    "int8": np.dtype(np.int8),
    "uint8": np.dtype(np.uint8),
    "bool": np.dtype(np.bool_),
    "complex64": np.dtype(np.complex64),
    "complex128": np.dtype(np.complex128),
}

# (storage key, dtype) -> flat storage array, or None while only scanning.
_StorageLoader = Callable[[str, np.dtype], Any]


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only allowlisted globals and torch storages."""

    def __init__(self, file: IO[bytes], source: str, load_storage: _StorageLoader) -> None:
        super().__init__(file)
        self._source = source
        self._load_storage = load_storage
        self._globals = self._build_allowlist()

    def _build_allowlist(self) -> dict[tuple[str, str], Any]:
        allowed: dict[tuple[str, str], Any] = {
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("torch._utils", "_rebuild_tensor"): self._rebuild_tensor,
            ("torch._utils", "_rebuild_tensor_v2"): self._rebuild_tensor_v2,
            ("torch._utils", "_rebuild_parameter"): self._rebuild_parameter,
            ("torch._utils", "_rebuild_parameter_with_state"): self._rebuild_parameter,
            # protocol-2 pickles spell bytes as _codecs.encode(str, "latin1").
            ("_codecs", "encode"): self._latin1_encode,
        }
        # Python-2 era module name first, then the Python 3 one.
        for module in ("__builtin__", "builtins"):
            for name, fn in (("set", set), ("frozenset", frozenset),
                             ("bytearray", bytearray), ("complex", complex)):
                allowed[(module, name)] = fn
        for module in ("torch", "torch.storage"):
            for name, dtype in _STORAGE_DTYPES.items():
                allowed[(module, name)] = _StorageType(name, dtype)
        for name, dtype in _TORCH_DTYPES.items():
            allowed[("torch", name)] = dtype
        return allowed

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._globals[(module, name)]
        except KeyError:
            raise CheckpointError(
                f"{self._source}: refusing to load forbidden global '{module}.{name}' "
                "(only tensors and plain containers are allowed)"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        # ('storage', storage_type, key, location, numel[, view_metadata])
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise CheckpointError(f"{self._source}: unsupported persistent id {pid!r}")
        storage_type, key = pid[1], str(pid[2])
        if not isinstance(storage_type, _StorageType):
            raise CheckpointError(f"{self._source}: bad storage type {storage_type!r}")
        if storage_type.dtype is None:
            raise CheckpointError(
                f"{self._source}: {storage_type.name} needs the 'ml_dtypes' package"
            )
        storage = self._load_storage(key, storage_type.dtype)
        view = pid[5] if len(pid) == 6 else None
        if storage is None or view is None:
            return storage
        # Old torch saved storage views as (view_key, element offset, element count).
        _view_key, offset, size = view
        return self._slice(storage, int(offset), int(size))

    def _slice(self, storage: np.ndarray, offset: int, size: int) -> np.ndarray:
        if offset < 0 or size < 0 or offset + size > storage.size:
            raise CheckpointError(f"{self._source}: storage view out of bounds")
        return storage[offset:offset + size]

    def _rebuild_tensor(
        self, storage: np.ndarray | None, offset: int, size: tuple, stride: tuple
    ) -> np.ndarray | None:
        if storage is None:  # scanning pass: data not read yet
            return None
        return _strided_copy(storage, int(offset), tuple(size), tuple(stride), self._source)

    def _rebuild_tensor_v2(
        self, storage: np.ndarray | None, offset: int, size: tuple, stride: tuple,
        requires_grad: bool = False, backward_hooks: Any = None, metadata: Any = None,
    ) -> np.ndarray | None:
        # requires_grad / hooks / metadata only matter to autograd.
        return self._rebuild_tensor(storage, offset, size, stride)

    # Callables handed to the pickle are bound methods, which (unlike plain
    # functions) a BUILD opcode cannot modify via setattr.
    def _rebuild_parameter(self, data: Any, *_: Any) -> Any:
        return data  # a Parameter is just its tensor here

    def _latin1_encode(self, text: Any, encoding: Any = "utf-8") -> bytes:
        # Only the bytes-as-latin1-text pattern; other codecs are never needed.
        if not (isinstance(text, str) and isinstance(encoding, str)
                and encoding.lower().replace("-", "") == "latin1"):
            raise CheckpointError(f"{self._source}: unsupported _codecs.encode call")
        return text.encode("latin-1")


def _strided_copy(
    storage: np.ndarray, offset: int, size: tuple, stride: tuple, source: str
) -> np.ndarray:
    """Materialise a (possibly non-contiguous) view as a contiguous array.

    Bounds are checked first because as_strided performs no checks and would
    read arbitrary memory on a corrupt or hostile file.
    """
    dims = size + stride
    if len(size) != len(stride) or not all(isinstance(d, int) and d >= 0 for d in dims):
        raise CheckpointError(f"{source}: invalid tensor size {size} / stride {stride}")
    if 0 in size:
        return np.empty(size, dtype=storage.dtype)
    last = offset + sum((d - 1) * s for d, s in zip(size, stride))
    if offset < 0 or last >= storage.size:
        raise CheckpointError(
            f"{source}: tensor view (offset {offset}, size {size}, stride {stride}) "
            f"exceeds its storage of {storage.size} elements (truncated file?)"
        )
    if not size:  # 0-d tensor; as_strided would turn shape () into (1,)
        return storage[offset:offset + 1].reshape(()).copy()
    item = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=size, strides=tuple(s * item for s in stride), writeable=False
    )
    return np.ascontiguousarray(view)


def _frombuffer(data: bytes, dtype: np.dtype, little_endian: bool) -> np.ndarray:
    array = np.frombuffer(data, dtype=dtype)
    # byteswap (not a '>' dtype) so results always carry the plain native dtype.
    return array if little_endian == (sys.byteorder == "little") else array.byteswap()


# --------------------------------------------------------------------- zip ---


def _load_zip(path: Path) -> Any:
    source = str(path)
    try:
        with zipfile.ZipFile(path) as archive:
            return _load_zip_archive(archive, source)
    except (zipfile.BadZipFile, EOFError, OSError, struct.error, zlib.error) as exc:
        raise CheckpointError(f"{source}: corrupt or truncated zip checkpoint ({exc})") from exc


def _load_zip_archive(archive: zipfile.ZipFile, source: str) -> Any:
    pickles = [n for n in archive.namelist() if n == "data.pkl" or n.endswith("/data.pkl")]
    if not pickles:
        raise CheckpointError(f"{source}: zip file has no data.pkl, not a torch checkpoint")
    prefix = min(pickles, key=len)[: -len("data.pkl")]  # top folder name varies
    little = _zip_little_endian(archive, prefix)
    cache: dict[tuple[str, np.dtype], np.ndarray] = {}

    def load_storage(key: str, dtype: np.dtype) -> np.ndarray:
        if (key, dtype) not in cache:
            name = f"{prefix}data/{key}"
            try:
                raw = archive.read(name)
            except KeyError:
                raise CheckpointError(f"{source}: missing storage entry {name}") from None
            if len(raw) % dtype.itemsize:
                raise CheckpointError(f"{source}: storage {name} has a partial element")
            cache[(key, dtype)] = _frombuffer(raw, dtype, little)
        return cache[(key, dtype)]

    data = archive.read(prefix + "data.pkl")
    return _unpickle(io.BytesIO(data), source, load_storage)


def _zip_little_endian(archive: zipfile.ZipFile, prefix: str) -> bool:
    try:
        order = archive.read(prefix + "byteorder").decode().strip()
    except KeyError:
        return True  # files from before the byteorder entry were little-endian
    return order != "big"


# ------------------------------------------------------------------ legacy ---


def _load_legacy(path: Path) -> Any:
    source = str(path)
    with open(path, "rb") as f:
        little = _read_legacy_header(f, source)
        start = f.tell()
        # Pass 1: the storage dtypes are only known from the main pickle, and
        # the raw data comes after it, so scan it once without any data.
        dtypes: dict[str, np.dtype] = {}

        def record(key: str, dtype: np.dtype) -> None:
            # torch refuses to save one storage under two dtypes; so do we.
            if dtypes.setdefault(key, dtype) != dtype:
                raise CheckpointError(f"{source}: storage {key} used with two dtypes")

        _unpickle(f, source, record)
        keys = _unpickle(f, source, _no_storage)
        storages = _read_legacy_storages(f, source, keys, dtypes, little)
        # Pass 2: rebuild the object graph with the storages in hand.
        f.seek(start)
        return _unpickle(f, source, lambda key, dtype: _lookup(storages, key, source))


def _read_legacy_header(f: IO[bytes], source: str) -> bool:
    magic = _unpickle(f, source, _no_storage)
    if magic != _LEGACY_MAGIC:
        raise CheckpointError(f"{source}: not a PyTorch checkpoint (bad magic number)")
    protocol = _unpickle(f, source, _no_storage)
    if protocol != _LEGACY_PROTOCOL:
        raise CheckpointError(f"{source}: unsupported legacy protocol version {protocol!r}")
    sys_info = _unpickle(f, source, _no_storage)
    if not isinstance(sys_info, dict):
        raise CheckpointError(f"{source}: malformed sys_info record")
    return bool(sys_info.get("little_endian", True))


def _read_legacy_storages(
    f: IO[bytes], source: str, keys: Any, dtypes: Mapping[str, np.dtype], little: bool
) -> dict[str, np.ndarray]:
    if not isinstance(keys, list):
        raise CheckpointError(f"{source}: malformed storage key list")
    storages: dict[str, np.ndarray] = {}
    file_size = os.fstat(f.fileno()).st_size
    for key in map(str, keys):
        if key not in dtypes:
            raise CheckpointError(f"{source}: storage {key} is not referenced by any tensor")
        dtype = dtypes[key]
        head = f.read(8)
        if len(head) != 8:
            raise CheckpointError(f"{source}: truncated file (no size header for storage {key})")
        (count,) = struct.unpack("<q", head)
        nbytes = count * dtype.itemsize
        # Check against the file size first: a bogus count must not make us
        # try to allocate a huge buffer.
        fits = 0 <= nbytes <= file_size - f.tell()
        raw = f.read(nbytes) if fits else b""
        if len(raw) != nbytes:
            raise CheckpointError(
                f"{source}: truncated file (storage {key}: expected {nbytes} bytes, got {len(raw)})"
            )
        storages[key] = _frombuffer(raw, dtype, little)
    return storages


def _lookup(storages: Mapping[str, np.ndarray], key: str, source: str) -> np.ndarray:
    try:
        return storages[key]
    except KeyError:
        raise CheckpointError(f"{source}: storage {key} has no data") from None


def _no_storage(key: str, dtype: np.dtype) -> None:
    raise pickle.UnpicklingError(f"unexpected tensor storage {key} outside the main pickle")


# ------------------------------------------------------------------ public ---


def _unpickle(f: IO[bytes], source: str, load_storage: _StorageLoader) -> Any:
    try:
        return _RestrictedUnpickler(f, source, load_storage).load()
    except CheckpointError:
        raise
    except EOFError as exc:
        raise CheckpointError(f"{source}: truncated file (pickle data ends early)") from exc
    except (pickle.UnpicklingError, ValueError, TypeError, IndexError, KeyError,
            AttributeError, struct.error, MemoryError, RecursionError) as exc:
        raise CheckpointError(f"{source}: corrupt or truncated pickle data ({exc!r})") from exc


def load_torch_checkpoint(path: str | os.PathLike[str]) -> Any:
    """Load a ``torch.save`` file; tensors become contiguous numpy arrays.

    Raises FileNotFoundError for a missing path and CheckpointError for any
    file that is not a (complete, safe) PyTorch checkpoint.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    with open(path, "rb") as f:
        head = f.read(len(_ZIP_SIGNATURE))
    if not head:
        raise CheckpointError(f"{path}: file is empty")
    if head == _ZIP_SIGNATURE:
        return _load_zip(path)
    if head.startswith(b"\x80"):  # a pickle protocol marker: legacy stream
        return _load_legacy(path)
    raise CheckpointError(f"{path}: neither a zip nor a legacy PyTorch checkpoint")


def state_dict_from_checkpoint(obj: Any) -> dict[str, np.ndarray]:
    """Extract ``{name: array}`` from a loaded checkpoint.

    Unwraps ``{'state_dict': ...}`` / ``{'model': ...}`` wrappers and strips the
    ``module.`` prefix that ``nn.DataParallel`` adds to every key.
    """
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
            break
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"checkpoint holds {type(obj).__name__}, not a state dict")
    result: dict[str, np.ndarray] = {}
    for key, value in obj.items():
        if not isinstance(value, np.ndarray):
            raise CheckpointError(f"state dict entry {key!r} is {type(value).__name__}, "
                                  "not a tensor")
        result[key.removeprefix("module.")] = value
    return result
