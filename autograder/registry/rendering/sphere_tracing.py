"""Hidden checks for sphere_trace (assignment a4_rendering).

The SDFs come from a fixed menu of analytic shapes (sphere, box, union, translation; see specials.py) that the
worker rebuilds from a spec, so no callable ever crosses the process boundary. Rays are chosen with a clear
margin: hits aim well inside the silhouette, misses pass at least 0.6 outside it or point away, so every
correct implementation agrees on which rays hit.

Known mistakes: far ignored (a surface beyond far reported as a hit), misses left at their last t instead of
far, marching from 0 instead of near.

Reference: Hart, "Sphere Tracing", The Visual Computer 1996.
"""
from __future__ import annotations

import torch

from .. import judges
from ..build import check, dtype_check, errors_check, function_spec, mutation_check
from ..core import Cases, CheckSpec, mistake
from ..public import PublicCase, Sphere

__all__ = ["SPECS"]

UNIT_SPHERE = {"kind": "sphere", "center": [0.0, 0.0, 0.0], "radius": 1.0}
SCENES = [
    UNIT_SPHERE,
    {"kind": "box", "center": [0.0, 0.0, 0.0], "half": [0.9, 0.9, 0.9]},
    {"kind": "union", "parts": [UNIT_SPHERE, {"kind": "sphere", "center": [0.0, 0.0, 2.5], "radius": 0.5}]},
    {"kind": "translate", "shift": [0.0, 0.0, 0.5], "inner": {"kind": "box", "center": [0.0, 0.0, 0.0], "half": [0.8, 0.9, 0.7]}},
]


def _rays(dt: str, hits: int, misses: int, z0: float = -4.0) -> str:
    """Rays parallel to +z from the plane z = z0: hits within 0.55 of the axis, misses beyond 1.6 or pointing away."""
    return (
        f"xy_hit = (torch.rand({hits}, 2, generator=g, dtype=torch.{dt}) - 0.5) * 1.1\n"
        f"xy_miss = F.normalize(torch.randn({misses}, 2, generator=g, dtype=torch.{dt}), dim=-1) * "
        f"(1.6 + torch.rand({misses}, 1, generator=g, dtype=torch.{dt}))\n"
        f"origins = torch.cat([torch.cat([xy_hit, xy_miss]), torch.full(({hits + misses}, 1), {z0}, dtype=torch.{dt})], 1)\n"
        f"directions = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.{dt}).expand({hits + misses}, 3).clone()"
    )


def _st_case(c: Cases, dt: str, *, scene=None, near=0.0, far=10.0, steps=100, eps=1e-4, hits=None, misses=None,
             recipe=None, defaults=False, z0=-4.0, note="", **opt) -> None:
    """``defaults``: near, far, max_steps and eps left out (0, 10, 64, 1e-4)."""
    scene = scene or c.choice(SCENES)
    hits, misses = hits or c.randint(2, 6), misses or c.randint(1, 4)
    body = recipe or _rays(dt, hits, misses, z0)
    call = ["sdf", "origins", "directions"] + ([] if defaults else [repr(near), repr(far), str(steps), repr(eps)])
    c.add(f"sdf = SDF({scene!r})\n{body}", call,
          note=note or f"{dt}, {scene['kind']}, {hits} hits + {misses} misses, "
          + ("near, far, max_steps and eps left out" if defaults else
             f"near={near}, far={far}, max_steps={steps}, eps={eps}"), **opt)


def _trace_judge(ctx: judges.Context, rays: str = "all") -> judges.Verdict:
    """hit equal to the reference's; hits within 20 eps of the reference t; misses at t = far. ``rays``: "hits" or
    "misses" judges only the rays the reference hits (misses)."""
    bad = judges.describe_failure(ctx)
    if bad:
        return judges.Verdict(0.0, bad)
    out = ctx.reply.get("out") or {}
    ref_t, ref_hit = ctx.m.ref_out
    items = out.get("items") if out.get("t") in ("tuple", "list") else None
    if not items or len(items) != 2 or any(i.get("t") != "tensor" for i in items):
        return judges.Verdict(0.0, f"expected a tuple (t [N], hit [N]), got {judges._kind(out)}")
    t, hit = items[0]["data"], items[1]["data"]
    if list(t.shape) != list(ref_t.shape) or list(hit.shape) != list(ref_hit.shape):
        return judges.Verdict(0.0, f"expected t and hit of shape {list(ref_t.shape)}, got {list(t.shape)} and {list(hit.shape)}")
    if hit.dtype != torch.bool:
        return judges.Verdict(0.0, f"hit must be a bool tensor, got dtype {hit.dtype}")
    args = _call_args(ctx)
    eps, far = float(args[6]), float(args[4])
    tol = 20 * eps + 1e-5 * far
    rows = {"all": torch.ones_like(ref_hit), "hits": ref_hit, "misses": ~ref_hit}[rays]

    def problem(t_got: torch.Tensor, hit_got: torch.Tensor) -> str | None:
        wrong = ((hit_got != ref_hit) & rows).nonzero().reshape(-1).tolist()
        if wrong:
            return (f"hit differs from the expected {ref_hit.tolist()} at rays {wrong[:5]} (got {hit_got.tolist()})")
        t64, ref64 = t_got.to(torch.float64), ref_t.to(torch.float64)
        far_off = ((t64 - ref64).abs() > tol) & rows
        if bool(far_off.any()):
            i = int(far_off.nonzero()[0])
            what = "a hit" if bool(ref_hit[i]) else "a miss (misses report t = far)"
            return f"ray {i} is {what}: expected t = {ref64[i].item():.6g}, got {t64[i].item():.6g}"
        return None

    message = problem(t, hit)
    if message is None:
        return judges.Verdict(1.0)
    for known in ctx.spec.mistakes:
        try:
            vt, vhit = known.fn(*[a.build() if hasattr(a, "build") else a for a in args])
        except Exception:
            continue
        if problem(vt, vhit) is not None and problem(t, hit) is not None and torch.equal(vhit & rows, hit & rows) \
                and bool((((vt.double() - t.double()).abs() <= tol) | ~rows).all()):
            return judges.Verdict(0.0, f"{message}; this looks like {known.message}", known.name)
    return judges.Verdict(0.0, message)


def _call_args(ctx: judges.Context) -> list:
    """The case's arguments with the defaults filled in (a call that leaves near, far, max_steps, eps out)."""
    args = list(ctx.m.args)
    return args + [0.0, 10.0, 64, 1e-4][len(args) - 3:]


def _hits(ctx: judges.Context) -> judges.Verdict:
    """The rays the reference hits: hit is True and t within a few eps of the reference's."""
    return _trace_judge(ctx, "hits")


def _misses(ctx: judges.Context) -> judges.Verdict:
    """The rays the reference misses: hit is False and t = far."""
    return _trace_judge(ctx, "misses")


def _trace_variant(sdf, o, d, near=0.0, far=10.0, max_steps=64, eps=1e-4, *, ignore_far=False, miss_t="far", start=None):
    t = torch.full((o.shape[0],), near if start is None else start, dtype=o.dtype)
    hit = torch.zeros(o.shape[0], dtype=torch.bool)
    done = torch.zeros_like(hit)
    with torch.no_grad():
        for _ in range(max_steps):
            s = sdf(o + t[:, None] * d)
            newly = (s < eps) & ~done
            hit |= newly
            done |= newly
            t = torch.where(done, t, t + s)
            if not ignore_far:
                done |= t > far
    if miss_t == "far":
        t = torch.where(hit, t, torch.full_like(t, far))
    return t, hit


SPHERE_TRACE = function_spec(
    "sphere_trace",
    public=[
        PublicCase("unit sphere: one head-on ray, one miss", lambda: (Sphere(), torch.tensor([[0.0, 0.0, -3.0], [2.0, 0.0, -3.0]]),
                                                                torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]))),
        PublicCase("non-unit directions raise ValueError", lambda: (Sphere(), torch.zeros(1, 3) - 3, torch.ones(1, 3)), expect="raises"),
    ],
    loops_allowed=1,
    checks=[
        CheckSpec("values", "hits: hit is True and t within a few eps of the first crossing", 2.5,
                  lambda c: [_st_case(c, c.dtype(k), scene=SCENES[k]) for k in range(4)], _hits),
        check("misses", "misses: hit is False and t = far", 1.5,
              lambda c: [_st_case(c, c.dtype(k), scene=SCENES[k]) for k in range(4)], _misses),
        check("defaults", "near, far, max_steps and eps left out: 0, 10, 64, 1e-4 (a surface at t = 7 is hit, one at "
              "t = 11 missed)", 0.5, lambda c: [
            _st_case(c, "float64", scene=UNIT_SPHERE, defaults=True, z0=-8.0,
                     note="float64, unit sphere seen from z = -8 (hits at t = 7), defaults left out"),
            _st_case(c, "float32", scene={"kind": "translate", "shift": [0.0, 0.0, 8.0], "inner": UNIT_SPHERE},
                     defaults=True, z0=-4.0, note="float32, a sphere at t = 11, beyond the default far = 10"),
        ], _trace_judge),
        check("layout", "one ray; non-contiguous origins and directions", 0.5, lambda c: [
            _st_case(c, "float64", scene=UNIT_SPHERE, recipe="origins = torch.tensor([[0.2, 0.1, -3.0]], "
                     "dtype=torch.float64)\ndirections = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64)",
                     hits=1, misses=1, note="float64, one ray (N = 1)"),
            _st_case(c, "float32", scene=SCENES[1], layout={1: "transposed", 2: "strided"},
                     note="float32, origins stored transposed and directions a slice with a step (non-contiguous)"),
        ], _trace_judge),
        CheckSpec("far", "a surface beyond far is a miss", 1.0, lambda c: [
            _st_case(c, "float64", scene=UNIT_SPHERE, far=2.5, note="unit sphere at t = 3 with far = 2.5: every ray misses"),
        ], _trace_judge),
        CheckSpec("near", "marching starts at near", 1.0, lambda c: [
            _st_case(c, "float64", scene={"kind": "union", "parts": [UNIT_SPHERE, {"kind": "sphere", "center": [0.0, 0.0, -3.0],
                                                                                 "radius": 0.3}]},
                     near=1.5, hits=3, misses=1, note="a small sphere at t = 0.7..1.3 lies before near = 1.5",
                     recipe="origins = torch.tensor([[0.0, 0.0, -4.0], [0.1, 0.0, -4.0], [0.0, -0.5, -4.0], [2.0, 0.0, -4.0]], "
                            "dtype=torch.float64)\ndirections = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64).expand(4, 3).clone()"),
        ], _trace_judge),
        CheckSpec("max_steps", "a ray that needs two steps misses with max_steps = 1 and hits with 2", 1.0, lambda c: [
            _st_case(c, "float64", scene=UNIT_SPHERE, steps=1, recipe="origins = torch.tensor([[0.0, 0.0, -3.0]], dtype=torch.float64)\n"
                     "directions = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64)",
                     note="head-on ray, max_steps=1", hits=1, misses=1),
            _st_case(c, "float64", scene=UNIT_SPHERE, steps=2, recipe="origins = torch.tensor([[0.0, 0.0, -3.0]], dtype=torch.float64)\n"
                     "directions = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64)",
                     note="head-on ray, max_steps=2", hits=1, misses=1),
        ], _trace_judge),
        dtype_check(lambda c, dt, dev: _st_case(c, dt, scene=UNIT_SPHERE, note=f"{dt} on {dev}", device=dev)),
        mutation_check(lambda c: _st_case(c, "float64", return_inputs=True)),
        errors_check(lambda c: [
            _st_case(c, "float32", scene=UNIT_SPHERE, recipe="origins = torch.zeros(2, 3) - 3\ndirections = torch.ones(2, 3)",
                     note="directions of length sqrt(3)", meta={"arg": "directions"}),
            _st_case(c, "float32", scene=UNIT_SPHERE, recipe="origins = torch.zeros(2, 2)\ndirections = torch.ones(2, 2)",
                     note="origins of shape [2, 2]", meta={"arg": "origins"}),
            _st_case(c, "float32", scene=UNIT_SPHERE, near=5.0, far=2.0, note="near=5 > far=2", meta={"arg": "near"}),
        ], 1.0),
    ],
    mistakes=[
        mistake("ignores_far", "sphere tracing that ignores far: stop a ray (miss) once t > far",
                _trace_variant, ignore_far=True),
        mistake("miss_t_not_far", "misses reporting their last t: misses report t = far",
                _trace_variant, miss_t="last"),
        mistake("starts_at_zero", "marching from t = 0 instead of near", _trace_variant, start=0.0),
    ],
)

SPECS = [SPHERE_TRACE]
