"""Do the tiny-NeRF and Blender loaders return the stored views in the documented shapes, and does every
malformed file raise a DatasetError that names the file and the problem?"""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from course_lib.data import DatasetError, load_blender, load_tiny_nerf, read_blender_transforms
from data_fixtures.common import isolated_data_dir, one_torch_thread  # noqa: F401  (autouse fixtures)
from data_fixtures.fabricate import focal_from_angle, write_blender_scene, write_tiny_nerf


# ------------------------------------------------------------------------------------------- tiny NeRF
def test_tiny_nerf_round_trip(tmp_path):
    written = write_tiny_nerf(tmp_path / "t.npz", n=5, h=6, w=7)
    data = load_tiny_nerf(tmp_path / "t.npz")
    assert data.images.shape == (5, 6, 7, 3) and data.images.dtype == torch.float32
    assert torch.equal(data.images, torch.from_numpy(written["images"]))
    assert torch.equal(data.poses, torch.from_numpy(written["poses"]))
    assert data.focal == 9.5 and (data.near, data.far) == (2.0, 6.0)
    assert not data.holdout.any() and data.alphas is None


def test_tiny_nerf_uint8_images_and_three_row_poses(tmp_path):
    poses = np.random.default_rng(0).normal(size=(5, 3, 4)).astype(np.float32)
    written = write_tiny_nerf(tmp_path / "t.npz", uint8=True, poses=poses, near=np.float32(1.5), far=np.float32(4.0))
    data = load_tiny_nerf(tmp_path / "t.npz")
    assert torch.allclose(data.images, torch.from_numpy(written["images"] / 255.0).float())
    assert torch.equal(data.poses[:, :3], torch.from_numpy(poses))
    assert torch.equal(data.poses[:, 3], torch.tensor([0.0, 0.0, 0.0, 1.0]).expand(5, 4))
    assert (data.near, data.far) == (1.5, 4.0)


def test_tiny_nerf_holdout_follows_the_official_100_plus_6_split(tmp_path):
    write_tiny_nerf(tmp_path / "t.npz", n=106, h=2, w=2)
    data = load_tiny_nerf(tmp_path / "t.npz")
    assert data.holdout.sum() == 6 and data.holdout[100:].all()
    assert len(data.train_split()) == 100
    assert load_tiny_nerf(tmp_path / "t.npz", n_holdout=10).holdout.sum() == 10
    with pytest.raises(ValueError, match="n_holdout"):
        load_tiny_nerf(tmp_path / "t.npz", n_holdout=107)


@pytest.mark.parametrize("overrides, problem", [
    (dict(poses=None), "missing key 'poses'"),
    (dict(focal=None), "missing key 'focal'"),
    (dict(images=np.zeros((5, 6, 7), np.float32)), "images must be [N, H, W, 3]"),
    (dict(poses=np.zeros((4, 4, 4), np.float32)), "inconsistent counts: 5 images but 4 poses"),
    (dict(poses=np.zeros((5, 2, 4), np.float32)), "poses must be [N, 4, 4]"),
    (dict(focal=np.array([1.0, 2.0])), "'focal' must be a single number"),
    (dict(focal=np.float64(-3.0)), "focal must be > 0"),
    (dict(images=np.full((5, 6, 7, 3), 2.0, np.float32)), "values in [0, 1]"),
    (dict(images=np.zeros((5, 6, 7, 3), np.int32)), "float in [0, 1] or uint8"),
    (dict(near=np.float32(6.0), far=np.float32(2.0)), "near < far"),
    (dict(alphas=np.zeros((5, 6, 6), np.float32)), "alphas must be [N, H, W]"),
    (dict(poses=np.full((5, 4, 4), np.nan, np.float32)), "NaN"),
])
def test_tiny_nerf_malformed_files_name_file_and_problem(tmp_path, overrides, problem):
    path = tmp_path / "bad.npz"
    write_tiny_nerf(path, **overrides)
    with pytest.raises(DatasetError) as info:
        load_tiny_nerf(path)
    assert str(path) in str(info.value) and problem in str(info.value)


def test_tiny_nerf_not_an_npz_missing_file_and_pickled_objects(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip archive")
    with pytest.raises(DatasetError, match=r"garbage\.npz: not a readable \.npz archive"):
        load_tiny_nerf(garbage)
    truncated = tmp_path / "truncated.npz"
    write_tiny_nerf(tmp_path / "ok.npz")
    truncated.write_bytes((tmp_path / "ok.npz").read_bytes()[:200])
    with pytest.raises(DatasetError, match=r"truncated\.npz: not a readable"):
        load_tiny_nerf(truncated)
    with pytest.raises(DatasetError, match=r"missing\.npz: file not found"):
        load_tiny_nerf(tmp_path / "missing.npz")
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(DatasetError, match=r"single\.npy: holds a single array"):
        load_tiny_nerf(single)
    pickled = tmp_path / "objects.npz"
    np.savez(pickled, images=np.array([object()], dtype=object), poses=np.zeros((1, 4, 4)), focal=1.0)
    with pytest.raises(DatasetError, match=r"objects\.npz: not a readable"):   # allow_pickle=False refuses it
        load_tiny_nerf(pickled)


# ------------------------------------------------------------------------------------------- Blender
def _reference(rgba_uint8, f, white):
    """Composite at full size first, then box-average: the order the loader's docstring says is equivalent."""
    rgba = rgba_uint8.astype(np.float64) / 255.0
    rgb = rgba[..., :3] * rgba[..., 3:] + (1.0 - rgba[..., 3:] if white else 0.0)
    n, h, w, _ = rgb.shape
    rgb = rgb.reshape(n, h // f, f, w // f, f, 3).mean(axis=(2, 4))                 # f x f blocks averaged
    alpha = rgba[..., 3].reshape(n, h // f, f, w // f, f).mean(axis=(2, 4))
    return rgb, alpha


@pytest.mark.parametrize("background", ["black", "white"])
@pytest.mark.parametrize("factor", [1, 2, 4])
def test_blender_downscale_and_composite(tmp_path, background, factor):
    written = write_blender_scene(tmp_path, n=3, size=8, angle=0.69)
    data = load_blender(tmp_path, "train", downscale=factor, background=background)
    want_rgb, want_alpha = _reference(written["rgba"], factor, background == "white")
    assert data.images.shape == (3, 8 // factor, 8 // factor, 3)
    assert np.allclose(data.images.numpy(), want_rgb, atol=1e-6)
    assert np.allclose(data.alphas.numpy(), want_alpha, atol=1e-6)
    assert data.focal == pytest.approx(focal_from_angle(8 // factor, 0.69))
    assert torch.allclose(data.poses, torch.from_numpy(written["poses"]).float())
    assert not data.holdout.any() and (data.near, data.far) == (2.0, 6.0)


def test_blender_test_split_is_held_out_and_max_views_limits(tmp_path):
    write_blender_scene(tmp_path, split="test", n=4, size=4)
    data = load_blender(tmp_path, "test", max_views=2)
    assert len(data) == 2 and data.holdout.all()


def test_blender_focal_of_the_lego_camera_at_100_px():
    # 800 px wide lego views with camera_angle_x 0.6911112 are the tiny-NeRF focal 138.889 after downscale 8
    assert focal_from_angle(100, 0.6911112070083618) == pytest.approx(138.88887889922103, rel=1e-9)


def _scene_with(tmp_path, mutate):
    write_blender_scene(tmp_path, n=3, size=8)
    meta_path = tmp_path / "transforms_train.json"
    meta = json.loads(meta_path.read_text())
    mutate(tmp_path, meta)
    meta_path.write_text(json.dumps(meta))
    return tmp_path


@pytest.mark.parametrize("mutate, where, problem", [
    (lambda root, meta: (root / "train" / "r_1.png").unlink(), "r_1.png", "file not found"),
    (lambda root, meta: Image.new("RGBA", (4, 4)).save(root / "train" / "r_2.png"), "r_2.png", "image size mismatch"),
    (lambda root, meta: (root / "train" / "r_0.png").write_bytes(b"nope"), "r_0.png", "not a readable image"),
    (lambda root, meta: meta.pop("camera_angle_x"), "transforms_train.json", "missing key 'camera_angle_x'"),
    (lambda root, meta: meta.update(frames=[]), "transforms_train.json", "missing or empty 'frames'"),
    (lambda root, meta: meta["frames"][1].update(transform_matrix=[[1, 0], [0, 1]]), "transforms_train.json",
     "frames[1].transform_matrix must be 4x4"),
    (lambda root, meta: meta["frames"][0].pop("file_path"), "transforms_train.json", "frames[0] needs 'file_path'"),
    (lambda root, meta: meta.update(camera_angle_x=4.0), "transforms_train.json", "camera_angle_x must be in (0, pi)"),
])
def test_blender_malformed_scenes_name_file_and_problem(tmp_path, mutate, where, problem):
    root = _scene_with(tmp_path, mutate)
    with pytest.raises(DatasetError) as info:
        load_blender(root, "train")
    assert where in str(info.value) and problem in str(info.value)


def test_blender_bad_json_size_not_divisible_and_bad_arguments(tmp_path):
    write_blender_scene(tmp_path, n=2, size=6)
    with pytest.raises(DatasetError, match=r"r_0\.png: image size 6x6 is not divisible by downscale=4"):
        load_blender(tmp_path, "train", downscale=4)
    (tmp_path / "transforms_val.json").write_text("{not json")
    with pytest.raises(DatasetError, match=r"transforms_val\.json: not valid JSON"):
        load_blender(tmp_path, "val")
    with pytest.raises(DatasetError, match=r"transforms_test\.json: file not found"):
        read_blender_transforms(tmp_path / "transforms_test.json")
    with pytest.raises(ValueError, match="background"):
        load_blender(tmp_path, background="grey")
    with pytest.raises(ValueError, match="downscale"):
        load_blender(tmp_path, downscale=0)
