"""Write small, valid files in each real data format (and let tests break them on purpose)."""
from __future__ import annotations

import gzip
import io
import json
import math
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

RNG_SEED = 1234


def rng(seed: int = RNG_SEED) -> np.random.Generator:
    return np.random.default_rng(seed)


# ------------------------------------------------------------------ tiny NeRF / Blender
def write_tiny_nerf(path: Path, n: int = 5, h: int = 6, w: int = 7, uint8: bool = False, **overrides) -> dict:
    r = rng()
    data = {
        "images": r.random((n, h, w, 3), dtype=np.float32),
        "poses": np.tile(np.eye(4, dtype=np.float32), (n, 1, 1)) + r.normal(0, 0.1, (n, 4, 4)).astype(np.float32),
        "focal": np.float64(9.5),
    }
    data["poses"][:, 3] = [0, 0, 0, 1]
    if uint8:
        data["images"] = (data["images"] * 255).astype(np.uint8)
    data.update(overrides)
    data = {k: v for k, v in data.items() if v is not None}
    np.savez(path, **data)
    return data


def write_blender_scene(root: Path, split: str = "train", n: int = 3, size: int = 8, angle: float = 0.69) -> dict:
    """``n`` RGBA PNGs of ``size`` x ``size`` and ``transforms_<split>.json``; returns the arrays written."""
    r = rng()
    (root / split).mkdir(parents=True, exist_ok=True)
    rgba = (r.random((n, size, size, 4)) * 255).astype(np.uint8)
    frames = []
    for i in range(n):
        Image.fromarray(rgba[i], "RGBA").save(root / split / f"r_{i}.png")
        mat = np.eye(4)
        mat[:3, 3] = [0.0, -4.0 + i, 1.0]
        frames.append({"file_path": f"./{split}/r_{i}", "rotation": 0.0, "transform_matrix": mat.tolist()})
    (root / f"transforms_{split}.json").write_text(json.dumps({"camera_angle_x": angle, "frames": frames}))
    return {"rgba": rgba, "poses": np.stack([np.array(f["transform_matrix"]) for f in frames]), "angle": angle}


# ------------------------------------------------------------------ DAVIS
DAVIS_PALETTE = [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [0] * (256 * 3 - 12)


def write_davis(root: Path, seq: str = "seq", n: int = 3, h: int = 12, w: int = 16, palette: bool = True) -> dict:
    """A DAVIS sequence: JPEG frames and palette (object ids 0..3) or binary 0/255 grey masks."""
    r = rng()
    fdir, mdir = root / "JPEGImages" / "480p" / seq, root / "Annotations" / "480p" / seq
    fdir.mkdir(parents=True, exist_ok=True)
    mdir.mkdir(parents=True, exist_ok=True)
    ramp = np.linspace(0, 1, w)[None, None, :, None] * np.linspace(0.5, 1, h)[None, :, None, None]
    frames = (255 * (0.2 + 0.6 * ramp * r.random((n, 1, 1, 3)))).astype(np.uint8)   # smooth: JPEG keeps it
    ids = np.zeros((n, h, w), dtype=np.uint8)
    for t in range(n):
        ids[t, 2:6, 1 + t:5 + t] = 1
        if palette:
            ids[t, 7:11, 8:12] = 2
            ids[t, 0:2, 12:16] = 3
        Image.fromarray(frames[t]).save(fdir / f"{t:05d}.jpg", quality=95)
        if palette:
            img = Image.fromarray(ids[t], "P")
            img.putpalette(DAVIS_PALETTE)
        else:
            img = Image.fromarray(ids[t] * 255, "L")
        img.save(mdir / f"{t:05d}.png")
    return {"frames": frames, "ids": ids}


# ------------------------------------------------------------------ CIFAR-10
def write_cifar10(root: Path, per_batch: int = 4) -> dict:
    """``cifar-10-batches-py`` with tiny batches pickled like the original (bytes keys, uint8 arrays)."""
    r = rng()
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names, b"num_vis": 3072}, f, protocol=2)
    out = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = (r.random((per_batch, 3072)) * 255).astype(np.uint8)
        labels = [int(v) for v in r.integers(0, 10, per_batch)]
        with open(folder / name, "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": data,
                         b"filenames": [b"x.png"] * per_batch}, f, protocol=2)
        out[name] = (data, labels)
    return out


class _Evil:
    """Unpickling this calls os.mkdir(witness): proof that code ran."""

    def __init__(self, witness: str):
        self.witness = witness

    def __reduce__(self):
        import os
        return (os.mkdir, (self.witness,))


def write_evil_pickle(path: Path, witness: Path) -> None:
    with open(path, "wb") as f:
        pickle.dump({b"data": _Evil(str(witness)), b"labels": []}, f, protocol=2)


# ------------------------------------------------------------------ MNIST / IDX
def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(">u1" if type_code == 0x08 else array.dtype).tobytes()


def write_mnist(root: Path, split: str = "test", n: int = 6, gz: bool = True) -> dict:
    r = rng()
    prefix = "train" if split == "train" else "t10k"
    images = (r.random((n, 28, 28)) * 255).astype(np.uint8)
    labels = r.integers(0, 10, n).astype(np.uint8)
    root.mkdir(parents=True, exist_ok=True)
    for stem, arr in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
        blob = idx_bytes(arr)
        if gz:
            (root / f"{stem}.gz").write_bytes(gzip.compress(blob))
        else:
            (root / stem).write_bytes(blob)
    return {"images": images, "labels": labels}


# ------------------------------------------------------------------ image folders
def image_tree(n_per_class: dict[str, int], size: tuple[int, int] = (5, 4), fmt: str = "PNG") -> dict[str, bytes]:
    """``{"<class>/<i>.png": bytes}`` with distinct random pixels."""
    r = rng()
    out = {}
    for cls, count in n_per_class.items():
        for i in range(count):
            arr = (r.random((size[0], size[1], 3)) * 255).astype(np.uint8)
            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, format=fmt)
            out[f"{cls}/{i:04d}.{fmt.lower()}"] = buf.getvalue()
    return out


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, blob in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(blob)


def write_tar(path: Path, files: dict[str, bytes], prefix: str = "") -> None:
    with tarfile.open(path, "w:gz") as tar:
        for rel, blob in files.items():
            info = tarfile.TarInfo(prefix + rel)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))


def decode_png(blob: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(blob)).convert("RGB"))


def focal_from_angle(width: int, angle: float) -> float:
    return 0.5 * width / math.tan(0.5 * angle)
