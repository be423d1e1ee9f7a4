"""Does the few-view experiment of a5_priors pick views far apart, measure the true depth exactly, score renders
on the right pixels, read the real data formats, and show the numbers the notebook states (3 views: training views
as good as with 100, held-out views and depth far worse)?"""
import math
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from course_lib import get_rays, sphere_trace
from course_lib.data import look_at
from course_lib.experiments import nerf
from course_lib.experiments import priors_fewviews as pf
from helpers import run_smoke_cli, unimplemented

LEGO = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "nerf_lego" / "lego_train_100x100_derived.npz"

pytestmark = pytest.mark.usefixtures("one_thread")


def _last_metrics(stdout: str) -> dict[str, float]:
    return {k: float(v) for k, v in (kv.split("=") for kv in stdout.strip().splitlines()[-1].split())}


class SphereField(nn.Module):
    """A hard unit sphere (density 200 inside), white: what an ideal field of that scene renders."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, points):
        sigma = torch.where(points.norm(dim=-1) < 1.0, 200.0, 0.0) + 0 * self.dummy
        return sigma, torch.ones(*points.shape[:-1], 3)


def test_views_are_picked_by_farthest_point_sampling_from_view_0():
    centres = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [10.0, 0, 0], [5.0, 0, 0], [0.0, 9, 0]])
    poses = torch.eye(4).repeat(5, 1, 1)
    poses[:, :3, 3] = centres
    assert pf.pick_views(poses, 3).tolist() == [0, 2, 4]          # 2 is farthest from 0; 4 from {0, 2}
    assert pf.pick_views(poses, 1).tolist() == [0]
    assert sorted(pf.pick_views(poses, 5).tolist()) == [0, 1, 2, 3, 4]
    for bad in (0, 6, 2.0):
        with pytest.raises(ValueError, match="k"):
            pf.pick_views(poses, bad)


def test_true_depth_of_a_unit_sphere_is_the_distance_to_its_front_along_the_optical_axis():
    pose = look_at(torch.tensor([0.0, -4.0, 0.5]))
    sdf = lambda p: p.norm(dim=-1) - 1.0                                          # noqa: E731
    depth, hit = pf.true_depth(sdf, pose[None], 16, 16, 20.0, 2.0, 6.0, get_rays, sphere_trace)
    assert depth.shape == hit.shape == (1, 16, 16)
    dist = pose[:3, 3].norm()
    assert float(depth[0, 8, 8]) == pytest.approx(float(dist) - 1.0, abs=1e-3)   # the principal point
    # a pixel hits iff its ray passes within 1 of the origin: |o x d| / |d| < 1 (Pluecker moment norm)
    o, d = get_rays(16, 16, 20.0, pose)
    miss_distance = torch.linalg.cross(o, d, dim=-1).norm(dim=-1) / d.norm(dim=-1)
    clear = (miss_distance - 1.0).abs() > 0.02                                   # away from the silhouette
    assert torch.equal(hit[0][clear], (miss_distance < 1.0)[clear])
    # depth is in get_rays' units (along the optical axis): o + depth * d lies on the sphere for every hit
    on_surface = (o + depth[0][..., None] * d)[hit[0]].norm(dim=-1)
    assert torch.allclose(on_surface, torch.ones_like(on_surface), atol=1e-3)


def test_render_metrics_score_the_hit_pixels_of_an_ideal_field():
    pose = look_at(torch.tensor([0.0, -4.0, 0.5]))
    sdf = lambda p: p.norm(dim=-1) - 1.0                                          # noqa: E731
    depth, hit = pf.true_depth(sdf, pose[None], 16, 16, 18.0, 2.0, 6.0, get_rays, sphere_trace)
    exp = nerf.NerfExperiment(n_samples=256)
    images = hit.float()[..., None].expand(1, 16, 16, 3)                          # white sphere on black
    from course_lib.data import NerfData

    views = NerfData(images=images.contiguous(), poses=pose[None], focal=18.0, near=2.0, far=6.0)
    out = pf.render_metrics(SphereField(), views, exp, nerf.Stages(), depth, hit)
    assert out["rgb"].shape == (1, 16, 16, 3) and out["depth"].shape == (1, 16, 16)
    assert out["depth_err"] < 0.03, out["depth_err"]                              # 256 samples on [2, 6]
    assert out["psnr_db"] > 15.0
    assert "depth_err" not in pf.render_metrics(SphereField(), views, exp, nerf.Stages())


def test_the_experiment_names_an_unfinished_stage_or_sphere_trace():
    exp = pf.FewViewsExperiment.smoke()
    with pytest.raises(NotImplementedError, match="volume_render"):
        pf.run(volume_render=unimplemented, exp=exp, progress=False)
    with pytest.raises(NotImplementedError, match="sphere_trace"):
        pf.run(sphere_trace=unimplemented, exp=exp, progress=False)


def test_smoke_run_trains_both_models_and_reports_every_metric():
    out = pf.run(exp=pf.FewViewsExperiment.smoke(), progress=False, device=torch.device("cpu"))
    m = out["metrics"]
    assert set(m) == {f"{what}_{key}" for what in ("train_psnr", "heldout_psnr") for key in ("few_db", "all_db")} | \
        {"depth_err_few", "depth_err_all"}
    assert all(math.isfinite(v) for v in m.values())
    assert len(out["few"]) == 3 and out["renders"]["few"]["heldout"]["rgb"].shape[0] == 6
    assert out["true_depth"].shape == out["true_hit"].shape == (6, 16, 16)


def test_cli_smoke_run_prints_the_psnrs_and_depth_errors_last():
    out = run_smoke_cli("course_lib.experiments.priors_fewviews")
    assert out.returncode == 0, out.stderr
    assert list(_last_metrics(out.stdout)) == ["train_psnr_few_db", "heldout_psnr_few_db", "train_psnr_all_db",
                                               "heldout_psnr_all_db", "depth_err_few", "depth_err_all"]


@pytest.mark.parametrize("args,message", [(["--data", "/nonexistent/scene.npz"], "/nonexistent/scene.npz"),
                                          (["--views", "0"], "views"), (["--steps", "0"], "--steps")])
def test_cli_rejects_bad_arguments(args, message):
    out = run_smoke_cli("course_lib.experiments.priors_fewviews", *args)
    assert out.returncode == 2 and message in out.stderr, out.stderr


@pytest.mark.realdata
@pytest.mark.skipif(not LEGO.is_file(), reason="lego sample not present")
def test_cli_runs_on_the_lego_views_without_a_depth_error():
    out = run_smoke_cli("course_lib.experiments.priors_fewviews", "--data", str(LEGO), "--holdout", "4")
    assert out.returncode == 0, out.stderr
    assert "held-out views: 4" in out.stdout
    m = _last_metrics(out.stdout)
    assert set(m) == {"train_psnr_few_db", "heldout_psnr_few_db", "train_psnr_all_db", "heldout_psnr_all_db"}
    assert all(v > 5.0 for v in m.values()), m


@pytest.mark.realdata
@pytest.mark.skipif(not LEGO.is_file(), reason="lego sample not present")
def test_load_data_holds_out_the_last_views_and_rejects_a_bad_count():
    data = pf.load_data(str(LEGO), 7)
    assert data.holdout.tolist() == [False] * 93 + [True] * 7
    with pytest.raises(ValueError, match="--holdout"):
        pf.load_data(str(LEGO), 100)


@pytest.mark.slow
def test_default_settings_reach_the_stated_numbers():
    m = pf.run(exp=pf.FewViewsExperiment(), progress=False, device=torch.device("cpu"))["metrics"]
    assert m["train_psnr_few_db"] >= 25.0 and m["train_psnr_all_db"] >= 25.0, m
    assert m["heldout_psnr_few_db"] <= m["heldout_psnr_all_db"] - 8.0, m
    assert m["depth_err_few"] >= 5.0 * m["depth_err_all"], m
