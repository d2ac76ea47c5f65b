"""Reads a .safetensors file into numpy arrays (no safetensors / torch package needed).

Format: an unsigned little-endian 64-bit header length N, N bytes of UTF-8 JSON
``{name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {...}}``,
then the data buffer; offsets are relative to the buffer, little-endian, C order.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

DTYPES: dict[str, str] = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U64": "<u8",
    "U32": "<u4",
    "U16": "<u2",
    "U8": "u1",
    "BOOL": "?",
}
MAX_HEADER = 100 * 1024 * 1024


class SafetensorsError(ValueError):
    pass


def read_header(data: bytes) -> tuple[dict[str, Any], int]:
    """(header dict, start of the data buffer)."""
    if len(data) < 8:
        raise SafetensorsError("file shorter than its 8-byte header length")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER or 8 + n > len(data):
        raise SafetensorsError(f"header length {n} is out of range")
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SafetensorsError(f"header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise SafetensorsError("header is not a JSON object")
    return header, 8 + n


def load_safetensors(data: bytes) -> dict[str, np.ndarray]:
    """{name: array} (read-only views into `data`), with the header's offsets checked."""
    header, start = read_header(data)
    buf_len = len(data) - start
    out: dict[str, np.ndarray] = {}
    spans = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = np.dtype(DTYPES[info["dtype"]])
            shape = tuple(int(s) for s in info["shape"])
            begin, end = (int(v) for v in info["data_offsets"])
        except KeyError as exc:
            raise SafetensorsError(f"{name}: unsupported dtype or missing field ({exc})") from exc
        if not 0 <= begin <= end <= buf_len:
            raise SafetensorsError(f"{name}: data offsets {begin}..{end} outside the {buf_len}-byte buffer")
        count = int(np.prod(shape, dtype=np.int64))
        if count * dtype.itemsize != end - begin:
            raise SafetensorsError(f"{name}: shape {shape} x {dtype} != {end - begin} bytes")
        out[name] = np.frombuffer(data, dtype=dtype, count=count, offset=start + begin).reshape(shape)
        spans.append((begin, end))
    spans.sort()
    pos = 0
    for begin, end in spans:  # the spec: tensors tile the buffer without gaps or overlaps
        if begin != pos:
            raise SafetensorsError(f"data buffer has a gap or overlap at byte {pos}")
        pos = end
    if pos != buf_len:
        raise SafetensorsError(f"{buf_len - pos} bytes after the last tensor")
    return out


def dump_safetensors(tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> bytes:
    """The inverse (for tests): little-endian, C order, tensors laid out in name order."""
    inv = {np.dtype(v).str.lstrip("<|"): k for k, v in DTYPES.items()}
    header: dict[str, Any] = {"__metadata__": metadata} if metadata else {}
    blobs, pos = [], 0
    for name in sorted(tensors):
        a = np.asarray(tensors[name])
        a = a.astype(a.dtype.newbyteorder("<")) if a.dtype.byteorder == ">" else a
        raw = a.tobytes(order="C")
        header[name] = {
            "dtype": inv[a.dtype.str.lstrip("<|")],
            "shape": list(a.shape),
            "data_offsets": [pos, pos + len(raw)],
        }
        blobs.append(raw)
        pos += len(raw)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    return struct.pack("<Q", len(head)) + head + b"".join(blobs)
