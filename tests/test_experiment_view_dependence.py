"""Does the view-dependence experiment feed the viewing direction after the density (NeRF's 5-D input), draw
Blinn-Phong highlights where rays meet the surface, and reach the numbers the a4 notebook states?"""
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from course_lib import sphere_trace
from course_lib.experiments import nerf
from course_lib.experiments import view_dependence as vd
from helpers import run_smoke_cli, unimplemented

LEGO = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "nerf_lego" / "lego_train_100x100_derived.npz"

pytestmark = pytest.mark.usefixtures("one_thread")


def test_density_ignores_the_direction_and_colour_follows_it():
    torch.manual_seed(0)
    field = vd.make_view_field(vd.ViewExperiment(), nerf.Stages(), use_directions=True)
    assert field.uses_directions and field.color[0].in_features == 64 + 3 * (1 + 2 * 4)
    assert field.color[0].out_features == vd.ViewExperiment().head_width
    x = torch.randn(20, 3)
    d1, d2 = F.normalize(torch.randn(20, 3), dim=-1), F.normalize(torch.randn(20, 3), dim=-1)
    with torch.no_grad():
        (s1, c1), (s2, c2) = field(x, d1), field(x, d2)
    torch.testing.assert_close(s1, s2, rtol=0, atol=0)
    assert float((c1 - c2).abs().max()) > 1e-4
    plain = vd.make_view_field(vd.ViewExperiment(), nerf.Stages(), use_directions=False)
    assert not plain.uses_directions and plain.color[0].in_features == 64


def test_query_field_passes_the_unit_direction_of_each_points_ray():
    seen = {}

    class Recorder(torch.nn.Module):
        uses_directions = True

        def forward(self, points, dirs):
            seen["points"], seen["dirs"] = points, dirs
            return points[:, 0], points

    rays_d = torch.tensor([[0.0, 0.0, -2.0], [3.0, 0.0, 0.0]])
    nerf.query_field(Recorder(), torch.zeros(2, 5, 3), rays_d)
    assert seen["points"].shape == (10, 3)
    torch.testing.assert_close(seen["dirs"], F.normalize(rays_d, dim=-1).repeat_interleave(5, 0))


def test_highlights_peak_where_the_normal_bisects_light_and_eye_and_vanish_elsewhere():
    light = F.normalize(torch.tensor([0.0, 1.0, 1.0]), dim=0)
    scene = SimpleNamespace(sdf=lambda p: p.norm(dim=-1) - 1.0, light=light)
    o = torch.tensor([[0.0, 0.0, 4.0], [0.0, 0.3, 4.0], [3.0, 3.0, 4.0], [0.0, -0.9, 4.0]])
    d = torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, -1.0], [0.0, 0.0, -1.0], [0.0, 0.0, -1.0]])
    spec = vd.highlights(scene, o, d, sphere_trace, specular=0.6, shininess=30.0)
    # ray 0 hits the top (n = +z); h = normalise(l - d) = normalise((0, 0.71, 1.71)): n.h = 0.92
    half = F.normalize(light + torch.tensor([0.0, 0.0, 1.0]), dim=0)
    assert float(spec[0]) == pytest.approx(0.6 * float(half[2]) ** 30, rel=1e-3)
    assert float(spec[1]) > float(spec[0])          # its normal (0, 0.3, 0.95) is closer to h
    assert float(spec[2]) == 0.0                    # a miss
    assert float(spec[3]) < 1e-3                    # a normal facing away from h


def test_run_names_an_unimplemented_stage():
    with pytest.raises(NotImplementedError, match="volume_render"):
        vd.run(volume_render=unimplemented, exp=vd.ViewExperiment.smoke(), progress=False)


def test_cli_smoke_run_prints_the_metrics_last():
    out = run_smoke_cli("course_lib.experiments.view_dependence")
    assert out.returncode == 0, out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("heldout_psnr_view_db=") and "view_gain_db=" in last


def test_cli_rejects_a_bad_holdout():
    out = run_smoke_cli("course_lib.experiments.view_dependence", "--data", str(LEGO), "--holdout", "0")
    assert out.returncode == 2 and ("--holdout" in out.stderr or "not found" in out.stderr), out.stderr


@pytest.mark.realdata
@pytest.mark.skipif(not LEGO.is_file(), reason="lego sample not present")
def test_cli_trains_on_the_lego_views():
    out = run_smoke_cli("course_lib.experiments.view_dependence", "--data", str(LEGO), "--holdout", "10")
    assert out.returncode == 0, out.stderr
    m = dict(kv.split("=") for kv in out.stdout.strip().splitlines()[-1].split())
    assert math.isfinite(float(m["view_gain_db"]))


# ------------------------------------------------------------------------------------------------ stated numbers
@pytest.mark.slow
def test_default_settings_reach_the_stated_numbers():
    m = vd.run(exp=vd.ViewExperiment(), progress=False, device=torch.device("cpu"))["metrics"]
    assert m["view_gain_db"] >= 1.5, m


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.skipif(not LEGO.is_file(), reason="lego sample not present")
def test_on_the_mostly_matte_lego_views_the_direction_changes_little():
    data = nerf._load(str(LEGO), 10, 64)
    m = vd.run(exp=vd.ViewExperiment(), data=data, progress=False, device=torch.device("cpu"))["metrics"]
    assert abs(m["view_gain_db"]) < 1.0 and m["heldout_psnr_noview_db"] > 18.0, m
