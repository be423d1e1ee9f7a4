"""Building blocks of neural fields used as priors (assignment a5_priors).

A single scene can be fitted from many views; a *prior* over scenes lets a network infer one from a few. The
lecture's models condition a field on an image or on a latent code, and four operations recur in all of them:

* ``project_points``: world points to pixel coordinates of a camera (the inverse of ``get_rays``), so a 3-D
  point can look up the image features of the pixel it projects to (pixelNeRF's pixel-aligned features).
* ``bilinear_sample_2d``: read a feature map at continuous pixel positions (the look-up itself).
* ``plucker_coordinates``: a 6-D description of a ray that does not depend on where along the ray its origin
  sits, the input of a light field network (one network evaluation per ray instead of S samples).
* ``batched_mlp``: one small MLP per scene whose weights are a row of a tensor, as produced by a
  hypernetwork from a latent code (or optimised directly per scene, as in auto-decoding).

Camera convention (as in ``get_rays``): NeRF / OpenGL, camera space looks down -z with +y up and +x right;
pixel (column i, row j) is taken at its corner, no +0.5; ``c2w`` maps camera space to the world.

References:
    Yu, Ye, Tancik, Kanazawa, "pixelNeRF: Neural Radiance Fields from One or Few Images", CVPR 2021
    (projection into the input views, bilinear sampling of pixel-aligned features; eq. 1-2).
    Sitzmann, Rezchikov, Freeman, Tenenbaum, Durand, "Light Field Networks: Neural Scene Representations with
    Single-Evaluation Rendering", NeurIPS 2021 (Pluecker coordinates as the ray parameterisation, section 3.1).
    Ha, Dai, Le, "HyperNetworks", 2016; Sitzmann, Zollhoefer, Wetzstein, "Scene Representation Networks",
    NeurIPS 2019 (a hypernetwork maps a latent code to the weights of a per-scene MLP).
    Park, Florence, Straub, Newcombe, Lovegrove, "DeepSDF: Learning Continuous Signed Distance Functions for
    Shape Representation", CVPR 2019 (auto-decoding: per-shape codes optimised jointly with the network).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._validate import check_int, check_positive, check_tensor

__all__ = ["project_points", "plucker_coordinates", "bilinear_sample_2d", "batched_mlp"]


def _check_like(name: str, x: torch.Tensor, ref_name: str, ref: torch.Tensor) -> None:
    """``x`` must share the dtype and device of ``ref`` (torch would fail deep inside a matmul otherwise)."""
    if x.dtype != ref.dtype or x.device != ref.device:
        raise ValueError(
            f"{name} must have the dtype and device of {ref_name} ({ref.dtype}, {ref.device}), "
            f"got {x.dtype}, {x.device}"
        )


def project_points(
    points: torch.Tensor,
    c2w: torch.Tensor,
    focal: float,
    height: int,
    width: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Project world points into a pinhole camera: the exact inverse of ``get_rays``.

    Math::

        R = c2w[:3, :3],  o = c2w[:3, 3]
        x_c = R^T (p - o)                          world -> camera space (R is a rotation, so R^-1 = R^T)
        depth = -z_c                               the camera looks down -z: depth > 0 in front of it
        u = focal * x_c / depth + W/2              column (x right)
        v = -focal * y_c / depth + H/2             row (image rows go down, camera y goes up)

    For the ray of pixel (column i, row j) from ``get_rays(H, W, focal, c2w)`` and any t > 0, the point
    ``rays_o + t * rays_d[j, i]`` projects to ``uv = (i, j)`` with ``depth = t`` (pixel corners, no +0.5).
    A point on the optical axis in front of the camera lands on (W/2, H/2).

    Args:
        points: ``[..., 3]`` world points (any number of leading dims, including none).
        c2w: ``[4, 4]`` or ``[3, 4]`` camera-to-world matrix whose 3x3 block is a rotation (as for
            ``get_rays``); same dtype and device as ``points``.
        focal: focal length in pixels (> 0).
        height, width: image size in pixels (positive ints); they only fix the principal point (W/2, H/2).

    Returns:
        ``(uv [..., 2], depth [...])`` with the dtype and device of ``points``: ``uv[..., 0] = u`` (column),
        ``uv[..., 1] = v`` (row), in pixels and not clamped to the image (a point outside the field of view
        gets u, v outside [0, W) x [0, H)). Nothing is masked: ``uv`` is only meaningful where
        ``depth > 0``; a point behind the camera (depth < 0) gets the mirrored projection and one on the
        camera plane (depth = 0) gets inf / nan. Drop ``depth <= 0`` before using ``uv`` (select the points
        before projecting if gradients flow to ``c2w``, since a nan in a dropped entry still reaches
        ``c2w``'s gradient). Values and gradients are finite for depth >= 1e-3. Differentiable in ``points``
        and ``c2w``.

    Raises:
        ValueError: if ``points`` is not ``[..., 3]``, ``c2w`` is not ``[4, 4]`` / ``[3, 4]`` or differs from
        ``points`` in dtype or device, ``focal <= 0``, or ``height`` / ``width`` are not positive ints.
    """
    check_tensor("points", points, min_ndim=1, last=3)
    check_tensor("c2w", c2w, ndim=2)
    if tuple(c2w.shape) not in ((4, 4), (3, 4)):
        raise ValueError(f"c2w must be [4, 4] or [3, 4], got shape {list(c2w.shape)}")
    _check_like("c2w", c2w, "points", points)
    f = check_positive("focal", focal)
    h = check_int("height", height, minimum=1)
    w = check_int("width", width, minimum=1)

    rot, origin = c2w[:3, :3], c2w[:3, 3]                     # [3, 3], [3]
    # row-vector form of R^T (p - o): (p - o) @ R; subtracting first keeps precision far from the origin
    cam = (points - origin) @ rot                             # [..., 3] camera space
    depth = -cam[..., 2]                                      # [...]
    u = f * cam[..., 0] / depth + w / 2                       # [...]
    v = -f * cam[..., 1] / depth + h / 2                      # [...]
    return torch.stack([u, v], dim=-1), depth                 # [..., 2], [...]


def plucker_coordinates(rays_o: torch.Tensor, rays_d: torch.Tensor) -> torch.Tensor:
    """Pluecker coordinates of rays: unit direction and moment, a 6-D code for the (oriented) line.

    Math::

        d = rays_d / ||rays_d||                    unit direction
        m = rays_o x d                             moment (cross product); m is orthogonal to d
        plucker = [d, m]                           (6 numbers)

    Any point of the ray can serve as its origin: ``(rays_o + s d) x d = rays_o x d`` because ``d x d = 0``,
    and scaling ``rays_d`` by c > 0 leaves ``d`` unchanged, so the code describes the ray, not its
    parameterisation (scaling by c < 0 flips the orientation: ``d`` and ``m`` both change sign). ``||m||``
    is the distance from the world origin to the line.

    Args:
        rays_o: ``[..., 3]`` ray origins; rays_d: ``[..., 3]`` ray directions (any length > 0, not
            necessarily normalised). Their leading dims must match or broadcast (e.g. one camera centre
            ``[3]`` for all rays ``[H, W, 3]``); both have the same dtype and device.

    Returns:
        ``[..., 6]`` = ``cat([d, m], -1)`` over the broadcast leading dims, with the dtype and device of
        ``rays_o``. Differentiable in both inputs; values and gradients are finite for origins up to 1e3 (and
        any non-zero direction whose length does not underflow).

    Raises:
        ValueError: if either input is not ``[..., 3]``, their leading dims do not broadcast, they differ in
        dtype or device, or any direction has zero length (in its dtype).
    """
    check_tensor("rays_o", rays_o, min_ndim=1, last=3)
    check_tensor("rays_d", rays_d, min_ndim=1, last=3)
    _check_like("rays_d", rays_d, "rays_o", rays_o)
    try:
        shape = torch.broadcast_shapes(rays_o.shape, rays_d.shape)
    except RuntimeError:
        raise ValueError(
            f"rays_o and rays_d must have matching (or broadcastable) leading dims, got {list(rays_o.shape)} "
            f"and {list(rays_d.shape)}"
        ) from None
    norm = torch.linalg.vector_norm(rays_d, dim=-1, keepdim=True)   # [..., 1]
    if bool((norm == 0).any()):
        count = int((norm == 0).sum())
        raise ValueError(f"rays_d must have non-zero length, got {count} zero-length direction(s) in rays_d "
                         f"of shape {list(rays_d.shape)}")
    d = (rays_d / norm).expand(shape)                          # [..., 3] unit directions, broadcast
    m = torch.linalg.cross(rays_o.expand(shape), d, dim=-1)    # [..., 3] moments
    return torch.cat([d, m], dim=-1)                           # [..., 6]


def bilinear_sample_2d(grid: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Sample a batch of feature maps at continuous, normalised positions by bilinear interpolation.

    Math::

        fx = (clamp(x, -1, 1) + 1) / 2 * (Wg - 1)         x = coords[..., 0] selects columns
        fy = (clamp(y, -1, 1) + 1) / 2 * (Hg - 1)         y = coords[..., 1] selects rows
        x0 = floor(fx), x1 = min(x0 + 1, Wg - 1), ax = fx - x0      (same for y0, y1, ay)
        out = (1 - ay) (1 - ax) g[y0, x0] + (1 - ay) ax g[y0, x1]
              +     ay (1 - ax) g[y1, x0] +     ay ax g[y1, x1]

    Coordinates are vertex-aligned: x = -1 is column 0 and x = 1 is column Wg - 1 (y = -1 is row 0, y = 1
    is row Hg - 1), so a coordinate on a vertex returns that vertex exactly. Coordinates outside [-1, 1]
    are clamped to it (the border value is repeated). This equals
    ``F.grid_sample(grid, coords[:, None], align_corners=True, padding_mode="border")[:, :, 0].transpose(1, 2)``.

    Args:
        grid: ``[B, C, Hg, Wg]`` feature maps (Hg, Wg >= 1; a size of 1 repeats the single row / column).
        coords: ``[B, P, 2]`` positions ``(x, y)`` per batch element, same dtype and device as ``grid``; any
            finite value (or +-inf) is valid, a nan gives a nan in that point's output.

    Returns:
        ``[B, P, C]`` with the dtype and device of ``grid``. Differentiable in ``grid`` and in ``coords``
        (the gradient in ``coords`` is zero where a coordinate is clamped; on a vertex it is the one-sided
        slope towards the next vertex).

    Raises:
        ValueError: if ``grid`` is not 4-D with Hg, Wg >= 1, ``coords`` is not ``[B, P, 2]`` with the B of
        ``grid``, or the two differ in dtype or device.
    """
    check_tensor("grid", grid, ndim=4)
    check_tensor("coords", coords, ndim=3, last=2)
    b, _, hg, wg = grid.shape
    if hg < 1 or wg < 1:
        raise ValueError(f"grid must have Hg, Wg >= 1, got shape {list(grid.shape)}")
    if coords.shape[0] != b:
        raise ValueError(f"coords must be [B, P, 2] with B = {b} from grid, got shape {list(coords.shape)}")
    _check_like("coords", coords, "grid", grid)

    xy = coords.clamp(-1.0, 1.0)                                    # [B, P, 2] border: clamp first
    fx = (xy[..., 0] + 1) / 2 * (wg - 1)                            # [B, P] column, in [0, Wg - 1]
    fy = (xy[..., 1] + 1) / 2 * (hg - 1)                            # [B, P] row, in [0, Hg - 1]
    # integer corners; clamping the long indices keeps them valid even for nan coordinates
    x0 = fx.detach().floor().long().clamp(0, wg - 1)               # [B, P]
    y0 = fy.detach().floor().long().clamp(0, hg - 1)
    x1 = (x0 + 1).clamp(max=wg - 1)
    y1 = (y0 + 1).clamp(max=hg - 1)
    ax = (fx - x0).unsqueeze(-1)                                    # [B, P, 1] weight of column x1
    ay = (fy - y0).unsqueeze(-1)                                    # [B, P, 1] weight of row y1

    feats = grid.permute(0, 2, 3, 1)                                # [B, Hg, Wg, C] (a view)
    bidx = torch.arange(b, device=grid.device)[:, None]             # [B, 1], broadcasts against [B, P]
    g00, g01 = feats[bidx, y0, x0], feats[bidx, y0, x1]             # [B, P, C] each
    g10, g11 = feats[bidx, y1, x0], feats[bidx, y1, x1]
    top = g00 + ax * (g01 - g00)                                    # [B, P, C] along row y0
    bottom = g10 + ax * (g11 - g10)                                 # [B, P, C] along row y1
    return top + ay * (bottom - top)                                # [B, P, C]


def batched_mlp(x: torch.Tensor, params: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """Evaluate B different MLPs, one per batch element, whose weights are the rows of ``params``.

    This is the target network of a hypernetwork: a network maps each latent code to a flat parameter vector,
    and that vector is read as the weights of a small MLP applied to the P query points of that element.

    Math::

        sizes = [D_0, D_1, ..., D_L]               (D_0 = Din, D_L = Dout; L = len(sizes) - 1 layers)
        n = sum_l (D_l * D_(l-1) + D_l)            parameters per row of ``params``
        params[b] = [W_1 (row-major, [D_1, D_0]), b_1 [D_1], W_2, b_2, ..., W_L, b_L]
        y_0 = x[b]                                 [P, D_0]
        y_l = y_(l-1) @ W_l^T + b_l                then ReLU for l < L (no activation after the last layer)
        out[b] = y_L                               [P, D_L]

    Row ``params[b]`` gives exactly the network ``nn.Sequential(nn.Linear(D_0, D_1), nn.ReLU(), ...,
    nn.Linear(D_(L-1), D_L))`` whose ``weight`` / ``bias`` tensors are flattened and concatenated in that
    order. All B networks run at once with batched matrix products (a loop over layers only).

    Args:
        x: ``[B, P, Din]`` inputs (P may be 0).
        params: ``[B, n]`` one flat parameter vector per batch element; same dtype and device as ``x``.
        sizes: ``[Din, H_1, ..., Dout]``, a list (or tuple) of at least two positive ints.

    Returns:
        ``[B, P, Dout]`` with the dtype and device of ``x``; differentiable in ``x`` and ``params``.

    Raises:
        ValueError: if ``len(sizes) < 2`` or an entry is not a positive int, ``x`` is not 3-D with last dim
        ``sizes[0]``, ``params`` is not ``[B, n]`` with the B of ``x`` and ``n = sum(out*in + out)`` for
        ``sizes``, or the two differ in dtype or device.
    """
    if not isinstance(sizes, (list, tuple)) or len(sizes) < 2:
        raise ValueError(f"sizes must be a list of at least two layer widths [Din, ..., Dout], got {sizes!r}")
    dims = [check_int(f"sizes[{k}]", s, minimum=1) for k, s in enumerate(sizes)]
    check_tensor("x", x, ndim=3)
    check_tensor("params", params, ndim=2)
    if x.shape[-1] != dims[0]:
        raise ValueError(f"x must be [B, P, Din] with Din = sizes[0] = {dims[0]}, got shape {list(x.shape)}")
    n = sum(d_out * d_in + d_out for d_in, d_out in zip(dims[:-1], dims[1:]))
    if params.shape[0] != x.shape[0] or params.shape[1] != n:
        raise ValueError(
            f"params must be [B, n] with B = {x.shape[0]} from x and n = sum(out*in + out) = {n} for sizes "
            f"{dims}, got shape {list(params.shape)}"
        )
    _check_like("params", params, "x", x)

    b = x.shape[0]
    y, offset = x, 0
    for layer, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
        weight = params[:, offset : offset + d_out * d_in].reshape(b, d_out, d_in)   # [B, out, in]
        offset += d_out * d_in
        bias = params[:, offset : offset + d_out].unsqueeze(1)                     # [B, 1, out]
        offset += d_out
        y = torch.baddbmm(bias, y, weight.transpose(1, 2))     # [B, P, in] @ [B, in, out] + [B, 1, out]
        if layer < len(dims) - 2:
            y = F.relu(y)
    return y                                                    # [B, P, Dout]
