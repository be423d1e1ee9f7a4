"""Does the light field experiment of a5_priors describe rays, not their parameterisation, render a view with one
network evaluation per pixel, train, and reach the numbers the notebook states (it fits the training views but
generalises to new cameras much worse than TinyNeRF)?"""
import math

import pytest
import torch

from course_lib import get_rays, plucker_coordinates, positional_encoding
from course_lib.data import look_at
from course_lib.experiments import lightfield as lf
from helpers import run_smoke_cli, unimplemented

pytestmark = pytest.mark.usefixtures("one_thread")


def _lfn(exp: lf.LightFieldExperiment, seed: int = 0) -> lf.LightFieldNetwork:
    torch.manual_seed(seed)
    return lf.LightFieldNetwork(plucker_coordinates, lambda p: positional_encoding(p, exp.num_freqs),
                                6 * (1 + 2 * exp.num_freqs), exp.moment_scale, exp.width, exp.depth)


def test_the_network_sees_the_ray_not_its_origin_or_the_length_of_its_direction():
    lfn = _lfn(lf.LightFieldExperiment()).double()
    g = torch.Generator().manual_seed(0)
    o, d = torch.randn(50, 3, generator=g, dtype=torch.float64), torch.randn(50, 3, generator=g, dtype=torch.float64)
    s = torch.rand(50, 1, generator=g, dtype=torch.float64) * 4 - 2
    with torch.no_grad():
        a, b = lfn(o, d), lfn(o + s * d, 3.0 * d)
    assert a.shape == (50, 3) and torch.allclose(a, b, atol=1e-9)
    with torch.no_grad():
        assert not torch.allclose(lfn(o, d), lfn(o, -d)), "the opposite orientation is another ray"


def test_rendering_a_view_evaluates_the_network_once_per_pixel():
    exp = lf.LightFieldExperiment.smoke()
    lfn = _lfn(exp)
    calls = []
    lfn.net.register_forward_hook(lambda module, inputs, output: calls.append(inputs[0].shape[0]))
    pose = look_at(torch.tensor([0.0, -4.0, 1.0]))
    image = lf.render_lightfield(lfn, pose, 6, 9, 8.0, get_rays)
    assert image.shape == (6, 9, 3) and sum(calls) == 6 * 9
    o, d = get_rays(6, 9, 8.0, pose)
    with torch.no_grad():
        assert torch.allclose(image, lfn(o.reshape(-1, 3), d.reshape(-1, 3)).reshape(6, 9, 3))


def test_training_fits_a_colour_that_depends_on_the_ray_direction():
    exp = lf.LightFieldExperiment(width=32, depth=2, num_freqs=2, steps=300, rays_per_step=256, lr=1e-2)
    g = torch.Generator().manual_seed(1)
    d = torch.nn.functional.normalize(torch.randn(4096, 3, generator=g), dim=-1)
    o = torch.randn(4096, 3, generator=g)
    rgb = (d * 0.5 + 0.5)                                                # colour = direction
    lfn = _lfn(exp)
    history = lf.train_lightfield(lfn, (o, d, rgb), exp, progress=False)
    assert history[-1][1] > 25.0 and history[-1][1] > history[0][1] + 10.0, history


def test_the_experiment_names_an_unfinished_function():
    exp = lf.LightFieldExperiment.smoke()
    with pytest.raises(NotImplementedError, match="plucker_coordinates"):
        lf.run(unimplemented, exp=exp, progress=False)
    with pytest.raises(NotImplementedError, match="get_rays"):
        lf.run(get_rays=unimplemented, exp=exp, progress=False)


def test_smoke_run_reuses_a_given_nerf_and_cli_prints_the_four_psnrs_last():
    exp = lf.LightFieldExperiment.smoke()
    first = lf.run(exp=exp, progress=False, device=torch.device("cpu"))
    again = lf.run(exp=exp, nerf_field=first["nerf_field"], progress=False, device=torch.device("cpu"))
    assert again["nerf_field"] is first["nerf_field"]
    assert again["metrics"]["heldout_psnr_nerf_db"] == pytest.approx(first["metrics"]["heldout_psnr_nerf_db"])
    assert first["metrics"]["evals_per_ray_lfn"] == 1 and first["metrics"]["evals_per_ray_nerf"] == exp.nerf.n_samples
    assert all(math.isfinite(v) for v in first["metrics"].values())
    out = run_smoke_cli("course_lib.experiments.lightfield")
    assert out.returncode == 0, out.stderr
    names = [kv.split("=")[0] for kv in out.stdout.strip().splitlines()[-1].split()]
    assert names == ["train_psnr_lfn_db", "train_psnr_nerf_db", "heldout_psnr_lfn_db", "heldout_psnr_nerf_db"]


@pytest.mark.slow
def test_default_settings_reach_the_stated_numbers():
    m = lf.run(exp=lf.LightFieldExperiment(), progress=False, device=torch.device("cpu"))["metrics"]
    assert m["evals_per_ray_lfn"] == 1 and m["evals_per_ray_nerf"] == 32
    assert m["train_psnr_lfn_db"] >= 23.0, m
    assert m["heldout_psnr_lfn_db"] <= m["heldout_psnr_nerf_db"] - 4.0, m
    assert m["train_psnr_nerf_db"] - m["heldout_psnr_nerf_db"] < 1.5, m
