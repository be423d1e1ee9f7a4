"""Do the hidden checks of a5_priors (project_points, plucker_coordinates, bilinear_sample_2d, batched_mlp) tell
right from wrong: full marks for correct code written in other styles, lost points for plausible bugs outside the
catalogue, nothing for a stub that only validates, and public self-check cases the reference passes?"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from autograder.grading import _worker_case
from autograder.registry import SPECS
from autograder.registry.core import Cases, materialize
from autograder.registry.judges import Context, value
from autograder.sandbox import CaseOutcome
from autograder.worker import runner, wire

NAMES = ("project_points", "plucker_coordinates", "bilinear_sample_2d", "batched_mlp")
SEEDS = (3, 1234, 98765)


def simulate(spec, fn, seed: int) -> dict[str, list]:
    """simulate.py's in-process judging, with the case sent through the wire format as the sandbox sends it: the
    function gets copies of the grader's inputs (so in-place writes show) laid out contiguously (as a worker
    gets them)."""
    out: dict[str, list] = {}
    for check in spec.checks:
        factory = Cases(spec.name, check.name, seed)
        check.make(factory)
        out[check.name] = []
        for case in factory.items:
            m = materialize(spec, case)
            sent = wire.decode(wire.encode(_worker_case(case, m)))
            reply = wire.decode(wire.encode(runner.run_case(fn, sent)))
            out[check.name].append((check.judge or value)(Context(spec, case, m, CaseOutcome(reply=reply))))
    return out


def _score(name: str, fn, seed: int, verdicts: dict | None = None) -> tuple[float, dict]:
    """The grade as grading.grade_function computes it (auxiliary checks count only when a value case is right)."""
    spec = SPECS[name]
    verdicts = verdicts or simulate(spec, fn, seed)
    computes = any(v.score > 0 for v in verdicts["values"])
    total = sum(c.weight * sum(v.score for v in verdicts[c.name]) / len(verdicts[c.name])
                for c in spec.checks if verdicts[c.name] and (computes or not c.auxiliary))
    failed = {f"{k}/{i}": v.message for k, vs in verdicts.items() for i, v in enumerate(vs) if v.score < 1}
    return min(spec.points, total), failed


# ------------------------------------------------------------------------------------------------ validation
def _tensor(name, x, ndim=None, last=None):
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {type(x).__name__}")
    if (ndim is not None and x.dim() != ndim) or (last is not None and (x.dim() == 0 or x.shape[-1] != last)):
        raise ValueError(f"{name} has the wrong shape {list(x.shape)}")


def _like(name, x, ref):
    if x.dtype != ref.dtype or x.device != ref.device:
        raise ValueError(f"{name} must match in dtype and device, got {x.dtype}")


def _posint(name, v):
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be a positive int, got {v!r}")


def _pp_checks(points, c2w, focal, height, width):
    _tensor("points", points, last=3)
    _tensor("c2w", c2w, ndim=2)
    if tuple(c2w.shape) not in ((3, 4), (4, 4)):
        raise ValueError(f"c2w must be [3, 4] or [4, 4], got {list(c2w.shape)}")
    _like("c2w", c2w, points)
    if not focal > 0:
        raise ValueError(f"focal must be > 0, got {focal}")
    _posint("height", height)
    _posint("width", width)


def _pl_checks(rays_o, rays_d):
    _tensor("rays_o", rays_o, last=3)
    _tensor("rays_d", rays_d, last=3)
    _like("rays_d", rays_d, rays_o)
    try:
        torch.broadcast_shapes(rays_o.shape, rays_d.shape)
    except RuntimeError:
        raise ValueError("rays_o and rays_d do not broadcast") from None
    if bool((rays_d.abs().amax(-1) == 0).any()):
        raise ValueError("rays_d has a zero-length direction")


def _bs_checks(grid, coords):
    _tensor("grid", grid, ndim=4)
    _tensor("coords", coords, ndim=3, last=2)
    if grid.shape[2] < 1 or grid.shape[3] < 1:
        raise ValueError(f"grid must have Hg, Wg >= 1, got {list(grid.shape)}")
    if coords.shape[0] != grid.shape[0]:
        raise ValueError("coords must have the batch size of grid")
    _like("coords", coords, grid)


def _bm_checks(x, params, sizes):
    if not isinstance(sizes, (list, tuple)) or len(sizes) < 2:
        raise ValueError(f"sizes must list at least two widths, got {sizes!r}")
    for s in sizes:
        _posint("sizes", s)
    _tensor("x", x, ndim=3, last=sizes[0])
    _tensor("params", params, ndim=2)
    n = sum(o * i + o for i, o in zip(sizes[:-1], sizes[1:]))
    if tuple(params.shape) != (x.shape[0], n):
        raise ValueError(f"params must be [{x.shape[0]}, {n}], got {list(params.shape)}")
    _like("params", params, x)


# ------------------------------------------------------------------------------------------------ correct, other styles
def project_points_solve(points, c2w, focal, height, width):
    """Camera coordinates by solving R x_c = p - o (no explicit transpose), then the pinhole formula."""
    _pp_checks(points, c2w, focal, height, width)
    rel = (points - c2w[:3, 3]).reshape(-1, 3)                                  # [N, 3]
    cam = torch.linalg.solve(c2w[:3, :3], rel.T).T.reshape(points.shape)        # [..., 3]
    depth = -cam[..., 2]
    u = focal * cam[..., 0] / depth + width / 2
    v = height / 2 - focal * cam[..., 1] / depth
    return torch.stack((u, v), -1), depth


def project_points_homogeneous(points, c2w, focal, height, width):
    """world-to-camera as the inverse 4x4 matrix applied to homogeneous points, intrinsics as a matrix."""
    _pp_checks(points, c2w, focal, height, width)
    full = torch.cat([c2w[:3], torch.tensor([[0.0, 0.0, 0.0, 1.0]], dtype=c2w.dtype, device=c2w.device)])
    w2c = torch.linalg.inv(full)                                                # [4, 4]
    homo = torch.cat([points, torch.ones_like(points[..., :1])], -1)           # [..., 4]
    cam = torch.einsum("ij,...j->...i", w2c[:3], homo)                         # [..., 3]
    k = torch.tensor([[focal, 0.0, width / 2], [0.0, -focal, height / 2], [0.0, 0.0, 1.0]],
                     dtype=points.dtype, device=points.device)
    pix = torch.einsum("ij,...j->...i", k, torch.cat([cam[..., :2], -cam[..., 2:]], -1))
    return pix[..., :2] / pix[..., 2:], -cam[..., 2]


def plucker_stack(rays_o, rays_d):
    """F.normalize, broadcast_tensors and the cross product written out component by component."""
    _pl_checks(rays_o, rays_d)
    o, d = torch.broadcast_tensors(rays_o, F.normalize(rays_d, dim=-1))
    m = torch.stack([o[..., 1] * d[..., 2] - o[..., 2] * d[..., 1],
                     o[..., 2] * d[..., 0] - o[..., 0] * d[..., 2],
                     o[..., 0] * d[..., 1] - o[..., 1] * d[..., 0]], -1)
    return torch.cat([d, m], -1)


def plucker_skew(rays_o, rays_d):
    """The moment as a skew-symmetric matrix times the raw direction, divided by the length afterwards."""
    _pl_checks(rays_o, rays_d)
    o, d = torch.broadcast_tensors(rays_o, rays_d)
    z = torch.zeros_like(o[..., 0])
    skew = torch.stack([torch.stack([z, -o[..., 2], o[..., 1]], -1),
                        torch.stack([o[..., 2], z, -o[..., 0]], -1),
                        torch.stack([-o[..., 1], o[..., 0], z], -1)], -2)      # [..., 3, 3]
    length = d.norm(dim=-1, keepdim=True)
    return torch.cat([d / length, (skew @ d.unsqueeze(-1)).squeeze(-1) / length], -1)


def bilinear_gather(grid, coords):
    """Flat indices y * Wg + x into grid.flatten(2), gathered per channel."""
    _bs_checks(grid, coords)
    b, c, hg, wg = grid.shape
    xy = coords.clamp(-1, 1)
    fx, fy = (xy[..., 0] + 1) * (wg - 1) / 2, (xy[..., 1] + 1) * (hg - 1) / 2   # [B, P]
    x0 = fx.detach().floor().long().clamp(0, max(wg - 2, 0))                   # clamped as long: a nan stays in
    y0 = fy.detach().floor().long().clamp(0, max(hg - 2, 0))                   # range (and its output is nan)
    x1, y1 = torch.clamp(x0 + 1, max=wg - 1), torch.clamp(y0 + 1, max=hg - 1)
    ax, ay = (fx - x0)[:, None], (fy - y0)[:, None]                            # [B, 1, P]
    flat = grid.flatten(2)                                                      # [B, C, Hg * Wg]

    def at(yi, xi):
        return flat.gather(2, (yi * wg + xi)[:, None].expand(b, c, -1))         # [B, C, P]

    out = (1 - ay) * ((1 - ax) * at(y0, x0) + ax * at(y0, x1)) + ay * ((1 - ax) * at(y1, x0) + ax * at(y1, x1))
    return out.transpose(1, 2)


def bilinear_hat(grid, coords):
    """Separable tent weights max(0, 1 - |f - k|) over all columns and rows, contracted with einsum."""
    _bs_checks(grid, coords)
    _, _, hg, wg = grid.shape
    xy = coords.clamp(-1, 1)
    fx, fy = (xy[..., 0] + 1) / 2 * (wg - 1), (xy[..., 1] + 1) / 2 * (hg - 1)
    cols = torch.arange(wg, dtype=grid.dtype, device=grid.device)
    rows = torch.arange(hg, dtype=grid.dtype, device=grid.device)
    wx = torch.relu(1 - (fx[..., None] - cols).abs())                          # [B, P, Wg]
    wy = torch.relu(1 - (fy[..., None] - rows).abs())                          # [B, P, Hg]
    return torch.einsum("bpw,bph,bchw->bpc", wx, wy, grid)


def bilinear_grid_sample(grid, coords):
    """torch's own grid_sample (the notebook asks students not to call it): right, except that it maps a nan
    coordinate to a border value where the contract returns nan for that point."""
    _bs_checks(grid, coords)
    return F.grid_sample(grid, coords[:, None], mode="bilinear", padding_mode="border",
                         align_corners=True)[:, :, 0].transpose(1, 2)


def batched_mlp_einsum(x, params, sizes):
    """Offsets into the row, einsum with W [B, out, in] as stored."""
    _bm_checks(x, params, sizes)
    y, k = x, 0
    for layer, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = params[:, k : k + d_in * d_out].unflatten(1, (d_out, d_in))
        bias = params[:, k + d_in * d_out : k + d_in * d_out + d_out]
        k += d_in * d_out + d_out
        y = torch.einsum("bpi,boi->bpo", y, w) + bias[:, None]
        y = y.clamp(min=0) if layer < len(sizes) - 2 else y
    return y


def batched_mlp_split(x, params, sizes):
    """torch.split into [W_1, b_1, W_2, b_2, ...], bmm with the transposed weights."""
    _bm_checks(x, params, sizes)
    pairs = list(zip(sizes[:-1], sizes[1:]))
    chunks = params.split([n for i, o in pairs for n in (o * i, o)], dim=1)
    y = x
    for layer, (d_in, d_out) in enumerate(pairs):
        w, bias = chunks[2 * layer].reshape(-1, d_out, d_in), chunks[2 * layer + 1]
        y = torch.bmm(y, w.mT) + bias.unsqueeze(1)
        if layer + 1 < len(pairs):
            y = F.relu(y)
    return y


CORRECT = [("project_points", project_points_solve), ("project_points", project_points_homogeneous),
           ("plucker_coordinates", plucker_stack), ("plucker_coordinates", plucker_skew),
           ("bilinear_sample_2d", bilinear_gather), ("bilinear_sample_2d", bilinear_hat),
           ("batched_mlp", batched_mlp_einsum), ("batched_mlp", batched_mlp_split)]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name,fn", CORRECT, ids=lambda x: getattr(x, "__name__", x))
def test_correct_code_in_another_style_gets_full_marks(name, fn, seed):
    score, failed = _score(name, fn, seed)
    assert score == SPECS[name].points, failed


def test_c2w_gradients_are_compared_along_rotations_where_r_transposed_and_r_inverse_agree():
    from autograder.registry.priors import _as_rotation

    g = torch.Generator().manual_seed(4)
    q = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))[0]
    c2w = torch.cat([q * torch.linalg.det(q).sign(), torch.randn(3, 1, generator=g, dtype=torch.float64)], 1)
    points = c2w[:, 3] + (torch.randn(6, 3, generator=g, dtype=torch.float64) - torch.tensor([0.0, 0.0, 3.0])) @ c2w[:, :3].T
    grads = []
    for fn in (SPECS["project_points"].reference, project_points_solve):
        m = c2w.clone().requires_grad_(True)
        uv, depth = fn(points, m, 4.0, 8, 8)
        grads.append(torch.autograd.grad(uv.sum() + depth.sum(), m)[0])
    assert not torch.allclose(grads[0], grads[1])                  # they differ off the rotations...
    torch.testing.assert_close(_as_rotation(grads[0], c2w), _as_rotation(grads[1], c2w))   # ...not along them


@pytest.mark.parametrize("name", NAMES)
def test_the_reference_gets_full_marks_at_several_seeds(name):
    for seed in SEEDS:
        score, failed = _score(name, SPECS[name].reference, seed)
        assert score == SPECS[name].points, (seed, failed)


# ------------------------------------------------------------------------------------------------ plausible bugs
def project_points_clamped_depth(points, c2w, focal, height, width):
    """Guards the division with depth.clamp(min=1e-2): wrong for the contract's depths down to 1e-3."""
    _pp_checks(points, c2w, focal, height, width)
    cam = (points - c2w[:3, 3]) @ c2w[:3, :3]
    depth = -cam[..., 2]
    safe = depth.clamp(min=1e-2)
    return torch.stack([focal * cam[..., 0] / safe + width / 2, -focal * cam[..., 1] / safe + height / 2], -1), depth


def project_points_masked_depth(points, c2w, focal, height, width):
    """Returns depth.clamp(min=0): points behind the camera get depth 0 instead of -z_c."""
    _pp_checks(points, c2w, focal, height, width)
    cam = (points - c2w[:3, 3]) @ c2w[:3, :3]
    depth = -cam[..., 2]
    uv = torch.stack([focal * cam[..., 0] / depth + width / 2, -focal * cam[..., 1] / depth + height / 2], -1)
    return uv, depth.clamp(min=0)


def project_points_flat(points, c2w, focal, height, width):
    """Flattens to [N, 3] and never restores the leading dims."""
    _pp_checks(points, c2w, focal, height, width)
    cam = (points.reshape(-1, 3) - c2w[:3, 3]) @ c2w[:3, :3]
    depth = -cam[:, 2]
    return torch.stack([focal * cam[:, 0] / depth + width / 2, -focal * cam[:, 1] / depth + height / 2], -1), depth


def project_points_float32_buffer(points, c2w, focal, height, width):
    """Writes u, v into torch.zeros(..., 2), which is float32 whatever the input."""
    _pp_checks(points, c2w, focal, height, width)
    cam = (points - c2w[:3, 3]) @ c2w[:3, :3]
    depth = -cam[..., 2]
    uv = torch.zeros(*points.shape[:-1], 2)
    uv[..., 0] = focal * cam[..., 0] / depth + width / 2
    uv[..., 1] = -focal * cam[..., 1] / depth + height / 2
    return uv, depth


def project_points_unchecked(points, c2w, focal, height, width):
    """Right values, no argument checks at all."""
    cam = (points - c2w[:3, 3]) @ c2w[:3, :3]
    depth = -cam[..., 2]
    return torch.stack([focal * cam[..., 0] / depth + width / 2, -focal * cam[..., 1] / depth + height / 2], -1), depth


def project_points_rotation_detached(points, c2w, focal, height, width):
    """Right values, but the rotation block is detached: no gradient reaches c2w's rotation."""
    return project_points_solve(points, torch.cat([c2w[:3, :3].detach(), c2w[:3, 3:]], 1), focal, height, width)


def project_points_in_place(points, c2w, focal, height, width):
    """Subtracts the camera centre from points in place."""
    _pp_checks(points, c2w, focal, height, width)
    with torch.no_grad():
        points -= c2w[:3, 3]
    cam = points @ c2w[:3, :3]
    depth = -cam[..., 2]
    return torch.stack([focal * cam[..., 0] / depth + width / 2, -focal * cam[..., 1] / depth + height / 2], -1), depth


def plucker_cross_no_dim(rays_o, rays_d):
    """torch.cross without dim= takes the first dim of size 3: wrong for [3, 3] inputs."""
    _pl_checks(rays_o, rays_d)
    o, d = torch.broadcast_tensors(rays_o, rays_d / rays_d.norm(dim=-1, keepdim=True))
    first = next(i for i, s in enumerate(o.shape) if s == 3)
    return torch.cat([d, torch.linalg.cross(o, d, dim=first)], -1)


def plucker_no_broadcast(rays_o, rays_d):
    """Concatenates d (not broadcast) with m: fails when rays_o has more leading dims than rays_d."""
    _pl_checks(rays_o, rays_d)
    d = rays_d / rays_d.norm(dim=-1, keepdim=True)
    m = torch.linalg.cross(rays_o, d.expand_as(rays_o) if rays_o.dim() >= d.dim() else d, dim=-1)
    return torch.cat([d.expand(*m.shape[:-1], 3) if d.dim() < m.dim() else d, m], -1) if d.shape == m.shape \
        else torch.cat([d, m], -1)


def plucker_sign_slip(rays_o, rays_d):
    """A hand-written cross product with the middle component's sign flipped."""
    _pl_checks(rays_o, rays_d)
    o, d = torch.broadcast_tensors(rays_o, rays_d / rays_d.norm(dim=-1, keepdim=True))
    m = torch.stack([o[..., 1] * d[..., 2] - o[..., 2] * d[..., 1],
                     o[..., 0] * d[..., 2] - o[..., 2] * d[..., 0],
                     o[..., 0] * d[..., 1] - o[..., 1] * d[..., 0]], -1)
    return torch.cat([d, m], -1)


def plucker_eps(rays_o, rays_d):
    """Divides by ||rays_d|| + 1e-6: a visible error for short directions."""
    _pl_checks(rays_o, rays_d)
    o, d = torch.broadcast_tensors(rays_o, rays_d / (rays_d.norm(dim=-1, keepdim=True) + 1e-6))
    return torch.cat([d, torch.linalg.cross(o, d, dim=-1)], -1)


def bilinear_unclamped_corner(grid, coords):
    """x1 = x0 + 1 without a clamp: indexes past the last column at x = 1 and on one-column grids."""
    _bs_checks(grid, coords)
    b, _, hg, wg = grid.shape
    xy = coords.clamp(-1, 1)
    fx, fy = (xy[..., 0] + 1) / 2 * (wg - 1), (xy[..., 1] + 1) / 2 * (hg - 1)
    x0, y0 = fx.floor().long(), fy.floor().long()
    ax, ay = (fx - x0)[..., None], (fy - y0)[..., None]
    g = grid.permute(0, 2, 3, 1)
    bi = torch.arange(b)[:, None]
    top = (1 - ax) * g[bi, y0, x0] + ax * g[bi, y0, x0 + 1]
    bottom = (1 - ax) * g[bi, y0 + 1, x0] + ax * g[bi, y0 + 1, x0 + 1]
    return (1 - ay) * top + ay * bottom


def bilinear_extrapolating(grid, coords):
    """Clamps the corner indices but not the coordinates: extrapolates linearly outside [-1, 1]."""
    _bs_checks(grid, coords)
    b, _, hg, wg = grid.shape
    fx, fy = (coords[..., 0] + 1) / 2 * (wg - 1), (coords[..., 1] + 1) / 2 * (hg - 1)
    x0 = fx.detach().floor().clamp(0, max(wg - 2, 0)).long()
    y0 = fy.detach().floor().clamp(0, max(hg - 2, 0)).long()
    x1, y1 = (x0 + 1).clamp(max=wg - 1), (y0 + 1).clamp(max=hg - 1)
    ax, ay = (fx - x0)[..., None], (fy - y0)[..., None]
    g = grid.permute(0, 2, 3, 1)
    bi = torch.arange(b)[:, None]
    return (1 - ay) * ((1 - ax) * g[bi, y0, x0] + ax * g[bi, y0, x1]) + ay * ((1 - ax) * g[bi, y1, x0] + ax * g[bi, y1, x1])


def bilinear_clamps_in_place(grid, coords):
    """coords.clamp_(-1, 1): the caller's coordinates change."""
    with torch.no_grad():
        coords.clamp_(-1, 1)
    return bilinear_gather(grid, coords)


def bilinear_channels_first(grid, coords):
    """Returns grid_sample's [B, C, P] without the final transpose."""
    return bilinear_grid_sample(grid, coords).transpose(1, 2)


def batched_mlp_bias_not_skipped(x, params, sizes):
    """Advances the offset by out * in only: the next weights start inside the bias."""
    _bm_checks(x, params, sizes)
    y, k = x, 0
    for layer, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = params[:, k : k + d_in * d_out].reshape(-1, d_out, d_in)
        bias = params[:, k + d_in * d_out : k + d_in * d_out + d_out]
        k += d_in * d_out
        y = y @ w.mT + bias[:, None]
        y = torch.relu(y) if layer < len(sizes) - 2 else y
    return y


def batched_mlp_bias_broadcast(x, params, sizes):
    """Adds the bias as [B, out] to [B, P, out]: broadcast against P instead of B."""
    _bm_checks(x, params, sizes)
    y, k = x, 0
    for layer, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = params[:, k : k + d_in * d_out].reshape(-1, d_out, d_in)
        k += d_in * d_out
        y = y @ w.mT + params[:, k : k + d_out]
        k += d_out
        y = torch.relu(y) if layer < len(sizes) - 2 else y
    return y


def batched_mlp_tanh(x, params, sizes):
    """tanh between layers instead of ReLU."""
    _bm_checks(x, params, sizes)
    y, k = x, 0
    for layer, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = params[:, k : k + d_in * d_out].reshape(-1, d_out, d_in)
        k += d_in * d_out
        y = y @ w.mT + params[:, k : k + d_out, None].mT
        k += d_out
        y = torch.tanh(y) if layer < len(sizes) - 2 else y
    return y


def batched_mlp_detached_params(x, params, sizes):
    """Right values, but the weights are read from params.detach(): no gradient reaches the hypernetwork."""
    return batched_mlp_split(x, params.detach(), sizes)


BUGGY = [("project_points", project_points_clamped_depth, "stability"),
         ("project_points", project_points_masked_depth, "behind"),
         ("project_points", project_points_flat, "shapes"),
         ("project_points", project_points_float32_buffer, "dtype_device"),
         ("project_points", project_points_unchecked, "errors"),
         ("project_points", project_points_rotation_detached, "gradients"),
         ("project_points", project_points_in_place, "no_mutation"),
         ("plucker_coordinates", plucker_cross_no_dim, "broadcast"),
         ("plucker_coordinates", plucker_no_broadcast, "broadcast"),
         ("plucker_coordinates", plucker_sign_slip, "values"),
         ("plucker_coordinates", plucker_eps, "values"),
         ("bilinear_sample_2d", bilinear_unclamped_corner, "border"),
         ("bilinear_sample_2d", bilinear_extrapolating, "border"),
         ("bilinear_sample_2d", bilinear_grid_sample, "border"),
         ("bilinear_sample_2d", bilinear_channels_first, "values"),
         ("bilinear_sample_2d", bilinear_clamps_in_place, "no_mutation"),
         ("batched_mlp", batched_mlp_bias_not_skipped, "values"),
         ("batched_mlp", batched_mlp_bias_broadcast, "values"),
         ("batched_mlp", batched_mlp_tanh, "values"),
         ("batched_mlp", batched_mlp_detached_params, "gradients")]


@pytest.mark.parametrize("name,fn,check", BUGGY, ids=lambda x: getattr(x, "__name__", x))
def test_a_plausible_bug_outside_the_catalogue_loses_points_where_it_shows(name, fn, check):
    for seed in SEEDS:
        verdicts = simulate(SPECS[name], fn, seed)
        assert any(v.score < 1 for v in verdicts[check]), (seed, check)
        assert _score(name, fn, seed, verdicts)[0] < SPECS[name].points


@pytest.mark.parametrize("name", NAMES)
def test_a_stub_that_only_checks_its_arguments_scores_nothing(name):
    checks = {"project_points": _pp_checks, "plucker_coordinates": _pl_checks, "bilinear_sample_2d": _bs_checks,
              "batched_mlp": _bm_checks}[name]

    def stub(*args):
        checks(*args)
        raise NotImplementedError

    def zeros(*args):
        checks(*args)
        out = SPECS[name].reference(*args)
        return tuple(torch.zeros_like(o) for o in out) if isinstance(out, tuple) else torch.zeros_like(out)

    verdicts = simulate(SPECS[name], stub, 5)
    assert all(v.score == 1 for v in verdicts["errors"])          # it would earn them, were they not gated
    assert _score(name, stub, 5, verdicts)[0] == 0
    assert _score(name, zeros, 5)[0] == 0


# ------------------------------------------------------------------------------------------------ public cases
def _plain(value) -> bool:
    if isinstance(value, list):
        return all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    return value is None or isinstance(value, (torch.Tensor, bool, int, float))


@pytest.mark.parametrize("name", NAMES)
def test_public_cases_are_few_fixed_plain_and_the_reference_passes_them(name):
    public = SPECS[name].public
    assert 3 <= len(public) <= 5 and len({p.label for p in public}) == len(public)
    assert {p.expect for p in public} == {"reference", "raises"}
    for case in public:
        first, again = case.args(), case.args()
        assert all(_plain(a) for a in first), case.label
        assert all(not isinstance(a, torch.Tensor) or (torch.equal(a, b) and a is not b) for a, b in zip(first, again))
        if case.expect == "raises":
            with pytest.raises(ValueError):
                SPECS[name].reference(*first)
        else:
            out = SPECS[name].reference(*first)
            assert all(torch.isfinite(t).all() for t in (out if isinstance(out, tuple) else (out,)))


def _public(name: str, start: str):
    return next(p for p in SPECS[name].public if p.label.startswith(start)).args()


def test_the_closed_forms_named_in_public_labels_hold():
    uv, depth = SPECS["project_points"].reference(*_public("project_points", "a point on the optical axis"))
    assert uv.tolist() == [3.0, 2.0] and depth.item() == 2.0
    out = SPECS["plucker_coordinates"].reference(*_public("plucker_coordinates", "a ray along +z"))
    assert out.tolist() == [0.0, 0.0, 1.0, 0.0, -1.0, 0.0]
    out = SPECS["bilinear_sample_2d"].reference(*_public("bilinear_sample_2d", "the corners and the centre"))
    assert out.flatten().tolist() == [1.0, 2.0, 3.0, 4.0, 2.5]
    x, params, sizes = _public("batched_mlp", "a hand-made 2-3-1 network")
    x1, x2 = x[0, :, 0], x[0, :, 1]
    expected = x1.relu() - 2 * x2.relu() + 3 * (x1 - x2 - 0.5).relu() + 0.25
    torch.testing.assert_close(SPECS["batched_mlp"].reference(x, params, sizes)[0, :, 0], expected)


def project_points_view(points, c2w, focal, height, width):
    """points.view(-1, 3): right for contiguous points only."""
    cam = (points.view(-1, 3) - c2w[:3, 3]) @ c2w[:3, :3]
    depth = -cam[:, 2]
    uv = torch.stack([focal * cam[:, 0] / depth + width / 2, -focal * cam[:, 1] / depth + height / 2], -1)
    return uv.view(*points.shape[:-1], 2), depth.view(points.shape[:-1])


def bilinear_view(grid, coords):
    """coords.view(B * P, 2): right for contiguous coords only."""
    b, p, _ = coords.shape
    return bilinear_grid_sample(grid, coords.view(b * p, 2).view(b, p, 2))


@pytest.mark.parametrize("name,fn,label", [("project_points", project_points_view, "points [2, 3, 3] (non-contiguous)"),
                                           ("bilinear_sample_2d", bilinear_view, "points outside [-1, 1]")])
def test_a_view_of_a_non_contiguous_input_fails_the_public_case(name, fn, label):
    args = _public(name, label)
    assert not all(a.is_contiguous() for a in args if isinstance(a, torch.Tensor))
    with pytest.raises(RuntimeError):
        fn(*args)
    contiguous = [a.contiguous() if isinstance(a, torch.Tensor) else a for a in args]
    out, want = fn(*contiguous), SPECS[name].reference(*args)
    for o, w in zip(out if isinstance(out, tuple) else (out,), want if isinstance(want, tuple) else (want,)):
        torch.testing.assert_close(o, w)


# ------------------------------------------------------------------------------------------------ catalogue
def _variant_inputs(name: str, g: torch.Generator):
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    if name == "project_points":
        q = torch.linalg.qr(r(3, 3))[0]
        c2w = torch.cat([q * torch.linalg.det(q).sign(), r(3, 1)], 1)
        return r(2, 5, 3), c2w, 3.5, 6, 9
    if name == "plucker_coordinates":
        return r(4, 1, 3), r(5, 3)
    if name == "bilinear_sample_2d":
        return r(2, 3, 4, 6), torch.rand(2, 7, 2, generator=g, dtype=torch.float64) * 3 - 1.5
    return r(3, 4, 2), r(3, 3 * 2 + 3 + 4 * 3 + 4 + 4 + 1), [2, 3, 4, 1]


@pytest.mark.parametrize("name", NAMES)
def test_each_catalogue_variant_is_the_reference_but_for_its_flags(name):
    import inspect

    g = torch.Generator().manual_seed(11)
    variant = SPECS[name].mistakes[0].variant
    assert all(m.variant is variant for m in SPECS[name].mistakes)
    assert all(set(m.flags) <= set(inspect.signature(variant).parameters) for m in SPECS[name].mistakes)
    for _ in range(3):
        args = _variant_inputs(name, g)
        got, want = variant(*args), SPECS[name].reference(*args)
        for o, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
            torch.testing.assert_close(o, w)


# ------------------------------------------------------------------------------------------------ end to end
def test_through_the_sandbox_the_references_score_40_and_written_out_mistakes_are_named(sandbox, tmp_path):
    from autograder.fixtures import mistake_source
    from autograder.grading import grade_notebook
    from autograder.results import results_json
    from nbfactory import perfect, with_functions, write

    result = grade_notebook(perfect("a5_priors", tmp_path / "perfect.ipynb"), "a5_priors", sandbox=sandbox)
    assert [(f.name, f.score) for f in result.functions] == [(n, 10.0) for n in NAMES]
    chosen = {"project_points": "depth_sign", "plucker_coordinates": "halves_swapped",
              "bilinear_sample_2d": "zero_padding", "batched_mlp": "bias_first"}
    nb = with_functions("a5_priors", {n: mistake_source(n, m) for n, m in chosen.items()})
    res = results_json(grade_notebook(write(nb, tmp_path / "mistakes.ipynb"), "a5_priors", sandbox=sandbox))
    tests = {t["extra_data"]["function"]: t for t in res["tests"]}
    for name, mistake in chosen.items():
        assert mistake in tests[name]["extra_data"]["mistakes"] and tests[name]["score"] < 10
        message = next(m.message for m in SPECS[name].mistakes if m.name == mistake)
        assert message in tests[name]["output"]
