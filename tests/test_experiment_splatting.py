"""Does the Gaussian-splatting experiment render by tiles what the dense function renders, fit an image, show
that one Gaussian per sample is volume rendering, and reach the numbers the a4 notebook states?"""
import math
from pathlib import Path

import pytest
import torch

from course_lib.experiments import fourier_features as ff
from course_lib.experiments import splatting as sp
from course_lib.rendering import splat_gaussians_2d, volume_render
from helpers import run_smoke_cli, unimplemented

LEGO = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "nerf_lego" / "lego_train_100x100_derived.npz"

pytestmark = pytest.mark.usefixtures("one_thread")


def _gaussians(n, h, w, seed=0):
    target = torch.rand(h, w, 3, generator=torch.Generator().manual_seed(seed))
    return sp.activate(sp.init_gaussians(target, n, torch.Generator().manual_seed(seed + 1)))


@pytest.mark.parametrize("h,w,tile", [(32, 32, 16), (21, 13, 8), (5, 7, 16)])
def test_the_tiled_render_differs_from_the_dense_one_by_less_than_the_cut_off(h, w, tile):
    params = _gaussians(60, h, w)
    dense, _ = splat_gaussians_2d(*params, h, w)
    tiled = sp.render_tiled(splat_gaussians_2d, params, h, w, tile)
    assert tiled.shape == dense.shape
    # every Gaussian left out of a tile has alpha < 1/255 there, and a pixel's change is at most their sum
    skipped = (~sp.tile_visibility(params[0], params[1], params[4], h, w, tile)).sum(-1).max()
    assert float((tiled - dense).abs().max()) <= float(skipped) / 255 + 1e-6
    assert float((tiled - dense).abs().max()) < 0.02


def test_visibility_keeps_every_gaussian_that_covers_a_pixel_of_the_tile():
    means, scales, angles, colors, opacities, depths = _gaussians(40, 24, 24)
    visible = sp.tile_visibility(means, scales, opacities, 24, 24, 8)               # [3, 3, G]
    for g in range(40):
        one = [t[g:g + 1] for t in (means, scales, angles, colors, opacities, depths)]
        _, alpha = splat_gaussians_2d(*one, 24, 24)
        for ty in range(3):
            for tx in range(3):
                if float(alpha[8 * ty:8 * ty + 8, 8 * tx:8 * tx + 8].max()) >= 1 / 255:
                    assert visible[ty, tx, g], (g, ty, tx)


def test_an_empty_tile_is_black_without_calling_the_function():
    params = [t[:1] for t in _gaussians(1, 64, 64)]
    params[0] = torch.tensor([[4.0, 4.0]])
    params[1] = torch.tensor([[1.0, 1.0]])
    calls = []

    def counting(*args):
        calls.append(args[0].shape[0])
        return splat_gaussians_2d(*args)

    image = sp.render_tiled(counting, tuple(params), 64, 64, 16)
    assert len(calls) == 1 and torch.equal(image[16:], torch.zeros(48, 64, 3))


def test_one_gaussian_per_sample_gives_volume_renderings_weights_and_colour():
    g = torch.Generator().manual_seed(0)
    sigmas = torch.rand(5, 12, generator=g, dtype=torch.float64) * 3
    sigmas[:, -1] = 0.0
    colors = torch.rand(5, 12, 3, generator=g, dtype=torch.float64)
    t = torch.sort(2 + 4 * torch.rand(5, 12, generator=g, dtype=torch.float64), -1).values
    out = sp.splats_as_volume_rendering(splat_gaussians_2d, volume_render, sigmas, colors, t)
    assert float(out["alphas"].max()) < 0.99
    torch.testing.assert_close(out["weights_splat"], out["weights_volume"], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(out["rgb_splat"], out["rgb_volume"], rtol=1e-10, atol=1e-12)
    # and the other way round: sigma delta = -log(1 - alpha) turns Gaussians' opacities into densities
    deltas = t[:, 1:] - t[:, :-1]
    torch.testing.assert_close(-torch.log1p(-out["alphas"][:, :-1]) / deltas, sigmas[:, :-1])


def test_fitting_a_two_colour_image_improves_the_psnr():
    target = torch.zeros(16, 16, 3)
    target[:, 8:] = torch.tensor([0.9, 0.2, 0.1])
    exp = sp.SplatExperiment(steps=60, tile=8)
    params, history = sp.fit_gaussians(splat_gaussians_2d, target, 32, exp, torch.device("cpu"))
    image, _ = splat_gaussians_2d(*params, 16, 16)
    assert ff.psnr(image, target) > history[0][1] + 5 and ff.psnr(image, target) > 20
    assert torch.equal(params[5], sp.init_gaussians(target, 32, torch.Generator().manual_seed(0))["depths"])


def test_run_names_an_unimplemented_function():
    with pytest.raises(NotImplementedError, match="splat_gaussians_2d"):
        sp.run(splat_gaussians_2d=unimplemented, exp=sp.SplatExperiment.smoke())
    with pytest.raises(NotImplementedError, match="positional_encoding"):
        sp.run(positional_encoding=unimplemented, exp=sp.SplatExperiment.smoke())


def test_cli_smoke_run_prints_the_metrics_last():
    out = run_smoke_cli("course_lib.experiments.splatting")
    assert out.returncode == 0, out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("psnr_g16_db=") and "floats_mlp=" in last


def test_cli_rejects_a_missing_data_file():
    out = run_smoke_cli("course_lib.experiments.splatting", "--data", "/nonexistent/lego.npz")
    assert out.returncode == 2 and "/nonexistent/lego.npz" in out.stderr, out.stderr


@pytest.mark.realdata
@pytest.mark.skipif(not LEGO.is_file(), reason="lego sample not present")
def test_cli_fits_a_lego_view():
    out = run_smoke_cli("course_lib.experiments.splatting", "--data", str(LEGO))
    assert out.returncode == 0, out.stderr
    m = dict(kv.split("=") for kv in out.stdout.strip().splitlines()[-1].split())
    assert float(m["floats_image"]) == 100 * 100 * 3 and math.isfinite(float(m["psnr_g64_db"]))


# ------------------------------------------------------------------------------------------------ stated numbers
@pytest.mark.slow
def test_default_settings_reach_the_stated_numbers():
    m = sp.run(exp=sp.SplatExperiment(), device=torch.device("cpu"))["metrics"]
    assert m["floats_mlp"] == 10243 and m["floats_image"] == 12288 and m["floats_g2048"] == 20480, m
    assert m["psnr_mlp_db"] >= m["psnr_g512_db"] + 3.0, m          # half the MLP's floats: worse
    assert m["psnr_g2048_db"] >= m["psnr_mlp_db"] + 5.0, m         # twice its floats, more than the image: better
    assert m["psnr_g128_db"] < m["psnr_g512_db"] < m["psnr_g2048_db"], m


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.skipif(not LEGO.is_file(), reason="lego sample not present")
def test_default_settings_on_a_lego_view_reach_the_stated_numbers():
    m = sp.run(exp=sp.SplatExperiment(), target=sp._lego_image(str(LEGO)), device=torch.device("cpu"))["metrics"]
    assert m["floats_image"] == 30000, m
    assert abs(m["psnr_g512_db"] - m["psnr_mlp_db"]) < 2.0, m            # 33.2 against 33.8 dB measured
    assert m["psnr_g2048_db"] >= m["psnr_mlp_db"] + 5.0, m                # 43.1 dB measured
