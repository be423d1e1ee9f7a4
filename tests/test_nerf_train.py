"""Does the TinyNeRF trainer learn (it overfits an analytic sphere within seconds), keep its time budget
bookkeeping, round-trip checkpoints, and reject bad data and CLI usage with clear errors?

The scene: a unit sphere at the origin coloured by its normal (``0.5 + 0.5 n``) on black, rendered exactly by
ray-sphere intersection at 16x16 pixels from 14 cameras at distance 4 (lego's field of view)."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib import get_rays
from course_lib.nerf import (FieldConfig, NerfConfig, OptimConfig, SamplerConfig, evaluate_psnr, load_nerf,
                             load_views, preset, render_image, save_nerf, split_views, train_tinynerf)
from course_lib.nerf.bench import main as bench_main

LEGO = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "nerf_lego" / "lego_train_100x100_derived.npz"


pytestmark = pytest.mark.usefixtures("one_thread")


def _look_at(pos: torch.Tensor) -> torch.Tensor:
    fwd = F.normalize(-pos, dim=0)
    right = F.normalize(torch.linalg.cross(fwd, torch.tensor([0.0, 0.0, 1.0])), dim=0)
    up = torch.linalg.cross(right, fwd)
    c2w = torch.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, up, -fwd, pos     # camera looks down -z
    return c2w


def sphere_scene(n_views: int = 14, size: int = 16) -> dict:
    focal = size / (2 * math.tan(0.5 * 0.6911112070083618))
    poses, images = [], []
    for i in range(n_views):
        az = 2 * math.pi * i / n_views
        el = math.radians(20 + 40 * ((i * 7) % n_views) / n_views)
        c2w = _look_at(4.0 * torch.tensor([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)]))
        o, d = get_rays(size, size, focal, c2w)
        d = F.normalize(d, dim=-1)
        b, c = (o * d).sum(-1), (o * o).sum(-1) - 1.0
        disc = b * b - c
        hit = disc > 0
        p = o + (-b - disc.clamp(min=0).sqrt())[..., None] * d                 # first intersection
        images.append((0.5 + 0.5 * p).clamp(0, 1) * hit[..., None])
        poses.append(c2w)
    return {"images": torch.stack(images).numpy(), "poses": torch.stack(poses).numpy(), "focal": focal}


def _tiny_fast() -> NerfConfig:
    return NerfConfig(name="tiny-fast", sampler=SamplerConfig(rays_per_step=512, mode="box"),
                      field=FieldConfig(kind="grid", coarse_res=20, coarse_steps=100, schedule=((0, 32),)))


def _tiny_plain() -> NerfConfig:
    return NerfConfig(name="tiny-plain", sampler=SamplerConfig(rays_per_step=256, n_samples=32, mode="stratified"),
                      field=FieldConfig(kind="mlp", depth=4, width=64, skip=1, num_freqs=4),
                      optim=OptimConfig(lr=2e-3, lr_decay=1.0))


@pytest.fixture(scope="module")
def scene():
    return sphere_scene()


@pytest.fixture(scope="module")
def trained_fast(scene):
    return train_tinynerf(scene, _tiny_fast(), minutes=1, holdout=0, max_steps=300, log=None)


def test_fast_trainer_overfits_the_sphere(scene, trained_fast):
    model, hist = trained_fast
    views, _ = load_views(scene)
    assert hist.steps == 300 and model.field.res == (32, 32, 32)
    assert evaluate_psnr(model, views) > 27.0                   # an untrained model gives ~9 dB
    assert model.stats["kept"] < 0.9 and model.stats["colored"] < model.stats["kept"]   # skipping works


def test_plain_trainer_overfits_the_sphere(scene):
    model, hist = train_tinynerf(scene, _tiny_plain(), minutes=1, holdout=0, max_steps=400, log=None)
    views, _ = load_views(scene)
    assert evaluate_psnr(model, views) > 25.0


def test_history_records_evaluations_at_the_requested_times(scene):
    _, hist = train_tinynerf(scene, _tiny_fast(), minutes=0.05, holdout=2, eval_minutes=(0.01, 0.05), log=None)
    assert [e["minutes"] for e in hist.evals] == [0.01, 0.05]
    assert hist.evals[0]["time_s"] >= 0.6 and hist.evals[0]["step"] <= hist.evals[1]["step"]
    assert hist.train_seconds >= 3.0 and all(math.isfinite(e["psnr"]) for e in hist.evals)
    assert hist.psnr_at(0.05) == hist.evals[1]["psnr"] and math.isnan(hist.psnr_at(7))


def test_checkpoint_round_trip_renders_the_same_image(scene, trained_fast, tmp_path):
    model, _ = trained_fast
    save_nerf(tmp_path / "m.pt", model)
    loaded = load_nerf(tmp_path / "m.pt", device="cpu")
    pose = torch.as_tensor(scene["poses"][3])
    a = render_image(model, pose, 16, 16, scene["focal"])
    b = render_image(loaded, pose, 16, 16, scene["focal"])
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert loaded.field.res == model.field.res and loaded.config == model.config


def test_plain_checkpoint_round_trip(scene, tmp_path):
    model, _ = train_tinynerf(scene, _tiny_plain(), minutes=1, holdout=0, max_steps=2, log=None)
    save_nerf(tmp_path / "p.pt", model)
    pose = torch.as_tensor(scene["poses"][0])
    torch.testing.assert_close(render_image(load_nerf(tmp_path / "p.pt", "cpu"), pose, 8, 8, 10.0),
                               render_image(model, pose, 8, 8, 10.0), rtol=0, atol=0)


def test_bad_checkpoint_and_bad_data_raise_value_error(tmp_path, scene):
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not readable"):
        load_nerf(tmp_path / "bad.pt")
    np.savez(tmp_path / "noposes.npz", images=scene["images"], focal=scene["focal"])
    with pytest.raises(ValueError, match="poses"):
        train_tinynerf(tmp_path / "noposes.npz", "fast", minutes=0.01)
    with pytest.raises(ValueError, match="holdout"):
        train_tinynerf(scene, "fast", minutes=0.01, holdout=14)
    with pytest.raises(ValueError, match="minutes"):
        train_tinynerf(scene, "fast", minutes=0)
    with pytest.raises(ValueError, match="unknown preset"):
        preset("turbo")
    bad = dict(scene, poses=scene["poses"][:3])
    with pytest.raises(ValueError, match="poses must be"):
        train_tinynerf(bad, "fast", minutes=0.01)


def test_split_takes_the_last_views_or_the_sources_mask(scene):
    views, _ = load_views(scene)
    train, held = split_views(views, 3)
    assert len(train) == 11 and len(held) == 3 and torch.equal(held.poses, views.poses[-3:])
    mask = torch.zeros(14, dtype=torch.bool)
    mask[0] = True
    train, held = split_views(views, None, mask)
    assert len(held) == 1 and torch.equal(held.poses[0], views.poses[0])


def test_presets_validate_and_differ_as_documented():
    plain, fast = preset("plain"), preset("fast")
    assert plain.field.kind == "mlp" and plain.sampler.mode == "stratified"
    assert fast.field.kind == "grid" and fast.sampler.mode == "box"
    with pytest.raises(ValueError, match="needs sampler.mode='stratified'"):
        NerfConfig(field=FieldConfig(kind="mlp"), sampler=SamplerConfig(mode="box")).validate()
    assert NerfConfig.from_dict(fast.to_dict()) == fast


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--threads", "0"], "--threads must be >= 1"),
        (["--data", "/nonexistent.npz"], "no such file"),
        (["--data", "{npz}", "--minutes", "0"], "--minutes must be > 0"),
        (["--data", "{npz}", "--holdout", "40"], "--holdout must be in"),
        (["--data", "{npz}", "--presets", "plain,turbo"], "unknown preset"),
        (["--data", "{bad}"], "not a readable .npz"),
    ],
)
def test_bench_cli_usage_errors_exit_2(argv, message, scene, tmp_path, capsys):
    np.savez(tmp_path / "s.npz", **scene)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    argv = [a.format(npz=tmp_path / "s.npz", bad=tmp_path / "bad.npz") for a in argv]
    with pytest.raises(SystemExit) as exc:
        bench_main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_bench_cli_prints_a_markdown_table_for_both_presets(scene, tmp_path, capsys):
    np.savez(tmp_path / "s.npz", **scene)
    rc = bench_main(["--data", str(tmp_path / "s.npz"), "--minutes", "0.02", "--holdout", "2", "--at", "0.01,0.02",
                     "--markdown", "--quiet", "--threads", "1", "--device", "cpu"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "| training time | plain | fast |" in out and "| 0.01 min |" in out and "| 0.02 min |" in out



def test_bench_cli_runs_offline_on_the_synthetic_scene_without_data(capsys):
    rc = bench_main(["--minutes", "0.01", "--holdout", "2", "--presets", "fast", "--quiet", "--threads", "1",
                     "--device", "cpu"])
    out = capsys.readouterr().out
    assert rc == 0 and "synthetic scene" in out and "0.01 min" in out

@pytest.mark.realdata
@pytest.mark.skipif(not LEGO.is_file(), reason="shared real data (nerf_lego) not available")
def test_fast_preset_learns_lego_in_a_short_run():
    _, hist = train_tinynerf(LEGO, "fast", minutes=10, holdout=10, max_steps=300, eval_minutes=(10,), log=None)
    assert hist.evals[-1]["psnr"] > 19.0                        # after the coarse stage (~20 s on one core)
