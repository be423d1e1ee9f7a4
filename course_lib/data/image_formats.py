"""Loaders for labelled image collections: CIFAR-10 (python batches), MNIST (IDX files) and image folders
(one sub-folder per class, on disk or inside a ``.tar`` / ``.tar.gz``).

CIFAR-10's python version is a set of pickles; a pickle can run code when loaded, so we read them with a
*restricted* unpickler that only accepts the globals a NumPy array needs (``numpy.ndarray``,
``numpy.dtype`` and the array reconstructor, plus a latin-1-only stand-in for ``_codecs.encode``, which
Python 3 uses for bytes at protocol 2) and refuses everything else with a :class:`DatasetError`.

IDX (LeCun et al.): big-endian header ``0x00 0x00 <type> <ndim>``, then ``ndim`` uint32 sizes, then the
data; type 0x08 = uint8 (MNIST). Files may be gzip-compressed (detected by the gzip magic bytes).

All loaders return :class:`ImageDataset` with images ``[N, C, H, W]`` float32 in [0, 1] and raise
:class:`DatasetError` naming the file and the problem (bad magic number, truncated data, inconsistent
counts, missing key, size mismatch, unreadable member) without returning anything half-built.

References:
    Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", tech. report 2009 (CIFAR-10).
    LeCun, Bottou, Bengio, Haffner, "Gradient-Based Learning Applied to Document Recognition", 1998 (MNIST).
"""
from __future__ import annotations

import gzip
import io
import os
import pickle
import tarfile
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from .containers import DatasetError, ImageDataset

__all__ = ["load_cifar10", "load_mnist", "read_idx", "load_image_folder", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".ppm", ".pgm")
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
}
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


# ---------------------------------------------------------------------------------------------- CIFAR-10
def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """The one use of ``_codecs.encode`` a data pickle needs (bytes written by Python 3 at protocol 2)."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise DatasetError(f"refusing _codecs.encode with encoding {encoding!r} in a data pickle")
    return text.encode("latin1")


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles plain containers and NumPy arrays; any other global is refused."""

    def __init__(self, file, path: Path):
        super().__init__(file, encoding="bytes")
        self._path = path

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        if (module, name) == ("_codecs", "encode"):              # how Python 3 writes bytes at protocol 2
            return _latin1_encode
        raise DatasetError(f"{self._path}: refusing to unpickle {module}.{name} (only NumPy arrays and plain "
                           "containers are allowed in CIFAR-10 batches)")


def _unpickle(path: Path) -> dict:
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        with open(path, "rb") as f:
            obj = _RestrictedUnpickler(f, path).load()
    except DatasetError as exc:
        raise exc if str(path) in str(exc) else DatasetError(f"{path}: {exc}") from None
    except Exception as exc:                                  # truncated / not a pickle: many exception types
        raise DatasetError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict):
        raise DatasetError(f"{path}: expected a dict, got {type(obj).__name__}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def load_cifar10(root: str | os.PathLike, split: str = "train") -> ImageDataset:
    """Load CIFAR-10's python batches (``data_batch_1..5``, ``test_batch``, ``batches.meta``).

    Args:
        root: the ``cifar-10-batches-py`` folder, or a folder that contains it.
        split: ``"train"`` (50,000 images) or ``"test"`` (10,000).

    Returns:
        :class:`ImageDataset`: images ``[N, 3, 32, 32]`` float32 in [0, 1], labels ``[N]`` int64, the 10
        class names from ``batches.meta``.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(root)
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    meta = _unpickle(root / "batches.meta")
    if "label_names" not in meta:
        raise DatasetError(f"{root / 'batches.meta'}: missing key 'label_names'")
    classes = [c.decode() if isinstance(c, bytes) else str(c) for c in meta["label_names"]]
    data, labels = [], []
    for name in names:
        path = root / name
        batch = _unpickle(path)
        for key in ("data", "labels"):
            if key not in batch:
                raise DatasetError(f"{path}: missing key {key!r} (found: {', '.join(map(str, batch))})")
        x, y = batch["data"], np.asarray(batch["labels"])
        if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072:
            shape = list(x.shape) if isinstance(x, np.ndarray) else type(x).__name__
            raise DatasetError(f"{path}: 'data' must be a uint8 array [N, 3072], got {shape}")
        if y.shape != (x.shape[0],):
            raise DatasetError(f"{path}: inconsistent counts: {x.shape[0]} images but {y.size} labels")
        if y.size and (y.min() < 0 or y.max() >= len(classes)):
            raise DatasetError(f"{path}: labels must be in [0, {len(classes)}), got [{y.min()}, {y.max()}]")
        data.append(x)
        labels.append(y)
    images = torch.from_numpy(np.concatenate(data).reshape(-1, 3, 32, 32)).float() / 255.0   # rows are RRR..GGG..BBB
    return ImageDataset(images=images, labels=torch.from_numpy(np.concatenate(labels).astype(np.int64)),
                        classes=classes)


# ---------------------------------------------------------------------------------------------- MNIST
def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (raw or gzip) into a NumPy array of its stored shape and (native-endian) type."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise DatasetError(f"{path}: corrupt or truncated gzip stream ({exc})") from None
    if len(raw) < 4:
        raise DatasetError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    magic = int.from_bytes(raw[:4], "big")
    kind, ndim = raw[2], raw[3]
    if raw[:2] != b"\x00\x00" or kind not in _IDX_TYPES or ndim == 0:
        raise DatasetError(f"{path}: bad magic number 0x{magic:08X} (expected 0x000008NN for IDX uint8 data)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path}: truncated header ({len(raw)} bytes, need {header} for {ndim} dimensions)")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(_IDX_TYPES[kind])
    expected = int(np.prod(dims)) * dtype.itemsize
    got = len(raw) - header
    if got < expected:
        raise DatasetError(f"{path}: truncated: header says {dims} ({expected} bytes of data), found {got}")
    if got > expected:
        raise DatasetError(f"{path}: {got - expected} unexpected trailing bytes after {dims} of data")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)       # [prod(dims)] -> dims
    return data.astype(dtype.newbyteorder("="))


def _find(root: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (root / name).is_file():
            return root / name
    raise DatasetError(f"{root / stem}[.gz]: file not found")


def load_mnist(root: str | os.PathLike, split: str = "train") -> ImageDataset:
    """Load MNIST from ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`` in ``root``.

    Returns:
        :class:`ImageDataset`: images ``[N, 1, 28, 28]`` float32 in [0, 1], labels ``[N]`` int64, classes
        ``"0".."9"``.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root, prefix = Path(root), ("train" if split == "train" else "t10k")
    img_path, lbl_path = _find(root, f"{prefix}-images-idx3-ubyte"), _find(root, f"{prefix}-labels-idx1-ubyte")
    images, labels = read_idx(img_path), read_idx(lbl_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DatasetError(f"{img_path}: expected uint8 images [N, H, W], got {images.dtype} {list(images.shape)}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DatasetError(f"{lbl_path}: expected uint8 labels [N], got {labels.dtype} {list(labels.shape)}")
    if images.shape[0] != labels.shape[0]:
        raise DatasetError(f"{img_path}: inconsistent counts: {images.shape[0]} images but {labels.shape[0]} labels "
                           f"in {lbl_path.name}")
    if labels.size and labels.max() > 9:
        raise DatasetError(f"{lbl_path}: labels must be digits 0..9, found {int(labels.max())}")
    return ImageDataset(images=torch.from_numpy(images.copy()).float().unsqueeze(1) / 255.0,
                        labels=torch.from_numpy(labels.astype(np.int64)), classes=[str(d) for d in range(10)])


# ---------------------------------------------------------------------------------------------- folders
def _iter_image_bytes(path: Path):
    """Yield ``(relative posix path, reader)`` for every image file in a folder or tar archive; ``reader()``
    returns the bytes. Tar members are never extracted to disk (no path traversal possible)."""
    if path.is_dir():
        for file in sorted(path.rglob("*")):
            if file.is_file() and file.suffix.lower() in IMAGE_EXTENSIONS:
                yield PurePosixPath(file.relative_to(path).as_posix()), file.read_bytes
        return
    try:
        tar = tarfile.open(path, mode="r|*")                                  # streaming: one pass
    except (tarfile.TarError, OSError) as exc:
        raise DatasetError(f"{path}: not a readable folder or tar archive ({exc})") from None
    with tar:
        try:
            for member in tar:
                if member.isfile() and PurePosixPath(member.name).suffix.lower() in IMAGE_EXTENSIONS:
                    data = tar.extractfile(member).read()
                    yield PurePosixPath(member.name), (lambda d=data: d)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DatasetError(f"{path}: corrupt or truncated archive ({exc})") from None


def load_image_folder(
    path: str | os.PathLike,
    n_per_class: int | None = None,
    size: int | tuple[int, int] | None = None,
    grayscale: bool = False,
) -> ImageDataset:
    """Load ``<class>/<image>`` files from a folder or a ``.tar[.gz]`` of such folders.

    Single top-level folders are skipped (an archive of ``test/<class>/*.jpg`` works as is). Classes are
    the sorted sub-folder names; label i = ``classes[i]``.

    Args:
        path: a folder or a tar archive (any compression ``tarfile`` reads).
        n_per_class: keep the first n images (by file name) of each class; None keeps all.
        size: resize every image to ``(height, width)`` (an int: square); None requires equal sizes.
        grayscale: load one channel instead of RGB.

    Returns:
        :class:`ImageDataset`, images ``[N, 3 or 1, H, W]`` float32 in [0, 1], ordered by class then name.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such folder or archive")
    if n_per_class is not None and (not isinstance(n_per_class, int) or n_per_class < 1):
        raise ValueError(f"n_per_class must be a positive int or None, got {n_per_class!r}")
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    if size is not None and not (len(size) == 2 and all(isinstance(s, int) and s > 0 for s in size)):
        raise ValueError(f"size must be None, an int or a (height, width) pair, got {size!r}")
    per_class: dict[str, dict[str, object]] = {}                               # class key -> {name: reader}
    depth = None
    for rel, read in _iter_image_bytes(path):
        parts = rel.parts
        if depth is None:
            depth = len(parts)
        elif len(parts) != depth:
            raise DatasetError(f"{path}: inconsistent layout: {rel} is at depth {len(parts)}, others at {depth} "
                               "(expected <class>/<image> below one common folder)")
        if depth < 2:
            raise DatasetError(f"{path}: image {rel} is not inside a class folder")
        files = per_class.setdefault(parts[-2] if depth == 2 else "/".join(parts[:-1]), {})
        files[parts[-1]] = read
        if n_per_class is not None and len(files) > 4 * n_per_class:       # keep memory bounded while streaming
            for name in sorted(files)[n_per_class:]:
                del files[name]
    if not per_class:
        raise DatasetError(f"{path}: no images ({', '.join(IMAGE_EXTENSIONS)}) found")
    # class = last folder; any common prefix folders (test/, train/) are dropped
    keys = sorted(per_class)
    names = [k.split("/")[-1] for k in keys]
    if len(set(names)) != len(names):
        raise DatasetError(f"{path}: class folders at different places share a name: {sorted(keys)[:4]}")
    classes = sorted(names)
    images, labels, shape = [], [], None
    for key in keys:
        label = classes.index(key.split("/")[-1])
        files = per_class[key]
        for name in sorted(files)[:n_per_class]:
            blob = files[name]()
            try:
                with Image.open(io.BytesIO(blob)) as img:
                    img = img.convert("L" if grayscale else "RGB")
                    if size is not None and img.size != (size[1], size[0]):
                        img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR, reducing_gap=2.0)
                    arr = np.asarray(img)
            except (UnidentifiedImageError, OSError, ValueError) as exc:
                raise DatasetError(f"{path}: {key}/{name} is not a readable image ({exc})") from None
            if shape is None:
                shape = arr.shape
            elif arr.shape != shape:
                raise DatasetError(f"{path}: image size mismatch: {key}/{name} is {arr.shape[1]}x{arr.shape[0]}, "
                                   f"others {shape[1]}x{shape[0]} (pass size= to resize)")
            images.append(arr)
            labels.append(label)
    batch = torch.from_numpy(np.stack(images))                                # [N, H, W(, 3)] uint8
    batch = batch.unsqueeze(1) if grayscale else batch.permute(0, 3, 1, 2)    # [N, C, H, W]
    return ImageDataset(images=batch.float() / 255.0, labels=torch.tensor(labels, dtype=torch.int64),
                        classes=classes)
