"""Does the global-versus-local conditioning experiment of a5_priors build the canvases it describes, give both
models the same latent budget, make the local field local and shift-equivariant, and reach the numbers the
notebook states (local codes generalise to canvases with more glyphs than any training canvas)?"""
import math
from dataclasses import replace

import pytest
import torch

from course_lib import bilinear_sample_2d, positional_encoding
from course_lib.experiments import priors_conditioning as pc
from helpers import run_smoke_cli, unimplemented

pytestmark = pytest.mark.usefixtures("one_thread")


def _local(exp: pc.ConditioningExperiment, seed: int = 0) -> pc.LocalField:
    torch.manual_seed(seed)
    return pc.LocalField(bilinear_sample_2d, lambda c: positional_encoding(c, exp.local_freqs),
                         2 * (1 + 2 * exp.local_freqs), exp.channels, exp.grid, exp.width, exp.depth)


def _pixel_coords(exp: pc.ConditioningExperiment) -> torch.Tensor:
    from course_lib.experiments.fourier_features import pixel_coordinates

    return pixel_coordinates(exp.size, exp.size).reshape(1, -1, 2)                   # [1, S S, 2]


def test_canvases_hold_k_glyphs_in_distinct_cells():
    exp = pc.ConditioningExperiment.smoke()
    for k in (1, 2, 6):
        canvases = pc.make_canvases(10, k, exp, seed=3)
        assert canvases.shape == (10, 48, 48) and float(canvases.min()) >= 0 and float(canvases.max()) <= 1
        # [n, S, S] -> [n, rows, t, cols, t]: ink per cell
        ink = canvases.reshape(10, 3, 16, 3, 16).sum((2, 4))
        assert bool(((ink > 1.0).sum((1, 2)) == k).all()), "exactly k cells carry a glyph"
    assert torch.equal(pc.make_canvases(4, 2, exp, seed=3), pc.make_canvases(4, 2, exp, seed=3))
    for bad in (0, 10):
        with pytest.raises(ValueError, match="glyphs per canvas"):
            pc.make_canvases(2, bad, exp, seed=0)


def test_both_models_get_the_same_number_of_latent_floats():
    exp = pc.ConditioningExperiment()
    assert exp.latent == exp.channels * exp.grid ** 2 == exp.autodecoder().latent
    assert (exp.grid - 1) % exp.slots == 0


def test_a_local_code_changes_only_the_pixels_next_to_it():
    exp = pc.ConditioningExperiment.smoke()
    field = _local(exp)
    coords = _pixel_coords(exp)
    codes = torch.randn(1, exp.latent)
    poked = codes.reshape(exp.channels, exp.grid, exp.grid).clone()
    poked[:, 6, 6] += 3.0                                                             # vertex (row 6, column 6)
    with torch.no_grad():
        before = field(codes, coords).reshape(exp.size, exp.size)
        after = field(poked.reshape(1, -1), coords).reshape(exp.size, exp.size)
    u = (coords[0] + 1) / 2 * (exp.grid - 1)                                          # [S S, 2] vertex units
    near = ((u - 6).abs() < 1).all(-1).reshape(exp.size, exp.size)                    # inside its 4 cells
    changed = (after - before).abs() > 0
    assert bool(changed.any()) and not bool(changed[~near].any())


def test_shifting_the_codes_by_one_glyph_cell_shifts_the_drawing_by_one_tile():
    exp = pc.ConditioningExperiment.smoke()
    field = _local(exp).double()
    coords = _pixel_coords(exp).double()
    grid = torch.randn(1, exp.channels, exp.grid, exp.grid, dtype=torch.float64)
    cells = (exp.grid - 1) // exp.slots
    shifted = torch.zeros_like(grid)
    shifted[..., cells:] = grid[..., :-cells]
    with torch.no_grad():
        a = field(grid.reshape(1, -1), coords).reshape(exp.size, exp.size)
        b = field(shifted.reshape(1, -1), coords).reshape(exp.size, exp.size)
    assert torch.allclose(b[:, exp.tile:], a[:, : -exp.tile], atol=1e-9)


def test_the_experiment_names_an_unfinished_bilinear_sample_or_encoding():
    exp = pc.ConditioningExperiment.smoke()
    with pytest.raises(NotImplementedError, match="bilinear_sample_2d"):
        pc.run(unimplemented, exp=exp, progress=False)
    with pytest.raises(NotImplementedError, match="positional_encoding"):
        pc.run(positional_encoding=unimplemented, exp=exp, progress=False)
    with pytest.raises(ValueError, match="grid - 1"):
        pc.run(exp=replace(exp, grid=12), progress=False)


def test_smoke_run_completes_both_canvas_sets_with_both_models():
    out = pc.run(exp=pc.ConditioningExperiment.smoke(), progress=False, device=torch.device("cpu"))
    exp, m = out["exp"], out["metrics"]
    for name in ("global", "local"):
        for k in exp.test_glyphs:
            assert out["pred"][name][k].shape == (exp.n_test, 48, 48)
            assert math.isfinite(m[f"mse_hidden_{name}_{k}"]) and m[f"rel_hidden_{name}_{k}"] > 0
    assert abs(int(out["visible"].sum()) - 0.5 * 48 * 48) <= 1


def test_cli_smoke_run_prints_both_models_for_both_canvas_sets_last():
    out = run_smoke_cli("course_lib.experiments.priors_conditioning")
    assert out.returncode == 0, out.stderr
    names = [kv.split("=")[0] for kv in out.stdout.strip().splitlines()[-1].split()]
    assert names == ["mse_hidden_global_1", "mse_hidden_local_1", "mse_hidden_global_6", "mse_hidden_local_6"]


@pytest.mark.slow
def test_default_settings_reach_the_stated_numbers():
    m = pc.run(exp=pc.ConditioningExperiment(), progress=False, device=torch.device("cpu"))["metrics"]
    assert m["mse_hidden_local_1"] <= m["mse_hidden_global_1"], m
    assert m["mse_hidden_local_6"] <= 0.7 * m["mse_hidden_global_6"], m
    # relative to drawing nothing: the local error barely moves from 1 to 6 glyphs, the global one grows
    assert m["rel_hidden_local_6"] <= 1.15 * m["rel_hidden_local_1"], m
    assert m["rel_hidden_global_6"] >= 1.2 * m["rel_hidden_global_1"], m
