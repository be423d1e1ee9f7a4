"""Do the small encoders and heads have the documented shapes and sizes, and does each option do what it says
(no BatchNorm means images are processed independently; bad configs and inputs raise clear errors)?"""
import pytest
import torch
import torch.nn as nn

from course_lib.models import (
    ContrastiveNet,
    ConvEncoder,
    EncoderConfig,
    HeadConfig,
    ProjectionHead,
    count_parameters,
)


@pytest.mark.parametrize("width,channels", [(8, 3), (16, 1), (32, 3)])
def test_encoder_maps_images_to_8w_features(width, channels):
    enc = ConvEncoder(EncoderConfig(in_channels=channels, width=width))
    h = enc(torch.rand(5, channels, 32, 32))
    assert h.shape == (5, 8 * width) and enc.feature_dim == 8 * width


def test_default_encoder_is_in_the_cpu_friendly_size_range():
    n = count_parameters(ConvEncoder())
    assert 300_000 <= n <= 1_000_000
    # conv weights (3*32 + 32*64 + 64*128 + 128*256) * 9 plus two BatchNorm vectors per block
    expected = (3 * 32 + 32 * 64 + 64 * 128 + 128 * 256) * 9 + 2 * (32 + 64 + 128 + 256)
    assert n == expected


def test_projection_head_shapes_and_the_linear_variant():
    head = ProjectionHead(64, HeadConfig(hidden_dim=32, out_dim=16))
    assert head(torch.rand(4, 64)).shape == (4, 16)
    lin = ProjectionHead(64, HeadConfig(hidden_dim=0, out_dim=10))
    assert isinstance(lin.net, nn.Linear) and lin(torch.rand(3, 64)).shape == (3, 10)


def test_contrastive_net_embed_is_unit_length_and_features_are_the_encoder_output():
    net = ContrastiveNet(EncoderConfig(width=8), HeadConfig(hidden_dim=32, out_dim=12)).eval()
    x = torch.rand(6, 3, 32, 32)
    z = net.embed(x)
    torch.testing.assert_close(z.norm(dim=-1), torch.ones(6))
    torch.testing.assert_close(net.features(x), net.encoder(x))
    assert net(x).shape == (6, 12)


def test_without_batchnorm_each_image_is_processed_on_its_own():
    torch.manual_seed(0)
    net = ContrastiveNet(EncoderConfig(width=8, norm="none"), HeadConfig(hidden_dim=16, norm="none"))
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in net.modules())
    x = torch.rand(6, 3, 32, 32, dtype=torch.float64)
    net = net.double()
    whole = net(x)
    halves = torch.cat([net(x[:3]), net(x[3:])])
    torch.testing.assert_close(whole, halves)


def test_with_batchnorm_in_train_mode_the_batch_matters():
    torch.manual_seed(0)
    net = ContrastiveNet(EncoderConfig(width=8)).double().train()
    x = torch.rand(6, 3, 32, 32, dtype=torch.float64)
    assert not torch.allclose(net(x)[:3], net(x[:3]))


def test_group_norm_option_and_non_square_inputs():
    enc = ConvEncoder(EncoderConfig(width=8, norm="group"))
    assert any(isinstance(m, nn.GroupNorm) for m in enc.modules())
    assert enc(torch.rand(2, 3, 24, 40)).shape == (2, 64)


def test_gradients_reach_every_parameter():
    net = ContrastiveNet(EncoderConfig(width=4), HeadConfig(hidden_dim=8, out_dim=4))
    net(torch.rand(4, 3, 16, 16)).pow(2).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


@pytest.mark.parametrize(
    "cfg,match",
    [(dict(width=0), "width"), (dict(norm="layer"), "norm"), (dict(in_channels=0), "in_channels"),
     (dict(width=6, norm="group"), "divisible")],
)
def test_bad_encoder_config_raises(cfg, match):
    with pytest.raises(ValueError, match=match):
        ConvEncoder(EncoderConfig(**cfg))


def test_bad_head_config_and_bad_inputs_raise():
    with pytest.raises(ValueError, match="out_dim"):
        ProjectionHead(8, HeadConfig(out_dim=0))
    enc = ConvEncoder(EncoderConfig(width=4))
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        enc(torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match="8x8"):
        enc(torch.rand(2, 3, 4, 4))
