"""Does the learned-prior experiment of a5_priors (a DeepSDF-style auto-decoder on glyphs against an encoder,
completing unseen glyphs from the top half, the left half and random pixels) condition, train and complete as
described, draw at any resolution, interpolate codes, and reach the numbers the notebook states?"""
import math
from dataclasses import replace

import pytest
import torch

from course_lib import positional_encoding
from course_lib.experiments import autodecoder as ad
from helpers import run_smoke_cli, unimplemented

CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_thread")


def _field(exp: ad.PriorExperiment, seed: int = 0) -> ad.ConditionedField:
    torch.manual_seed(seed)
    return ad.ConditionedField(lambda c: positional_encoding(c, exp.num_freqs), 2 * (1 + 2 * exp.num_freqs),
                               exp.latent, exp.width, exp.depth)


def _top_half(size: int) -> torch.Tensor:
    visible = torch.zeros(size, size, dtype=torch.bool)
    visible[: size // 2] = True
    return visible


def _state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_the_field_is_conditioned_on_the_code_by_concatenation():
    exp = ad.PriorExperiment.smoke()
    field = _field(exp)
    coords = torch.rand(3, 10, 2) * 2 - 1
    z = torch.randn(1, exp.latent)
    out = field(torch.cat([z, z, torch.randn(1, exp.latent)]), coords[[0, 0, 0]])
    assert out.shape == (3, 10)
    assert torch.equal(out[0], out[1]), "the same code and points must give the same values"
    assert not torch.allclose(out[0], out[2]), "another code must draw another shape"
    assert field.net[0].in_features == exp.latent + 2 * (1 + 2 * exp.num_freqs)


def test_glyph_masks_split_into_unseen_test_glyphs():
    exp = ad.PriorExperiment.smoke()
    train, test = ad.load_glyph_masks(exp)
    assert train.shape == (exp.n_train, 32, 32) and test.shape == (exp.n_test, 32, 32)
    assert float(train.min()) >= 0 and float(train.max()) <= 1
    # no test glyph is a copy of a training glyph
    dist = torch.cdist(test.reshape(exp.n_test, -1), train.reshape(exp.n_train, -1))
    assert float(dist.min()) > 0


def test_hidden_mse_and_blanking_use_exactly_the_hidden_pixels():
    masks = torch.rand(2, 4, 4, generator=torch.Generator().manual_seed(0))
    visible = _top_half(4)
    pred = masks.clone()
    pred[:, 2:] += 0.5                                      # wrong by 0.5 on the hidden half only
    assert ad.hidden_mse(pred, masks, visible) == pytest.approx(0.25)
    assert ad.hidden_mse(pred, masks, ~visible) == pytest.approx(0.0)
    blank = ad.blank_hidden(masks, visible)
    assert blank.shape == (2, 1, 4, 4)
    assert torch.equal(blank[:, 0, :2], masks[:, :2]) and torch.equal(blank[:, 0, 2:], torch.zeros(2, 2, 4))


def test_observation_patterns_are_the_top_half_its_transpose_and_a_fixed_random_quarter():
    exp = ad.PriorExperiment.smoke()
    pats = ad.visible_patterns(exp)
    assert set(pats) == set(ad.PATTERNS) and all(p.dtype == torch.bool and p.shape == (32, 32) for p in pats.values())
    assert torch.equal(pats["top"], _top_half(32)) and torch.equal(pats["left"], _top_half(32).T)
    assert int(pats["random"].sum()) == round(0.25 * 32 * 32)
    assert torch.equal(pats["random"], ad.visible_patterns(exp)["random"]), "the random pattern must be fixed"
    # spread over the whole glyph, not a block: every quarter of the image holds some observed pixels
    assert all(int(pats["random"][r : r + 16, c : c + 16].sum()) > 0 for r in (0, 16) for c in (0, 16))


def test_the_field_draws_at_any_resolution_on_the_same_square():
    exp = ad.PriorExperiment.smoke()
    field = _field(exp)
    codes = torch.randn(2, exp.latent)
    coarse, fine = ad.predict(field, codes, exp, CPU), ad.predict(field, codes, exp, CPU, size=4 * exp.size)
    assert coarse.shape == (2, 32, 32) and fine.shape == (2, 128, 128)
    # the centre of 4 x 4 fine pixels is the centre of the coarse pixel: bilinear in-between values of a smooth
    # field average close to it, and the corners of the drawing are the same points of the square
    pooled = torch.nn.functional.avg_pool2d(fine[:, None], 4)[:, 0]
    assert (pooled - coarse).abs().mean() < 0.05 * coarse.std()


def test_grey_fraction_counts_only_the_undecided_pixels():
    masks = torch.tensor([[0.0, 0.2, 0.25, 0.3], [0.5, 0.75, 0.9, 1.0]])
    assert ad.grey_fraction(masks) == pytest.approx(2 / 8)          # 0.3 and 0.5; the bounds are excluded


def test_interpolation_ends_at_the_two_codes_and_the_crossfade_at_the_two_glyphs():
    exp = replace(ad.PriorExperiment.smoke(), n_pairs=2, n_interp=5)
    field = _field(exp)
    codes = torch.randn(4, exp.latent)
    masks = torch.rand(4, 32, 32, generator=torch.Generator().manual_seed(1))
    out = ad.interpolate_codes(field, codes, masks, exp, CPU)
    assert out["decoded"].shape == out["crossfade"].shape == (2, 5, 32, 32)
    ends = ad.predict(field, codes, exp, CPU)
    assert torch.allclose(out["decoded"][:, 0], ends[[0, 2]], atol=1e-6)
    assert torch.allclose(out["decoded"][:, -1], ends[[1, 3]], atol=1e-6)
    assert torch.allclose(out["crossfade"][:, 2], 0.5 * (masks[[0, 2]] + masks[[1, 3]]))


def test_auto_decoding_trains_one_code_per_glyph_and_lowers_the_loss():
    exp = replace(ad.PriorExperiment.smoke(), steps=150)
    train, _ = ad.load_glyph_masks(exp)
    codes, history = ad.train_autodecoder(_field(exp), train, exp, CPU, progress=False)
    assert codes.shape == (exp.n_train, exp.latent) and not codes.requires_grad
    assert history[-1][1] < 0.7 * history[0][1], history


def test_fitting_codes_changes_only_the_codes_and_fits_the_visible_pixels():
    exp = replace(ad.PriorExperiment.smoke(), fit_steps=30)
    train, test = ad.load_glyph_masks(exp)
    field = _field(exp)
    ad.train_autodecoder(field, train, exp, CPU, progress=False)
    before = _state(field)
    visible = _top_half(exp.size)
    codes, snapshots = ad.fit_codes(field, test, visible, exp, CPU, progress=False)
    assert all(torch.equal(before[k], v) for k, v in field.state_dict().items()), "the network must stay frozen"
    assert all(p.requires_grad for p in field.parameters()), "requires_grad must be restored"
    assert codes.shape == (exp.n_test, exp.latent) and len(snapshots) == exp.snapshots
    assert torch.allclose(snapshots[0], ad.predict(field, torch.zeros(exp.n_test, exp.latent), exp, CPU))
    assert torch.allclose(snapshots[-1], ad.predict(field, codes, exp, CPU))
    assert ad.hidden_mse(snapshots[-1], test, ~visible) < ad.hidden_mse(snapshots[0], test, ~visible)


def test_the_encoder_is_trained_through_a_frozen_decoder():
    exp = replace(ad.PriorExperiment.smoke(), encoder_steps=5)
    train, _ = ad.load_glyph_masks(exp)
    field = _field(exp)
    before = _state(field)
    enc, history = ad.train_encoder(field, train, _top_half(exp.size), exp, CPU, progress=False)
    assert all(torch.equal(before[k], v) for k, v in field.state_dict().items())
    assert enc(torch.zeros(2, 1, 32, 32)).shape == (2, exp.latent) and len(history) == 2


def test_experiment_reports_an_unimplemented_encoding_clearly():
    with pytest.raises(NotImplementedError, match="positional_encoding"):
        ad.run(unimplemented, ad.PriorExperiment.smoke(), progress=False)


def test_cli_smoke_run_prints_both_errors_of_every_pattern_last():
    out = run_smoke_cli("course_lib.experiments.autodecoder")
    assert out.returncode == 0, out.stderr
    last = out.stdout.strip().splitlines()[-1]
    names = [kv.split("=")[0] for kv in last.split()]
    assert names == [f"mse_hidden_{who}{suffix}" for suffix in ("", "_left", "_random")
                     for who in ("autodecoder", "encoder")]


def test_run_completes_every_pattern_with_both_models():
    out = ad.run(exp=ad.PriorExperiment.smoke(), progress=False, device=CPU)
    exp = out["exp"]
    for pattern in ad.PATTERNS:
        assert out["autodecoder"][pattern].shape == out["encoder"][pattern].shape == (exp.n_test, 32, 32)
    assert out["upsampled"].shape == (exp.n_test, 32 * exp.upsample, 32 * exp.upsample)
    assert all(math.isfinite(v) for v in out["metrics"].values())


@pytest.mark.slow
def test_default_settings_reach_the_stated_numbers():
    m = ad.run(exp=ad.PriorExperiment(), progress=False, device=CPU)["metrics"]
    # top half, the encoder's own pattern: both beat the mean glyph, the encoder wins
    assert m["mse_hidden_autodecoder"] <= 0.85 * m["mse_hidden_mean_glyph"], m
    assert m["mse_hidden_encoder"] <= 0.7 * m["mse_hidden_mean_glyph"], m
    assert m["mse_hidden_encoder"] < m["mse_hidden_autodecoder"], m
    # out of distribution for the encoder: the auto-decoder wins, the encoder falls below the mean glyph
    assert m["mse_hidden_autodecoder_left"] <= 0.7 * m["mse_hidden_encoder_left"], m
    assert m["mse_hidden_autodecoder_random"] <= 0.5 * m["mse_hidden_encoder_random"], m
    assert m["mse_hidden_encoder_left"] > m["mse_hidden_mean_glyph_left"], m
    assert m["mse_hidden_encoder_random"] > m["mse_hidden_mean_glyph_random"], m
    # a continuous field: drawn 4x finer and averaged back, as good as the native drawing (within 10%)
    assert abs(m["mse_upsampled"] - m["mse_native"]) <= 0.1 * m["mse_native"], m
    # code interpolation passes through crisper shapes than a cross-fade of the pixels
    assert m["grey_fraction_code"] < m["grey_fraction_crossfade"], m
