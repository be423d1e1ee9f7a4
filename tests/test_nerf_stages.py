"""Does the TinyNeRF trainer run the caller's stage functions (get_rays, sample_stratified, positional_encoding,
volume_render) everywhere -- training rays, sampling, the field, compositing, rendering, checkpoints -- never
import a graded reference itself, and keep a budget of CPU time when asked?"""
import ast
from collections import Counter
from pathlib import Path

import pytest
import torch

import course_lib.manifest as manifest
from course_lib import get_rays, positional_encoding, sample_stratified, volume_render
from course_lib.experiments import nerf as nerf_experiment
from course_lib.nerf import NerfStages, load_nerf, render_image, save_nerf, train_tinynerf
from course_lib.nerf.stages import STAGE_NAMES
from test_nerf_train import _tiny_fast, _tiny_plain, sphere_scene

NERF_DIR = Path(__file__).resolve().parents[1] / "course_lib" / "nerf"
REFERENCES = {"get_rays": get_rays, "sample_stratified": sample_stratified,
              "positional_encoding": positional_encoding, "volume_render": volume_render}

pytestmark = pytest.mark.usefixtures("one_thread")


def counting_stages(calls: Counter) -> dict:
    """The references wrapped so that every call is counted under its stage name."""
    def wrap(name):
        def stage(*args, **kwargs):
            calls[name] += 1
            return REFERENCES[name](*args, **kwargs)
        return stage
    return {name: wrap(name) for name in STAGE_NAMES}


@pytest.mark.parametrize("config,stages_used", [(_tiny_plain, set(STAGE_NAMES)),
                                                (_tiny_fast, {"get_rays", "sample_stratified", "volume_render"})])
def test_training_and_rendering_call_the_callers_stages(config, stages_used):
    scene = sphere_scene(n_views=4, size=8)
    calls = Counter()
    model, hist = train_tinynerf(scene, config(), minutes=1, holdout=1, max_steps=3, log=None,
                                 **counting_stages(calls))
    assert hist.steps == 3 and set(calls) == stages_used, calls
    assert calls["get_rays"] == 3 + 1                        # the three training views, then the held-out view
    before = calls.copy()
    render_image(model, torch.as_tensor(scene["poses"][0]), 8, 8, scene["focal"])
    assert calls["get_rays"] == before["get_rays"] + 1 and calls["volume_render"] > before["volume_render"]


def test_the_notebook_experiments_stages_object_is_accepted_and_a_keyword_wins():
    calls = Counter()
    counted = counting_stages(calls)
    exp_stages = nerf_experiment.Stages(get_rays=counted["get_rays"], volume_render=counted["volume_render"])
    stages = NerfStages.of(exp_stages, volume_render=volume_render)
    assert stages.get_rays is counted["get_rays"] and stages.volume_render is volume_render
    assert stages.sample_stratified is sample_stratified                    # resolved from the experiment's stages
    assert NerfStages.of(stages) is stages
    with pytest.raises(TypeError, match="unknown stage"):
        NerfStages.of(sample_pdf=None)


def test_a_withheld_reference_must_be_passed(monkeypatch):
    def withheld(*args, **kwargs):
        raise AssertionError("a withheld stub must never run")
    withheld.__withheld__ = True
    real = manifest.reference
    monkeypatch.setattr(manifest, "reference", lambda name: withheld if name == "get_rays" else real(name))
    with pytest.raises(manifest.WithheldError, match="get_rays"):
        NerfStages()
    assert NerfStages(get_rays=get_rays).get_rays is get_rays


def test_a_loaded_checkpoint_renders_with_the_stages_it_is_given(tmp_path):
    scene = sphere_scene(n_views=3, size=8)
    model, _ = train_tinynerf(scene, _tiny_plain(), minutes=1, holdout=0, max_steps=2, log=None)
    save_nerf(tmp_path / "m.pt", model)
    calls = Counter()
    loaded = load_nerf(tmp_path / "m.pt", "cpu", **counting_stages(calls))
    pose = torch.as_tensor(scene["poses"][1])
    torch.testing.assert_close(render_image(loaded, pose, 8, 8, scene["focal"]),
                               render_image(model, pose, 8, 8, scene["focal"]), rtol=0, atol=0)
    assert set(calls) == set(STAGE_NAMES)


def test_no_module_of_the_trainer_imports_a_graded_reference():
    graded = {g.name for g in manifest.GRADED}
    for path in sorted(NERF_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                imported = {alias.name for alias in node.names}
                assert not imported & graded, f"{path.name} imports {sorted(imported & graded)} from {node.module}"


def test_the_budget_can_count_this_processs_cpu_time():
    import time

    scene = sphere_scene(n_views=3, size=8)
    start = time.process_time()
    _, hist = train_tinynerf(scene, _tiny_fast(), minutes=0.005, holdout=1, log=None, device="cpu", clock="process")
    assert hist.train_seconds >= 0.3 and time.process_time() - start >= hist.train_seconds
    with pytest.raises(ValueError, match="clock"):
        train_tinynerf(scene, _tiny_fast(), minutes=0.005, holdout=1, log=None, device="cpu", clock="gpu")
