"""Values across the wall between the grader and a student's process, as data only.

The grader never unpickles anything a student's process wrote: a pickle can run code
in the reader.  Instead both sides speak this small format:

    frame  = u32 length of the header | header (JSON, UTF-8) | u32 blob count | blobs
    blob   = u64 length | raw bytes
    header = a tree of JSON values and tagged nodes:
             {"t": "tuple" | "list", "v": [...]}, {"t": "dict", "v": [[key, value], ...]},
             {"t": "nd", "d": "<f8", "s": [2, 3], "b": 0}   (an array: dtype, shape, blob index)
             {"t": "np", "d": "<i8", "v": 3}                 (a NumPy scalar)
             {"t": "bytes", "b": 1}                           (raw bytes, kept as bytes)
             {"t": "other", "type": "Liar"}                  (anything else: only its type name)

`decode` trusts nothing: it checks every tag, dtype (plain numbers and booleans only),
shape against the blob's length, nesting depth and total size, and raises WireError on
anything else.  What comes out is built from plain types only (no object of the
student's class ever exists in the grader), so a lying `__eq__` or an ndarray subclass
arrives as "other" or as a plain array of its data.
"""
from __future__ import annotations

import json
import os
import select
import struct
import time

import numpy as np

MAX_FRAME = 512 * 1024 * 1024
MAX_DEPTH = 32
MAX_NODES = 200_000
MAX_STR = 1_000_000
DTYPE_KINDS = "biuf"


class WireError(ValueError):
    """A frame that is not well formed: the other side broke the protocol."""


class Other:
    """Stands for a value that cannot cross the wall; only its type's name comes along."""

    def __init__(self, type_name: str):
        self.type_name = type_name

    def __repr__(self):
        return f"<a {self.type_name} object>"


# ----------------------------------------------------------------------------- encoding (either side)

def _pack(value, blobs, depth):
    if depth > MAX_DEPTH:
        return {"t": "other", "type": "deeply nested value"}
    if value is None or type(value) in (bool, str):
        return value
    if type(value) is int:
        return value if abs(value) < 2 ** 63 else {"t": "other", "type": "int too large"}
    if type(value) is bytes:
        blobs.append(value)
        return {"t": "bytes", "b": len(blobs) - 1}
    if type(value) is float:
        return {"t": "float", "v": repr(value)}  # repr keeps nan/inf and every digit
    if isinstance(value, np.ndarray):
        arr = np.asarray(value).view(np.ndarray)  # a subclass travels as its plain data
        if arr.dtype.kind not in DTYPE_KINDS:
            return {"t": "other", "type": f"array of dtype {arr.dtype}"}
        blobs.append(np.ascontiguousarray(arr).tobytes())
        return {"t": "nd", "d": arr.dtype.str, "s": list(arr.shape), "b": len(blobs) - 1}
    if isinstance(value, np.generic) and value.dtype.kind in DTYPE_KINDS:
        return {"t": "np", "d": value.dtype.str, "v": _pack(value.item(), blobs, depth + 1)}
    if type(value) in (tuple, list):
        return {"t": type(value).__name__, "v": [_pack(v, blobs, depth + 1) for v in value]}
    if type(value) is dict:
        items = []
        for k, v in value.items():
            if type(k) not in (str, int):
                return {"t": "other", "type": "dict with keys that are not str or int"}
            items.append([k, _pack(v, blobs, depth + 1)])
        return {"t": "dict", "v": items}
    return {"t": "other", "type": type(value).__name__[:80]}


def encode(value) -> bytes:
    blobs: list = []
    head = json.dumps(_pack(value, blobs, 0)).encode("utf-8")
    parts = [struct.pack("<I", len(head)), head, struct.pack("<I", len(blobs))]
    for b in blobs:
        parts += [struct.pack("<Q", len(b)), b]
    return b"".join(parts)


# ----------------------------------------------------------------------------- decoding (the grader's side)

def _unpack(node, blobs, depth, count, max_str=MAX_STR):
    count[0] += 1
    if count[0] > MAX_NODES or depth > MAX_DEPTH:
        raise WireError("value too large or too deeply nested")
    if node is None or type(node) in (bool, int):
        return node
    if type(node) is str:
        if max_str is not None and len(node) > max_str:
            raise WireError("string too long")
        return node
    if type(node) is not dict or "t" not in node:
        raise WireError(f"unexpected node {type(node).__name__}")
    tag = node["t"]
    if tag == "float":
        text = node.get("v")
        if type(text) is not str or len(text) > 40:
            raise WireError("bad float")
        return float(text)
    if tag == "bytes":
        index = node.get("b")
        if type(index) is not int or not 0 <= index < len(blobs):
            raise WireError("bad bytes index")
        return blobs[index]
    if tag in ("tuple", "list"):
        items = node.get("v")
        if type(items) is not list:
            raise WireError("bad sequence")
        out = [_unpack(v, blobs, depth + 1, count, max_str) for v in items]
        return tuple(out) if tag == "tuple" else out
    if tag == "dict":
        items = node.get("v")
        if type(items) is not list:
            raise WireError("bad dict")
        out = {}
        for pair in items:
            if type(pair) is not list or len(pair) != 2 or type(pair[0]) not in (str, int):
                raise WireError("bad dict item")
            out[pair[0]] = _unpack(pair[1], blobs, depth + 1, count, max_str)
        return out
    if tag in ("nd", "np"):
        dtype = _dtype(node.get("d"))
        if tag == "np":
            v = _unpack(node.get("v"), blobs, depth + 1, count, max_str)
            if type(v) not in (bool, int, float):
                raise WireError("bad scalar")
            return dtype.type(v)
        shape, index = node.get("s"), node.get("b")
        if (type(shape) is not list or len(shape) > 32 or any(type(n) is not int or n < 0 for n in shape)
                or type(index) is not int or not 0 <= index < len(blobs)):
            raise WireError("bad array header")
        blob = blobs[index]
        if int(np.prod(shape, dtype=np.int64)) * dtype.itemsize != len(blob):
            raise WireError("array data does not match its shape")
        return np.frombuffer(blob, dtype=dtype).reshape(shape).copy()
    if tag == "other":
        return Other(str(node.get("type", "?"))[:80])
    raise WireError(f"unknown tag {tag!r}")


def _dtype(text) -> np.dtype:
    if type(text) is not str or len(text) > 8:
        raise WireError("bad dtype")
    try:
        dt = np.dtype(text)
    except TypeError as exc:
        raise WireError(f"bad dtype {text!r}") from exc
    if dt.kind not in DTYPE_KINDS or dt.itemsize > 16 or dt.fields is not None or dt.subdtype is not None:
        raise WireError(f"dtype {text!r} is not allowed")
    return dt


def decode(frame: bytes, max_str: int | None = MAX_STR):
    """The value in `frame`; raises WireError unless it is exactly one well-formed value.
    `max_str`: the longest string accepted (None: any, for what the grader itself sent)."""
    view = memoryview(frame)
    try:
        (n,) = struct.unpack_from("<I", view, 0)
        head = bytes(view[4:4 + n])
        if len(head) != n:
            raise WireError("truncated header")
        pos = 4 + n
        (count,) = struct.unpack_from("<I", view, pos)
        pos += 4
        if count > 100_000:
            raise WireError("too many blobs")
        blobs = []
        for _ in range(count):
            (size,) = struct.unpack_from("<Q", view, pos)
            pos += 8
            if pos + size > len(view):
                raise WireError("truncated blob")
            blobs.append(bytes(view[pos:pos + size]))
            pos += size
    except struct.error as exc:
        raise WireError("truncated frame") from exc
    if pos != len(view):
        raise WireError("bytes after the value")
    try:
        tree = json.loads(head.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"header is not JSON: {exc}") from exc
    except RecursionError as exc:   # nested past Python's limit before _unpack could count the depth
        raise WireError("header nested too deeply") from exc
    return _unpack(tree, blobs, 0, [0], max_str)


def _no_constants(name):
    raise WireError(f"bare {name} in the header")


# ----------------------------------------------------------------------------- framing over a pipe

def write_frame(fd: int, value) -> None:
    data = encode(value)
    data = struct.pack("<Q", len(data)) + data
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def read_frame(fd: int, deadline: float | None = None, max_size: int = MAX_FRAME, max_str: int | None = MAX_STR):
    """Read one frame from `fd` and decode it.  With a deadline (time.monotonic() value),
    raises TimeoutError when it passes first; EOFError when the writer has gone.  A frame
    announcing more than `max_size` bytes is refused (WireError) before any of it is read."""
    size_bytes = _read_exact(fd, 8, deadline)
    (size,) = struct.unpack("<Q", size_bytes)
    if size > max_size:
        raise WireError(f"frame of {size} bytes is over the limit of {max_size}")
    return decode(_read_exact(fd, size, deadline), max_str)


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    chunks, got = [], 0
    while got < n:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                raise TimeoutError
        data = os.read(fd, min(n - got, 1 << 20))
        if not data:
            raise EOFError
        chunks.append(data)
        got += len(data)
    return b"".join(chunks)
