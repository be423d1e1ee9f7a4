"""Does grading survive a corpus of hostile and broken submissions, scoring only what each one deserves?

Each notebook mixes hostile functions with honest ones (the reference, copied in): every notebook is graded once
per module, and the assertions check the hostile function's score and message, that every honest function in
the same notebook keeps full marks, and that nothing outside the worker changed.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder.fixtures import perfect_source
from autograder.grading import grade_notebook
from agpaths import ROOT, cli_env
from nbfactory import notebook_json, with_functions, write, write_raw


def honest(name: str) -> str:
    return perfect_source(name)


HACK_TARGET = "/tmp/autograder-hostile-results.json"

HOSTILE = {
    "h_contrastive": ("a3_contrastive", {
        "info_nce_loss": "def info_nce_loss(query, positive, negatives, temperature=0.1):\n    while True:\n        pass\n",
        "nt_xent_loss": "import ctypes\ndef nt_xent_loss(z_a, z_b, temperature=0.5):\n    ctypes.string_at(0)\n",
        "enqueue": ("import torch, torch.testing\ndef enqueue(queue, ptr, keys):\n"
                    "    torch.allclose = lambda *a, **k: True\n    torch.equal = lambda *a, **k: True\n"
                    "    torch.testing.assert_close = lambda *a, **k: None\n    return 0\n"),
        "moco_loss": ("import torch\nclass Liar(torch.Tensor):\n    def __eq__(self, other):\n        return True\n"
                      "    def __ne__(self, other):\n        return False\n"
                      "    def allclose(self, *a, **k):\n        return True\n"
                      "def moco_loss(q, k, queue, temperature=0.07):\n    return torch.zeros(()).as_subclass(Liar)\n"),
    }),
    "h_rendering": ("a4_rendering", {
        "get_rays": "import torch\ndef get_rays(height, width, focal, c2w):\n    return torch.empty(1 << 33, dtype=torch.uint8), None\n",
        "sample_stratified": ("PRINTED = []\n" + honest("sample_stratified").replace(
            '    check_tensor("rays_o"',
            '    if not PRINTED:\n        PRINTED.append(1)\n        for _ in range(100):\n            print("x" * (1 << 20))\n'
            '    check_tensor("rays_o"', 1)),
        "positional_encoding": "import sys\ndef positional_encoding(x, num_freqs, include_input=True):\n    sys.exit(0)\n",
        "volume_render": "import os\ndef volume_render(sigmas, colors, t_vals, white_background=False):\n    os._exit(1)\n",
        "sphere_trace": ("import os, time\n" + honest("sphere_trace").replace(
            '    if not callable(sdf):',
            f'    if os.fork() == 0:\n        os.setsid()\n        if os.fork() == 0:\n            time.sleep(1.5)\n'
            f'            try:\n                open({HACK_TARGET!r}, "w").write("HACKED")\n'
            '            except OSError:\n                pass\n'
            f'        os._exit(0)\n    if not callable(sdf):', 1)),
    }),
    "h_gans_definition_exit": ("a1_gans", {
        "discriminator_loss": "import sys\ndef discriminator_loss(logits_real, logits_fake, _x=sys.exit(4)):\n    return 0\n",
        "generator_loss": "@not_defined_anywhere\ndef generator_loss(logits_fake, saturating=False):\n    return 0\n",
    }),
    "h_gans_definition_os_exit": ("a1_gans", {
        "discriminator_loss": ("import os\ndef stop(f):\n    os._exit(5)\n@stop\ndef discriminator_loss(logits_real, logits_fake):\n"
                               "    return 0\n"),
        "generator_loss": ("def generator_loss(logits_fake, saturating=False):\n    from course_lib import generator_loss as ref\n"
                           "    return ref(logits_fake, saturating)\n"),
    }),
    "h_pretext": ("a2_pretext", {
        "rotate_batch": ("def rotate_batch(images):\n    ns = {}\n"
                         f"    exec(open({str(ROOT / 'course_lib' / 'pretext.py')!r}).read().replace('from ._validate', "
                         "'from course_lib._validate'), ns)\n    return ns['rotate_batch'](images)\n"),
        "attention_color_propagation": ("import os\nclass Evil:\n    def __reduce__(self):\n"
                                        "        return (os.system, ('touch /tmp/autograder-unpickled',))\n"
                                        "def attention_color_propagation(ref_feats, tgt_feats, ref_colors, temperature=1.0):\n"
                                        "    return Evil()\n"),
    }),
    "h_contrastive_sloppy": ("a3_contrastive", {
        "info_nce_loss": "import torch\ndef info_nce_loss(query, positive, negatives, temperature=0.1):\n    return torch.tensor(1.2345)\n",
        "nt_xent_loss": honest("nt_xent_loss").replace("temperature: float = 0.5", "").replace(
            "def nt_xent_loss(z_a: torch.Tensor, z_b: torch.Tensor, )", "def nt_xent_loss(z_a: torch.Tensor, z_b: torch.Tensor)"),
        "momentum_update": honest("momentum_update").replace("def momentum_update(", "def momentum_update_fn("),
        "moco_loss": honest("moco_loss").replace("    return F.cross_entropy(logits, target)",
                                                 "    loss = F.cross_entropy(logits, target)\n    queue.zero_()\n    return loss"),
    }),
    "h_rendering_sloppy": ("a4_rendering", {
        "positional_encoding": honest("positional_encoding").replace("    return feats", "    return feats.float()"),
        "volume_render": honest("volume_render").replace("    return rgb, weights", "    return rgb * float('nan'), weights"),
        "get_rays": honest("get_rays").replace("    return rays_o, rays_d", "    return rays_o.to('cuda'), rays_d.to('cuda')"),
        "sample_pdf": "def sample_pdf(bins, weights, n_samples, deterministic=False, generator=None:\n    pass\n",
    }),
}


def tree_state(*folders: Path) -> dict:
    """(size, mtime) of every file under the folders: what a hostile worker must not be able to change."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for f in folders for p in sorted(f.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def graded(sandbox, tmp_path_factory):
    """name -> (GradeResult, {function: FunctionResult}) for every hostile notebook, graded once; "_state" holds
    the file-system snapshots before and after."""
    Path(HACK_TARGET).write_text('{"score": 0}')
    base = tmp_path_factory.mktemp("hostile")
    for name, (assignment, overrides) in HOSTILE.items():
        write(with_functions(assignment, overrides), base / f"{name}.ipynb")
    canary = tmp_path_factory.mktemp("canary")
    (canary / "gradebook.csv").write_text("submission,total\n")
    watched = (ROOT / "autograder", base, canary)
    before = tree_state(*watched)
    out = {}
    for name, (assignment, overrides) in HOSTILE.items():
        path = base / f"{name}.ipynb"
        start = time.monotonic()
        result = grade_notebook(path, assignment, sandbox=sandbox)
        result.wall = time.monotonic() - start
        out[name] = (result, {f.name: f for f in result.functions})
    time.sleep(2.0)                                                  # give detached processes a chance to act
    out["_state"] = (before, tree_state(*watched), sorted(p.name for p in base.iterdir()))
    out["_hack_target"] = Path(HACK_TARGET).read_text()
    Path(HACK_TARGET).unlink()
    return out


def text(fr) -> str:
    from autograder.feedback import function_feedback

    return function_feedback(fr)


def test_every_hostile_notebook_is_graded_within_its_limits(graded, sandbox):
    for name in HOSTILE:
        assert graded[name][0].wall < 40, name


def test_nothing_outside_the_workers_changed(graded):
    before, after, listing = graded["_state"]
    assert before == after
    assert listing == sorted(f"{name}.ipynb" for name in HOSTILE)


def test_honest_functions_next_to_hostile_ones_keep_full_marks(graded):
    for name, (assignment, overrides) in HOSTILE.items():
        result, functions = graded[name]
        for fname, fr in functions.items():
            if fname not in overrides:
                assert fr.score == fr.points, (name, fname, text(fr))


@pytest.mark.parametrize("notebook,function,max_score,needle", [
    ("h_contrastive", "info_nce_loss", 0, "timed out"),
    ("h_contrastive", "nt_xent_loss", 0, "segmentation fault"),
    ("h_contrastive", "enqueue", 0.5, "expected"),                      # only 'inputs are not modified' holds
    ("h_contrastive", "moco_loss", 0, "subclass of torch.Tensor"),
    ("h_rendering", "get_rays", 0, "memory"),
    ("h_rendering", "positional_encoding", 0, "SystemExit"),
    ("h_rendering", "volume_render", 0, "exit status 1"),
    ("h_gans_definition_exit", "discriminator_loss", 0, "SystemExit"),
    ("h_gans_definition_exit", "generator_loss", 0, "could not be defined: cell"),
    ("h_gans_definition_os_exit", "discriminator_loss", 0, "while defining your code"),
    ("h_gans_definition_os_exit", "generator_loss", 0, "cannot be imported by graded code"),
    ("h_pretext", "attention_color_propagation", 0, "expected a tensor"),
    ("h_contrastive_sloppy", "info_nce_loss", 0, "same output for every random input"),
    ("h_contrastive_sloppy", "nt_xent_loss", 0, "signature"),
    ("h_contrastive_sloppy", "momentum_update", 0, "renamed"),
    ("h_rendering_sloppy", "volume_render", 4, "NaN"),                  # weights right: values and what is gated
    ("h_rendering_sloppy", "get_rays", 2, "CUDA"),                     # its ValueError checks still pass
    ("h_rendering_sloppy", "sample_pdf", 0, "no function named sample_pdf"),
])
def test_each_hostile_function_scores_at_most_what_it_deserves_with_a_clear_message(graded, notebook, function, max_score, needle):
    fr = graded[notebook][1][function]
    assert fr.score <= max_score, text(fr)
    assert needle in text(fr), text(fr)


def test_reading_and_executing_the_reference_source_from_disk_gets_nothing(graded, sandbox):
    fr = graded["h_pretext"][1]["rotate_batch"]
    if sandbox.mode == "plain":
        pytest.skip("plain mode cannot hide files (README threat model)")
    assert fr.score == 0 and ("No such file" in text(fr) or "Permission denied" in text(fr)), text(fr)


def test_printing_100_mb_changes_nothing_for_a_correct_function(graded):
    assert graded["h_rendering"][1]["sample_stratified"].score == 10


def test_partial_credit_for_in_place_mutation_and_for_a_wrong_dtype(graded):
    moco = graded["h_contrastive_sloppy"][1]["moco_loss"]
    assert 5 <= moco.score < 10 and "modified its input queue" in text(moco), text(moco)
    pe = graded["h_rendering_sloppy"][1]["positional_encoding"]
    failed = {c.name for c in pe.checks if c.passed < len(c.cases)}
    assert "dtype_device" in failed and 0 < pe.score < 10, text(pe)


def test_a_detached_process_cannot_overwrite_results_and_unpickling_never_happens(graded):
    assert graded["_hack_target"] == '{"score": 0}'
    assert not Path("/tmp/autograder-unpickled").exists()
    # its two processes per call (one left a zombie) count against the worker's 16-process budget, so later
    # cases fail to fork; what matters is that the file is intact and the honest part is graded
    trace = graded["h_rendering"][1]["sphere_trace"]
    assert trace.checks[0].name == "values" and trace.checks[0].passed == len(trace.checks[0].cases) > 0


def test_a_syntax_error_in_one_cell_costs_only_that_function(graded):
    result, functions = graded["h_rendering_sloppy"]
    assert any("syntax error" in n for n in result.notes)
    assert functions["sample_stratified"].score == 10 and functions["sphere_trace"].score == 10


@pytest.mark.parametrize("data,needle", [
    (b"{this is not json", "not valid JSON"),
    ('{"cells": [], "nbformat": 4, "x": "\xff\xfe"}'.encode("latin-1"), "not UTF-8"),
    (b'{"hello": "world"}', "not a Jupyter notebook"),
])
def test_unreadable_notebooks_score_zero_and_say_why(sandbox, tmp_path, data, needle):
    result = grade_notebook(write_raw(tmp_path / "broken.ipynb", data), "a1_gans", sandbox=sandbox)
    assert result.score == 0 and needle in result.notebook_error
    assert [f.name for f in result.functions] == ["discriminator_loss", "generator_loss"]
    assert all(needle in f.problem for f in result.functions)


def test_the_grade_command_exits_zero_on_an_unreadable_notebook(tmp_path):
    nb = write_raw(tmp_path / "broken.ipynb", b"{this is not json")
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", str(nb), "--assignment", "a1_gans", "--out", str(out)],
                          env=cli_env(), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())
    assert res["score"] == 0 and "not valid JSON" in res["output"]
    assert [t["extra_data"]["function"] for t in res["tests"]] == ["discriminator_loss", "generator_loss"]


def test_an_empty_notebook_and_a_5000_cell_notebook_are_graded(sandbox, tmp_path):
    empty = grade_notebook(write_raw(tmp_path / "empty.ipynb", notebook_json([])), "a1_gans", sandbox=sandbox)
    assert empty.score == 0 and all("no function named" in f.problem for f in empty.functions)
    cells = [{"cell_type": "code", "source": f"x{i} = {i}", "metadata": {}, "outputs": [], "execution_count": None}
             for i in range(5000)]
    nb = with_functions("a1_gans", {})
    for c in cells:
        nb.cells.insert(0, __import__("nbformat").v4.new_code_cell(c["source"]))
    big = grade_notebook(write(nb, tmp_path / "big.ipynb"), "a1_gans", sandbox=sandbox)
    assert big.score == big.max_score
