"""Is clip_loss CLIP's symmetric cross-entropy, with its closed forms, and stable up to a logit scale of 100?"""
import math

import pytest
import torch

from course_lib.contrastive import clip_loss
from course_lib.naive import clip_loss_naive
from helpers import assert_unchanged, randn, snapshot

F = torch.nn.functional


def _orthonormal_rows(n, d, gen):
    q, _ = torch.linalg.qr(torch.randn(d, n, generator=gen, dtype=torch.float64))
    return q.T                                                         # [n, d], orthonormal rows


@pytest.mark.parametrize("n,d,scale", [(1, 3, 10.0), (2, 2, 1.0), (5, 8, 10.0), (7, 3, 0.5), (16, 4, 100.0)])
def test_matches_the_loop(n, d, scale, gen):
    img, txt = randn(n, d, gen=gen), randn(n, d, gen=gen)
    torch.testing.assert_close(clip_loss(img, txt, scale), clip_loss_naive(img, txt, scale))


def test_gradients_match_the_loop(gen):
    img, txt = randn(6, 4, gen=gen, requires_grad=True), randn(6, 4, gen=gen, requires_grad=True)
    g_ref = torch.autograd.grad(clip_loss(img, txt, 7.0), (img, txt))
    g_loop = torch.autograd.grad(clip_loss_naive(img, txt, 7.0), (img, txt))
    for a, b in zip(g_ref, g_loop):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("n,scale", [(2, 1.0), (4, 10.0), (8, 3.5), (5, 100.0)])
def test_orthonormal_pairs_give_log_1_plus_n_minus_1_exp_minus_s(n, scale, gen):
    e = _orthonormal_rows(n, n + 3, gen)
    expected = math.log1p((n - 1) * math.exp(-scale))
    # the norms of the embeddings do not matter: both sides are L2-normalised first
    out = clip_loss(3.0 * e, 0.2 * e, scale)
    assert out.item() == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("n,scale", [(2, 0.5), (6, 10.0), (9, 100.0)])
def test_identical_rows_give_log_n(n, scale, gen):
    v = randn(1, 5, gen=gen)
    assert clip_loss(v.expand(n, 5), 2 * v.expand(n, 5), scale).item() == pytest.approx(math.log(n), abs=1e-12)


@pytest.mark.parametrize("scale", [0.1, 10.0, 100.0])
def test_a_single_pair_gives_zero(scale, gen):
    assert clip_loss(randn(1, 6, gen=gen), randn(1, 6, gen=gen), scale).item() == 0.0


def test_symmetric_in_image_and_text_and_invariant_to_batch_order_and_norms(gen):
    img, txt = randn(9, 6, gen=gen), randn(9, 6, gen=gen)
    perm = torch.randperm(9, generator=gen)
    loss = clip_loss(img, txt, 4.0)
    torch.testing.assert_close(clip_loss(txt, img, 4.0), loss)
    torch.testing.assert_close(clip_loss(img[perm], txt[perm], 4.0), loss)
    norms = torch.rand(9, 1, generator=gen, dtype=torch.float64) + 0.1
    torch.testing.assert_close(clip_loss(img * norms, txt / norms, 4.0), loss)


def test_is_the_mean_of_the_two_directions(gen):
    img, txt = randn(5, 3, gen=gen), randn(5, 3, gen=gen)
    logits = 6.0 * F.cosine_similarity(img[:, None], txt[None], dim=-1)            # [5, 5] image i vs text j
    i2t = -torch.log_softmax(logits, dim=1).diagonal().mean()
    t2i = -torch.log_softmax(logits, dim=0).diagonal().mean()
    torch.testing.assert_close(clip_loss(img, txt, 6.0), (i2t + t2i) / 2)
    assert not torch.isclose(i2t, t2i), "the case must tell the two directions apart"


def test_gradcheck_including_a_learned_logit_scale(gen):
    img, txt = randn(4, 3, gen=gen, requires_grad=True), randn(4, 3, gen=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: clip_loss(a, b, 2.5), (img, txt))
    log_scale = torch.tensor(math.log(3.0), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, s: clip_loss(a, b, s.exp()), (img, txt, log_scale))


def test_a_tensor_logit_scale_gives_the_same_loss(gen):
    img, txt = randn(5, 4, gen=gen), randn(5, 4, gen=gen)
    torch.testing.assert_close(clip_loss(img, txt, torch.tensor([7.5])), clip_loss(img, txt, 7.5))


@pytest.mark.parametrize("duplicates", [False, True])
def test_stable_at_logit_scale_100(dtype, duplicates, gen):
    img = randn(32, 16, gen=gen, dtype=dtype, scale=1e3, requires_grad=True)
    txt = (img.detach().clone() if duplicates else randn(32, 16, gen=gen, dtype=dtype)).requires_grad_(True)
    loss = clip_loss(img, txt, logit_scale=100.0)
    loss.backward()
    assert torch.isfinite(loss) and loss.dtype == dtype and loss.item() >= 0
    assert torch.isfinite(img.grad).all() and torch.isfinite(txt.grad).all()


def test_follows_dtype_and_device_and_does_not_mutate(device, dtype, gen):
    img = randn(6, 5, gen=gen, dtype=dtype, device=device)
    txt = randn(6, 5, gen=gen, dtype=dtype, device=device)
    before = snapshot(img, txt)
    out = clip_loss(img, txt)
    assert out.shape == () and out.dtype == dtype and out.device.type == device.type
    torch.testing.assert_close(out.cpu().double(), clip_loss(img.cpu().double(), txt.cpu().double()),
                               rtol=1e-5, atol=1e-6)
    assert_unchanged(before, (img, txt))


@pytest.mark.parametrize(
    "img,txt,scale,match",
    [
        ((3, 4), (3, 4), 0.0, "logit_scale"),
        ((3, 4), (3, 4), -1.0, "logit_scale"),
        ((3, 4), (3, 4), float("nan"), "logit_scale"),
        ((3, 4), (3, 4), float("inf"), "logit_scale"),
        ((3, 4), (3, 5), 10.0, r"same shape \[N, D\], got \[3, 4\] and \[3, 5\]"),
        ((3, 4), (2, 4), 10.0, r"same shape \[N, D\], got \[3, 4\] and \[2, 4\]"),
        ((3,), (3,), 10.0, r"image_emb must be 2-D, got shape \[3\]"),
        ((3, 4), (3, 4, 1), 10.0, r"text_emb must be 2-D, got shape \[3, 4, 1\]"),
        ((0, 4), (0, 4), 10.0, "at least one row"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(img, txt, scale, match):
    with pytest.raises(ValueError, match=match):
        clip_loss(torch.zeros(img), torch.zeros(txt), scale)


def test_rejects_a_non_positive_or_multi_element_tensor_scale():
    z = torch.ones(2, 3)
    for bad in (torch.tensor(0.0), torch.tensor([1.0, 2.0])):
        with pytest.raises(ValueError, match="logit_scale"):
            clip_loss(z, z, bad)
