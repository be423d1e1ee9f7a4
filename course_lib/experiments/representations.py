"""3-D representations side by side: voxels, point clouds, meshes and a neural SDF, memory against accuracy.

    python -m course_lib.experiments.representations

One shape, five ways: the analytic scene of the a4 notebook (:class:`course_lib.data.AnalyticScene`, four
objects whose exact signed distance we know) stored as

* a **voxel grid** of N^3 occupancy values (inside = the SDF at the voxel centre is negative);
* a **point cloud** of K points on the surface (3 floats each; no inside, no connectivity);
* a **mesh** extracted from the SDF sampled at N^3 vertices by marching tetrahedra (vertices shared between
  triangles: 3 floats per vertex plus 3 indices per triangle);
* a **neural SDF** (occupancy / SDF networks, DeepSDF): an MLP on the positional encoding of x fitted to the
  truncated SDF; its size does not depend on the resolution at which it is queried.

Accuracy is the symmetric **Chamfer distance** between points on each representation's surface and points on
the true surface (mean nearest-neighbour distance, both ways, in scene units; the objects span ~2.4 units), and
for the solid representations the **IoU** of the inside with the true inside on random points of the box. A
voxel grid's memory grows as N^3 while its error falls only as 1/N (8x the memory for each halving), which is
why voxels do not scale to fine detail; surfaces (points, meshes) grow as N^2, and the network stays fixed.

Marching tetrahedra (Doi and Koide, 1991): every grid cube is cut into six tetrahedra along its main diagonal;
a tetrahedron whose corner values change sign holds one triangle (one corner apart) or two (two and two), with
vertices where the linearly interpolated value is 0 on the sign-changing edges. No case table ambiguity arises.

References:
    Doi, Koide, "An Efficient Method of Triangulating Equi-Valued Surfaces by Using Tetrahedral Cells", IEICE 1991.
    Mescheder et al., "Occupancy Networks", CVPR 2019; Park et al., "DeepSDF", CVPR 2019 (clamped SDF, delta 0.1).
    Fan, Su, Guibas, "A Point Set Generation Network" (Chamfer distance), CVPR 2017.
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..guards import backward_and_step
from ..manifest import resolve
from ..models import count_parameters
from ..utils import pick_device, smoke_mode
from . import format_metrics, require_implemented

__all__ = ["RepresentationExperiment", "grid_points", "marching_tetrahedra", "sample_mesh", "surface_points",
           "nearest_distance", "chamfer", "fit_sdf_network", "run", "format_rows", "main"]

# corners of a cube as bits (x + 2 y + 4 z); six tetrahedra around the diagonal 0 -> 7
_CORNERS = torch.tensor([[x, y, z] for z in (0, 1) for y in (0, 1) for x in (0, 1)])          # [8, 3]
_TETS = torch.tensor([[0, 1, 3, 7], [0, 3, 2, 7], [0, 2, 6, 7], [0, 6, 4, 7], [0, 4, 5, 7], [0, 5, 1, 7]])


def _triangle_table() -> torch.Tensor:
    """``[16, 2, 3, 2]``: for each inside-pattern of a tetrahedron's 4 corners, up to two triangles, each as three
    corner pairs (the edges its vertices lie on); -1 where there is no triangle."""
    table = torch.full((16, 2, 3, 2), -1, dtype=torch.long)
    for code in range(16):
        inside = [c for c in range(4) if code >> c & 1]
        outside = [c for c in range(4) if not code >> c & 1]
        if len(inside) in (1, 3):
            lone, rest = (inside[0], outside) if len(inside) == 1 else (outside[0], inside)
            table[code, 0] = torch.tensor([[lone, r] for r in rest])
        elif len(inside) == 2:
            (a, b), (c, d) = inside, outside                     # the quad a-c, a-d, b-d, b-c, as two triangles
            table[code, 0] = torch.tensor([[a, c], [a, d], [b, d]])
            table[code, 1] = torch.tensor([[a, c], [b, d], [b, c]])
    return table


_TRIANGLES = _triangle_table()


@dataclass(frozen=True)
class RepresentationExperiment:
    """Default settings: about 20 seconds on one CPU core; ``smoke()`` a second or two."""

    resolutions: tuple[int, ...] = (16, 32, 64, 128)      # N for voxels and meshes
    point_counts: tuple[int, ...] = (256, 1024, 4096, 16384)
    gt_points: int = 10000                                 # samples of each surface for the Chamfer distance
    iou_points: int = 200000                               # random points of the box for the IoU
    num_freqs: int = 6                                     # the neural SDF's encoding of (x, y, z) / bound
    width: int = 64
    depth: int = 3
    steps: int = 500
    batch: int = 2048
    lr: float = 2e-3
    truncation: float = 0.1                                # the SDF is fitted clamped to [-0.1, 0.1] (DeepSDF)
    network_resolution: int = 96                           # where the neural SDF's mesh is extracted
    seed: int = 0

    @staticmethod
    def smoke() -> "RepresentationExperiment":
        return RepresentationExperiment(resolutions=(8, 16), point_counts=(64, 256), gt_points=1000,
                                        iou_points=5000, width=16, depth=2, steps=10, batch=256,
                                        network_resolution=16)


def grid_points(n: int, bound: float) -> torch.Tensor:
    """``[n, n, n, 3]`` vertices of a regular grid spanning ``[-bound, bound]^3`` (indexing x, y, z)."""
    axis = torch.linspace(-bound, bound, n)
    return torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1)


def marching_tetrahedra(values: torch.Tensor, bound: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The zero level set of ``values [X, Y, Z]`` (sampled on :func:`grid_points`) as ``(verts [V, 3], faces [F, 3])``.

    Only cubes whose corner values change sign are cut (their number grows as the surface area, N^2); a vertex
    on a grid edge is shared by every triangle that uses the edge. Triangles are not consistently oriented.
    """
    x, y, z = values.shape
    step = torch.tensor([2 * bound / (x - 1), 2 * bound / (y - 1), 2 * bound / (z - 1)])
    corner_vals = torch.stack([values[cx:x - 1 + cx, cy:y - 1 + cy, cz:z - 1 + cz]
                               for cx, cy, cz in _CORNERS.tolist()], -1)                      # [X-1, Y-1, Z-1, 8]
    active = ((corner_vals.amin(-1) < 0) & (corner_vals.amax(-1) >= 0)).nonzero()            # [A, 3] cubes
    if active.shape[0] == 0:
        return torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.long)
    corners = active[:, None, :] + _CORNERS                                                   # [A, 8, 3] vertices
    ids = (corners[..., 0] * y + corners[..., 1]) * z + corners[..., 2]                       # [A, 8] flat ids
    tets = ids[:, _TETS].reshape(-1, 4)                                                       # [A 6, 4]
    flat = values.reshape(-1)
    code = ((flat[tets] < 0).long() << torch.arange(4)).sum(-1)                               # [T] inside-pattern
    table = _TRIANGLES[code]                                                                  # [T, 2, 3, 2]
    real = table[:, :, 0, 0] >= 0                                                             # [T, 2]
    edges = torch.gather(tets[:, None, None, :].expand(-1, 2, 3, 4), 3, table.clamp(min=0))   # [T, 2, 3, 2] ids
    edges = edges[real]                                                                       # [F, 3, 2]
    lo_id, hi_id = edges.amin(-1), edges.amax(-1)                                             # [F, 3]
    keys, faces = torch.unique(lo_id * flat.numel() + hi_id, return_inverse=True)             # [V], [F, 3]
    a, b = keys // flat.numel(), keys % flat.numel()                                          # [V] end vertices
    va, vb = flat[a], flat[b]
    t = (va / (va - vb)).clamp(0, 1)[:, None]                                                 # zero crossing

    def position(i):                                                                          # flat id -> xyz
        ijk = torch.stack([i // (y * z), (i // z) % y, i % z], -1).float()
        return -bound + ijk * step

    return position(a) + t * (position(b) - position(a)), faces


def sample_mesh(verts: torch.Tensor, faces: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``[n, 3]`` points uniformly distributed over the area of the mesh."""
    tri = verts[faces]                                                                        # [F, 3, 3]
    area = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]).norm(dim=-1)     # [F] (twice)
    pick = torch.multinomial(area, n, replacement=True, generator=generator)                  # [n]
    u, v = torch.rand(n, 1, generator=generator), torch.rand(n, 1, generator=generator)
    flip = (u + v) > 1                                                                        # fold into the triangle
    u, v = torch.where(flip, 1 - u, u), torch.where(flip, 1 - v, v)
    t = tri[pick]
    return t[:, 0] + u * (t[:, 1] - t[:, 0]) + v * (t[:, 2] - t[:, 0])


def surface_points(sdf: Callable, n: int, bound: float, generator: torch.Generator) -> torch.Tensor:
    """``[n, 3]`` points on the zero set of an exact ``sdf``: random points near the surface, projected twice by
    ``p - sdf(p) grad sdf(p)`` and kept where ``|sdf| < 1e-4``."""
    out, have = [], 0
    while have < n:
        p = (torch.rand(8 * n, 3, generator=generator) * 2 - 1) * bound
        p = p[sdf(p).abs() < 0.1]
        for _ in range(2):
            p = p.detach().requires_grad_(True)
            d = sdf(p)
            grad = torch.autograd.grad(d.sum(), p)[0]
            p = p - d[:, None] * F.normalize(grad, dim=-1)
        p = p.detach()[sdf(p.detach()).abs() < 1e-4]
        out.append(p)
        have += p.shape[0]
    return torch.cat(out)[:n]


def nearest_distance(p: torch.Tensor, q: torch.Tensor, tile: tuple[int, int] = (512, 2048)) -> torch.Tensor:
    """``[n]``: the distance from each point of ``p [n, 3]`` to its nearest neighbour in ``q [m, 3]``.

    The neighbour is found in tiles of ``tile`` rows x columns (small enough to stay in cache) with
    ``torch.cdist``'s matrix-product form, whose ``|p|^2 + |q|^2 - 2 p.q`` loses digits to cancellation; the
    distance to the neighbour found is then computed again directly, ``|p - q|``."""
    rows, cols = tile
    nearest = []
    for i in range(0, p.shape[0], rows):
        best = p.new_full((min(rows, p.shape[0] - i),), math.inf)
        index = torch.zeros(best.shape, dtype=torch.long, device=p.device)
        for j in range(0, q.shape[0], cols):
            value, arg = torch.cdist(p[i:i + rows], q[j:j + cols]).min(-1)          # [rows]
            closer = value < best
            best, index = torch.where(closer, value, best), torch.where(closer, arg + j, index)
        nearest.append(index)
    return (p - q[torch.cat(nearest)]).norm(dim=-1)


def chamfer(a: torch.Tensor, b: torch.Tensor) -> float:
    """Symmetric Chamfer distance ``(mean_a min_b |a - b| + mean_b min_a |a - b|) / 2`` of ``[n, 3]``, ``[m, 3]``."""
    return float(0.5 * (nearest_distance(a, b).mean() + nearest_distance(b, a).mean()))


def _iou(pred: torch.Tensor, true: torch.Tensor) -> float:
    return float((pred & true).sum()) / max(float((pred | true).sum()), 1.0)


class SDFNetwork(nn.Module):
    """``gamma(x / bound) -> depth x (Linear(width) + ReLU) -> Linear(1)``: a signed distance."""

    def __init__(self, encode: Callable, in_dim: int, width: int, depth: int):
        super().__init__()
        self.encode = encode
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Linear(in_dim if i == 0 else width, width), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.encode(x))[..., 0]


def fit_sdf_network(sdf: Callable, positional_encoding: Callable, bound: float, exp: RepresentationExperiment,
                    device: torch.device) -> SDFNetwork:
    """Adam on the L1 error of the clamped SDF at random points: half uniform in the box, half near the surface
    (points of the true surface moved by Gaussian noise of std 0.05), with the learning rate decaying to 1/10."""
    torch.manual_seed(exp.seed)
    gen = torch.Generator().manual_seed(exp.seed + 1)
    net = SDFNetwork(lambda p: positional_encoding(p / bound, exp.num_freqs), 3 * (1 + 2 * exp.num_freqs),
                     exp.width, exp.depth).to(device)
    near = surface_points(sdf, exp.batch * 4, bound, gen)                                    # [4 B, 3] pool
    opt = torch.optim.Adam(net.parameters(), lr=exp.lr)
    delta = exp.truncation
    for step in range(exp.steps):
        uniform = (torch.rand(exp.batch // 2, 3, generator=gen) * 2 - 1) * bound
        pick = near[torch.randint(0, near.shape[0], (exp.batch - exp.batch // 2,), generator=gen)]
        p = torch.cat([uniform, pick + 0.05 * torch.randn(pick.shape, generator=gen)])       # [B, 3]
        target = sdf(p).clamp(-delta, delta).to(device)
        loss = (net(p.to(device)) - target).abs().mean()                                   # the clamped target
        backward_and_step(loss, opt, "L1 error of the neural SDF", step)
        for group in opt.param_groups:
            group["lr"] = exp.lr * 0.1 ** (step / exp.steps)
    return net.eval()


@torch.no_grad()
def _evaluate(net: Callable, points: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
    return torch.cat([net(points[i:i + chunk]).cpu() for i in range(0, points.shape[0], chunk)])


def run(positional_encoding: Callable | None = None, exp: RepresentationExperiment | None = None, *,
        device: torch.device | None = None, progress: bool = False) -> dict:
    """Store the analytic scene in each representation at each size; measure floats, Chamfer distance and IoU.

    Returns:
        ``rows`` (one dict per representation and size: ``name``, ``size``, ``floats``, ``chamfer``, ``iou`` or
        None), ``metrics`` (``chamfer_<name>_<size>``, ``floats_<name>_<size>``, ``iou_<name>_<size>``, and
        ``chamfer_floor``: the Chamfer distance between two samples of the true surface, the resolution of the
        measurement), the ``truth`` surface samples, the
        ``meshes`` (``{N: (verts, faces)}``, and ``"network"``), the ``network`` and ``exp``.
    """
    from ..data import AnalyticScene

    positional_encoding = resolve("positional_encoding", positional_encoding)
    require_implemented("positional_encoding", positional_encoding, torch.zeros(1, 3), 1)
    exp = exp or (RepresentationExperiment.smoke() if smoke_mode() else RepresentationExperiment())
    device = device or pick_device()
    scene = AnalyticScene.from_seed(0)
    bound = math.ceil(scene.bounding_radius * 10) / 10                                      # the box [-b, b]^3
    gen = torch.Generator().manual_seed(exp.seed)
    truth = surface_points(scene.sdf, exp.gt_points, bound, gen)                             # [M, 3]
    box = (torch.rand(exp.iou_points, 3, generator=gen) * 2 - 1) * bound                     # [Q, 3]
    inside = scene.sdf(box) < 0
    rows, meshes = [], {}

    floor = chamfer(surface_points(scene.sdf, exp.gt_points, bound, gen), truth)           # two samples of the truth

    def add(name, size, floats, chamfer_d, iou=None):
        rows.append({"name": name, "size": size, "floats": int(floats), "chamfer": chamfer_d, "iou": iou})
        if progress:
            print(f"{name} {size}: {floats:,} floats, Chamfer {chamfer_d:.4f}", file=sys.stderr)

    for n in exp.resolutions:
        values = scene.sdf(grid_points(n, bound))                                              # [N, N, N]
        occupied = values < 0
        cell = torch.clamp(((box + bound) / (2 * bound) * (n - 1)).round().long(), 0, n - 1)  # nearest vertex
        voxel_iou = _iou(occupied[cell[:, 0], cell[:, 1], cell[:, 2]], inside)
        padded = F.pad(occupied[None, None].float(), (1,) * 6)                                # empty outside
        empty_nb = F.max_pool3d(1 - padded, 3, stride=1)[0, 0] > 0                            # a neighbour is empty
        boundary = (occupied & empty_nb).nonzero().float() / (n - 1) * 2 * bound - bound     # [B, 3] centres
        add("voxels", n, n ** 3, chamfer(boundary, truth), voxel_iou)
        verts, faces = marching_tetrahedra(values, bound)
        meshes[n] = (verts, faces)
        add("mesh", n, 3 * verts.shape[0] + 3 * faces.shape[0], chamfer(sample_mesh(verts, faces, exp.gt_points,
                                                                                      gen), truth))
    for k in exp.point_counts:
        add("points", k, 3 * k, chamfer(surface_points(scene.sdf, k, bound, gen), truth))
    net = fit_sdf_network(scene.sdf, positional_encoding, bound, exp, device)
    net_cpu = lambda p: net(p.to(device))                                                    # noqa: E731
    n = exp.network_resolution
    values = _evaluate(net_cpu, grid_points(n, bound).reshape(-1, 3)).reshape(n, n, n)
    verts, faces = marching_tetrahedra(values, bound)
    meshes["network"] = (verts, faces)
    net_chamfer = chamfer(sample_mesh(verts, faces, exp.gt_points, gen), truth) if faces.shape[0] else math.inf
    add("network", n, count_parameters(net), net_chamfer, _iou(_evaluate(net_cpu, box) < 0, inside))
    metrics = {"chamfer_floor": floor}
    for r in rows:
        metrics[f"floats_{r['name']}_{r['size']}"] = r["floats"]
        metrics[f"chamfer_{r['name']}_{r['size']}"] = r["chamfer"]
        if r["iou"] is not None:
            metrics[f"iou_{r['name']}_{r['size']}"] = r["iou"]
    return {"rows": rows, "metrics": metrics, "meshes": meshes, "network": net, "bound": bound, "truth": truth,
            "exp": exp}


def format_rows(rows: list[dict]) -> str:
    """A plain-text table of :func:`run`'s rows."""
    lines = [f"{'representation':<15}{'N or K':>8}{'floats':>12}{'Chamfer':>10}{'IoU':>8}"]
    for r in rows:
        iou = "-" if r["iou"] is None else f"{r['iou']:.3f}"
        lines.append(f"{r['name']:<15}{r['size']:>8}{r['floats']:>12,}{r['chamfer']:>10.4f}{iou:>8}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.experiments.representations",
                                     description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    out = run(progress=sys.stderr.isatty())
    print(format_rows(out["rows"]))
    print(f"Chamfer distance between two samples of the true surface (the floor of the measurement): "
          f"{out['metrics']['chamfer_floor']:.4f}")
    print(format_metrics(out["metrics"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
