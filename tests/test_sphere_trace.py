"""Does sphere tracing find the analytic ray-sphere intersection, and report misses and bad input clearly?"""

import pytest
import torch
import torch.nn.functional as F

from course_lib import sphere_trace
from course_lib.naive import sphere_trace_naive
from helpers import assert_unchanged, snapshot


def unit_sphere(p):
    return p.norm(dim=-1) - 1.0


def _analytic_sphere_hit(o, d, r=1.0):
    # |o + t d|^2 = r^2 with |d| = 1: t = -b - sqrt(b^2 - c), b = <o, d>, c = |o|^2 - r^2
    b = (o * d).sum(-1)
    disc = b * b - ((o * o).sum(-1) - r * r)
    return -b - torch.sqrt(disc.clamp(min=0)), disc > 0


def test_head_on_ray_hits_at_two_in_one_step():
    calls = []

    def sdf(p):
        calls.append(p.shape[0])
        return unit_sphere(p)

    t, hit = sphere_trace(sdf, torch.tensor([[0.0, 0.0, -3.0]]), torch.tensor([[0.0, 0.0, 1.0]]))
    assert hit.tolist() == [True] and t.item() == pytest.approx(2.0, abs=1e-6)
    assert len(calls) == 2                                  # one step to the surface, one to confirm


def test_matches_analytic_intersection_for_random_rays(dtype):
    g = torch.Generator().manual_seed(0)
    o = F.normalize(torch.randn(500, 3, generator=g, dtype=torch.float64), dim=-1) * 3
    target = torch.randn(500, 3, generator=g, dtype=torch.float64) * 0.8
    d = F.normalize(target - o, dim=-1)
    t_true, hits_true = _analytic_sphere_hit(o, d)
    clear = (hits_true & ((o + t_true[:, None] * d).norm(dim=-1) > 0)) | ~hits_true
    b = (o * d).sum(-1)
    margin = (b * b - ((o * o).sum(-1) - 1)).abs() > 0.05   # leave out grazing rays
    o, d = o.to(dtype), d.to(dtype)
    t, hit = sphere_trace(unit_sphere, o, d, far=10.0, max_steps=200, eps=1e-5)
    sel = clear & margin
    assert torch.equal(hit[sel], hits_true[sel])
    torch.testing.assert_close(t[sel & hits_true].double(), t_true[sel & hits_true], atol=1e-4, rtol=0)
    assert torch.all(t[~hit] == 10.0) and t.dtype == dtype


def test_matches_the_per_ray_loop():
    g = torch.Generator().manual_seed(1)
    o = torch.tensor([[0.0, 0.0, -4.0]]).repeat(64, 1) + torch.randn(64, 3, generator=g) * 0.3
    d = F.normalize(torch.tensor([[0.0, 0.0, 1.0]]) + torch.randn(64, 3, generator=g) * 0.3, dim=-1)
    def box(p):
        return (p.abs() - 0.7).clamp(min=0).norm(dim=-1) + (p.abs() - 0.7).max(-1).values.clamp(max=0)
    t, hit = sphere_trace(box, o, d, near=0.5, far=8.0, max_steps=50, eps=1e-4)
    t_n, hit_n = sphere_trace_naive(box, o, d, near=0.5, far=8.0, max_steps=50, eps=1e-4)
    assert torch.equal(hit, hit_n)
    torch.testing.assert_close(t, t_n)


def test_missing_ray_and_far_bound():
    o = torch.tensor([[0.0, 3.0, -3.0], [0.0, 0.0, -3.0]])
    d = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    t, hit = sphere_trace(unit_sphere, o, d, far=10.0)
    assert hit.tolist() == [False, True]
    t, hit = sphere_trace(unit_sphere, o, d, far=1.5)       # the sphere lies beyond far
    assert hit.tolist() == [False, False] and t.tolist() == [1.5, 1.5]


def test_grazing_ray_stops_within_the_step_budget():
    calls = []

    def sdf(p):
        calls.append(1)
        return unit_sphere(p)

    o = torch.tensor([[0.0, 1.0 + 1e-7, -3.0]])
    t, hit = sphere_trace(sdf, o, torch.tensor([[0.0, 0.0, 1.0]]), max_steps=32)
    assert len(calls) <= 32


def test_result_is_detached_and_inputs_unchanged(device):
    o = torch.tensor([[0.0, 0.0, -3.0]], device=device, requires_grad=True)
    d = torch.tensor([[0.0, 0.0, 1.0]], device=device)
    before = snapshot(o, d)
    t, hit = sphere_trace(unit_sphere, o, d)
    assert not t.requires_grad and hit.dtype == torch.bool and t.device.type == device.type
    assert_unchanged(before, (o, d))


def test_start_inside_the_surface_hits_at_near():
    t, hit = sphere_trace(unit_sphere, torch.zeros(1, 3), torch.tensor([[1.0, 0, 0]]), near=0.0)
    assert hit.item() and t.item() == 0.0


@pytest.mark.parametrize(
    "kwargs,match",
    [({"near": 2.0, "far": 1.0}, "near"), ({"max_steps": 0}, "max_steps"), ({"eps": 0.0}, "eps"),
     ({"directions": torch.tensor([[0.0, 0.0, 2.0]])}, "unit"), ({"origins": torch.zeros(1, 2)}, "origins"),
     ({"sdf": lambda p: p.norm(dim=-1, keepdim=True).expand(-1, 2)}, "one distance"), ({"sdf": 3.0}, "callable")],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    args = dict(sdf=unit_sphere, origins=torch.tensor([[0.0, 0.0, -3.0]]), directions=torch.tensor([[0.0, 0.0, 1.0]]))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        sphere_trace(**args)
