"""Do the hidden checks of relative_patch_pairs, clip_loss and splat_gaussians_2d take points from plausible wrong
implementations that are not in their mistake catalogues, and give full marks to correct ones written in other
styles (unfold, gather, logsumexp, log_softmax, a loop over Gaussians, the conic form)?

Every implementation stands in for the student's function through the worker's own case runner (simulate.py);
the score adds the checks' weights as the grader does, auxiliary checks (dtype, no mutation, errors, trivially
passable edge cases) counting only for a function that gets some random value case right.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from autograder.fixtures import mistake_source
from autograder.registry import SPECS
from autograder.registry.core import Cases, materialize
from simulate import simulate

SEEDS = (0, 1, 2)
NAMES = ("relative_patch_pairs", "clip_loss", "splat_gaussians_2d")
_CELLS = ((0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2))


def _score(spec, verdicts) -> float:
    """Points as grading.grade_function adds them (auxiliary checks gated by the random value cases)."""
    computes = any(v.score > 0 for v in verdicts.get("values", []))
    total = 0.0
    for check in spec.checks:
        cases = verdicts[check.name]
        if cases and not (check.auxiliary and not computes):
            total += check.weight * sum(v.score for v in cases) / len(cases)
    return total


def _failures(verdicts) -> dict[str, str]:
    return {name: v.message for name, vs in verdicts.items() for v in vs if v.score < 1}


# ===================================================================================== relative_patch_pairs
def _patch_args(images, positions, patch, gap):
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise ValueError(f"images must be [N, C, H, W], got {getattr(images, 'shape', images)}")
    n, _, h, w = images.shape
    if not isinstance(positions, torch.Tensor) or positions.shape != (n,) or positions.is_floating_point():
        raise ValueError(f"positions must be integer labels of shape [{n}], got {getattr(positions, 'shape', positions)}")
    if patch < 1 or gap < 0:
        raise ValueError(f"need patch >= 1 and gap >= 0, got patch={patch}, gap={gap}")
    span = 3 * patch + 2 * gap
    if span > min(h, w):
        raise ValueError(f"patch={patch}, gap={gap}: the {span}-pixel grid does not fit in {h}x{w} images")
    if n and (positions.min() < 0 or positions.max() > 7):
        raise ValueError("positions must lie in 0..7")
    return (h - span) // 2, (w - span) // 2, patch + gap, positions.to(images.device).long()


def patches_unfold(images, positions, patch, gap):
    """The grid cut out once and unfolded into its 3 x 3 cells, then indexed by (row, column)."""
    y0, x0, step, k = _patch_args(images, positions, patch, gap)
    span = 3 * patch + 2 * gap
    grid = images[:, :, y0:y0 + span, x0:x0 + span].unfold(2, patch, step).unfold(3, patch, step)  # [N, C, 3, 3, p, p]
    cell = k + (k >= 4).long()
    neighbor = grid[torch.arange(images.shape[0], device=images.device), :, cell // 3, cell % 3]  # [N, C, p, p]
    return grid[:, :, 1, 1].clone(), neighbor


def _sliced(images, positions, patch, gap, y0, x0):
    """All eight neighbours cropped with slices from the grid at (y0, x0), stacked, the labelled one picked."""
    step = patch + gap
    crop = lambda r, c: images[:, :, y0 + r * step:y0 + r * step + patch, x0 + c * step:x0 + c * step + patch]  # noqa: E731
    crops = torch.stack([crop(r, c) for r, c in _CELLS], 1)                 # [N, 8, C, p, p]
    k = positions.to(images.device).long()
    return crop(1, 1).clone(), crops[torch.arange(images.shape[0], device=images.device), k]


def patches_stack(images, positions, patch, gap):
    """All eight neighbours cropped with slices, stacked, and the labelled one picked per image."""
    y0, x0, _, _ = _patch_args(images, positions, patch, gap)
    return _sliced(images, positions, patch, gap, y0, x0)


def patches_gather(images, positions, patch, gap):
    """Flat pixel indices of every crop, gathered from the flattened images."""
    y0, x0, step, k = _patch_args(images, positions, patch, gap)
    n, c, h, w = images.shape
    table = torch.tensor(_CELLS, device=images.device)[k]                    # [N, 2]
    table = torch.cat([torch.ones(n, 1, 2, dtype=torch.long, device=images.device), table[:, None]], 1)  # [N, 2, 2]
    offsets = torch.arange(patch, device=images.device)
    rows = y0 + table[..., 0, None] * step + offsets                          # [N, 2, p]
    cols = x0 + table[..., 1, None] * step + offsets
    idx = (rows[..., :, None] * w + cols[..., None, :]).reshape(n, 1, 2 * patch * patch).expand(n, c, -1)
    out = images.reshape(n, c, h * w).gather(2, idx).reshape(n, c, 2, patch, patch)
    return out[:, :, 0], out[:, :, 1]


def patches_skip_off_by_one(images, positions, patch, gap):
    """The centre skipped one label late: cell = k + (k > 4), so label 4 is the centre itself."""
    y0, x0, step, k = _patch_args(images, positions, patch, gap)
    cell = k + (k > 4).long()
    rows = y0 + (cell // 3)[:, None] * step + torch.arange(patch, device=images.device)
    cols = x0 + (cell % 3)[:, None] * step + torch.arange(patch, device=images.device)
    b = torch.arange(images.shape[0], device=images.device)
    neighbor = images[b[:, None, None], :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    return patches_unfold(images, positions, patch, gap)[0], neighbor


def patches_first_label_for_all(images, positions, patch, gap):
    """One label (the first image's) used for the whole batch."""
    y0, x0, step, k = _patch_args(images, positions, patch, gap)
    r, c = _CELLS[int(k[0])] if len(k) else (0, 0)
    return (patches_unfold(images, positions, patch, gap)[0],
            images[:, :, y0 + r * step:y0 + r * step + patch, x0 + c * step:x0 + c * step + patch].clone())


def patches_rounded_origin(images, positions, patch, gap):
    """y0 and x0 with round() (half to even) instead of floor division."""
    _patch_args(images, positions, patch, gap)
    h, w, span = images.shape[2], images.shape[3], 3 * patch + 2 * gap
    return _sliced(images, positions, patch, gap, round((h - span) / 2), round((w - span) / 2))


def patches_in_float32(images, positions, patch, gap):
    """Correct crops of images converted to float32 first (dtype lost, float64 digits lost)."""
    center, neighbor = patches_unfold(images.float(), positions, patch, gap)
    return center, neighbor


def patches_unchecked(images, positions, patch, gap):
    """Correct crops without any argument check."""
    h, w, span = images.shape[2], images.shape[3], 3 * patch + 2 * gap
    return _sliced(images, positions, patch, gap, (h - span) // 2, (w - span) // 2)


def patches_swapped_outputs(images, positions, patch, gap):
    """(neighbor, center) returned in the wrong order."""
    center, neighbor = patches_unfold(images, positions, patch, gap)
    return neighbor, center


# ===================================================================================== clip_loss
def _clip_args(image_emb, text_emb, logit_scale):
    if isinstance(logit_scale, torch.Tensor):
        if logit_scale.numel() != 1 or not logit_scale.item() > 0:
            raise ValueError(f"logit_scale must be one positive number, got {logit_scale}")
    elif not logit_scale > 0:
        raise ValueError(f"logit_scale must be > 0, got {logit_scale}")
    if image_emb.dim() != 2 or image_emb.shape[0] == 0:
        raise ValueError(f"image_emb must be [N, D] with N >= 1, got {list(image_emb.shape)}")
    if text_emb.shape != image_emb.shape:
        raise ValueError(f"text_emb must have the shape of image_emb, got {list(text_emb.shape)}")


def _unit(x):
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def clip_logsumexp(image_emb, text_emb, logit_scale=10.0):
    """Both directions as logsumexp minus the diagonal."""
    _clip_args(image_emb, text_emb, logit_scale)
    logits = logit_scale * _unit(image_emb) @ _unit(text_emb).mT
    diag = logits.diagonal()
    return ((torch.logsumexp(logits, 1) - diag).mean() + (torch.logsumexp(logits, 0) - diag).mean()) / 2


def clip_cross_entropy(image_emb, text_emb, logit_scale=10.0):
    """F.cross_entropy on the image -> text logits and on the text -> image logits built the other way round."""
    _clip_args(image_emb, text_emb, logit_scale)
    img, txt = F.normalize(image_emb, dim=1), F.normalize(text_emb, dim=1)
    target = torch.arange(img.shape[0], device=img.device)
    per_image = torch.einsum("id,jd->ij", img, txt) * logit_scale
    per_text = torch.einsum("id,jd->ij", txt, img) * logit_scale
    return 0.5 * (F.cross_entropy(per_image, target) + F.cross_entropy(per_text, target))


def clip_log_softmax(image_emb, text_emb, logit_scale=10.0):
    """log_softmax over the rows and over the columns, diagonal averaged."""
    _clip_args(image_emb, text_emb, logit_scale)
    logits = logit_scale * (_unit(image_emb) @ _unit(text_emb).T)
    return -(logits.log_softmax(1).diagonal().mean() + logits.log_softmax(0).diagonal().mean()) / 2


def clip_nan_for_zero_rows(image_emb, text_emb, logit_scale=10.0):
    """Rows divided by their norms without a floor: a zero embedding gives NaN."""
    _clip_args(image_emb, text_emb, logit_scale)
    img = image_emb / image_emb.norm(dim=-1, keepdim=True)
    txt = text_emb / text_emb.norm(dim=-1, keepdim=True)
    logits = logit_scale * img @ txt.mT
    target = torch.arange(len(img), device=img.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.mT, target)) / 2


def clip_target_zero(image_emb, text_emb, logit_scale=10.0):
    """Every row's positive taken at index 0 (the InfoNCE layout) instead of the diagonal."""
    _clip_args(image_emb, text_emb, logit_scale)
    logits = logit_scale * _unit(image_emb) @ _unit(text_emb).mT
    target = torch.zeros(len(logits), dtype=torch.long, device=logits.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.mT, target)) / 2


def clip_scale_as_float(image_emb, text_emb, logit_scale=10.0):
    """A tensor logit_scale turned into a Python float: no gradient reaches it."""
    _clip_args(image_emb, text_emb, logit_scale)
    return clip_logsumexp(image_emb, text_emb, float(logit_scale))


def clip_temperature_default(image_emb, text_emb, logit_scale=1 / 0.07):
    """CLIP's initial temperature 0.07 as the default instead of the contract's 10."""
    return clip_logsumexp(image_emb, text_emb, logit_scale)


def clip_text_detached(image_emb, text_emb, logit_scale=10.0):
    """The text side detached (as if it were a momentum encoder's keys)."""
    return clip_logsumexp(image_emb, text_emb.detach(), logit_scale)


def clip_mean_over_n_squared(image_emb, text_emb, logit_scale=10.0):
    """Log-probabilities of the diagonal averaged over all N^2 entries of the masked matrix."""
    _clip_args(image_emb, text_emb, logit_scale)
    logits = logit_scale * _unit(image_emb) @ _unit(text_emb).mT
    eye = torch.eye(len(logits), dtype=logits.dtype, device=logits.device)
    return -((logits.log_softmax(1) * eye).mean() + (logits.log_softmax(0) * eye).mean()) / 2


# ===================================================================================== splat_gaussians_2d
def _splat_args(means, scales, angles, colors, opacities, depths, height, width):
    if means.dim() != 2 or means.shape[-1] != 2:
        raise ValueError(f"means must be [G, 2], got {list(means.shape)}")
    g = means.shape[0]
    for name, x, nd in (("scales", scales, 2), ("angles", angles, 1), ("colors", colors, 2),
                        ("opacities", opacities, 1), ("depths", depths, 1)):
        if x.dim() != nd or x.shape[0] != g:
            raise ValueError(f"{name} must have G = {g} rows, got {list(x.shape)}")
        if name != "depths" and x.dtype != means.dtype:
            raise ValueError(f"{name} must have the dtype of means, got {x.dtype}")
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be >= 1, got height={height}, width={width}")
    if g and not bool((scales > 0).all()):
        raise ValueError("scales must be > 0")
    if g and not bool(((opacities >= 0) & (opacities <= 1)).all()):
        raise ValueError("opacities must lie in [0, 1]")


def _pixels(means, height, width):
    kw = dict(dtype=means.dtype, device=means.device)
    return torch.meshgrid(torch.arange(height, **kw) + 0.5, torch.arange(width, **kw) + 0.5, indexing="ij")   # [H, W] x2


def splat_loop(means, scales, angles, colors, opacities, depths, height, width):
    """One Gaussian at a time, nearest first, carrying the transmittance image T."""
    _splat_args(means, scales, angles, colors, opacities, depths, height, width)
    py, px = _pixels(means, height, width)
    trans = torch.ones(height, width, dtype=means.dtype, device=means.device)
    image = torch.zeros(height, width, colors.shape[1], dtype=means.dtype, device=means.device)
    for gi in torch.argsort(depths, stable=True).tolist():
        c, s = torch.cos(angles[gi]), torch.sin(angles[gi])
        rot = torch.stack([torch.stack([c, -s]), torch.stack([s, c])])      # R(a)
        u = torch.stack([px - means[gi, 0], py - means[gi, 1]], -1) @ rot     # rows (R^T d)^T = d^T R: [H, W, 2]
        alpha = torch.clamp(opacities[gi] * torch.exp(-0.5 * ((u / scales[gi]) ** 2).sum(-1)), max=0.99)
        image = image + (trans * alpha)[..., None] * colors[gi]
        trans = trans * (1 - alpha)
    return image, 1 - trans


def splat_conic(means, scales, angles, colors, opacities, depths, height, width):
    """The inverse covariance as a conic (a, b, c) per Gaussian, an exclusive cumprod for the transmittance."""
    _splat_args(means, scales, angles, colors, opacities, depths, height, width)
    order = torch.sort(depths, stable=True).indices
    m, s, ang, col, op = means[order], scales[order], angles[order], colors[order], opacities[order]
    cos, sin = torch.cos(ang), torch.sin(ang)
    i1, i2 = s[:, 0] ** -2, s[:, 1] ** -2
    a, b, c = cos * cos * i1 + sin * sin * i2, cos * sin * (i1 - i2), sin * sin * i1 + cos * cos * i2
    py, px = _pixels(means, height, width)
    dx, dy = px[..., None] - m[:, 0], py[..., None] - m[:, 1]               # [H, W, G]
    alpha = torch.clamp(op * torch.exp(-0.5 * (a * dx * dx + 2 * b * dx * dy + c * dy * dy)), max=0.99)
    keep = 1 - alpha
    trans = torch.cumprod(torch.cat([torch.ones_like(keep[..., :1]), keep[..., :-1]], -1), -1)
    return torch.einsum("hwg,gc->hwc", trans * alpha, col), 1 - keep.prod(-1)


def splat_frame(means, scales, angles, colors, opacities, depths, height, width):
    """Offsets rotated into every Gaussian's frame with an einsum, transmittance from log1p sums."""
    _splat_args(means, scales, angles, colors, opacities, depths, height, width)
    order = torch.argsort(depths, stable=True)
    cos, sin = torch.cos(angles[order]), torch.sin(angles[order])
    rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)     # [G, 2, 2] R(a)
    py, px = _pixels(means, height, width)
    d = torch.stack([px, py], -1).reshape(-1, 1, 2) - means[order]               # [P, G, 2]
    u = torch.einsum("pgi,gij->pgj", d, rot) / scales[order]                      # (R^T d) / s
    alpha = (opacities[order] * torch.exp(-0.5 * (u * u).sum(-1))).clamp(max=0.99)    # [P, G]
    log_keep = torch.log1p(-alpha)
    trans = torch.exp(torch.cumsum(log_keep, -1) - log_keep)
    image = (trans * alpha) @ colors[order]
    return image.reshape(height, width, -1), (-torch.expm1(log_keep.sum(-1))).reshape(height, width)


def splat_opacity_ignored(means, scales, angles, colors, opacities, depths, height, width):
    """alpha = min(G(p), 0.99): the opacities never enter."""
    return splat_frame(means, scales, angles, colors, torch.ones_like(opacities), depths, height, width)


def splat_colors_not_sorted(means, scales, angles, colors, opacities, depths, height, width):
    """Everything sorted by depth except the colours."""
    order = torch.argsort(depths, stable=True)
    inverse = torch.argsort(order)
    return splat_frame(means, scales, angles, colors[inverse], opacities, depths, height, width)


def _splat_dense(means, scales, angles, colors, opacities, depths, height, width, root=False):
    """Offsets in every Gaussian's frame, an exclusive cumprod; ``root``: sqrt of the squared distance."""
    order = torch.argsort(depths, stable=True)
    cos, sin = torch.cos(angles[order]), torch.sin(angles[order])
    py, px = _pixels(means, height, width)
    dx, dy = px.reshape(-1, 1) - means[order, 0], py.reshape(-1, 1) - means[order, 1]
    u1, u2 = (cos * dx + sin * dy) / scales[order, 0], (cos * dy - sin * dx) / scales[order, 1]
    q = u1 * u1 + u2 * u2
    alpha = (opacities[order] * torch.exp(-0.5 * (torch.sqrt(q + 1e-30) if root else q))).clamp(max=0.99)
    keep = 1 - alpha
    trans = torch.cumprod(torch.cat([torch.ones_like(keep[:, :1]), keep[:, :-1]], 1), 1)
    return ((trans * alpha) @ colors[order]).reshape(height, width, -1), (1 - keep.prod(1)).reshape(height, width)


def splat_unsquared_distance(means, scales, angles, colors, opacities, depths, height, width):
    """exp(-1/2 sqrt(d^T Sigma^-1 d)): the Mahalanobis distance where its square belongs."""
    _splat_args(means, scales, angles, colors, opacities, depths, height, width)
    return _splat_dense(means, scales, angles, colors, opacities, depths, height, width, root=True)


def splat_unpremultiplied(means, scales, angles, colors, opacities, depths, height, width):
    """The image divided by its alpha (colours un-premultiplied): the contract composites over black."""
    image, alpha = splat_frame(means, scales, angles, colors, opacities, depths, height, width)
    return image / alpha.clamp_min(1e-12)[..., None], alpha


def splat_means_detached(means, scales, angles, colors, opacities, depths, height, width):
    """The pixel offsets computed from means.detach(): no gradient reaches the means."""
    return splat_frame(means.detach(), scales, angles, colors, opacities, depths, height, width)


def splat_unchecked(means, scales, angles, colors, opacities, depths, height, width):
    """Correct values without any argument check."""
    return _splat_dense(means, scales, angles, colors, opacities, depths, height, width)


# ===================================================================================== the questions
CORRECT = [
    ("relative_patch_pairs", patches_unfold), ("relative_patch_pairs", patches_stack),
    ("relative_patch_pairs", patches_gather),
    ("clip_loss", clip_logsumexp), ("clip_loss", clip_cross_entropy), ("clip_loss", clip_log_softmax),
    ("splat_gaussians_2d", splat_loop), ("splat_gaussians_2d", splat_conic), ("splat_gaussians_2d", splat_frame),
]

BUGGY = [
    ("relative_patch_pairs", patches_skip_off_by_one), ("relative_patch_pairs", patches_first_label_for_all),
    ("relative_patch_pairs", patches_rounded_origin), ("relative_patch_pairs", patches_in_float32),
    ("relative_patch_pairs", patches_unchecked), ("relative_patch_pairs", patches_swapped_outputs),
    ("clip_loss", clip_nan_for_zero_rows), ("clip_loss", clip_target_zero), ("clip_loss", clip_scale_as_float),
    ("clip_loss", clip_temperature_default), ("clip_loss", clip_text_detached), ("clip_loss", clip_mean_over_n_squared),
    ("splat_gaussians_2d", splat_opacity_ignored), ("splat_gaussians_2d", splat_colors_not_sorted),
    ("splat_gaussians_2d", splat_unsquared_distance), ("splat_gaussians_2d", splat_unpremultiplied),
    ("splat_gaussians_2d", splat_means_detached), ("splat_gaussians_2d", splat_unchecked),
]


@pytest.mark.parametrize("name,fn", CORRECT, ids=lambda x: getattr(x, "__name__", x))
def test_correct_implementations_in_other_styles_get_full_marks_at_several_seeds(name, fn):
    spec = SPECS[name]
    for seed in SEEDS:
        verdicts = simulate(spec, fn, seed)
        assert not _failures(verdicts), (seed, _failures(verdicts))
        assert _score(spec, verdicts) == pytest.approx(spec.points)


@pytest.mark.parametrize("name,fn", BUGGY, ids=lambda x: getattr(x, "__name__", x))
def test_plausible_bugs_outside_the_catalogue_lose_points_at_every_seed(name, fn):
    spec = SPECS[name]
    for seed in SEEDS:
        verdicts = simulate(spec, fn, seed)
        assert _score(spec, verdicts) < spec.points - 0.1, (seed, fn.__name__)


@pytest.mark.parametrize("name", NAMES)
def test_a_function_that_only_raises_value_error_earns_nothing(name):
    spec = SPECS[name]

    def refuses(*args, message=f"bad argument among {', '.join(spec.params)}"):
        raise ValueError(message)

    verdicts = simulate(spec, refuses)
    assert all(v.score == 1 for v in verdicts["errors"])              # it names every argument ...
    assert _score(spec, verdicts) == 0                                # ... and still earns nothing


@pytest.mark.parametrize("name", NAMES)
def test_public_cases_are_small_fixed_and_the_reference_answers_them(name):
    spec = SPECS[name]
    assert 3 <= len(spec.public) <= 5
    kinds = {case.expect for case in spec.public}
    assert "raises" in kinds and "reference" in kinds
    for case in spec.public:
        args, again = case.args(), case.args()
        for a, b in zip(args, again):
            assert type(a) is type(b)
            if isinstance(a, torch.Tensor):
                assert torch.equal(a, b) and a.numel() <= 4096
        if case.expect == "raises":
            with pytest.raises(ValueError):
                spec.reference(*args)
            continue
        out = spec.reference(*args)
        tensors = out if isinstance(out, tuple) else (out,)
        assert all(torch.isfinite(t).all() for t in tensors), case.label
        if case.expect == "value":
            assert out.item() == pytest.approx(case.value, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_catalogued_mistakes_written_out_as_notebook_code_compute_what_the_judges_compare_with(name):
    spec = SPECS[name]
    factory = Cases(name, "values", 0)
    spec.check("values").make(factory)
    for mistake in spec.mistakes:
        namespace = {"torch": torch, "F": F, "nn": torch.nn, "math": math}
        exec(mistake_source(name, mistake.name), namespace)                # noqa: S102 - our own catalogue
        for case in factory.items:
            m = materialize(spec, case)
            written, variant = namespace[name](*m.fresh_args()), mistake.fn(*m.fresh_args())
            for a, b in zip(written if isinstance(written, tuple) else (written,),
                            variant if isinstance(variant, tuple) else (variant,)):
                assert torch.equal(a, b), (name, mistake.name, case.id)
        with pytest.raises(ValueError):                                     # arguments checked as the contract says
            namespace[name](*next(c.args() for c in spec.public if c.expect == "raises"))
