"""Naive loop versions of the graded functions, transcribed from the lecture formulas.

Each function has the contract of its vectorised reference (same arguments, same result) but loops over
batch elements, rays, samples or pixels with scalar arithmetic. They exist for two reasons: the tests check
every reference against its loop in float64, and the benchmark reports how much vectorising buys. They are
what a first, correct attempt looks like, and what the notebooks ask students to write before vectorising.
No argument checking: feed them valid inputs only.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

__all__ = [
    "discriminator_loss_naive",
    "generator_loss_naive",
    "rotate_batch_naive",
    "attention_color_propagation_naive",
    "info_nce_loss_naive",
    "nt_xent_loss_naive",
    "momentum_update_naive",
    "enqueue_naive",
    "moco_loss_naive",
    "get_rays_naive",
    "sample_stratified_naive",
    "positional_encoding_naive",
    "volume_render_naive",
    "sample_pdf_naive",
    "sphere_trace_naive",
]


def _softplus(x: torch.Tensor) -> torch.Tensor:
    # log(1 + e^x) = max(x, 0) + log(1 + e^-|x|), finite for any x
    return torch.clamp(x, min=0) + torch.log1p(torch.exp(-x.abs()))


def discriminator_loss_naive(logits_real, logits_fake):
    total_real = logits_real.new_zeros(())
    for l in logits_real:                                    # -log D(x) = softplus(-l)
        total_real = total_real + _softplus(-l)
    total_fake = logits_fake.new_zeros(())
    for l in logits_fake:                                    # -log(1 - D(G(z))) = softplus(l)
        total_fake = total_fake + _softplus(l)
    return total_real / len(logits_real) + total_fake / len(logits_fake)


def generator_loss_naive(logits_fake, saturating=False):
    total = logits_fake.new_zeros(())
    for l in logits_fake:
        total = total + (-_softplus(l) if saturating else _softplus(-l))
    return total / len(logits_fake)


def rotate_batch_naive(images):
    n, c, h, w = images.shape
    out = images.new_empty((4 * n, c, h, w))
    labels = torch.empty(4 * n, dtype=torch.long, device=images.device)
    for i in range(n):
        for k in range(4):
            # k quarter turns counter-clockwise: pixel (y, x) of the result comes from the source pixel
            # reached by turning back k times: (y, x) <- (x, W-1-y) once, applied k times.
            rot = images[i]
            for _ in range(k):
                rot = torch.stack([rot[:, :, w - 1 - y] for y in range(h)], dim=1)
            out[4 * i + k] = rot
            labels[4 * i + k] = k
    return out, labels


def attention_color_propagation_naive(ref_feats, tgt_feats, ref_colors, temperature=1.0):
    b, d, hr, wr = ref_feats.shape
    _, _, ht, wt = tgt_feats.shape
    c = ref_colors.shape[1]
    out = ref_colors.new_zeros((b, c, ht, wt))
    for bi in range(b):
        ref = ref_feats[bi].reshape(d, hr * wr)
        refc = ref_colors[bi].reshape(c, hr * wr)
        for j in range(ht * wt):
            f_t = tgt_feats[bi, :, j // wt, j % wt]
            scores = [torch.dot(ref[:, i], f_t) / temperature for i in range(hr * wr)]
            m = max(scores)
            exps = [torch.exp(s - m) for s in scores]
            z = sum(exps)
            acc = ref_colors.new_zeros(c)
            for i in range(hr * wr):
                acc = acc + exps[i] / z * refc[:, i]
            out[bi, :, j // wt, j % wt] = acc
    return out


def _cos(a, b):
    return torch.dot(a, b) / (torch.clamp(a.norm(), min=1e-12) * torch.clamp(b.norm(), min=1e-12))


def _neg_log_softmax_first(scores):
    m = max(scores)
    return -(scores[0] - m - torch.log(sum(torch.exp(s - m) for s in scores)))


def info_nce_loss_naive(query, positive, negatives, temperature=0.1):
    n, m, _ = negatives.shape
    total = query.new_zeros(())
    for i in range(n):
        scores = [_cos(query[i], positive[i]) / temperature]
        scores += [_cos(query[i], negatives[i, j]) / temperature for j in range(m)]
        total = total + _neg_log_softmax_first(scores)
    return total / n


def nt_xent_loss_naive(z_a, z_b, temperature=0.5):
    # SimCLR, Algorithm 1: l(i, j) = -log exp(s_ij / t) / sum_{k != i} exp(s_ik / t), averaged over 2N anchors
    n = z_a.shape[0]
    z = torch.cat([z_a, z_b])
    total = z.new_zeros(())
    for i in range(2 * n):
        p = (i + n) % (2 * n)
        scores = [_cos(z[i], z[p]) / temperature] + [
            _cos(z[i], z[k]) / temperature for k in range(2 * n) if k != i and k != p
        ]
        total = total + _neg_log_softmax_first(scores)
    return total / (2 * n)


@torch.no_grad()
def momentum_update_naive(key_encoder, query_encoder, m=0.999):
    for pk, pq in zip(key_encoder.parameters(), query_encoder.parameters()):
        flat_k, flat_q = pk.view(-1), pq.reshape(-1)
        for e in range(flat_k.numel()):
            flat_k[e] = m * flat_k[e] + (1 - m) * flat_q[e]


def enqueue_naive(queue, ptr, keys):
    k = queue.shape[0]
    with torch.no_grad():
        for r in range(keys.shape[0]):
            queue[(ptr + r) % k] = keys[r].detach()
    return (ptr + keys.shape[0]) % k


def moco_loss_naive(q, k, queue, temperature=0.07):
    n = q.shape[0]
    kd, qd = k.detach(), queue.detach()
    total = q.new_zeros(())
    for i in range(n):
        scores = [torch.dot(q[i], kd[i]) / temperature] + [
            torch.dot(q[i], qd[j]) / temperature for j in range(qd.shape[0])
        ]
        total = total + _neg_log_softmax_first(scores)
    return total / n


def get_rays_naive(height, width, focal, c2w):
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
