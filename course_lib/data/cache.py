"""On-disk cache for the synthetic datasets: content-addressed, checksummed, written atomically.

A generated dataset is stored under ``<cache dir>/synthetic/<name>-<key>.bin`` where

    key = sha256(json({"generator": name, "version": VERSION, "params": params}))[:20]

so a change of any parameter, or of the generator's version constant (bumped whenever its output changes),
gives a new file. The file holds a header with the sha256 of its payload (an uncompressed ``.npz``: plain
arrays, loaded with ``allow_pickle=False``); a file whose payload does not match its hash (a truncated copy,
a flipped bit) is reported with a warning and regenerated. Files are written to a temporary name in the same
folder and moved into place with ``os.replace``, so a reader never sees a half-written file.

The cache folder is ``$COURSE_DATA_DIR`` when set, otherwise ``~/.cache/course_lib``.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..atomic import write_bytes_atomic
from ..utils import single_threaded

__all__ = ["to_uint8", "from_uint8", "data_dir", "cache_key", "cache_path", "cached", "atomic_write_bytes",
           "CacheCorrupted", "CacheWarning", "PACKAGED_DIR",
           "packaged_path"]

ENV_VAR = "COURSE_DATA_DIR"
_MAGIC = b"COURSE_LIB_CACHE 1\n"
_META_KEY = "__meta__"


class CacheCorrupted(RuntimeError):
    """A cache file's payload does not match the hash in its header."""


class CacheWarning(UserWarning):
    """A cache file was unusable (and regenerated) or could not be written."""


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Values in [0, 1] -> uint8 levels ``round(255 x)`` (the generators store 8-bit images, like files)."""
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def from_uint8(x: torch.Tensor) -> torch.Tensor:
    """uint8 levels -> float32 in [0, 1] (``k / 255``)."""
    return x.float() / 255.0


def data_dir(override: str | os.PathLike | None = None) -> Path:
    """The root data folder: ``override``, else ``$COURSE_DATA_DIR``, else ``~/.cache/course_lib``."""
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "course_lib"


def _canonical(value):
    if isinstance(value, (tuple, list)):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, float):
        return repr(value)                      # exact: 0.1 and 0.1000000001 are different keys
    raise TypeError(f"cache parameters must be JSON-like (numbers, strings, lists, dicts), got {type(value).__name__}")


def cache_key(name: str, version: int, params: dict) -> str:
    """Hex digest identifying one generator output: name + version constant + every parameter."""
    blob = json.dumps({"generator": name, "version": version, "params": _canonical(params)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _encode(arrays: dict[str, torch.Tensor | np.ndarray], meta: dict) -> bytes:
    buf = io.BytesIO()
    payload = {k: v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
               for k, v in arrays.items()}
    payload[_META_KEY] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(buf, **payload)
    body = buf.getvalue()
    return _MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" + body


def _decode(blob: bytes, path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    if not blob.startswith(_MAGIC):
        raise CacheCorrupted(f"{path}: not a course_lib cache file (bad header)")
    head = len(_MAGIC)
    digest, body = blob[head:head + 64].decode(errors="replace"), blob[head + 65:]
    actual = hashlib.sha256(body).hexdigest()
    if actual != digest:
        raise CacheCorrupted(f"{path}: payload sha256 {actual[:12]}... does not match the header's {digest[:12]}...")
    with np.load(io.BytesIO(body), allow_pickle=False) as npz:
        arrays = {k: torch.from_numpy(npz[k].copy()) for k in npz.files if k != _META_KEY}
        meta = json.loads(npz[_META_KEY].tobytes().decode())
    return arrays, meta


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, readable by everyone (a class may share one cache folder)."""
    write_bytes_atomic(path, data, mode=0o644)


def _build(build):
    with single_threaded():
        return build()


def cache_path(name: str, version: int, params: dict, directory: str | os.PathLike | None = None) -> Path:
    """Where :func:`cached` keeps the output of generator ``name`` for ``params``."""
    return data_dir(directory) / "synthetic" / f"{name}-{cache_key(name, version, params)}.bin"


# Data sets shipped inside the package (the student edition ships the scenes its notebooks use, because the
# scene renderer needs references it withholds): read-only, consulted after the cache folder.
PACKAGED_DIR = Path(__file__).with_name("packaged")


def packaged_path(name: str, version: int, params: dict) -> Path:
    return PACKAGED_DIR / f"{name}-{cache_key(name, version, params)}.bin"


def cached(
    name: str,
    version: int,
    params: dict,
    build: Callable[[], tuple[dict[str, torch.Tensor], dict]],
    cache: bool = True,
    directory: str | os.PathLike | None = None,
) -> tuple[dict[str, torch.Tensor], dict]:
    """Return ``build()``'s ``(tensors, meta)``, from the cache when a valid file exists.

    Args:
        name, version, params: identify the output (see the module docstring).
        build: makes ``(dict of tensors, JSON-able meta dict)``; called on a miss or a corrupted file, on
            one torch thread (:func:`single_threaded`).
        cache: False skips the disk entirely (nothing read, nothing written).
        directory: the data root (default :func:`data_dir`).
    """
    if not cache:
        return _build(build)
    path = cache_path(name, version, params, directory)
    for candidate in (path, packaged_path(name, version, params)):
        if candidate.is_file():
            try:
                return _decode(candidate.read_bytes(), candidate)
            except (CacheCorrupted, ValueError, OSError, KeyError) as exc:
                warnings.warn(f"regenerating {name}: cache file is unusable ({exc})", CacheWarning, stacklevel=3)
    arrays, meta = _build(build)
    try:
        atomic_write_bytes(path, _encode(arrays, meta))
    except OSError as exc:                      # a read-only home still gets its data, just not cached
        warnings.warn(f"could not write the {name} cache to {path}: {exc}", CacheWarning, stacklevel=3)
    return arrays, meta
