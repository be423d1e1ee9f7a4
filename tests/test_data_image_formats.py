"""Do the CIFAR-10, MNIST and image-folder loaders return exactly the stored pixels and labels, refuse
unsafe pickles, and name the file and problem for every malformed input?"""
import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from course_lib.data import DatasetError, load_cifar10, load_image_folder, load_mnist, read_idx
from data_fixtures.common import isolated_data_dir, one_torch_thread  # noqa: F401  (autouse fixtures)
from data_fixtures.fabricate import (decode_png, idx_bytes, image_tree, write_cifar10, write_evil_pickle, write_mnist,
                                     write_tar, write_tree)


# ------------------------------------------------------------------------------------------- CIFAR-10
def test_cifar10_round_trip_both_splits_and_both_roots(tmp_path):
    written = write_cifar10(tmp_path, per_batch=4)
    train = load_cifar10(tmp_path, "train")                    # the parent folder works ...
    test = load_cifar10(tmp_path / "cifar-10-batches-py", "test")   # ... and so does the folder itself
    assert train.images.shape == (20, 3, 32, 32) and test.images.shape == (4, 3, 32, 32)
    data = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    labels = sum((written[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    # row layout: 1024 red, 1024 green, 1024 blue values, each row-major 32x32
    assert torch.equal(train.images, torch.from_numpy(data.reshape(-1, 3, 32, 32)).float() / 255)
    assert train.images[0, 1, 0, 0] == data[0, 1024] / 255
    assert train.labels.tolist() == labels and train.labels.dtype == torch.int64
    assert test.classes[0] == "airplane" and test.classes[-1] == "truck"


def test_cifar10_refuses_pickles_that_would_run_code(tmp_path):
    write_cifar10(tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "test_batch"
    witness = tmp_path / "code-ran"
    write_evil_pickle(batch, witness)
    with pytest.raises(DatasetError) as info:
        load_cifar10(tmp_path, "test")
    assert str(batch) in str(info.value) and "refusing to unpickle" in str(info.value)
    assert "mkdir" in str(info.value)
    assert not witness.exists()


def _rewrite(path, mutate):
    with open(path, "rb") as f:
        obj = pickle.load(f, encoding="bytes")
    mutate(obj)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


@pytest.mark.parametrize("name, mutate, problem", [
    ("test_batch", lambda o: o.pop(b"labels"), "missing key 'labels'"),
    ("test_batch", lambda o: o.update({b"data": o[b"data"][:, :100]}), "'data' must be a uint8 array [N, 3072]"),
    ("test_batch", lambda o: o.update({b"labels": o[b"labels"][:-1]}), "inconsistent counts: 4 images but 3 labels"),
    ("test_batch", lambda o: o.update({b"labels": [0, 1, 2, 12]}), "labels must be in [0, 10)"),
    ("batches.meta", lambda o: o.pop(b"label_names"), "missing key 'label_names'"),
])
def test_cifar10_malformed_batches_name_file_and_problem(tmp_path, name, mutate, problem):
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / name
    _rewrite(path, mutate)
    with pytest.raises(DatasetError) as info:
        load_cifar10(tmp_path, "test")
    assert str(path) in str(info.value) and problem in str(info.value)


def test_cifar10_truncated_and_missing_files(tmp_path):
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DatasetError, match=r"data_batch_3: not a readable pickle"):
        load_cifar10(tmp_path, "train")
    path.unlink()
    with pytest.raises(DatasetError, match=r"data_batch_3: file not found"):
        load_cifar10(tmp_path, "train")
    with pytest.raises(ValueError, match="split"):
        load_cifar10(tmp_path, "validation")


# ------------------------------------------------------------------------------------------- MNIST / IDX
@pytest.mark.parametrize("gz", [True, False])
def test_mnist_round_trip_gzip_or_raw(tmp_path, gz):
    written = write_mnist(tmp_path, "test", n=6, gz=gz)
    data = load_mnist(tmp_path, "test")
    assert data.images.shape == (6, 1, 28, 28) and data.images.dtype == torch.float32
    assert torch.equal(data.images[:, 0], torch.from_numpy(written["images"]).float() / 255)
    assert data.labels.tolist() == written["labels"].tolist() and data.classes == [str(d) for d in range(10)]


def test_read_idx_handles_other_types_big_endian(tmp_path):
    values = np.array([[1, -2, 300], [70000, 0, -5]], dtype=np.int32)
    header = struct.pack(">BBBB", 0, 0, 0x0C, 2) + struct.pack(">II", 2, 3)
    (tmp_path / "x.idx").write_bytes(header + values.astype(">i4").tobytes())
    out = read_idx(tmp_path / "x.idx")
    assert out.dtype == np.int32 and np.array_equal(out, values)


def _idx_case(tmp_path, case):
    images = np.zeros((4, 28, 28), np.uint8)
    path = tmp_path / "t10k-images-idx3-ubyte"
    blob = idx_bytes(images)
    if case == "magic":
        blob = b"\x12\x34" + blob[2:]
        return path, blob, "bad magic number 0x1234"
    if case == "type":
        blob = blob[:2] + b"\x07" + blob[3:]
        return path, blob, "bad magic number 0x00000703"
    if case == "truncated":
        return path, blob[:-100], "truncated: header says [4, 28, 28] (3136 bytes of data), found 3036"
    if case == "trailing":
        return path, blob + b"\x00" * 7, "7 unexpected trailing bytes"
    if case == "short_header":
        return path, blob[:10], "truncated header"
    if case == "gzip":
        return path.with_name(path.name + ".gz"), gzip.compress(blob)[:-20], "corrupt or truncated gzip"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["magic", "type", "truncated", "trailing", "short_header", "gzip"])
def test_malformed_idx_files_name_file_and_problem(tmp_path, case):
    write_mnist(tmp_path, "test", n=4, gz=False)
    path, blob, problem = _idx_case(tmp_path, case)
    if path.suffix == ".gz":
        (tmp_path / "t10k-images-idx3-ubyte").unlink()
    path.write_bytes(blob)
    with pytest.raises(DatasetError) as info:
        load_mnist(tmp_path, "test")
    assert str(path) in str(info.value) and problem in str(info.value)


def test_mnist_inconsistent_counts_bad_labels_and_missing_files(tmp_path):
    write_mnist(tmp_path, "test", n=4, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.array([1, 2, 3], np.uint8)))
    with pytest.raises(DatasetError, match="inconsistent counts: 4 images but 3 labels"):
        load_mnist(tmp_path, "test")
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.array([1, 2, 3, 11], np.uint8)))
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte: labels must be digits 0..9, found 11"):
        load_mnist(tmp_path, "test")
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte\[\.gz\]: file not found"):
        load_mnist(tmp_path, "train")


# ------------------------------------------------------------------------------------------- image folders
FILES = image_tree({"zebra": 3, "ant": 2, "moth": 4})


def _expected(files, n_per_class=None):
    classes = sorted({k.split("/")[0] for k in files})
    imgs, labels = [], []
    for ci, c in enumerate(classes):
        names = sorted(k for k in files if k.startswith(c + "/"))[:n_per_class]
        imgs += [decode_png(files[k]) for k in names]
        labels += [ci] * len(names)
    return classes, torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float() / 255, labels


@pytest.mark.parametrize("kind", ["folder", "tar", "tar_with_top_folder"])
def test_image_folder_from_disk_or_archive(tmp_path, kind):
    if kind == "folder":
        write_tree(tmp_path / "imgs", FILES)
        (tmp_path / "imgs" / "ant" / "notes.txt").write_text("not an image")
        path = tmp_path / "imgs"
    else:
        path = tmp_path / "imgs.tar.gz"
        write_tar(path, FILES, prefix="test/" if kind == "tar_with_top_folder" else "")
    data = load_image_folder(path)
    classes, images, labels = _expected(FILES)
    assert data.classes == classes == ["ant", "moth", "zebra"]
    assert torch.equal(data.images, images) and data.labels.tolist() == labels
    few = load_image_folder(path, n_per_class=2)
    classes, images, labels = _expected(FILES, 2)
    assert torch.equal(few.images, images) and few.labels.tolist() == labels


def test_image_folder_grayscale_and_resize(tmp_path):
    write_tree(tmp_path, FILES)
    grey = load_image_folder(tmp_path, grayscale=True)
    assert grey.images.shape == (9, 1, 5, 4)
    big = load_image_folder(tmp_path, size=(10, 8))
    assert big.images.shape == (9, 3, 10, 8)


@pytest.mark.parametrize("files, problem", [
    ({**FILES, "ant/0009.png": image_tree({"x": 1}, size=(6, 6))["x/0000.png"]}, "image size mismatch: ant/0009.png"),
    ({**FILES, "ant/extra/deep.png": FILES["ant/0000.png"]}, "inconsistent layout"),
    ({**FILES, "moth/0002.png": b"\x89PNG broken"}, "moth/0002.png is not a readable image"),
    ({"loose.png": FILES["ant/0000.png"]}, "is not inside a class folder"),
])
def test_image_folder_malformed_inputs_name_path_and_problem(tmp_path, files, problem):
    archive = tmp_path / "bad.tar.gz"
    write_tar(archive, files)
    with pytest.raises(DatasetError) as info:
        load_image_folder(archive)
    assert str(archive) in str(info.value) and problem in str(info.value)


def test_image_folder_empty_missing_and_corrupt_archive(tmp_path):
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no images"):
        load_image_folder(tmp_path / "empty")
    with pytest.raises(DatasetError, match="no such folder or archive"):
        load_image_folder(tmp_path / "missing")
    write_tar(tmp_path / "ok.tar.gz", FILES)
    (tmp_path / "cut.tar.gz").write_bytes((tmp_path / "ok.tar.gz").read_bytes()[:300])
    with pytest.raises(DatasetError, match=r"cut\.tar\.gz: (corrupt or truncated archive|not a readable)"):
        load_image_folder(tmp_path / "cut.tar.gz")
    with pytest.raises(ValueError, match="n_per_class"):
        load_image_folder(tmp_path / "ok.tar.gz", n_per_class=0)
