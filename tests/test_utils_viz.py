"""Do the notebook helpers (device picker, seeding, image grid, GIF writer, self-check, benchmark) behave?"""
import random
import time

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from course_lib import selfcheck
from course_lib.bench import volume_render_cumprod
from course_lib.utils import pick_device, seed_everything, smoke_mode
from course_lib.viz import make_grid, save_gif, show_images, to_uint8
from course_lib import volume_render


def test_pick_device_prefers_cuda_and_honours_overrides(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert pick_device().type == expected
    assert pick_device("cpu").type == "cpu"
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert pick_device().type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_pick_device_names_an_unavailable_device():
    with pytest.raises(ValueError, match="CUDA is not available"):
        pick_device("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        pick_device("tpu9")


def test_seed_everything_makes_all_generators_repeat():
    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(())), float(torch.rand((), generator=g))

    g = seed_everything(5)
    first = draw()
    g = seed_everything(5)
    assert draw() == first
    g = seed_everything(6)
    assert draw() != first
    with pytest.raises(ValueError, match="seed"):
        seed_everything(1.5)


def test_smoke_mode_reads_the_environment(monkeypatch):
    monkeypatch.setenv("COURSE_SMOKE", "1")
    assert smoke_mode()
    monkeypatch.setenv("COURSE_SMOKE", "0")
    assert not smoke_mode()


def test_make_grid_places_images_row_major_with_padding():
    imgs = torch.stack([torch.full((1, 2, 3), float(k)) for k in range(5)])     # 5 images, 2x3
    grid = make_grid(imgs, nrow=3, padding=1, pad_value=-1.0)
    assert grid.shape == (1, 2 * 3 + 1, 3 * 4 + 1)
    assert grid[0, 1, 1].item() == 0 and grid[0, 1, 5].item() == 1 and grid[0, 4, 1].item() == 3
    assert grid[0, 4, 9].item() == -1                                           # the empty sixth tile
    assert grid[0, 0].eq(-1).all()
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        make_grid(torch.zeros(3, 4, 4))


def test_to_uint8_clips_and_rounds():
    out = to_uint8(torch.tensor([-0.5, 0.0, 0.5, 1.0, 2.0, float("nan")]))
    assert out.tolist() == [0, 0, 128, 255, 255, 0]
    with pytest.raises(ValueError, match="dtype"):
        to_uint8(np.array([1, 2], dtype=np.int32))


def test_save_gif_round_trips_frames(tmp_path):
    frames = [torch.full((3, 8, 8), v) for v in (0.0, 0.5, 1.0)]
    path = save_gif(frames, tmp_path / "sub" / "anim.gif", fps=5, min_side=1)
    back = imageio.mimread(path)
    assert len(back) == 3 and back[0].shape[:2] == (8, 8)
    assert [int(f[..., 0].mean()) for f in back] == [0, 128, 255]
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]                   # no temp file left behind
    with pytest.raises(ValueError, match="same shape"):
        save_gif([torch.zeros(3, 4, 4), torch.zeros(3, 5, 5)], tmp_path / "bad.gif")
    assert not (tmp_path / "bad.gif").exists()


def test_small_gifs_are_enlarged_by_an_integer_factor_with_sharp_pixels(tmp_path):
    frame = torch.zeros(3, 6, 10)
    frame[:, 2, 3] = 1.0                                       # one white pixel
    back = imageio.mimread(save_gif([frame], tmp_path / "big.gif"))[0]
    assert back.shape[:2] == (6 * 43, 10 * 43)                 # ceil(256 / 6) = 43: the shorter side reaches 256
    white = np.argwhere(back[..., 0] > 127)
    assert white.min(0).tolist() == [2 * 43, 3 * 43] and white.max(0).tolist() == [3 * 43 - 1, 4 * 43 - 1]
    big = imageio.mimread(save_gif([torch.zeros(3, 300, 400)], tmp_path / "as_is.gif"))[0]
    assert big.shape[:2] == (300, 400)                         # large enough already: untouched


def test_show_images_draws_the_grid():
    import matplotlib

    matplotlib.use("Agg")
    ax = show_images(torch.rand(4, 3, 5, 5), nrow=2, title="x")
    assert ax.get_images()[0].get_array().shape == (2 * 7 + 2, 2 * 7 + 2, 3)
    assert ax.get_title() == "x"


def test_selfcheck_passes_on_the_references(capsys):
    assert selfcheck.main() == 0
    assert "all checks passed" in capsys.readouterr().out


def test_benchmark_peer_cumprod_form_agrees_with_the_reference():
    g = torch.Generator().manual_seed(0)
    sig, col = torch.rand(64, 16, generator=g, dtype=torch.float64), torch.rand(64, 16, 3, generator=g, dtype=torch.float64)
    t = torch.sort(torch.rand(64, 16, generator=g, dtype=torch.float64) * 4 + 2, -1).values
    for white in (False, True):
        a, b = volume_render(sig, col, t, white), volume_render_cumprod(sig, col, t, white)
        torch.testing.assert_close(a[0], b[0], atol=1e-8, rtol=0)


def test_benchmark_peer_grid_sample_agrees_with_bilinear_sample_2d():
    from course_lib.bench import _grid_sample
    from course_lib.manifest import reference

    g = torch.Generator().manual_seed(0)
    grid = torch.randn(3, 5, 7, 9, generator=g, dtype=torch.float64)
    coords = torch.rand(3, 40, 2, generator=g, dtype=torch.float64) * 2.4 - 1.2        # some beyond the border
    torch.testing.assert_close(_grid_sample(grid, coords), reference("bilinear_sample_2d")(grid, coords))


def test_benchmark_pair_timing_alternates_and_keeps_each_side_minimum():
    from course_lib.bench import time_pair

    calls = []

    def fast():
        calls.append("a")
        time.sleep(0.002)

    def slow():
        calls.append("b")
        time.sleep(0.012)

    t_a, t_b = time_pair(fast, slow, torch.device("cpu"), repeats=4)
    assert calls == ["a", "b"] * 5                        # one warm-up each, then alternating
    assert 0.002 <= t_a < t_b and t_b >= 0.012
