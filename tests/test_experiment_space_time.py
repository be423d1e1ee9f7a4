"""Does the space-against-time experiment train both TinyNeRF presets on the caller's stages for one budget, count
what each stores, evaluate on the held-out views it says, and reach the numbers the a4 notebook states?"""
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from course_lib import get_rays, positional_encoding, sample_stratified, volume_render
from course_lib.experiments import space_time as st
from course_lib.nerf import preset
from course_lib.nerf.renderer import NerfModel
from helpers import run_smoke_cli
from test_nerf_train import sphere_scene

LEGO = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "nerf_lego" / "lego_train_100x100_derived.npz"

pytestmark = pytest.mark.usefixtures("one_thread")


def test_stored_floats_are_the_mlp_weights_or_the_grid_values():
    assert st.stored_floats(NerfModel(preset("plain"))) == 481796
    assert st.stored_floats(NerfModel(preset("fast"))) == 4 * 40 ** 3


def test_eval_views_keeps_every_training_view_and_the_first_held_out_ones():
    scene = sphere_scene(n_views=9, size=8)
    views = st.eval_views(scene, 3, 2)                                 # the last 3 are held out, 2 evaluated
    assert views["n_eval"] == 2 and views["images"].shape[0] == 6 + 2
    torch.testing.assert_close(views["poses"][-2:], torch.as_tensor(scene["poses"][6:8]))
    with pytest.raises(ValueError, match="holds out no view"):
        st.eval_views(scene, None, 2)


def test_run_trains_both_presets_on_the_callers_stages():
    calls = Counter()

    def counted(name, fn):
        def stage(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return stage

    scene = sphere_scene(n_views=5, size=8)
    out = st.run(counted("get_rays", get_rays), counted("sample_stratified", sample_stratified),
                 counted("positional_encoding", positional_encoding), counted("volume_render", volume_render),
                 st.SpaceTimeExperiment(seconds=0.3, n_eval=1), data=scene, holdout=1,
                 device=torch.device("cpu"))
    m = out["metrics"]
    assert set(calls) == {"get_rays", "sample_stratified", "positional_encoding", "volume_render"}
    assert m["floats_plain"] == 481796 and m["steps_plain"] >= 1 and m["steps_fast"] >= 1
    assert m["psnr_gain_db"] == pytest.approx(m["psnr_fast_db"] - m["psnr_plain_db"])
    assert all(h.train_seconds >= 0.3 for h in out["histories"].values())


def test_cli_smoke_run_prints_the_metrics_last():
    out = run_smoke_cli("course_lib.experiments.space_time")
    assert out.returncode == 0, out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("psnr_plain_db=") and "float_ratio=" in last


@pytest.mark.parametrize("args,message", [(["--seconds", "0"], "--seconds"),
                                          (["--data", "/nonexistent/scene.npz"], "/nonexistent/scene.npz"),
                                          (["--data", "{npz}", "--holdout", "9"], "--holdout")])
def test_cli_rejects_bad_arguments(args, message, tmp_path):
    np.savez(tmp_path / "s.npz", **sphere_scene(n_views=9, size=8))
    out = run_smoke_cli("course_lib.experiments.space_time", *[a.format(npz=tmp_path / "s.npz") for a in args])
    assert out.returncode == 2 and message in out.stderr, out.stderr


@pytest.mark.realdata
@pytest.mark.skipif(not LEGO.is_file(), reason="lego sample not present")
def test_cli_runs_on_the_lego_views():
    out = run_smoke_cli("course_lib.experiments.space_time", "--data", str(LEGO))
    assert out.returncode == 0, out.stderr
    m = dict(kv.split("=") for kv in out.stdout.strip().splitlines()[-1].split())
    assert int(m["floats_plain"]) == 481796 and np.isfinite(float(m["psnr_fast_db"]))


# ------------------------------------------------------------------------------------------------ stated numbers
@pytest.mark.slow
def test_default_settings_reach_the_stated_numbers():
    m = st.run(exp=st.SpaceTimeExperiment(), device=torch.device("cpu"))["metrics"]
    assert m["psnr_gain_db"] >= 10.0, m
    assert m["float_ratio"] >= 2.0, m


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.skipif(not LEGO.is_file(), reason="lego sample not present")
def test_default_settings_on_the_lego_views_reach_the_stated_gap():
    m = st.run(exp=st.SpaceTimeExperiment(), data=str(LEGO), holdout=10, device=torch.device("cpu"))["metrics"]
    assert m["psnr_gain_db"] >= 8.0 and m["float_ratio"] >= 2.0, m
