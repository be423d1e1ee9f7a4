"""Do the loaders read the real data samples in /work/shared/realdata (lego views, DAVIS sequences, CIFAR-10
JPEG folders inside tarballs, the MNIST test set)? Each test is skipped where its sample is absent."""
import math
from pathlib import Path

import pytest
import torch

from course_lib.data import (DatasetError, davis_sequences, load_davis, load_image_folder, load_mnist,
                             load_tiny_nerf, read_blender_transforms)
from data_fixtures.common import isolated_data_dir, one_torch_thread  # noqa: F401  (autouse fixtures)

REAL = Path(__file__).resolve().parents[2] / "shared" / "realdata"     # ../shared/realdata from the checkout

pytestmark = pytest.mark.realdata


def _need(*parts):
    path = REAL.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return path


def test_lego_npz_matches_its_blender_transforms():
    data = load_tiny_nerf(_need("nerf_lego", "lego_train_100x100_derived.npz"))
    assert data.images.shape == (100, 100, 100, 3) and not data.holdout.any()
    assert data.focal == pytest.approx(138.88887889922103)
    poses, angle, paths = read_blender_transforms(_need("nerf_lego", "transforms_train.json"))
    assert torch.allclose(poses, data.poses, atol=1e-6) and len(paths) == 100
    assert data.focal == pytest.approx(0.5 * 100 / math.tan(0.5 * angle), rel=1e-6)   # 800 px / 8
    rot = data.poses[:, :3, :3]
    assert torch.allclose(rot.transpose(1, 2) @ rot, torch.eye(3).expand(100, 3, 3), atol=1e-4)
    radius = data.poses[:, :3, 3].norm(dim=-1)
    assert radius.min() > 3.9 and radius.max() < 4.2                         # cameras ~4 units out, like ours
    transparent = data.alphas == 0
    assert transparent.any() and data.images[transparent].abs().max() == 0       # composited on black


def test_davis_sample_sequences_load_with_binary_masks():
    root = _need("davis2016_sample")
    assert davis_sequences(root) == ["blackswan", "car-shadow", "dog"]
    for seq in davis_sequences(root):
        clip = load_davis(root, seq, size=(120, 214), max_frames=8)
        assert clip.frames.shape == (1, 8, 3, 120, 214) and clip.masks.shape == (1, 8, 120, 214)
        assert set(clip.masks.unique().tolist()) == {0, 1}
        fg = clip.masks.float().mean()
        assert 0.01 < fg < 0.5                                               # an object, not the whole frame
    full = load_davis(root, "car-shadow", size=60)
    assert full.frames.shape[:2] == (1, 40) and full.frames.shape[-2:] == (60, 107)


def test_cifar10_jpeg_tarballs_load_a_few_hundred_images():
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    test = load_image_folder(_need("cifar10_jpg", "cifar10_jpg_test.tar.gz"), n_per_class=30)
    assert test.classes == classes and test.images.shape == (300, 3, 32, 32)
    assert torch.bincount(test.labels).tolist() == [30] * 10
    assert 0.2 < test.images.mean() < 0.8 and test.images.std() > 0.1
    train = load_image_folder(_need("cifar10_jpg", "cifar10_jpg_train.tar.gz"), n_per_class=5)
    assert train.classes == classes and len(train) == 50
    assert not torch.equal(train.images[:5], test.images[:5])


def test_mnist_test_set_has_the_published_label_counts():
    root = _need("mnist")
    data = load_mnist(root, "test")
    assert data.images.shape == (10000, 1, 28, 28)
    # per-digit counts of the official t10k set (LeCun et al.)
    assert torch.bincount(data.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert data.images[:, :, 0, :].max() == 0                                 # digits are centred: empty top row
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte"):       # this sample lacks the train images
        load_mnist(root, "train")
