"""Are the sprite clips deterministic and well formed, do masks agree exactly with the pixels, is
occlusion resolved by depth, and do sprites move at constant speed with elastic bounces?"""
import math

import pytest
import torch

from course_lib.data import sprite_videos
from course_lib.data.sprites import SHAPES
from data_fixtures.common import isolated_data_dir, one_torch_thread  # noqa: F401  (autouse fixtures)

V, T, S, K = 6, 10, 48, 3


@pytest.fixture(scope="module")
def clips():
    return sprite_videos(n_videos=V, n_frames=T, size=S, n_objects=K, seed=11, cache=False)


def test_same_seed_same_clips_other_seed_different():
    a = sprite_videos(n_videos=2, n_frames=4, size=32, seed=1, cache=False)
    b = sprite_videos(n_videos=2, n_frames=4, size=32, seed=1, cache=False)
    c = sprite_videos(n_videos=2, n_frames=4, size=32, seed=2, cache=False)
    assert torch.equal(a.frames, b.frames) and torch.equal(a.masks, b.masks)
    assert not torch.equal(a.frames, c.frames)


def test_shapes_dtypes_and_ranges(clips):
    assert clips.frames.shape == (V, T, 3, S, S) and clips.frames.dtype == torch.float32
    assert clips.masks.shape == (V, T, S, S) and clips.masks.dtype == torch.int64
    assert 0 <= clips.frames.min() and clips.frames.max() <= 1
    assert set(clips.masks.unique().tolist()) <= set(range(K + 1))
    assert clips.names == [f"sprites-{i}" for i in range(V)]
    a = clips.attributes
    assert a["palettes"].shape == (V, K + 1, 2, 3) and a["amodal"].shape == (V, T, K, S, S)
    assert a["centers"].shape == (V, T, K, 2) and a["depth"].shape == (V, K)
    assert torch.equal(a["depth"].sort(1).values, torch.arange(K).expand(V, K))   # a permutation per clip


def _distance_to_segment(rgb, c0, c1):
    """rgb [..., 3], c0/c1 [3]: Euclidean distance from each colour to the segment c0-c1."""
    d = c1 - c0
    t = ((rgb - c0) @ d / (d @ d).clamp(min=1e-12)).clamp(0, 1)
    return (rgb - (c0 + t[..., None] * d)).norm(dim=-1)


def test_every_pixel_has_the_colour_of_the_object_its_mask_names(clips):
    pal = clips.attributes["palettes"]
    tol = math.sqrt(3) * 0.5 / 255 + 1e-6                       # the 8-bit rounding of the stored frames
    for v in range(V):
        rgb = clips.frames[v].permute(0, 2, 3, 1)               # [T, S, S, 3]
        for k in range(K + 1):
            sel = clips.masks[v] == k
            if sel.any():
                assert _distance_to_segment(rgb[sel], pal[v, k, 0], pal[v, k, 1]).max() <= tol, (v, k)
        # and a pixel labelled k is not explained by some other object's colours instead (palettes differ)
        for k in range(1, K + 1):
            sel = clips.masks[v] == k
            others = [j for j in range(K + 1) if j != k]
            if sel.sum() > 20:
                far = torch.stack([_distance_to_segment(rgb[sel], pal[v, j, 0], pal[v, j, 1]) for j in others])
                assert (far.min(0).values > tol).float().mean() > 0.5


def test_masks_resolve_occlusion_by_depth(clips):
    amodal, depth = clips.attributes["amodal"], clips.attributes["depth"]
    expected = torch.zeros_like(clips.masks)
    for v in range(V):                                          # reference: paint objects back to front
        for k in sorted(range(K), key=lambda j: -int(depth[v, j])):
            expected[v][amodal[v, :, k]] = k + 1
    assert torch.equal(clips.masks, expected)
    overlap = amodal.sum(2) > 1
    assert overlap.any()                                        # occlusions actually happen in this sample


def test_silhouettes_match_position_size_and_shape(clips):
    amodal, centers, radius, shape = (clips.attributes[k] for k in ("amodal", "centers", "radius", "shape"))
    area_of = {"disc": math.pi, "square": 2.0, "triangle": 3 * math.sqrt(3) / 4, "diamond": 2.0,
               "hexagon": 3 * math.sqrt(3) / 2}                  # area of each shape with circumradius 1
    ys, xs = torch.meshgrid(torch.arange(S) + 0.5, torch.arange(S) + 0.5, indexing="ij")
    for v in range(V):
        for k in range(K):
            m = amodal[v, :, k].float()                         # [T, S, S]
            r_px = float(radius[v, k]) * S / 2
            expected = area_of[SHAPES[int(shape[v, k])]] * r_px ** 2
            assert m.sum((1, 2)).sub(expected).abs().max() < 0.08 * expected + 2 * r_px
            cx = (m * xs).sum((1, 2)) / m.sum((1, 2))
            cy = (m * ys).sum((1, 2)) / m.sum((1, 2))
            want = (centers[v, :, k] + 1) / 2 * S               # [-1, 1] -> pixels
            assert torch.allclose(cx, want[:, 0], atol=0.6) and torch.allclose(cy, want[:, 1], atol=0.6)
            dist = ((xs - want[:, 0, None, None]) ** 2 + (ys - want[:, 1, None, None]) ** 2).sqrt()
            assert dist[m.bool()].max() <= r_px + 0.75           # inside the circumscribed circle


def test_sprites_move_at_constant_speed_and_bounce_inside_the_frame(clips):
    centers, vel, radius = clips.attributes["centers"], clips.attributes["velocity"], clips.attributes["radius"]
    lo, hi = -1 + radius, 1 - radius                            # [V, K]
    assert (centers >= lo[:, None, :, None] - 1e-5).all() and (centers <= hi[:, None, :, None] + 1e-5).all()
    step = (centers[:, 1:] - centers[:, :-1]).abs()             # [V, T-1, K, 2]
    speed = vel.abs()[:, None]                                  # [V, 1, K, 2]
    assert (step <= speed + 1e-5).all()                         # a bounce only shortens a step
    assert (torch.isclose(step, speed.expand_as(step), atol=1e-5)).float().mean() > 0.8


def test_every_clip_shows_every_sprite_somewhere(clips):
    present = torch.stack([(clips.masks == k).flatten(1).any(1) for k in range(1, K + 1)], 1)   # [V, K]
    assert present.all()


@pytest.mark.parametrize("kwargs, needle", [
    (dict(n_videos=0), "n_videos"), (dict(n_frames=0), "n_frames"), (dict(size=8), "size"),
    (dict(n_objects=9), "n_objects"), (dict(seed="x"), "seed"),
])
def test_bad_arguments_raise_a_value_error_naming_them(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        sprite_videos(**{"n_videos": 1, "n_frames": 2, "size": 16, **kwargs}, cache=False)
