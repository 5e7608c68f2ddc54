"""Minimal, dependency-free safetensors reader/writer (torch + numpy only).

Format: 8-byte little-endian u64 header length N, N bytes of UTF-8 JSON
``{name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {str: str}}``,
then the raw little-endian byte buffer (offsets are relative to the start of that buffer).
"""

import json
import os
import struct
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import numpy as np
import torch

__all__ = ["load_file", "save_file", "load_bytes", "save_bytes", "SafetensorsError"]


class SafetensorsError(ValueError):
    pass


# safetensors dtype -> (numpy dtype for decoding, torch dtype produced)
_NP_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
    "BF16": np.dtype("<u2"),  # decoded by hand
}

_TORCH_TO_ST = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}

_MAX_HEADER = 100 * 1024 * 1024


def _decode_header(buf: bytes, total: int) -> Tuple[dict, int]:
    if total < 8:
        raise SafetensorsError("not a safetensors file: shorter than 8 bytes")
    (n,) = struct.unpack("<Q", buf[:8])
    if n > _MAX_HEADER or 8 + n > total:
        raise SafetensorsError("not a safetensors file: header length %d is invalid" % n)
    try:
        header = json.loads(buf[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError("not a safetensors file: header is not JSON (%s)" % e)
    if not isinstance(header, dict):
        raise SafetensorsError("not a safetensors file: header is not a JSON object")
    return header, 8 + n


def _bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    return (raw.astype(np.uint32) << 16).view(np.float32)


def load_bytes(buf: bytes, bf16_to_float32: bool = True) -> "OrderedDict[str, torch.Tensor]":
    """Parse safetensors bytes into an OrderedDict of CPU tensors (metadata is dropped)."""
    tensors, _ = load_bytes_with_metadata(buf, bf16_to_float32)
    return tensors


def load_bytes_with_metadata(buf: bytes, bf16_to_float32: bool = True):
    header, start = _decode_header(buf, len(buf))
    metadata = header.pop("__metadata__", None) or {}
    data_len = len(buf) - start
    out = OrderedDict()
    # keep file order of data for determinism
    items = sorted(header.items(), key=lambda kv: (kv[1].get("data_offsets", [0])[0], kv[0]))
    for name, info in items:
        try:
            dtype = info["dtype"]
            shape = [int(s) for s in info["shape"]]
            begin, end = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise SafetensorsError("bad header entry for tensor %r" % name)
        if dtype not in _NP_DTYPES:
            raise SafetensorsError("tensor %r has unsupported dtype %r" % (name, dtype))
        npdt = _NP_DTYPES[dtype]
        count = 1
        for s in shape:
            if s < 0:
                raise SafetensorsError("tensor %r has a negative dimension" % name)
            count *= s
        if not (0 <= begin <= end <= data_len) or end - begin != count * npdt.itemsize:
            raise SafetensorsError("tensor %r: data_offsets %r do not match dtype %s shape %r (buffer %d bytes)"
                                   % (name, [begin, end], dtype, shape, data_len))
        arr = np.frombuffer(buf, dtype=npdt, count=count, offset=start + begin).reshape(shape)
        if dtype == "BF16":
            if bf16_to_float32:
                t = torch.from_numpy(_bf16_to_f32(arr).copy())
            else:
                t = torch.from_numpy(arr.astype(np.int16).copy()).view(torch.bfloat16)
        else:
            t = torch.from_numpy(arr.copy())
        out[name] = t
    return out, dict(metadata)


def load_file(path: str, bf16_to_float32: bool = True) -> "OrderedDict[str, torch.Tensor]":
    with open(path, "rb") as f:
        buf = f.read()
    return load_bytes(buf, bf16_to_float32)


def load_file_with_metadata(path: str, bf16_to_float32: bool = True):
    with open(path, "rb") as f:
        buf = f.read()
    return load_bytes_with_metadata(buf, bf16_to_float32)


def save_bytes(tensors: Dict[str, torch.Tensor], metadata: Optional[Dict[str, str]] = None) -> bytes:
    """Serialize tensors (any order in, sorted by name out; deterministic bytes)."""
    header = OrderedDict()
    if metadata:
        header["__metadata__"] = OrderedDict((str(k), str(v)) for k, v in sorted(metadata.items()))
    chunks = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name]
        if not isinstance(t, torch.Tensor):
            raise SafetensorsError("value for %r is not a tensor" % name)
        t = t.detach().to("cpu").contiguous()
        if t.dtype not in _TORCH_TO_ST:
            raise SafetensorsError("tensor %r has unsupported dtype %s" % (name, t.dtype))
        st = _TORCH_TO_ST[t.dtype]
        if t.dtype == torch.bfloat16:
            raw = t.view(torch.int16).numpy().astype("<i2").tobytes()
        else:
            raw = t.numpy().astype(_NP_DTYPES[st], copy=False).tobytes()
        header[name] = OrderedDict([("dtype", st), ("shape", list(t.shape)),
                                    ("data_offsets", [offset, offset + len(raw)])])
        chunks.append(raw)
        offset += len(raw)
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * ((8 - len(hbytes) % 8) % 8)  # align the data buffer to 8 bytes
    return struct.pack("<Q", len(hbytes)) + hbytes + b"".join(chunks)


def save_file(tensors: Dict[str, torch.Tensor], path: str, metadata: Optional[Dict[str, str]] = None) -> None:
    data = save_bytes(tensors, metadata)
    tmp = "%s.tmp-%d" % (path, os.getpid())
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
