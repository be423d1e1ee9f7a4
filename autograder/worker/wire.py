"""The wire format between the grader and its workers: a JSON header plus raw little-endian tensor bytes.

Nothing a worker sends can execute code when it is read: there is no pickle and no ``torch.load`` anywhere on
this path. A message is::

    b"AGW1" | u32 header_len | u64 body_len | header (UTF-8 JSON) | body (raw bytes)

The header is ``{"v": 1, "tree": T, "tensors": [{"dtype", "shape", "offset", "nbytes"}, ...]}`` where ``T`` is
built from JSON values only (dict with str keys, list, str, int, float incl. NaN/Infinity, bool, null) and a
tensor is the dict ``{"__tensor__": k}`` pointing at entry ``k`` of ``tensors``. Tensors are rebuilt with
``torch.frombuffer`` from a whitelist of dtypes after checking that shape, byte count and offset agree, and
every size is bounded (:class:`Limits`), so a hostile worker can at worst send wrong numbers.

This module imports only the standard library and torch: the worker loads it too.
"""
from __future__ import annotations

import json
import math
import os
import socket
import struct
import sys
from dataclasses import dataclass
from typing import Any, BinaryIO

import torch

__all__ = ["Limits", "WireError", "encode", "decode", "read_message", "send_msg", "recv_msg", "Reassembler", "DTYPES"]

MAGIC = b"AGW1"
_PREFIX = struct.Struct("<4sIQ")                       # magic, header length, body length

# The only dtypes that may cross the wire (name -> torch dtype). Everything else is refused.
DTYPES: dict[str, torch.dtype] = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "int16": torch.int16,
    "int32": torch.int32,
    "int64": torch.int64,
    "bool": torch.bool,
}
_NAMES = {v: k for k, v in DTYPES.items()}
_BIG_ENDIAN = sys.byteorder != "little"


class WireError(ValueError):
    """A message that breaks the format or its limits (the sender is treated as faulty)."""


@dataclass(frozen=True)
class Limits:
    """Upper bounds a reader enforces before allocating anything."""

    max_header: int = 8 << 20          # bytes of JSON
    max_body: int = 256 << 20          # bytes of tensor data in one message
    max_tensors: int = 10_000
    max_ndim: int = 8
    max_depth: int = 64                # nesting of the JSON tree
    max_string: int = 1 << 20          # characters in one string
    max_dim: int = 1 << 31             # one dimension of a tensor (an empty tensor may not claim 2**62 rows)
    max_numel: int = 1 << 40           # product of the non-zero dimensions


def _tensor_bytes(t: torch.Tensor) -> bytes:
    flat = t.detach().reshape(-1)
    if flat.dtype == torch.bfloat16:                   # numpy has no bfloat16: go through int16 bits
        flat = flat.view(torch.int16)
    arr = flat.cpu().contiguous().numpy()
    if _BIG_ENDIAN:
        arr = arr.byteswap()
    return arr.tobytes()


def encode(tree: Any) -> bytes:
    """Serialise a tree of JSON values and ``torch.Tensor`` leaves (tensor subclasses are sent as plain data).

    Raises:
        WireError: on a value that is neither JSON nor a tensor of a whitelisted dtype.
    """
    metas: list[dict] = []
    chunks: list[bytes] = []
    offset = 0

    def walk(x: Any, depth: int) -> Any:
        nonlocal offset
        if depth > 200:
            raise WireError("tree nested too deeply")
        if isinstance(x, torch.Tensor):
            plain = torch.Tensor._make_subclass(torch.Tensor, x.detach()) if type(x) is not torch.Tensor else x
            if plain.dtype not in _NAMES:
                raise WireError(f"dtype {plain.dtype} cannot be sent")
            data = _tensor_bytes(plain)
            metas.append({"dtype": _NAMES[plain.dtype], "shape": list(plain.shape), "offset": offset, "nbytes": len(data)})
            chunks.append(data)
            offset += len(data)
            return {"__tensor__": len(metas) - 1}
        if x is None or isinstance(x, (bool, str)):
            return x
        if isinstance(x, int):
            return int(x)
        if isinstance(x, float):
            return float(x)
        if isinstance(x, (list, tuple)):
            return [walk(v, depth + 1) for v in x]
        if isinstance(x, dict):
            out = {}
            for k, v in x.items():
                if not isinstance(k, str) or k == "__tensor__":
                    raise WireError(f"dict keys must be strings other than __tensor__, got {k!r}")
                out[k] = walk(v, depth + 1)
            return out
        raise WireError(f"cannot send a value of type {type(x).__name__}")

    header = {"v": 1, "tree": walk(tree, 0), "tensors": metas}
    hbytes = json.dumps(header, allow_nan=True, separators=(",", ":")).encode("utf-8")
    body = b"".join(chunks)
    return _PREFIX.pack(MAGIC, len(hbytes), len(body)) + hbytes + body


def _check_tree(x: Any, depth: int, limits: Limits, n_tensors: int) -> None:
    if depth > limits.max_depth:
        raise WireError("tree nested too deeply")
    if isinstance(x, dict):
        if set(x) == {"__tensor__"}:
            k = x["__tensor__"]
            if type(k) is not int or not 0 <= k < n_tensors:
                raise WireError(f"bad tensor reference {k!r}")
            return
        for key, v in x.items():
            _check_tree(v, depth + 1, limits, n_tensors)
    elif isinstance(x, list):
        for v in x:
            _check_tree(v, depth + 1, limits, n_tensors)
    elif isinstance(x, str):
        if len(x) > limits.max_string:
            raise WireError("string too long")
    elif x is None or isinstance(x, (bool, int, float)):
        return
    else:                                                   # json.loads cannot produce anything else
        raise WireError(f"unexpected JSON value {type(x).__name__}")


def _build_tensor(meta: Any, body: bytes, limits: Limits) -> torch.Tensor:
    if not isinstance(meta, dict) or set(meta) != {"dtype", "shape", "offset", "nbytes"}:
        raise WireError("bad tensor description")
    dtype = DTYPES.get(meta["dtype"]) if isinstance(meta["dtype"], str) else None
    if dtype is None:
        raise WireError(f"dtype {meta['dtype']!r} is not allowed")
    shape, offset, nbytes = meta["shape"], meta["offset"], meta["nbytes"]
    if (
        not isinstance(shape, list)
        or len(shape) > limits.max_ndim
        or any(type(s) is not int or not 0 <= s <= limits.max_dim for s in shape)
        or math.prod(max(s, 1) for s in shape) > limits.max_numel
        or type(offset) is not int
        or type(nbytes) is not int
    ):
        raise WireError("bad tensor shape, offset or size")
    itemsize = torch.empty((), dtype=dtype).element_size()
    numel = math.prod(shape)
    if numel * itemsize != nbytes or offset < 0 or offset + nbytes > len(body):
        raise WireError(f"tensor of shape {shape} and dtype {meta['dtype']} does not fit its {nbytes} bytes")
    try:
        if numel == 0:
            return torch.empty(shape, dtype=dtype)
        read_as = torch.int16 if dtype == torch.bfloat16 else dtype
        flat = torch.frombuffer(bytearray(body[offset : offset + nbytes]), dtype=read_as)
        if _BIG_ENDIAN and itemsize > 1:
            flat = torch.from_numpy(flat.numpy().byteswap().copy())
        if dtype == torch.bfloat16:
            flat = flat.view(torch.bfloat16)
        return flat.reshape(shape).clone()
    except (RuntimeError, ValueError, OverflowError, MemoryError) as exc:   # torch refuses the description
        raise WireError(f"tensor of shape {shape[:8]} cannot be rebuilt ({type(exc).__name__})") from None


def decode(data: bytes, limits: Limits = Limits()) -> Any:
    """Parse one complete message (prefix included) into a tree with plain ``torch.Tensor`` leaves."""
    if len(data) < _PREFIX.size:
        raise WireError("message too short")
    magic, hlen, blen = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise WireError("bad magic")
    if hlen > limits.max_header or blen > limits.max_body or len(data) != _PREFIX.size + hlen + blen:
        raise WireError("message size does not match its prefix or exceeds the limits")
    header_bytes = data[_PREFIX.size : _PREFIX.size + hlen]
    body = data[_PREFIX.size + hlen :]
    try:
        header = json.loads(header_bytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise WireError(f"header is not valid JSON: {exc.__class__.__name__}") from None
    if not isinstance(header, dict) or header.get("v") != 1 or set(header) != {"v", "tree", "tensors"}:
        raise WireError("bad header")
    metas = header["tensors"]
    if not isinstance(metas, list) or len(metas) > limits.max_tensors:
        raise WireError("bad tensor table")
    _check_tree(header["tree"], 0, limits, len(metas))
    tensors = [_build_tensor(m, body, limits) for m in metas]

    def build(x: Any) -> Any:
        if isinstance(x, dict):
            if set(x) == {"__tensor__"}:
                return tensors[x["__tensor__"]]
            return {k: build(v) for k, v in x.items()}
        if isinstance(x, list):
            return [build(v) for v in x]
        return x

    return build(header["tree"])


def read_message(stream: BinaryIO, limits: Limits = Limits()) -> Any | None:
    """Read one message from a blocking binary stream; ``None`` at a clean end of stream."""
    prefix = _read_exact(stream, _PREFIX.size, allow_eof=True)
    if prefix is None:
        return None
    magic, hlen, blen = _PREFIX.unpack(prefix)
    if magic != MAGIC or hlen > limits.max_header or blen > limits.max_body:
        raise WireError("bad message prefix")
    rest = _read_exact(stream, hlen + blen, allow_eof=False)
    return decode(prefix + rest, limits)


def _read_exact(stream: BinaryIO, n: int, allow_eof: bool) -> bytes | None:
    parts, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            if allow_eof and got == 0:
                return None
            raise WireError("stream ended inside a message")
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


class Reassembler:
    """Incremental parser for a non-blocking pipe: feed bytes, collect complete messages."""

    def __init__(self, limits: Limits = Limits()):
        self.limits = limits
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        self.buf += data
        out = []
        while len(self.buf) >= _PREFIX.size:
            magic, hlen, blen = _PREFIX.unpack_from(self.buf)
            if magic != MAGIC or hlen > self.limits.max_header or blen > self.limits.max_body:
                raise WireError("bad message prefix")
            total = _PREFIX.size + hlen + blen
            if len(self.buf) < total:
                break
            out.append(decode(bytes(self.buf[:total]), self.limits))
            del self.buf[:total]
        return out


# ------------------------------------------------------------------------------------- framed socket messages
# The zygote's control socket: a u64 length, then one message; file descriptors travel with the length.
_LEN = struct.Struct("<Q")


def send_msg(sock: socket.socket, tree, fds: list[int] = ()) -> None:
    data = encode(tree)
    if fds:
        socket.send_fds(sock, [_LEN.pack(len(data))], list(fds))
    else:
        sock.sendall(_LEN.pack(len(data)))
    sock.sendall(data)


def recv_msg(sock: socket.socket, max_fds: int = 0):
    """One framed message (and the fds sent with its length prefix); None when the peer has gone."""
    if max_fds:
        head, fds, _, _ = socket.recv_fds(sock, _LEN.size, max_fds)
    else:
        head, fds = sock.recv(_LEN.size), []
    while head and len(head) < _LEN.size:
        more = sock.recv(_LEN.size - len(head))
        if not more:
            break
        head += more
    if len(head) < _LEN.size:
        for fd in fds:
            os.close(fd)
        return None
    (n,) = _LEN.unpack(head)
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            return None
        buf += chunk
    return decode(bytes(buf), Limits(max_body=1 << 30)), list(fds)

