"""Loop versions for a4_rendering: rays, sampling, encoding, volume rendering, sphere tracing, 2-D Gaussian splatting
(see :mod:`course_lib.naive`)."""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from ._workload import Workload, rand, randn

__all__ = ["get_rays_naive", "sample_stratified_naive", "positional_encoding_naive", "volume_render_naive", "sample_pdf_naive",
           "sphere_trace_naive", "splat_gaussians_2d_naive", "WORKLOADS"]


def get_rays_naive(height, width, focal, c2w):
    """``get_rays`` one pixel at a time (the definition, written as directly as possible)."""
    rays_o = c2w.new_zeros((height, width, 3))
    rays_d = c2w.new_zeros((height, width, 3))
    for j in range(height):
        for i in range(width):
            d_cam = [(i - width / 2) / focal, -(j - height / 2) / focal, -1.0]
            for a in range(3):
                rays_d[j, i, a] = sum(c2w[a, b] * d_cam[b] for b in range(3))
                rays_o[j, i, a] = c2w[a, 3]
    return rays_o, rays_d


def sample_stratified_naive(rays_o, rays_d, near, far, n_samples, perturb=True, generator=None, u=None):
    """``u`` ([..., S]) may be passed to replay the reference's uniform draws."""
    batch = rays_o.shape[:-1]
    flat_o, flat_d = rays_o.reshape(-1, 3), rays_d.reshape(-1, 3)
    flat_u = None if u is None else u.reshape(-1, n_samples)
    t_vals = rays_o.new_zeros((flat_o.shape[0], n_samples))
    points = rays_o.new_zeros((flat_o.shape[0], n_samples, 3))
    width = (far - near) / n_samples
    for r in range(flat_o.shape[0]):
        for s in range(n_samples):
            lo, hi = near + s * width, near + (s + 1) * width
            frac = flat_u[r, s] if perturb else 0.5
            t_vals[r, s] = lo + (hi - lo) * frac
            points[r, s] = flat_o[r] + t_vals[r, s] * flat_d[r]
    return points.reshape(*batch, n_samples, 3), t_vals.reshape(*batch, n_samples)


def positional_encoding_naive(x, num_freqs, include_input=True):
    """The positional encoding one point, frequency and coordinate at a time."""
    batch, d = x.shape[:-1], x.shape[-1]
    flat = x.reshape(-1, d)
    width = d * (int(include_input) + 2 * num_freqs)
    out = x.new_zeros((flat.shape[0], width))
    for p in range(flat.shape[0]):
        col = 0
        if include_input:
            out[p, :d] = flat[p]
            col = d
        for k in range(num_freqs):
            for fn in (torch.sin, torch.cos):
                for a in range(d):
                    out[p, col] = fn((2.0**k) * math.pi * flat[p, a])
                    col += 1
    return out.reshape(*batch, width)


def volume_render_naive(sigmas, colors, t_vals, white_background=False):
    """``volume_render`` one ray and one sample at a time, front to back."""
    batch, s = sigmas.shape[:-1], sigmas.shape[-1]
    c = colors.shape[-1]
    flat_s = sigmas.reshape(-1, s)
    flat_c = colors.reshape(-1, s, c)
    flat_t = t_vals.expand_as(sigmas).reshape(-1, s)
    rgb = sigmas.new_zeros((flat_s.shape[0], c))
    weights = sigmas.new_zeros((flat_s.shape[0], s))
    for r in range(flat_s.shape[0]):
        optical_depth = sigmas.new_zeros(())                    # sum_{j<i} sigma_j delta_j
        for i in range(s):
            delta = flat_t[r, i + 1] - flat_t[r, i] if i + 1 < s else sigmas.new_tensor(1e10)
            alpha = 1 - torch.exp(-flat_s[r, i] * delta)
            w = torch.exp(-optical_depth) * alpha
            weights[r, i] = w
            rgb[r] = rgb[r] + w * flat_c[r, i]
            optical_depth = optical_depth + flat_s[r, i] * delta
        if white_background:
            rgb[r] = rgb[r] + (1 - weights[r].sum())
    return rgb.reshape(*batch, c), weights.reshape(*batch, s)


def sample_pdf_naive(bins, weights, n_samples, deterministic=False, generator=None, u=None):
    """``u`` ([..., n]) may be passed to replay the reference's uniform draws."""
    s = weights.shape[-1]
    batch = weights.shape[:-1]
    flat_b, flat_w = bins.reshape(-1, s + 1).detach(), weights.reshape(-1, s).detach()
    out = bins.new_zeros((flat_w.shape[0], n_samples))
    for r in range(flat_w.shape[0]):
        w = [float(v) + 1e-5 for v in flat_w[r]]
        total = sum(w)
        cdf = [0.0]
        for v in w:
            cdf.append(cdf[-1] + v / total)
        for k in range(n_samples):
            if deterministic:
                uk = k / (n_samples - 1) if n_samples > 1 else 0.0
            else:
                uk = float(u.reshape(-1, n_samples)[r, k])
            idx = 0                                          # first index with cdf[idx] > u (right=True)
            while idx <= s and cdf[idx] <= uk:
                idx += 1
            below, above = max(idx - 1, 0), min(idx, s)
            denom = cdf[above] - cdf[below]
            if denom < 1e-5:
                denom = 1.0
            frac = (uk - cdf[below]) / denom
            out[r, k] = flat_b[r, below] + frac * (flat_b[r, above] - flat_b[r, below])
    return out.reshape(*batch, n_samples)


def sphere_trace_naive(sdf: Callable, origins, directions, near=0.0, far=10.0, max_steps=64, eps=1e-4):
    """Sphere tracing one ray at a time."""
    n = origins.shape[0]
    t_out = origins.new_full((n,), far)
    hit = torch.zeros(n, dtype=torch.bool, device=origins.device)
    with torch.no_grad():
        for r in range(n):
            t = near
            for _ in range(max_steps):
                dist = float(sdf((origins[r] + t * directions[r])[None])[0])
                if dist < eps:
                    hit[r] = True
                    t_out[r] = t
                    break
                t = t + dist
                if t > far:
                    break
    return t_out, hit


def splat_gaussians_2d_naive(means, scales, angles, colors, opacities, depths, height, width):
    """splat_gaussians_2d one pixel and one Gaussian at a time: Sigma^-1 written out, blended front to back."""
    g_count, c = colors.shape
    order = sorted(range(g_count), key=lambda g: float(depths[g]))      # front to back; Python's sort is stable
    # Sigma_g^-1 = R diag(1 / s^2) R^T, written out: [[a, b], [b, d]] per Gaussian
    inv = []
    for g in range(g_count):
        cos, sin = torch.cos(angles[g]), torch.sin(angles[g])
        sx2, sy2 = scales[g, 0] ** 2, scales[g, 1] ** 2
        inv.append((cos * cos / sx2 + sin * sin / sy2, cos * sin / sx2 - cos * sin / sy2,
                    sin * sin / sx2 + cos * cos / sy2))
    image = means.new_zeros((height, width, c))
    alpha = means.new_zeros((height, width))
    for j in range(height):
        for i in range(width):
            px, py = i + 0.5, j + 0.5                                      # pixel centre (x right, y down)
            transmittance = 1.0
            rgb = means.new_zeros(c)
            for g in order:
                a, b, d = inv[g]
                dx, dy = px - means[g, 0], py - means[g, 1]
                mahalanobis = a * dx * dx + 2 * b * dx * dy + d * dy * dy
                alpha_g = torch.clamp(opacities[g] * torch.exp(-0.5 * mahalanobis), max=0.99)
                rgb = rgb + transmittance * alpha_g * colors[g]
                transmittance = transmittance * (1 - alpha_g)
            image[j, i] = rgb
            alpha[j, i] = 1 - transmittance
    return image, alpha


# ------------------------------------------------------------------------------------------------ benchmark
def _sorted_t(g, device, rays, samples):
    return torch.sort(2 + 4 * rand(g, device, rays, samples), -1).values


def _sphere_rays(s, device, g):
    m = s(4096)
    o = torch.tensor([0.0, 0.0, -3.0], device=device).expand(m, 3) + 0.5 * randn(g, device, m, 3)
    d = F.normalize(torch.tensor([0.0, 0.0, 1.0], device=device) + 0.2 * randn(g, device, m, 3), dim=-1)
    return (lambda p: p.norm(dim=-1) - 1.0), o, d


def _gaussians(s, device, g):
    h, w, n = s(16), 16, 48
    means = rand(g, device, n, 2) * torch.tensor([w, h], device=device)
    scales = 0.5 + 3 * rand(g, device, n, 2)
    angles = math.pi * rand(g, device, n)
    return means, scales, angles, rand(g, device, n, 3), rand(g, device, n), rand(g, device, n), h, w


WORKLOADS = {
    "get_rays": Workload("{n100}x100", lambda s, d, g: (s(100), 100, 138.9, torch.eye(4, device=d))),
    "sample_stratified": Workload("{n1024} rays x 64", lambda s, d, g: (randn(g, d, s(1024), 3), randn(g, d, s(1024), 3),
                                                                        2.0, 6.0, 64, False)),
    "positional_encoding": Workload("{n1024} x 3, L=10", lambda s, d, g: (randn(g, d, s(1024), 3), 10)),
    "volume_render": Workload("{n1024} rays x 64", lambda s, d, g: (rand(g, d, s(1024), 64), rand(g, d, s(1024), 64, 3),
                                                                    _sorted_t(g, d, s(1024), 64))),
    "sample_pdf": Workload("{n256} rays, 63 bins, 128 samples", lambda s, d, g: (_sorted_t(g, d, s(256), 64),
                                                                                 rand(g, d, s(256), 63), 128, True)),
    "sphere_trace": Workload("{n4096} rays, unit sphere", _sphere_rays),
    "splat_gaussians_2d": Workload("{n16}x16 image, 48 Gaussians", _gaussians),
}
