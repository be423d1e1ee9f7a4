"""Does the representations experiment mesh an SDF correctly (marching tetrahedra), measure Chamfer distances and
IoU right, and reach the numbers the a4 notebook states about voxels, meshes, points and a neural SDF?"""
import math

import pytest
import torch

from course_lib.experiments import representations as rp
from helpers import run_smoke_cli, unimplemented

pytestmark = pytest.mark.usefixtures("one_thread")


def _sphere(p, r=0.7):
    return p.norm(dim=-1) - r


@pytest.mark.parametrize("n", [9, 24])
def test_marching_tetrahedra_puts_a_closed_mesh_on_a_sphere(n):
    verts, faces = rp.marching_tetrahedra(_sphere(rp.grid_points(n, 1.0)), 1.0)
    step = 2.0 / (n - 1)
    radius = verts.norm(dim=-1)
    assert float((radius - 0.7).abs().max()) < 0.1 * step + 0.02 * step * n / 9       # linear interpolation error
    edges = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).sort(-1).values
    _, count = torch.unique(edges, dim=0, return_counts=True)
    assert bool((count == 2).all()), "every edge of a closed surface is shared by exactly two triangles"
    assert len(torch.unique(faces)) == verts.shape[0], "every vertex is used"


def test_marching_tetrahedra_of_a_plane_is_flat_and_of_empty_space_is_empty():
    grid = rp.grid_points(7, 1.0)
    verts, faces = rp.marching_tetrahedra(grid[..., 2] - 0.1, 1.0)
    torch.testing.assert_close(verts[:, 2], torch.full((verts.shape[0],), 0.1))
    area = torch.linalg.cross(verts[faces[:, 1]] - verts[faces[:, 0]], verts[faces[:, 2]] - verts[faces[:, 0]])
    assert float(area.norm(dim=-1).sum() / 2) == pytest.approx(4.0, rel=1e-5)         # the 2 x 2 square
    verts, faces = rp.marching_tetrahedra(torch.ones(5, 5, 5), 1.0)
    assert verts.shape == (0, 3) and faces.shape == (0, 3)


def test_mesh_samples_lie_on_the_mesh_and_surface_points_on_the_surface():
    g = torch.Generator().manual_seed(0)
    pts = rp.surface_points(_sphere, 500, 1.0, g)
    assert pts.shape == (500, 3) and float((pts.norm(dim=-1) - 0.7).abs().max()) < 1e-4
    verts = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    s = rp.sample_mesh(verts, torch.tensor([[0, 1, 2]]), 1000, g)
    assert bool((s[:, 2] == 0).all() and (s[:, :2] >= 0).all() and (s[:, :2].sum(-1) <= 1 + 1e-6).all())


def test_nearest_distance_and_chamfer_match_brute_force():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(700, 3, generator=g), torch.randn(2500, 3, generator=g)
    brute = torch.cdist(a, b).amin(-1)
    torch.testing.assert_close(rp.nearest_distance(a, b, tile=(64, 300)), brute)
    assert rp.chamfer(a, a) == 0.0
    assert rp.chamfer(a, b) == pytest.approx(0.5 * float(brute.mean() + torch.cdist(b, a).amin(-1).mean()), rel=1e-5)
    assert rp.chamfer(a, a + torch.tensor([0.0, 0.0, 1e-3])) == pytest.approx(1e-3, rel=1e-3)


def test_run_names_an_unimplemented_encoding():
    with pytest.raises(NotImplementedError, match="positional_encoding"):
        rp.run(unimplemented, rp.RepresentationExperiment.smoke())


def test_cli_smoke_run_prints_a_table_and_the_metrics_last():
    out = run_smoke_cli("course_lib.experiments.representations")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("representation") and lines[-1].startswith("chamfer_floor=")


# ------------------------------------------------------------------------------------------------ stated numbers
@pytest.mark.slow
def test_default_settings_reach_the_stated_numbers():
    m = rp.run(exp=rp.RepresentationExperiment(), device=torch.device("cpu"))["metrics"]
    assert m["floats_voxels_128"] == 128 ** 3 and m["floats_voxels_32"] == 32 ** 3
    for n in (16, 32, 64):                       # 8x the memory per doubling, the error only about halves
        ratio = m[f"chamfer_voxels_{n}"] / m[f"chamfer_voxels_{2 * n}"]
        assert 1.6 < ratio < 2.4, (n, ratio)
    assert m["chamfer_mesh_32"] < m["chamfer_voxels_128"], m
    assert m["floats_voxels_128"] >= 70 * m["floats_mesh_32"], m
    assert abs(m["iou_network_96"] - m["iou_voxels_128"]) <= 0.01, m
    assert m["floats_network_96"] * 100 < m["floats_voxels_128"], m
    assert m["chamfer_voxels_32"] > 0.045 and m["chamfer_voxels_128"] < 0.02, m
    assert math.isfinite(m["chamfer_floor"]) and m["chamfer_floor"] < m["chamfer_mesh_32"], m
