"""Does the DAVIS loader read frames and both mask encodings, resize masks without blending ids, and name
the file and problem for every malformed sequence?"""
import numpy as np
import pytest
import torch
from PIL import Image

from course_lib.data import DatasetError, davis_sequences, load_davis, read_davis_mask
from data_fixtures.common import isolated_data_dir, one_torch_thread  # noqa: F401  (autouse fixtures)
from data_fixtures.fabricate import write_davis


def test_palette_masks_give_object_ids_and_frames_match(tmp_path):
    written = write_davis(tmp_path, "multi", n=3, h=12, w=16, palette=True)
    clip = load_davis(tmp_path, "multi")
    assert clip.frames.shape == (1, 3, 3, 12, 16) and clip.frames.dtype == torch.float32
    assert clip.masks.shape == (1, 3, 12, 16) and clip.masks.dtype == torch.int64
    assert torch.equal(clip.masks[0], torch.from_numpy(written["ids"]).long())
    assert set(clip.masks.unique().tolist()) == {0, 1, 2, 3}
    want = torch.from_numpy(written["frames"]).permute(0, 3, 1, 2).float() / 255
    assert (clip.frames[0] - want).abs().mean() < 0.02                   # JPEG is lossy
    assert clip.names == ["multi"]


def test_binary_grey_masks_become_zero_and_one(tmp_path):
    written = write_davis(tmp_path, "single", n=2, palette=False)
    clip = load_davis(tmp_path, "single")
    assert torch.equal(clip.masks[0], torch.from_numpy(written["ids"]).long())
    assert set(clip.masks.unique().tolist()) == {0, 1}


def test_resizing_keeps_ids_exact_and_averages_frames(tmp_path):
    written = write_davis(tmp_path, "multi", n=2, h=12, w=16)
    clip = load_davis(tmp_path, "multi", size=(6, 8))
    assert clip.frames.shape == (1, 2, 3, 6, 8)
    # nearest-exact at a factor of 2 takes source pixel 2i + 1: ids are copied, never blended
    assert torch.equal(clip.masks[0], torch.from_numpy(written["ids"][:, 1::2, 1::2]).long())
    full = load_davis(tmp_path, "multi").frames[0]
    assert torch.allclose(clip.frames[0].mean((2, 3)), full.mean((2, 3)), atol=0.02)   # brightness preserved
    by_height = load_davis(tmp_path, "multi", size=6)
    assert by_height.frames.shape[-2:] == (6, 8)                          # an int keeps the aspect ratio


def test_frame_step_max_frames_and_sequence_listing(tmp_path):
    write_davis(tmp_path, "b-seq", n=5)
    write_davis(tmp_path, "a-seq", n=2)
    assert davis_sequences(tmp_path) == ["a-seq", "b-seq"]
    clip = load_davis(tmp_path, "b-seq", frame_step=2, max_frames=2)
    full = load_davis(tmp_path, "b-seq")
    assert torch.equal(clip.masks[0], full.masks[0, [0, 2]]) and torch.equal(clip.frames[0], full.frames[0, [0, 2]])


def _break(tmp_path, how):
    write_davis(tmp_path, "seq", n=3)
    fdir, mdir = tmp_path / "JPEGImages/480p/seq", tmp_path / "Annotations/480p/seq"
    if how == "missing_mask":
        (mdir / "00001.png").unlink()
        return mdir, "no mask for frame(s) 00001.jpg"
    if how == "mask_size":
        Image.fromarray(np.zeros((5, 5), np.uint8), "L").save(mdir / "00002.png")
        return mdir / "00002.png", "mask size 5x5 differs from its frame's 16x12"
    if how == "frame_size":
        Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(fdir / "00001.jpg")
        return fdir / "00001.jpg", "frame size 10x10 differs from the first frame's 16x12"
    if how == "rgb_mask":
        Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(mdir / "00000.png")
        return mdir / "00000.png", "unexpected mask mode 'RGB'"
    if how == "grey_levels":
        Image.fromarray(np.full((12, 16), 128, np.uint8), "L").save(mdir / "00000.png")
        return mdir / "00000.png", "grey mask with values [128]"
    if how == "corrupt_frame":
        (fdir / "00002.jpg").write_bytes(b"\xff\xd8 broken")
        return fdir / "00002.jpg", "not a readable image"
    if how == "corrupt_mask":
        (mdir / "00001.png").write_bytes(b"\x89PNG broken")
        return mdir / "00001.png", "not a readable PNG"
    if how == "no_frames":
        for p in fdir.iterdir():
            p.unlink()
        return fdir, "no frames"
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["missing_mask", "mask_size", "frame_size", "rgb_mask", "grey_levels",
                                 "corrupt_frame", "corrupt_mask", "no_frames"])
def test_malformed_sequences_name_file_and_problem(tmp_path, how):
    where, problem = _break(tmp_path, how)
    with pytest.raises(DatasetError) as info:
        load_davis(tmp_path, "seq")
    assert str(where) in str(info.value) and problem in str(info.value)


def test_missing_folders_and_bad_arguments(tmp_path):
    with pytest.raises(DatasetError, match="JPEGImages/480p: folder not found"):
        davis_sequences(tmp_path)
    write_davis(tmp_path, "seq", n=2)
    with pytest.raises(DatasetError, match="nope: folder not found"):
        load_davis(tmp_path, "nope")
    with pytest.raises(ValueError, match="size"):
        load_davis(tmp_path, "seq", size=(0, 3))
    with pytest.raises(ValueError, match="frame_step"):
        load_davis(tmp_path, "seq", frame_step=0)
    with pytest.raises(DatasetError, match="mask file not found"):
        read_davis_mask(tmp_path / "none.png")
