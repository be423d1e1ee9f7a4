"""Is the analytic NeRF scene deterministic and in the tiny-NeRF format, are its cameras on the upper
hemisphere looking at the origin, and does every pixel show what its ray hits (black where it hits nothing)?"""
import math

import pytest
import torch
import torch.nn.functional as F

import course_lib.data.analytic_scene as ns
from course_lib import get_rays, sphere_trace
from course_lib.data import AnalyticScene, look_at, nerf_scene
from data_fixtures.common import isolated_data_dir, one_torch_thread  # noqa: F401  (autouse fixtures)

SIZE = 40


@pytest.fixture(scope="module")
def views():
    return nerf_scene(n_views=3, size=SIZE, seed=0, n_holdout=1, cache=False)


def test_format_matches_tiny_nerf(views):
    assert views.images.shape == (4, SIZE, SIZE, 3) and views.images.dtype == torch.float32
    assert views.poses.shape == (4, 4, 4) and views.poses.dtype == torch.float32
    assert 0 <= views.images.min() and views.images.max() <= 1
    assert (views.near, views.far) == (2.0, 6.0)
    assert views.focal == pytest.approx(0.5 * SIZE / math.tan(0.5 * 0.6911112070083618))
    assert nerf_scene(n_views=1, size=100, n_holdout=0, cache=False).focal == pytest.approx(138.8888789, rel=1e-6)
    assert views.holdout.tolist() == [False, False, False, True]
    assert len(views.train_split()) == 3 and len(views.holdout_split()) == 1
    assert torch.equal(views.holdout_split().images[0], views.images[3])


def test_same_seed_same_views_other_seed_other_scene_and_cameras():
    a = nerf_scene(n_views=1, size=16, seed=4, n_holdout=0, cache=False)
    b = nerf_scene(n_views=1, size=16, seed=4, n_holdout=0, cache=False)
    c = nerf_scene(n_views=1, size=16, seed=5, n_holdout=0, cache=False)
    assert torch.equal(a.images, b.images) and torch.equal(a.poses, b.poses)
    assert not torch.allclose(a.poses, c.poses)
    assert not torch.allclose(AnalyticScene.from_seed(4).centers, AnalyticScene.from_seed(5).centers)


def test_cameras_sit_on_the_upper_hemisphere_and_look_at_the_origin(views):
    poses = nerf_scene(n_views=40, size=8, seed=2, n_holdout=0, cache=False).poses
    rot, centre = poses[:, :3, :3], poses[:, :3, 3]
    eye = torch.eye(3).expand_as(rot)
    assert torch.allclose(rot.transpose(1, 2) @ rot, eye, atol=1e-5)
    assert torch.allclose(torch.linalg.det(rot), torch.ones(40), atol=1e-5)
    assert torch.allclose(centre.norm(dim=-1), torch.full((40,), 4.0), atol=1e-5)
    assert (centre[:, 2] > 0).all()                                        # world z is up, like lego
    forward = rot @ torch.tensor([0.0, 0.0, -1.0])                         # cameras look down their -z
    assert torch.allclose(forward, -F.normalize(centre, dim=-1), atol=1e-5)
    assert (rot[:, 2, 0].abs() < 1e-5).all()                               # no roll: camera x stays horizontal
    assert torch.equal(poses[:, 3], torch.tensor([0.0, 0.0, 0.0, 1.0]).expand(40, 4))


def test_look_at_puts_the_target_at_the_image_centre():
    c2w = look_at(torch.tensor([1.0, -3.0, 2.0]), torch.tensor([0.2, 0.1, -0.3]))
    o, d = get_rays(10, 10, 12.0, c2w)                                     # pixel (5, 5) is the centre
    to_target = F.normalize(torch.tensor([0.2, 0.1, -0.3]) - o[5, 5], dim=0)
    assert torch.allclose(F.normalize(d[5, 5], dim=0), to_target, atol=1e-6)


def _trace(scene, pose, offset=0.0):
    o, d = get_rays(SIZE, SIZE, nerf_scene(n_views=1, size=SIZE, n_holdout=0, cache=False).focal, pose)
    o, d = o.reshape(-1, 3), F.normalize(d.reshape(-1, 3), dim=-1)
    t, hit = sphere_trace(lambda p: scene.sdf(p) - offset, o, d, near=0.0, far=10.0, max_steps=200, eps=1e-5)
    return o + t[:, None] * d, hit


def test_pixels_show_the_surface_their_ray_hits_and_black_elsewhere(views):
    scene = AnalyticScene.from_seed(0)
    for i in range(len(views)):
        img, alpha = views.images[i].reshape(-1, 3), views.alphas[i].reshape(-1)
        _, near_anything = _trace(scene, views.poses[i], offset=scene.band)
        assert torch.equal(img[~near_anything], torch.zeros_like(img[~near_anything]))   # no density: black
        assert (~near_anything).float().mean() > 0.3                                   # background is visible
        points, hit = _trace(scene, views.poses[i])
        assert hit.sum() > 50
        oid = torch.where(hit, scene.object_id(points), -1).reshape(SIZE, SIZE)
        padded = F.pad(oid[None, None].float(), (1, 1, 1, 1), value=-1)[0, 0]
        interior = oid >= 0                                    # hit, and all 4 neighbours hit the same object
        for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
            interior &= padded[dy:dy + SIZE, dx:dx + SIZE] == oid.float()
        interior = interior.reshape(-1)
        assert interior.sum() > 50
        err = (img[interior] - scene.color(points[interior])).abs().amax(-1)
        assert err.median() < 0.01 and torch.quantile(err, 0.95) < 0.05
        assert alpha[interior].min() > 0.99
        assert len(set(oid.flatten().tolist()) - {-1}) >= 3    # several objects in view


def test_window_quadrature_agrees_with_many_more_samples(monkeypatch):
    scene = AnalyticScene.from_seed(1)
    pose = look_at(torch.tensor([2.0, -2.5, 2.2]))
    rgb, alpha = scene.render(24, 24, 30.0, pose)
    monkeypatch.setattr(ns, "_WINDOW_SAMPLES", 256)
    rgb_fine, alpha_fine = scene.render(24, 24, 30.0, pose)
    assert alpha.max() > 0.99 and (rgb - rgb_fine).abs().max() < 0.01 and (alpha - alpha_fine).abs().max() < 0.01


def test_density_is_volsdf_and_truncated():
    scene = AnalyticScene.from_seed(0)
    beta = scene.beta
    d = torch.tensor([-5 * beta, 0.0, 2 * beta, 7.9 * beta, 8.1 * beta, 1.0])
    sigma = scene._sigma_of(d)
    expected = torch.tensor([1 - 0.5 * math.exp(-5), 0.5, 0.5 * math.exp(-2), 0.5 * math.exp(-7.9), 0.0, 0.0]) / beta
    assert torch.allclose(sigma, expected, rtol=1e-5)
    centre = scene.centers[0]                                              # object 0 is the sphere
    p = centre + torch.tensor([0.0, 0.0, 1.0]) * (scene.sizes[0, 0] + 0.05)
    assert scene.object_sdfs(p[None])[0, 0].item() == pytest.approx(0.05, abs=1e-5)
    far = torch.tensor([[scene.bounding_radius + 0.01, 0.0, 0.0]])
    assert scene.sdf(far).item() > scene.band                              # outside the bound: no density


@pytest.mark.parametrize("kwargs, needle", [
    (dict(n_views=0), "n_views"), (dict(size=4), "size"), (dict(n_holdout=-1), "n_holdout"),
    (dict(beta=0.5), "beta"),
])
def test_bad_arguments_raise_a_value_error_naming_them(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        nerf_scene(**{"n_views": 1, "size": 16, **kwargs}, cache=False)
