"""Is the a1 notebook's answer about `fake.detach()` right: in `train_dcgan` the generator's gradients are zeroed
before its own backward, so gradients that a discriminator step without the detach would leave in G cost a
wasted backward pass through G but never reach G's next update?"""
import torch

import course_lib.dcgan as dcgan
from course_lib.gan import discriminator_loss, generator_loss
from course_lib.guards import backward_and_step

CFG = dcgan.DCGANConfig(z_dim=8, g_width=4, d_width=4, batch_size=8)


def _train(steps=2):
    images = torch.rand(16, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    g_net, d_net, _ = dcgan.train_dcgan(images, steps, discriminator_loss, generator_loss, CFG, progress=False)
    return [p.detach().clone() for p in (*g_net.parameters(), *d_net.parameters())]


def test_gradients_left_in_the_networks_before_a_step_do_not_change_training(monkeypatch):
    clean = _train()

    def polluted(loss, optimizer, *args, **kwargs):
        for group in optimizer.param_groups:                   # what a missing detach (or any leak) leaves behind
            for p in group["params"]:
                p.grad = torch.full_like(p, 1e3)
        return backward_and_step(loss, optimizer, *args, **kwargs)

    monkeypatch.setattr(dcgan, "backward_and_step", polluted)
    for a, b in zip(clean, _train()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_without_the_detach_the_discriminator_step_runs_a_backward_through_the_generator():
    torch.manual_seed(0)
    g_net, d_net = dcgan.Generator(CFG), dcgan.Discriminator(CFG)
    fake = g_net(torch.randn(CFG.batch_size, CFG.z_dim))
    real = torch.rand(CFG.batch_size, 1, 32, 32) * 2 - 1
    discriminator_loss(d_net(real), d_net(fake.detach())).backward()
    assert all(p.grad is None for p in g_net.parameters())     # with the detach G is never visited
    discriminator_loss(d_net(real), d_net(fake)).backward()
    assert all(p.grad is not None for p in g_net.parameters())  # without it: a full backward through G
