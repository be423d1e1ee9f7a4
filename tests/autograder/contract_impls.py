"""Plausible student bugs for the contract-coverage tests, each of which the grader once gave full marks (or nearly).

Each bug breaks one thing the contract states and nothing else (the rest delegates to course_lib's reference), so
the only points it can lose are those of the checks that grade that statement.
"""
from __future__ import annotations

import torch

import course_lib as ref

# ===================================================================================== 1. checks that could not fail
def enqueue_keeps_graph(queue, ptr, keys):
    """Writes the keys without detaching them (and outside no_grad): the queue joins their autograd graph."""
    k, n = queue.shape[0], keys.shape[0]
    if keys.dim() != 2 or keys.shape[1] != queue.shape[1] or not 1 <= n <= k:
        raise ValueError(f"keys must be [N, C] with 1 <= N <= K, got {list(keys.shape)}")
    queue[(ptr + torch.arange(n, device=queue.device)) % k] = keys.to(queue.dtype)
    return (ptr + n) % k


def stratified_ignores_perturb(rays_o, rays_d, near, far, n_samples, perturb=True, generator=None):
    """Always the bin midpoints (computed in the rays' dtype)."""
    return ref.sample_stratified(rays_o, rays_d, near, far, n_samples, False, None)


# ===================================================================================== 2. defaults
def _default(fn, **wrong):
    """``fn`` with other defaults: the keyword arguments the caller leaves out get ``wrong`` values."""
    import inspect

    params = list(inspect.signature(fn).parameters)

    def student(*args):
        kwargs = {k: v for k, v in wrong.items() if params.index(k) >= len(args)}
        return fn(*args, **kwargs)

    student.__name__ = f"{fn.__name__}_default_" + "_".join(f"{k}_{v}" for k, v in wrong.items())
    return student


WRONG_DEFAULTS = [
    ("generator_loss", _default(ref.generator_loss, saturating=True)),
    ("attention_color_propagation", _default(ref.attention_color_propagation, temperature=0.1)),
    ("info_nce_loss", _default(ref.info_nce_loss, temperature=0.07)),
    ("nt_xent_loss", _default(ref.nt_xent_loss, temperature=0.1)),
    ("momentum_update", _default(ref.momentum_update, m=0.99)),
    ("moco_loss", _default(ref.moco_loss, temperature=0.1)),
    ("positional_encoding", _default(ref.positional_encoding, include_input=False)),
    ("volume_render", _default(ref.volume_render, white_background=True)),
    ("sample_stratified", _default(ref.sample_stratified, perturb=False)),
    ("sample_pdf", _default(ref.sample_pdf, deterministic=True)),
    ("sphere_trace", _default(ref.sphere_trace, far=5.0)),
]


# ===================================================================================== 3. inputs the contract allows
def attention_view(ref_feats, tgt_feats, ref_colors, temperature=1.0):
    """Flattens with .view, which needs contiguous inputs."""
    ref.attention_color_propagation(ref_feats, tgt_feats, ref_colors, temperature)    # the argument checks
    b, d = ref_feats.shape[:2]
    logits = ref_feats.view(b, d, -1).transpose(1, 2) @ tgt_feats.view(b, d, -1) / temperature
    out = ref_colors.view(b, ref_colors.shape[1], -1) @ logits.softmax(1)
    return out.view(b, ref_colors.shape[1], *tgt_feats.shape[2:])


def volume_render_2d_deltas(sigmas, colors, t_vals, white_background=False):
    """The last delta made with sigmas' shape: a shared t_vals [S] no longer fits."""
    ref.volume_render(sigmas, colors, t_vals)                            # the argument checks
    deltas = torch.cat([t_vals[..., 1:] - t_vals[..., :-1], torch.full_like(sigmas[..., :1], 1e10)], -1)
    return _composite(sigmas, colors, deltas, white_background)


def _composite(sigmas, colors, deltas, white_background):
    tau = sigmas * deltas
    alpha = -torch.expm1(-tau)
    weights = torch.exp(-torch.cat([torch.zeros_like(tau[..., :1]), tau[..., :-1]], -1).cumsum(-1)) * alpha
    rgb = (weights[..., None] * colors).sum(-2)
    if white_background:
        rgb = rgb + (1 - weights.sum(-1, keepdim=True))
    return rgb, weights


def stratified_batch_from_origins(rays_o, rays_d, near, far, n_samples, perturb=True, generator=None):
    """The batch shape taken from rays_o only: one origin [3] for many directions gives t_vals [S]."""
    ref.sample_stratified(rays_o, rays_d, near, far, n_samples, False)  # the argument checks
    edges = torch.linspace(near, far, n_samples + 1, dtype=rays_o.dtype, device=rays_o.device)
    lower, upper = edges[:-1], edges[1:]
    batch = rays_o.shape[:-1]
    if perturb:
        u = torch.rand(*batch, n_samples, generator=generator, dtype=rays_o.dtype)
        t = lower + (upper - lower) * u
    else:
        t = ((lower + upper) / 2).expand(*batch, n_samples).clone()
    return rays_o[..., None, :] + t[..., :, None] * rays_d[..., None, :], t


def get_rays_squeezed(height, width, focal, c2w):
    """squeeze() on the directions: a one-row or one-column image loses a dimension."""
    rays_o, rays_d = ref.get_rays(height, width, focal, c2w)
    return rays_o.squeeze(), rays_d.squeeze()


def rotate_batch_view(images):
    """Each quarter turn as a permutation of the pixels, flattened with .view (which needs contiguous images)."""
    if images.dim() != 4 or images.shape[-1] != images.shape[-2]:
        raise ValueError(f"images must be [N, C, H, H], got {list(images.shape)}")
    n, c, h, w = images.shape
    idx = torch.arange(h * w, device=images.device).reshape(h, w)
    perms = torch.stack([torch.rot90(idx, k, (0, 1)).reshape(-1) for k in range(4)])     # [4, H*W]
    rotated = images.view(n, c, h * w)[:, :, perms]                                      # [N, C, 4, H*W]
    return rotated.transpose(1, 2).reshape(4 * n, c, h, w), torch.arange(4, device=images.device).repeat(n)


def bilinear_flat_view(grid, coords):
    """Looks the four vertices up in the grid flattened with .view (which needs a contiguous grid)."""
    ref.bilinear_sample_2d(grid, coords)                                 # the argument checks
    b, c, hg, wg = grid.shape
    xy = coords.clamp(-1, 1)
    fx, fy = (xy[..., 0] + 1) / 2 * (wg - 1), (xy[..., 1] + 1) / 2 * (hg - 1)
    x0 = fx.detach().floor().long().clamp(0, wg - 1)
    y0 = fy.detach().floor().long().clamp(0, hg - 1)
    x1, y1 = (x0 + 1).clamp(max=wg - 1), (y0 + 1).clamp(max=hg - 1)
    flat = grid.view(b, c, hg * wg)

    def tap(yi, xi):                                                   # [B, P, C]
        return flat.gather(2, (yi * wg + xi)[:, None, :].expand(b, c, -1)).transpose(1, 2)

    ax, ay = (fx - x0)[..., None], (fy - y0)[..., None]
    top = tap(y0, x0) * (1 - ax) + tap(y0, x1) * ax
    return top * (1 - ay) + (tap(y1, x0) * (1 - ax) + tap(y1, x1) * ax) * ay


# ===================================================================================== 4. random modes
def pdf_sorted_draws(bins, weights, n_samples, deterministic=False, generator=None):
    """Sorts the uniform draws before inverting the CDF: same distribution, other samples."""
    if deterministic:
        return ref.sample_pdf(bins, weights, n_samples, True)
    u = torch.rand(*weights.shape[:-1], n_samples, generator=generator, dtype=bins.dtype).sort(-1).values
    return _invert(bins, weights, u)


def pdf_shared_draws(bins, weights, n_samples, deterministic=False, generator=None):
    """One set of n uniform numbers shared by every ray."""
    if deterministic:
        return ref.sample_pdf(bins, weights, n_samples, True)
    u = torch.rand(n_samples, generator=generator, dtype=bins.dtype).expand(*weights.shape[:-1], n_samples)
    return _invert(bins, weights, u.contiguous())


def pdf_linspace_without_generator(bins, weights, n_samples, deterministic=False, generator=None):
    """Falls back to evenly spaced u when no generator is given."""
    return ref.sample_pdf(bins, weights, n_samples, deterministic or generator is None, generator)


def _invert(bins, weights, u):
    w = weights.detach() + 1e-5
    pdf = w / w.sum(-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[..., :1]), pdf.cumsum(-1)], -1)
    idx = torch.searchsorted(cdf, u, right=True)
    below, above = (idx - 1).clamp(min=0), idx.clamp(max=weights.shape[-1])
    cb, ca = cdf.gather(-1, below), cdf.gather(-1, above)
    denom = torch.where(ca - cb < 1e-5, torch.ones_like(ca), ca - cb)
    bins = bins.detach()
    bb, ba = bins.gather(-1, below), bins.gather(-1, above)
    return bb + (u - cb) / denom * (ba - bb)


def stratified_shared_draws(rays_o, rays_d, near, far, n_samples, perturb=True, generator=None):
    """One uniform number per bin, shared by every ray."""
    if not perturb:
        return ref.sample_stratified(rays_o, rays_d, near, far, n_samples, False)
    edges = torch.linspace(near, far, n_samples + 1, dtype=rays_o.dtype, device=rays_o.device)
    t = edges[:-1] + (edges[1:] - edges[:-1]) * torch.rand(n_samples, generator=generator, dtype=rays_o.dtype)
    t = t.expand(*rays_o.shape[:-1], n_samples).clone()
    return rays_o[..., None, :] + t[..., :, None] * rays_d[..., None, :], t


# ===================================================================================== 5. white background
def volume_white_only_empty(sigmas, colors, t_vals, white_background=False):
    """White only where nothing was hit (the weights sum to 0), instead of (1 - sum w) everywhere."""
    rgb, weights = ref.volume_render(sigmas, colors, t_vals, False)
    if white_background:
        rgb = rgb + (weights.sum(-1, keepdim=True) == 0).to(rgb.dtype)
    return rgb, weights


# ===================================================================================== 6. computing first
def discriminator_detached(logits_real, logits_fake):
    return ref.discriminator_loss(logits_real.detach(), logits_fake.detach())


def info_nce_as_float(query, positive, negatives, temperature=0.1):
    """The loss turned into a Python number and back: right value, no graph."""
    return torch.tensor(ref.info_nce_loss(query, positive, negatives, temperature).item(), dtype=query.dtype)


@torch.no_grad()
def momentum_skips_frozen(key_encoder, query_encoder, m=0.999):
    if not 0 <= m <= 1:
        raise ValueError(f"m must be in [0, 1], got {m}")
    for pk, pq in zip(key_encoder.parameters(), query_encoder.parameters()):
        if pk.requires_grad:
            pk.mul_(m).add_(pq, alpha=1 - m)


def pdf_zeros(bins, weights, n_samples, deterministic=False, generator=None):
    """Zeros of the right shape: detached, and nothing else."""
    return torch.zeros(*weights.shape[:-1], n_samples, dtype=bins.dtype)


# ===================================================================================== 7. devices
def get_rays_cpu_grid(height, width, focal, c2w):
    """torch.arange and torch.full without device=: the pixel grid is always made on the CPU."""
    kw = dict(dtype=c2w.dtype)
    x = (torch.arange(width, **kw) - width / 2) / focal
    y = -(torch.arange(height, **kw) - height / 2) / focal
    dirs = torch.stack([x.expand(height, width), y[:, None].expand(height, width),
                        torch.full((height, width), -1.0, **kw)], -1)
    ref.get_rays(height, width, focal, c2w)                               # the reference's argument checks
    return c2w[:3, 3].expand(height, width, 3).clone(), dirs @ c2w[:3, :3].T


def volume_render_cpu_delta(sigmas, colors, t_vals, white_background=False):
    """The last delta from torch.full without device=."""
    ref.volume_render(sigmas, colors, t_vals)                            # the reference's argument checks
    last = torch.full((*t_vals.shape[:-1], 1), 1e10, dtype=t_vals.dtype)
    return _composite(sigmas, colors, torch.cat([t_vals[..., 1:] - t_vals[..., :-1], last], -1), white_background)


def stratified_cpu_draws(rays_o, rays_d, near, far, n_samples, perturb=True, generator=None):
    """The bin edges from torch.linspace without device= (the contract's draws, the reference's checks)."""
    points, t = ref.sample_stratified(rays_o, rays_d, near, far, n_samples, perturb, generator)
    edges = torch.linspace(near, far, n_samples + 1, dtype=rays_o.dtype)
    if not perturb:
        t = ((edges[:-1] + edges[1:]) / 2).expand_as(t).clone() + 0 * t
    return points, t


def sphere_trace_cpu_state(sdf, origins, directions, near=0.0, far=10.0, max_steps=64, eps=1e-4):
    """t and hit start as torch.full and torch.zeros without device=."""
    ref.sphere_trace(sdf, origins, directions, near, far, max_steps, eps)          # the argument checks
    n = origins.shape[0]
    t = torch.full((n,), float(near), dtype=origins.dtype)
    hit = torch.zeros(n, dtype=torch.bool)
    done = torch.zeros(n, dtype=torch.bool)
    with torch.no_grad():
        for _ in range(max_steps):
            s = sdf(origins + t[:, None] * directions).reshape(-1)
            hit = hit | (~done & (s < eps))
            done = done | hit
            t = torch.where(done, t, t + s)
            done = done | (t > far)
    return torch.where(hit, t, torch.full_like(t, far)), hit


# ===================================================================================== 8. views and storage
def get_rays_origin_view(height, width, focal, c2w):
    rays_o, rays_d = ref.get_rays(height, width, focal, c2w)
    return c2w[:3, 3].expand(height, width, 3), rays_d


def patches_center_view(images, positions, patch, gap):
    """The centre cell returned as a slice of images (no copy)."""
    center, neighbor = ref.relative_patch_pairs(images, positions, patch, gap)
    span = 3 * patch + 2 * gap
    y0, x0 = (images.shape[2] - span) // 2 + patch + gap, (images.shape[3] - span) // 2 + patch + gap
    return images[:, :, y0:y0 + patch, x0:x0 + patch], neighbor


def encoding_returns_input(x, num_freqs, include_input=True):
    """L = 0 returns x itself instead of a copy."""
    if num_freqs == 0 and include_input:
        if x.dim() == 0:
            raise ValueError("x must be [..., D]")
        return x
    return ref.positional_encoding(x, num_freqs, include_input)


@torch.no_grad()
def momentum_replaces_data(key_encoder, query_encoder, m=0.999):
    if not 0 <= m <= 1:
        raise ValueError(f"m must be in [0, 1], got {m}")
    for pk, pq in zip(key_encoder.parameters(), query_encoder.parameters()):
        pk.data = m * pk.data + (1 - m) * pq.data


def enqueue_replaces_data(queue, ptr, keys):
    if keys.dim() != 2 or keys.shape[1] != queue.shape[1] or not 1 <= keys.shape[0] <= queue.shape[0]:
        raise ValueError(f"keys must be [N, C] with 1 <= N <= K, got {list(keys.shape)}")
    idx = (ptr + torch.arange(keys.shape[0], device=queue.device)) % queue.shape[0]
    queue.data = queue.index_copy(0, idx, keys.detach().to(queue.dtype))
    return (ptr + keys.shape[0]) % queue.shape[0]


# ===================================================================================== 9. separable parts
def sphere_trace_last_t(sdf, origins, directions, near=0.0, far=10.0, max_steps=64, eps=1e-4):
    """Misses report the t where they stopped instead of far."""
    t, hit = ref.sphere_trace(sdf, origins, directions, near, far, max_steps, eps)
    with torch.no_grad():
        t_run = torch.full_like(t, near)
        for _ in range(max_steps):
            t_run = torch.where(hit | (t_run > far), t_run, t_run + sdf(origins + t_run[:, None] * directions))
    return torch.where(hit, t, t_run), hit


def volume_rgb_mean(sigmas, colors, t_vals, white_background=False):
    """Weights right, but rgb averages the weighted colours over the samples instead of summing them."""
    rgb, weights = ref.volume_render(sigmas, colors, t_vals, False)
    rgb = (weights[..., None] * colors).mean(-2)
    if white_background:
        rgb = rgb + (1 - weights.sum(-1, keepdim=True))
    return rgb, weights


# ===================================================================================== 10. NaN
def bilinear_nan_to_num(grid, coords):
    """Replaces nan coordinates by 0 (the contract returns nan for them)."""
    return ref.bilinear_sample_2d(grid, torch.nan_to_num(coords))
