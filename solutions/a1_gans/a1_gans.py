# %% [markdown]
# # Assignment 1 — Generative adversarial networks
#
# A GAN trains two networks against each other. The **generator** $G$ turns random noise $z$ into images;
# the **discriminator** $D$ looks at an image and outputs the probability that it is real. $D$ improves by
# telling real from generated images apart, $G$ improves by fooling $D$. When neither can improve any more,
# the generated images are distributed like the real ones.
#
# In this notebook you will
#
# 1. write the two losses of the game, in a form that stays finite for any discriminator output;
# 2. see why the generator is not trained with the loss the game actually prescribes (*saturation*);
# 3. train a DCGAN with your losses on handwritten-looking characters and measure how close its samples get
#    to real ones.
#
# **How this notebook is graded.** The two functions you write (`discriminator_loss`, `generator_loss`) are
# graded automatically: the grader extracts your function definitions from this file and runs them, in a
# separate sandboxed process, on many random inputs against a reference implementation, including edge cases
# and gradients. The cells after each function run a *public* subset of those checks so you get feedback
# immediately. The written questions are graded by hand. Experiments are not graded, but they only work once
# your functions do.
#
# Do not rename the functions or change their signatures, and keep everything a function needs (imports,
# helpers) at the top level of a code cell.

# %% [readonly]
import math
import os

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

import course_lib
from course_lib.checks import check
from course_lib.utils import pick_device, seed_everything, smoke_mode

device = pick_device()
SMOKE = smoke_mode()                                                   # tiny settings when COURSE_SMOKE=1
GRADING = os.environ.get("NBGRADER_EXECUTION") in ("autograde", "validate")   # nbgrader skips experiments
seed_everything(0)
print(f"course_lib {course_lib.__version__} | torch {torch.__version__} | device {device} | smoke mode {SMOKE}")

# %% [markdown]
# ## 1. The two-player game
#
# Write $D(x) = \sigma(\ell(x))$, where $\ell$ is the discriminator's raw output (a *logit*) and $\sigma$ the
# sigmoid. The original GAN objective is a minimax game over the value
#
# $$V(D, G) = \mathbb{E}_{x \sim p_\text{data}}[\log D(x)] + \mathbb{E}_{z \sim p(z)}[\log(1 - D(G(z)))].$$
#
# The discriminator *maximises* $V$: it wants $D(x) \to 1$ on real images and $D(G(z)) \to 0$ on generated
# ones. For a fixed generator the best discriminator is $D^*(x) = p_\text{data}(x) / (p_\text{data}(x) +
# p_g(x))$, and plugging it in gives $V = -\log 4 + 2\,\mathrm{JS}(p_\text{data} \,\|\, p_g)$: the generator,
# which *minimises* $V$, is pushed to make the Jensen–Shannon divergence between the data and its samples
# zero.
#
# As a loss to minimise, the discriminator uses $-V$, estimated on a batch of $N$ real and $M$ generated
# images:
#
# $$L_D = -\frac{1}{N}\sum_{i} \log \sigma(\ell^\text{real}_i) \;-\; \frac{1}{M}\sum_j \log\big(1 - \sigma(\ell^\text{fake}_j)\big).$$
#
# ### Computing it without overflow
#
# The obvious code, `torch.log(torch.sigmoid(l))`, breaks as soon as the discriminator is confident: for
# $\ell = -200$ the sigmoid underflows to exactly 0 in float32 and the log is $-\infty$. Both terms can be
# written with the **softplus** function $\operatorname{softplus}(u) = \log(1 + e^u)$:
#
# $$-\log \sigma(\ell) = \operatorname{softplus}(-\ell), \qquad -\log(1 - \sigma(\ell)) = \operatorname{softplus}(\ell),$$
#
# and PyTorch's `F.softplus` is computed stably for any input (for large $u$ it returns $u$ itself). Run the
# next cell to see the difference.

# %% [code]
logits = torch.tensor([-200.0, -20.0, 0.0, 20.0, 200.0])
print("naive  -log(sigmoid(l)):", (-torch.log(torch.sigmoid(logits))).tolist())
print("stable softplus(-l):    ", F.softplus(-logits).tolist())

# %% [markdown]
# ### Task 1: `discriminator_loss`
#
# Implement the discriminator loss on logits, vectorised (no Python loop over the batch), with softplus.
# The docstring is the specification; the grader also checks that it returns a scalar with the input's dtype
# and device, that gradients are correct and finite for logits up to $\pm 10^4$, and that a wrong argument
# (not a 1-D floating-point tensor, or an empty one) raises a `ValueError` whose message names the argument
# and the shape it got.

# %% [scaffold] id=discriminator_loss

# %% [readonly]
check("discriminator_loss", discriminator_loss)

# %% [tests] id=discriminator_loss

# %% [markdown]
# ### Task 2: `generator_loss`
#
# The game says the generator should **minimise** $\mathbb{E}_z[\log(1 - D(G(z)))]$ — the *saturating*
# (minimax) form. In practice everybody trains it to **minimise** $-\mathbb{E}_z[\log D(G(z))]$ instead — the
# *non-saturating* form. Both are minimised by the same $G$ (the one that fools $D$), but they behave very
# differently early in training, as Section 2 shows.
#
# $$L_G^\text{sat} = \frac{1}{M}\sum_j \log\big(1 - \sigma(\ell_j)\big) = -\frac{1}{M}\sum_j \operatorname{softplus}(\ell_j),
# \qquad
# L_G^\text{non-sat} = -\frac{1}{M}\sum_j \log \sigma(\ell_j) = \frac{1}{M}\sum_j \operatorname{softplus}(-\ell_j).$$
#
# Implement both, selected by the `saturating` flag (default: non-saturating).

# %% [scaffold] id=generator_loss

# %% [readonly]
check("generator_loss", generator_loss)

# %% [tests] id=generator_loss

# %% [markdown]
# ## 2. Saturation: why the generator uses the "wrong" loss
#
# The lecture's slides write the generator's part of the game in its saturating form, minimise
# $\mathbb{E}_z[\log(1 - D(G(z)))]$, as the minimax game reads. The non-saturating $-\log D(G(z))$ of this
# notebook's default is the common practice (Goodfellow et al., 2014, already recommend it); this section
# shows why.
#
# At the start of training the generator is bad and the discriminator rejects its samples easily:
# $D(G(z)) \approx 0$, i.e. very negative logits. What matters for learning is the gradient that reaches the
# generator, $\partial L_G / \partial \ell$. The next cell computes it with autograd **through your
# `generator_loss`**, for one sample at a time, across the whole range of $D(G(z))$.

# %% [code]
d_of_g = torch.linspace(1e-4, 1 - 1e-4, 400, dtype=torch.float64)
logit = torch.log(d_of_g) - torch.log1p(-d_of_g)                     # the logit with sigmoid(logit) = D(G(z))
grads = {}
for saturating in (True, False):
    x = logit.clone().requires_grad_(True)
    # each sample is its own "batch" of one: sum the per-sample losses so each gets its own gradient
    total = sum(generator_loss(x[i : i + 1], saturating=saturating) for i in range(len(x)))
    (grads[saturating],) = torch.autograd.grad(total, x)

fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
for saturating, label in ((True, "saturating  log(1 - D)"), (False, "non-saturating  -log D")):
    axes[0].plot(d_of_g, grads[saturating].abs(), label=label)
axes[0].set(xlabel="D(G(z))", ylabel="|dL_G / d logit|", title="gradient reaching the generator")
axes[0].axvspan(0, 0.1, color="0.9")
axes[0].text(0.01, 0.5, "early training", fontsize=9)
axes[0].legend()
axes[1].semilogy(d_of_g, grads[True].abs() + 1e-16, label="saturating")
axes[1].semilogy(d_of_g, grads[False].abs() + 1e-16, label="non-saturating")
axes[1].set(xlabel="D(G(z))", title="the same on a log scale")
axes[1].legend()
plt.tight_layout()
plt.show()
print(f"at D(G(z)) = 1e-4: saturating gradient {grads[True][0].item():.2e}, "
      f"non-saturating {grads[False][0].item():.2e}")

# %% [markdown]
# **Question 1 (written).** Using the plot, explain in 3–5 sentences why GANs are trained with the
# non-saturating generator loss. Where is each loss's gradient large and where does it vanish, and which
# regime is the generator in at the start of training? Why does switching the loss not change the generator
# that training converges to?

# %% [answer] id=q_non_saturating points=3
# With the saturating loss the gradient with respect to the logit is $-\sigma(\ell) = -D(G(z))$, which is
# almost zero exactly when $D$ rejects the samples — at the start of training — so the generator gets no
# signal and stalls; the gradient is only large when $D$ is already fooled. The non-saturating loss has
# gradient $-(1 - D(G(z)))$, close to $-1$ when the samples are rejected, so learning is fastest when the
# generator is worst. Both losses are minimised by making $D(G(z))$ large, so they share the same fixed point
# (the generator that fools $D$); only the gradient dynamics differ.

# %% [markdown]
# ## 3. A DCGAN on glyphs
#
# Fully-connected GANs are unstable on images. The DCGAN paper (Radford et al., 2016) found a recipe that
# trains reliably:
#
# * no pooling: the discriminator downsamples with **strided convolutions**, the generator upsamples with
#   **transposed (fractionally strided) convolutions**;
# * **BatchNorm** in both networks, except at the generator's output and the discriminator's input;
# * **ReLU** in the generator with **Tanh** at the output (images in $[-1, 1]$), **LeakyReLU(0.2)** in the
#   discriminator;
# * weights initialised from $\mathcal{N}(0, 0.02)$, Adam with learning rate $2\cdot 10^{-4}$ and
#   $\beta_1 = 0.5$.
#
# `course_lib.dcgan` implements exactly this for $32\times32$ images. Print the two networks:

# %% [code]
from course_lib.dcgan import DCGANConfig, Discriminator, Generator
from course_lib.notebook import figure_title, output_path
from course_lib.viz import save_gif, show_images

cfg = DCGANConfig(channels=1)
print(Generator(cfg))
print(Discriminator(cfg))
print(f"parameters: G {sum(p.numel() for p in Generator(cfg).parameters()):,}, "
      f"D {sum(p.numel() for p in Discriminator(cfg).parameters()):,}")

# %% [markdown]
# The data: $32\times32$ grey images of 20 characters in 16 fonts, with random size, slant, position and a
# small rotation (`course_lib.data.glyphs`; the experiment uses MNIST instead when you pass `mnist_dir`).

# %% [code]
from course_lib.experiments import gan as gan_experiment

preview, preview_labels, _ = gan_experiment.load_images(32, seed=1)
show_images(preview, nrow=16, title="real training images")
plt.show()

# %% [markdown]
# ### Training with your losses
#
# The next cell trains the DCGAN for 2,500 steps with **your** `discriminator_loss` and `generator_loss`
# (about 4–6 minutes on a laptop CPU; seconds on a GPU). To judge the samples without looking, it trains a
# small classifier on real images and measures the **Fréchet distance** (FD) between the classifier's features
# of real held-out images and of generated ones (the idea behind FID). It reports
# `fd_ratio` = FD of an untrained generator / FD of the trained one, and how many of the 20 classes appear
# among the samples (*class coverage*: a collapsed generator covers few).
#
# **At the default settings the experiment reaches `fd_ratio >= 3` and a class coverage of at least 15 of
# 20** (a test of the course package checks this with the reference losses).

# %% [code]
if GRADING:
    print("skipped while grading")
else:
    result = gan_experiment.run(discriminator_loss=discriminator_loss, generator_loss=generator_loss, device=device)
    metrics, history = result["metrics"], result["history"]
    print(gan_experiment.format_metrics({k: metrics[k] for k in ("fd_untrained", "fd_trained", "fd_ratio",
                                                                 "class_coverage")}))

# %% [code]
if not GRADING:
    fig, ax = plt.subplots(figsize=(8, 3))
    smooth = lambda v, k=25: torch.tensor(v).unfold(0, min(k, len(v)), 1).mean(1)   # noqa: E731
    ax.plot(smooth(history.d_loss), label="discriminator loss")
    ax.plot(smooth(history.g_loss), label="generator loss")
    ax.axhline(2 * math.log(2), color="0.6", ls="--", label="D loss when D(x) = 1/2 everywhere")
    ax.set(xlabel="step", title=figure_title("losses (moving average)"))
    ax.legend()
    plt.show()
    step, last = history.snapshots[-1]
    show_images(last[:48], nrow=16, title=figure_title(f"{len(last[:48])} generated samples after {step + 1} steps"))
    plt.show()
    frames = [course_lib.viz.make_grid(s[:32], nrow=8) for _, s in history.snapshots]
    gif = save_gif(frames, output_path("gan_training.gif"), fps=4)
    print(f"training progress written to {gif} (open it to watch the samples form)")

# %% [markdown]
# **Question 2 (written).** In the training loop (`course_lib.dcgan.train_dcgan`) the discriminator step uses
# `fake.detach()`, and the generator step draws fresh noise. (a) What would go wrong if the discriminator
# step did not detach the generated batch? (b) The dashed line in the loss plot marks $2\log 2$. What does
# it mean when the discriminator loss settles near it, and why is a discriminator loss near 0 a bad sign for
# the generator?

# %% [answer] id=q_training_dynamics points=3
# (a) Without the detach, back-propagating the discriminator loss would also run backward through the generator
# and fill its parameters' gradients (with the direction that makes its samples *easier* to reject, the
# discriminator's objective). In `train_dcgan` they never reach the generator's update: its step calls
# `opt_g.zero_grad` before the generator loss's backward (and `opt_d` only updates the discriminator), so they
# are discarded. The cost is a wasted backward pass through G, with the memory of its activations kept for it.
# (In a loop that zeroed the gradients *after* each step, or accumulated them, they would leak into G's update.)
# (b) $2\log 2$ is the loss of a discriminator that outputs 1/2 on everything: it cannot tell real from fake,
# which is the equilibrium of the game. A loss near 0 means the discriminator wins easily: $D(G(z)) \approx 0$,
# and the generator is in the regime of Section 2 (with the saturating loss it would stop learning; with either
# loss it often signals mode collapse or a too-strong discriminator).
