"""Does the hypernetwork experiment of a5_priors write concatenation as a hypernetwork exactly, start every code from
a well-scaled network, count parameters and multiply-adds right, and reach the numbers the notebook states?"""
import math
from dataclasses import replace

import pytest
import torch
import torch.nn as nn

from course_lib import batched_mlp, positional_encoding
from course_lib.experiments import autodecoder as ad
from course_lib.experiments import hypernetwork as hn
from helpers import run_smoke_cli, unimplemented

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")


def test_concatenation_is_a_hypernetwork_that_sets_the_first_bias():
    torch.manual_seed(0)
    encode = lambda c: positional_encoding(c, 3)                                   # noqa: E731
    field = ad.ConditionedField(encode, 14, 6, 16, 3).double()
    codes = torch.randn(4, 6, dtype=torch.float64)
    coords = torch.rand(4, 25, 2, dtype=torch.float64) * 2 - 1
    params, sizes = hn.concat_as_hypernetwork(field, codes)
    assert sizes == [14, 16, 16, 16, 1] and params.shape == (4, sum(a * b + b for a, b in zip(sizes, sizes[1:])))
    assert torch.allclose(batched_mlp(encode(coords), params, sizes)[..., 0], field(codes, coords), atol=1e-12)
    # only the first layer's bias (entries 14*16 .. 14*16 + 16) differs between codes
    differs = (params != params[:1]).any(0)
    assert differs.nonzero().flatten().tolist() == list(range(14 * 16, 14 * 16 + 16))


def test_every_code_starts_from_a_standard_target_network_when_the_output_weights_are_zero():
    torch.manual_seed(1)
    field = hn.HyperField(batched_mlp, lambda c: c, 2, 5, (8, 8), 16)
    with torch.no_grad():
        field.hyper[-1].weight.zero_()
    bias = field.hyper[-1].bias.detach()
    target = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 1))
    torch.nn.utils.vector_to_parameters(bias, target.parameters())
    coords = torch.rand(3, 7, 2) * 2 - 1
    with torch.no_grad():
        out = field(torch.randn(3, 5), coords)
        assert torch.allclose(out, target(coords)[..., 0], atol=1e-6)
    # the default initialisation of nn.Linear: weights within 1/sqrt(fan_in)
    assert float(bias[:16].abs().max()) <= 1 / math.sqrt(2) and float(bias[24:88].abs().max()) <= 1 / math.sqrt(8)


def test_parameters_and_multiply_adds_are_counted_per_layer():
    assert hn.macs_per_point([18, 32, 32, 1]) == 18 * 32 + 32 * 32 + 32
    assert hn.count_parameters(nn.Linear(3, 4)) == 16
    field = hn.HyperField(batched_mlp, lambda c: c, 18, 16, (32, 32), 64)
    n = 18 * 32 + 32 + 32 * 32 + 32 + 32 + 1
    assert hn.count_parameters(field) == 16 * 64 + 64 + 64 * n + n


def test_the_hypernetwork_auto_decoder_trains_through_batched_mlp():
    exp = replace(hn.HyperExperiment.smoke(), prior=replace(ad.PriorExperiment.smoke(), steps=150))
    train, _ = ad.load_glyph_masks(exp.prior)
    calls = []

    def counting_mlp(x, params, sizes):
        calls.append(params.shape)
        return batched_mlp(x, params, sizes)

    torch.manual_seed(0)
    field = hn.HyperField(counting_mlp, lambda c: positional_encoding(c, exp.prior.num_freqs),
                          2 * (1 + 2 * exp.prior.num_freqs), exp.prior.latent, exp.hidden, exp.hyper_width)
    _, history = ad.train_autodecoder(field, train, exp.prior, CPU, progress=False)
    assert calls and calls[0][0] == exp.prior.batch
    assert history[-1][1] < 0.8 * history[0][1], history


def test_the_experiment_names_an_unfinished_function_and_reuses_a_trained_concatenation_model():
    exp = hn.HyperExperiment.smoke()
    with pytest.raises(NotImplementedError, match="batched_mlp"):
        hn.run(unimplemented, exp=exp, progress=False)
    prior = ad.run(exp=exp.prior, progress=False, device=CPU)
    out = hn.run(exp=exp, concat=prior, progress=False, device=CPU)
    assert out["fields"]["concat"] is prior["field"]
    assert all(math.isfinite(v) for v in out["metrics"].values())


def test_cli_smoke_run_prints_both_models_last():
    out = run_smoke_cli("course_lib.experiments.hypernetwork")
    assert out.returncode == 0, out.stderr
    names = [kv.split("=")[0] for kv in out.stdout.strip().splitlines()[-1].split()]
    assert names == ["mse_hidden_concat", "mse_hidden_hyper", "mse_hidden_concat_random", "mse_hidden_hyper_random"]


@pytest.mark.slow
def test_default_settings_reach_the_stated_numbers():
    m = hn.run(exp=hn.HyperExperiment(), progress=False, device=CPU)["metrics"]
    assert m["mse_hidden_hyper"] <= 0.8 * m["mse_hidden_concat"], m
    assert m["mse_hidden_hyper_random"] <= 0.8 * m["mse_hidden_concat_random"], m
    assert m["mse_recon_hyper"] <= 0.8 * m["mse_recon_concat"], m
    assert m["macs_per_point_hyper"] < m["macs_per_point_concat"] and m["params_hyper"] > m["params_concat"], m
