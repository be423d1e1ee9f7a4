# %% [markdown]
# # Assignment 2 — Pretext tasks: rotations and colourisation
#
# Labels are the expensive part of supervised learning: someone has to look at every image. A **pretext
# task** is a problem whose labels come for free from the data itself — rotate an image and ask by how much,
# hide the colours of a video and ask for them back. The task is not interesting in itself; what matters is
# that solving it forces the network to learn features that are useful for the tasks we actually care about.
#
# In this notebook you will
#
# 1. write `rotate_batch`, the label factory of the rotation task, and train a **RotNet** with it;
# 2. measure what the rotation task taught with the standard protocol for self-supervised features
#    (a *linear probe*), and how many labels it saves when the network is fine-tuned on a few;
# 3. write `relative_patch_pairs`, the label factory of **context prediction** (where does this patch sit
#    relative to that one?), and compare what it teaches with what rotations teach;
# 4. write `attention_color_propagation`, which colours a frame by copying colours from another frame, and
#    train a network on grey videos to colourise them that way;
# 5. watch **tracking emerge**: the same copying mechanism, fed object masks instead of colours, follows
#    objects through held-out videos, and we score it like a video segmentation benchmark.
#
# **How this notebook is graded.** The three functions you write (`rotate_batch`, `relative_patch_pairs`,
# `attention_color_propagation`) are graded automatically: the grader extracts your function definitions from
# this file and runs them, in a separate sandboxed process, on many random inputs against a reference
# implementation, including edge cases, gradients and wrong arguments. The `check(...)` cell after each
# function runs a *public* subset of those checks so you get feedback immediately. The loop versions you
# write first are not graded, and neither are the experiments, but the experiments only run once your
# functions work. The written questions are graded by hand.
#
# Do not rename the functions or change their signatures, and keep everything a function needs (imports,
# helpers) at the top level of a code cell.

# %% [readonly]
import math
import os
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

import course_lib
from course_lib.checks import check
from course_lib.notebook import figure_title, optional, output_path
from course_lib.utils import pick_device, seed_everything, smoke_mode

device = pick_device()
SMOKE = smoke_mode()                                                   # tiny settings when COURSE_SMOKE=1
GRADING = os.environ.get("NBGRADER_EXECUTION") in ("autograde", "validate")   # nbgrader skips experiments
seed_everything(0)
print(f"course_lib {course_lib.__version__} | torch {torch.__version__} | device {device} | smoke mode {SMOKE}")

# %% [markdown]
# ## 1. Why pretext tasks, and how to tell whether one worked
#
# A pretext task turns unlabelled data $x$ into training pairs $(t(x), y)$ where both the input and the label
# are computed: $t$ rotates, crops, removes colour. A network trained on these pairs must extract from $t(x)$
# whatever it needs to recover $y$. If the task is chosen well, that is the content of the image: to say
# which way is up in a photo of a dog you have to find the dog's head and legs.
#
# Whether a pretext task "worked" is measured on a task it was *not* trained for, with a fixed protocol:
#
# 1. train the network on the pretext task (no labels);
# 2. **freeze** it and compute the features of one of its layers for a labelled data set;
# 3. train only a **linear classifier** (the *probe*) on these features, and report its accuracy on held-out
#    images.
#
# A linear probe cannot build new features, so its accuracy tells how *linearly accessible* the class
# information is in the frozen representation. The baseline is the same probe on the same layer of a
# **randomly initialised** copy of the network: random convolutions already give features better than raw
# pixels, and the pretext task has to beat that, not chance.

# %% [markdown]
# ## 2. The rotation task
#
# Gidaris et al. (2018) rotate every training image by each of the four quarter turns and train a classifier
# over the four angles. With $R_k$ the rotation by $k \cdot 90°$ counter-clockwise (as `np.rot90` does), one
# batch of $N$ images becomes $4N$ training pairs, kept *image-major* so that the four versions of an image sit
# next to each other:
#
# $$\text{rotated}[4i + k] = R_k(\text{images}[i]), \qquad \text{labels}[4i + k] = k, \qquad k = 0, 1, 2, 3.$$
#
# Only quarter turns are used: on a square image they just move pixels around, without interpolation and
# without empty corners, so the network cannot read the angle from such low-level traces.
#
# A quarter turn of an $H \times W$ array is a **transpose followed by a flip**: turning counter-clockwise
# moves the last column to the first row, i.e. $\text{new}[y, x] = \text{old}[x, W - 1 - y]$. Check it on
# $\begin{pmatrix}1 & 2\\ 3 & 4\end{pmatrix}$: the turned image is $\begin{pmatrix}2 & 4\\ 1 & 3\end{pmatrix}$.
#
# ### First, the loop version (not graded)
#
# Write `rotate_batch_loop` the direct way: for every image and every $k$, turn the image $k$ times with the
# pixel formula above, one pixel at a time. It is slow, but it is the definition, and the next cells compare
# your fast version with it.

# %% [loop] id=rotate_batch

# %% [markdown]
# Try it on one 2×2 image. Turned a quarter counter-clockwise (as `np.rot90` turns), `[[1, 2], [3, 4]]`
# becomes `[[2, 4], [1, 3]]`; two turns give `[[4, 3], [2, 1]]`.

# %% [code]
with optional("rotate_batch_loop"):
    tiny = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])                      # [N=1, C=1, 2, 2]
    tiny_turns, tiny_labels = rotate_batch_loop(tiny)
    for k in range(4):
        print(f"label {int(tiny_labels[k])}: {tiny_turns[k, 0].int().tolist()}")

# %% [markdown]
# ### Task 1: `rotate_batch`
#
# Now the graded, vectorised version: no Python loop over images or pixels. `torch.rot90(x, k, dims=(-2, -1))`
# turns every image of a batch at once; stacking the four results along a new dimension 1 and reshaping
# gives the image-major order. The labels are `int64` on the
# images' device. Any dtype must work (including `uint8` images), the input must not be modified, and a
# non-square image or a tensor that is not 4-D raises a `ValueError` whose message names `images` and the
# shape it got.

# %% [scaffold] id=rotate_batch

# %% [readonly]
check("rotate_batch", rotate_batch)

# %% [tests] id=rotate_batch

# %% [markdown]
# Do the loop and the vectorised version agree, and what does vectorising buy?

# %% [code]
with optional("rotate_batch_loop"):
    x = torch.randn(6, 3, 16, 16, dtype=torch.float64)
    loop_out, loop_labels = rotate_batch_loop(x)
    fast_out, fast_labels = rotate_batch(x)
    print("values agree:", torch.equal(loop_out, fast_out) and torch.equal(loop_labels, fast_labels))
    t0 = time.perf_counter()
    rotate_batch_loop(x)
    t_loop = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(20):
        rotate_batch(x)
    t_fast = (time.perf_counter() - t0) / 20
    print(f"loop {1e3 * t_loop:.1f} ms, vectorised {1e3 * t_fast:.3f} ms: {t_loop / t_fast:.0f}x faster")

# %% [markdown]
# The data for this part: $32 \times 32$ colour images of 20 characters in 16 fonts, with random colours,
# textures, size, slant and a small tilt (`course_lib.data.glyphs`). The tilt stays within $\pm 25°$, far from
# a quarter turn, and the 20 characters are chosen so that none looks like another one turned (no 6 and 9,
# no N and Z). Here is one batch through your `rotate_batch`, with the labels it produced:

# %% [code]
from course_lib.data import glyphs
from course_lib.viz import save_gif, show_images

sample = glyphs(n=6, size=32, seed=5)
rotated, labels = rotate_batch(sample.images)
fig, axes = plt.subplots(6, 4, figsize=(5, 7.5))
for ax, img, k in zip(axes.flat, rotated, labels):
    ax.imshow(img.permute(1, 2, 0))
    ax.set_title(f"k = {k.item()}  ({90 * k.item()}°)", fontsize=8)
    ax.axis("off")
plt.suptitle("rotate_batch: rows are images, columns quarter turns", fontsize=10)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 3. A RotNet on glyphs, and a linear probe
#
# `course_lib.experiments.rotation` trains a small conv net — four blocks of conv3x3, BatchNorm, ReLU with
# max-pooling in between, then a linear layer over the four angles — on glyphs turned by **your**
# `rotate_batch`. The class labels are never used for this. Then it freezes the network and trains a linear
# probe (multinomial logistic regression, solved to convergence) on the features of each block, average-pooled
# to a $4 \times 4$ grid and standardised, using 2,000 labelled images, and tests it on 2,000 held-out ones.
# The same probes on a randomly initialised twin are the baseline.
#
# **Which layer?** Gidaris et al. found classifiers on frozen RotNet features most accurate on an
# *intermediate* block and less accurate on the last blocks: the last layers specialise in the pretext task
# itself (where is "up"?), while the middle of the network holds the general description of shapes and parts
# the rotation task needed. The headline number therefore probes **block 3 of 4**; the plot below shows every
# block. (Our network is shallow and
# its head is a single linear layer, so here the last block loses little; the early blocks, which only see
# small patches, are clearly worse.)

# %% [code]
from course_lib.experiments import rotation as rotation_experiment

print(rotation_experiment.RotNet(in_channels=3, width=32))

# %% [markdown]
# **At the default settings (about two to three minutes on a laptop CPU) the probe on block 3 of the RotNet
# beats the probe on block 3 of the random-init network by at least 15 points of held-out accuracy** (20
# classes, chance 5%). A test of the course package checks this with the reference `rotate_batch`; with it we
# measured about 96% against 48% (95% against 42% with another seed).

# %% [code]
if GRADING:
    print("skipped while grading")
else:
    rot = rotation_experiment.run(rotate_batch, device=device)
    m = rot["metrics"]
    print(f"RotNet predicts the quarter turn of held-out images with accuracy {m['rotation_acc']:.3f} (chance 0.25)")
    print(rotation_experiment.format_metrics({"probe_acc_rotnet": m["probe_acc_rotnet"],
                                              "probe_acc_random": m["probe_acc_random"]}))

# %% [code]
if not GRADING:
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    losses = torch.tensor(rot["losses"])
    axes[0].plot(losses.unfold(0, min(20, len(losses)), 1).mean(1))
    axes[0].axhline(math.log(4), color="0.6", ls="--", label="chance: log 4")
    axes[0].set(xlabel="step", ylabel="cross-entropy", title="rotation loss (moving average)")
    axes[0].legend()
    blocks = sorted(rot["per_block"])
    width = 0.38
    axes[1].bar([b - width / 2 for b in blocks], [rot["per_block"][b][0] for b in blocks], width, label="RotNet")
    axes[1].bar([b + width / 2 for b in blocks], [rot["per_block"][b][1] for b in blocks], width, label="random init")
    axes[1].axhline(m["chance"], color="0.6", ls="--", label="chance")
    axes[1].set(xlabel="block", ylabel="held-out accuracy", title="linear probe on frozen features",
                xticks=blocks, ylim=(0, 1.15))
    axes[1].legend(ncol=3, loc="upper center", fontsize=8)
    plt.tight_layout()
    plt.show()

# %% [markdown]
# **Question 1 (written).** (a) The glyphs are tilted by at most $\pm 25°$, and the characters were chosen so
# that no character turned by a quarter turn looks like another one. Explain what would happen to the
# rotation task, and to the features it teaches, if the data contained images already turned by arbitrary
# multiples of $90°$ (for example scanned documents in random orientation), or a 6 and a 9. (b) Name one
# *shortcut* a RotNet could use to predict the angle without understanding the object, and how the pretext
# task or the data could remove it.

# %% [answer] id=q_rotation_shortcuts points=3
# (a) The label $k$ is only meaningful relative to an upright canonical orientation. If the data already
# came in random quarter turns, an image turned by $k$ would look exactly like another image turned by
# $k' \ne k$: the labels would be noise, the best possible accuracy would drop towards chance and the network
# would get no consistent signal about what "up" looks like, so it would not learn object structure. A 6 turned
# by 180° *is* a 9, so those two inputs would carry contradictory labels; the task becomes ambiguous for
# them. (b) Examples: low-level cues that have an absolute orientation — a lighting gradient (light comes
# from above), vignetting or sensor noise patterns, JPEG block artefacts, chromatic aberration, or the
# empty/black corners and interpolation blur that a non-quarter rotation would leave; in glyph-like data,
# a text baseline or a padding border at one side. The network can read the angle from these without
# recognising the object. Remedies: rotate only by quarter turns (no interpolation or corners), random
# crops and colour/blur augmentations that destroy the low-level cue, crop away borders, or check that a
# network which only sees tiny patches cannot solve the task.

# %% [markdown]
# ### The same probe on real photos
#
# Glyphs are easy for the rotation task: every character has an obvious top. On photographs the lesson holds,
# but at laptop scale it is much smaller. You can run the experiment on 12,000 CIFAR-10 images (1,200 per
# class, from the JPEG archive of the course's sample data, or any `<class>/<image>` folder) with
#
# ```
# python -m course_lib.experiments.rotation --images cifar10_jpg_train.tar.gz --n-per-class 1200 [--steps N]
# ```
#
# At the notebook's budget (600 steps, about two minutes), **the block-3 probe of the RotNet reaches 0.55 on
# CIFAR-10 against 0.47 for the random-init network** (chance 0.10; a test of the course package checks a gain
# of at least 4 points): a real gain, but 8 points where the glyphs gave 48. Photos are harder (an airplane has
# no single "up" in a $32 \times 32$ thumbnail, and much of a photo is sky or grass, which looks the same turned),
# random convolutions are already a strong baseline on them, and Gidaris et al. trained for many epochs on all
# 50,000 images — our 600 steps of 32 images are less than a third of one pass over 12,000. Much of the gap
# is budget: with four times the steps (`--steps 2400`, about a quarter of an hour on one CPU core) the block-3
# probe reaches 0.59 against 0.47, a gain of 12 points instead of 8 (measured once; the tests re-measure only
# the notebook's budget).

# %% [markdown]
# ## 4. How many labels does the pretext task save?
#
# A linear probe asks how much a frozen network already knows. The practical question is different: I have
# a few labelled images, and I may train the whole network on them — does starting from the RotNet help?
# `course_lib.experiments.label_efficiency` takes blocks 1–3 of the RotNet you just trained, puts a new linear
# classifier on their $4 \times 4$ pooled output (the layer the probe read), and **fine-tunes every layer** on
# $k$ labelled images per class ($k$ = 2, 10 and 50, i.e. 40, 200 and 1,000 images), with random crops, for 100
# steps. The same network at its random initialisation gets exactly the same images, crops, steps and learning
# rate. Both are tested on the 2,000 held-out images of section 3.
#
# **At the default settings the RotNet initialisation is ahead at every $k$, by at least 12 points with two
# labels per class, and with 10 labels per class it is about as accurate as the random initialisation with 50**
# (a test of the course package checks this; we measured 0.28 against 0.07 with 2 labels per class, 0.71
# against 0.38 with 10, and 0.88 against 0.70 with 50). That is the lecture's label-efficiency slide: the
# pretext task saves labels — here about five times fewer for the same accuracy — and the advantage shrinks
# once labels become plentiful (21, 33, then 18 points; Gidaris et al. 2018 found RotNet features ahead of
# purely supervised training on CIFAR-10 when there were few labels per class). With two labels per class neither network does well, but the randomly initialised one is
# barely above chance. This takes about a minute.

# %% [code]
from course_lib.experiments import label_efficiency

if GRADING:
    print("skipped while grading")
else:
    few = label_efficiency.run(rotnet=rot["rotnet"], device=device, progress=False)
    for k, a, b in zip(few["labels_per_class"], few["rotnet"], few["random"]):
        print(f"{k:3d} labels per class: fine-tuned from the RotNet {a:.3f}, from random init {b:.3f}")
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    ax.plot(few["labels_per_class"], few["rotnet"], "o-", label="RotNet initialisation")
    ax.plot(few["labels_per_class"], few["random"], "s-", label="random initialisation")
    ax.axhline(few["metrics"]["chance"], color="0.6", ls="--", label="chance")
    ax.set(xscale="log", xticks=few["labels_per_class"], xticklabels=few["labels_per_class"], ylim=(0, 1),
           xlabel="labelled images per class", ylabel="held-out accuracy",
           title=figure_title("fine-tuning every layer on few labels"))
    ax.legend(fontsize=8)
    plt.show()

# %% [markdown]
# On CIFAR-10 (`python -m course_lib.experiments.label_efficiency --images cifar10_jpg_train.tar.gz
# --n-per-class 1200`, which trains the RotNet first) the advantage is smaller but keeps its shape: **the RotNet
# initialisation is ahead at every $k$, by 7 points with 2 and with 10 labels per class and by 4 points with 50**
# (0.24 against 0.16, 0.38 against 0.31, 0.48 against 0.43; chance 0.10; a test of the course package checks that
# it wins at every $k$).
#
# ## 5. Context prediction: where does this patch go?
#
# Rotations are one pretext task among many. Doersch et al. (2015) asked a question about *parts*: cut a
# $3 \times 3$ grid of patches out of an image, show the network the **centre** patch and one of its **eight
# neighbours**, and ask where the neighbour was. Show it a cat's face and a patch with an ear: the ear goes
# *above*. Nobody has to label anything — the position is known because we cut the patches — but to answer, the
# network has to know what faces and ears look like and how they are arranged.
#
# Two details keep the task honest. There is a **gap** between the cells, so the network cannot just continue
# an edge or a texture across the border between two patches; and Doersch et al. also **jittered** each patch
# by a few pixels, so that the exact alignment gives nothing away.
#
# The contract: a grid of `patch` $\times$ `patch` cells, `gap` pixels apart, centred in the image. With
# $s = $ `patch + gap`, the grid starts at
#
# $$y_0 = \Big\lfloor \frac{H - 3\,\text{patch} - 2\,\text{gap}}{2} \Big\rfloor, \qquad
#   x_0 = \Big\lfloor \frac{W - 3\,\text{patch} - 2\,\text{gap}}{2} \Big\rfloor,$$
#
# cell $(r, c)$ covers rows $y_0 + r s, \dots, y_0 + r s + \text{patch} - 1$ and columns
# $x_0 + c s, \dots, x_0 + c s + \text{patch} - 1$, the centre is cell $(1, 1)$, and label $k$ is the $k$-th
# neighbour in row-major order, skipping the centre:
#
# | | | |
# |---|---|---|
# | 0: (0, 0) | 1: (0, 1) | 2: (0, 2) |
# | 3: (1, 0) | centre | 4: (1, 2) |
# | 5: (2, 0) | 6: (2, 1) | 7: (2, 2) |
#
# Here is the grid on a $64 \times 64$ glyph with 16-pixel cells and 4-pixel gaps:

# %% [code]
from matplotlib.patches import Rectangle

big = glyphs(n=3, size=64, seed=11).images                               # [3, 3, 64, 64]
patch_demo, gap_demo = 16, 4
step_demo = patch_demo + gap_demo
y0_demo = x0_demo = (64 - 3 * patch_demo - 2 * gap_demo) // 2
cells = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2)]   # label k -> (row, column)
fig, ax = plt.subplots(figsize=(3.6, 3.6))
ax.imshow(big[0].permute(1, 2, 0))
for k, (r, c) in enumerate(cells + [(1, 1)]):
    corner = (x0_demo + c * step_demo - 0.5, y0_demo + r * step_demo - 0.5)
    ax.add_patch(Rectangle(corner, patch_demo, patch_demo, fill=False, lw=2,
                           edgecolor="white" if k == 8 else "tab:orange"))
    ax.text(corner[0] + 2, corner[1] + 5, "centre" if k == 8 else str(k), color="white", fontsize=8,
            bbox={"facecolor": "black", "alpha": 0.5, "pad": 1})
ax.set_title("3 x 3 grid, gap 4: labels of the neighbours", fontsize=9)
ax.axis("off")
plt.show()

# %% [markdown]
# ### Task 2: `relative_patch_pairs`
#
# Write the label factory: for each image $n$ of the batch, return its centre cell and the neighbour cell with
# label `positions[n]`. The centre is one slice for the whole batch. The neighbours differ per image: turn the
# labels into grid rows and columns ($k \mapsto$ cell $k$ for $k < 4$ and $k + 1$ otherwise, then
# `// 3` and `% 3`), build each image's row and column indices with `torch.arange(patch)`, and gather all
# crops at once with advanced indexing — no Python loop over images or pixels. Return copies (not views of the
# input), keep the dtype and device of `images`, let gradients flow to `images`, and raise a `ValueError` that
# names the argument when the grid does not fit, `patch < 1`, `gap < 0`, a label is outside 0..7 or
# `positions` is not an integer `[N]` tensor.

# %% [scaffold] id=relative_patch_pairs

# %% [readonly]
check("relative_patch_pairs", relative_patch_pairs)

# %% [tests] id=relative_patch_pairs

# %% [markdown]
# Your function, asked for all eight neighbours of the glyph above: put back in their cells (with white gaps),
# the crops must rebuild the grid of the picture.

# %% [code]
center_demo, neighbor_demo = relative_patch_pairs(big[:1].repeat(8, 1, 1, 1), torch.arange(8), patch_demo,
                                                  gap_demo)                # [8, 3, 16, 16] each
canvas = torch.ones(3, 3 * patch_demo + 2 * gap_demo, 3 * patch_demo + 2 * gap_demo)
for crop, (r, c) in zip(list(neighbor_demo) + [center_demo[0]], cells + [(1, 1)]):
    canvas[:, r * step_demo : r * step_demo + patch_demo, c * step_demo : c * step_demo + patch_demo] = crop
fig, axes = plt.subplots(1, 9, figsize=(12, 1.8))
axes[0].imshow(canvas.permute(1, 2, 0))
axes[0].set_title("reassembled", fontsize=8)
for k, ax in enumerate(axes[1:]):
    ax.imshow(torch.cat([center_demo[k], torch.ones(3, patch_demo, 2), neighbor_demo[k]], 2).permute(1, 2, 0))
    ax.set_title(f"centre | label {k}", fontsize=8)
for ax in axes:
    ax.axis("off")
plt.show()

# %% [markdown]
# ### Training on glyphs, and the same probe as the RotNet
#
# `course_lib.experiments.context_prediction` trains the **same four conv blocks** as the RotNet on pairs of
# $8 \times 8$ cells, 2 pixels apart, cut from the $32 \times 32$ glyphs by **your** `relative_patch_pairs`
# (each image gives all eight pairs; the grid moves by up to 2 pixels per batch, the jitter). Each patch goes
# through the conv blocks separately (shared weights), the two feature vectors are concatenated, and a small
# MLP predicts the label. Then the blocks, trained on patches, are applied to **whole images** and judged with
# exactly the probe of section 3: block 3, the same 2,000 labelled and 2,000 held-out images — next to the
# RotNet of section 3 and the random-init network.
#
# **At the default settings (about half a minute on a laptop CPU, reusing the RotNet) the context-prediction
# features beat the random-init network by at least 25 points of probe accuracy, and stay below the RotNet's**
# (a test of the course package checks this with the reference functions; we measured 0.87 for context
# prediction, 0.96 for the RotNet and 0.48 at random initialisation, with 59% of the relative positions of
# held-out patches right, chance 12.5%).

# %% [code]
from course_lib.experiments import context_prediction as context_experiment

if GRADING:
    print("skipped while grading")
else:
    ctx = context_experiment.run(relative_patch_pairs=relative_patch_pairs, rotation_result=rot, device=device,
                                 progress=False)                       # section 3's RotNet and its probes
    cm = ctx["metrics"]
    print(f"relative position of held-out patches: accuracy {cm['context_acc']:.3f} (chance 0.125)")
    print(f"block-3 linear probe: context prediction {cm['probe_acc_context']:.3f}, RotNet "
          f"{cm['probe_acc_rotnet']:.3f}, random init {cm['probe_acc_random']:.3f} (chance {cm['chance']:.3f})")

# %% [markdown]
# Without a single label, and without ever seeing a whole glyph, the context network's blocks went from 48% to
# 87% probe accuracy on whole images. The rotation task taught more here; Question 2 asks you why that could be.
#
# **On real photos, at this budget, context prediction does not help.** On 12,000 CIFAR-10 images
# (`python -m course_lib.experiments.context_prediction --images cifar10_jpg_train.tar.gz --n-per-class 1200`,
# which also trains the RotNet) the network still learns the task (59% of held-out relative positions right),
# but the block-3 probe on its features, 0.45, is no better than on the random-init network, 0.47, while the
# RotNet's reaches 0.55 (chance 0.10). An $8 \times 8$ cell of a $32 \times 32$ photo holds a few blurry
# pixels of an object: relative positions can be guessed from low-level cues (a horizon, a brightness gradient),
# and what the blocks learn on such cells does not carry over to whole images. Doersch et al. cut
# $96 \times 96$ patches out of full-resolution ImageNet photos and trained for weeks on a GPU; we did not find a
# laptop-scale setting where the method beats random features on CIFAR-10.
#
# **Jigsaw puzzles and inpainting are the same idea with other labels.** Noroozi & Favaro (2016) cut the same
# $3 \times 3$ grid, shuffle all nine cells with one of a fixed set of permutations, and ask *which permutation*
# — every cell has to be placed relative to all the others. Pathak et al. (2016) remove the centre and ask the
# network to *paint it back* from the context (a regression instead of a classification). In all three, the
# data are cut up in a way we control, and the label is how we cut them.
#
# **Question 2 (written).** (a) Doersch et al. found that their network could tell where a patch came from
# without looking at its content, from *chromatic aberration*: camera lenses focus colours slightly
# differently, so green and magenta fringes shift towards or away from the image centre. Why does that reveal
# a patch's position, and name one way to take this shortcut away. (b) Why does `relative_patch_pairs` leave a
# gap between the cells, and what would the network learn without it? (c) The RotNet's features probed better
# than the context-prediction features here. Give one reason related to what each network sees during training.

# %% [answer] id=q_context_shortcuts points=3
# (a) Chromatic aberration displaces the colour channels radially, by an amount that grows with the distance
# from the lens centre, so the direction and size of the colour fringes encode where in the frame a patch was:
# the network can predict the relative position of two patches by comparing their fringes, without
# recognising anything. Remedies used by Doersch et al.: drop colour information (project out the green-magenta
# axis, or randomly replace two of the three channels by noise or grey), or train on greyscale patches. (b)
# Without a gap the two patches share a border: lines, edges and textures continue across it, so matching
# low-level boundary pixels (like solving a jigsaw by its edges) solves the task without any knowledge of
# objects. The gap (and the jitter of each patch) forces the net to reason about what the patches show. (c) Any
# one of: the context net only ever sees 8 x 8 patches, a small part of a glyph, so its blocks never see a
# whole character in training, while the probe applies them to whole images (a change of input statistics,
# also for BatchNorm); the RotNet's task needs the global shape of the whole character (which way is up), the
# probe's label; several neighbours of a glyph cell are plain background, so some pairs are ambiguous and
# teach little.

# %% [markdown]
# ## 6. Colour as a free label: the Lab colour space
#
# A colour video contains its own labels for a second pretext task: remove the colour and predict it back.
# Colourisation is done in the **CIE Lab** space, where $L$ is the *lightness* (0 black to 100 white) and $a$,
# $b$ are two colour-opponent axes (green–red and blue–yellow, roughly $-100$ to $100$). Lab is built so
# that equal distances mean roughly equally visible differences, and it splits an image into the part a
# grey camera sees ($L$) and the colour on top of it ($ab$). The network gets $L$ and predicts $ab$
# (Zhang et al., 2016): all the structure is in the input, and the answer is just colour.
#
# Colour is *ambiguous*: a shirt could be red or blue. A network trained to regress $ab$ with a squared
# error predicts the average of the possible answers — a dull grey-brown. Zhang et al. therefore predict a
# **distribution over quantised colours** instead: the $ab$ plane is divided into bins, and the loss is the
# negative log-likelihood of the true bin. We use $K = 16$ colour clusters found by k-means on the $ab$
# values of training frames, as Vondrick et al. do. The next cell splits a frame of a sprite video into its
# channels, and shows that the 16 cluster centres are enough to repaint it.

# %% [code]
from course_lib import lab_to_rgb, rgb_to_lab
from course_lib.data import sprite_videos
from course_lib.experiments.colorization import ColorQuantizer

clips = sprite_videos(n_videos=4, n_frames=16, size=64, seed=1)
frame = clips.frames[0, 0]                                              # [3, 64, 64]
lab = rgb_to_lab(frame[None])[0]                                        # [3, 64, 64]: L, a, b
quantizer = ColorQuantizer.fit(clips.frames, n_colors=16)
ids = quantizer.encode(frame[None])                                     # [1, 64, 64] cluster ids
ab_quantised = quantizer.centers[ids[0]].permute(2, 0, 1)               # [64, 64, 2] -> [2, 64, 64]
repainted = lab_to_rgb(torch.cat([lab[:1], ab_quantised])[None])[0]
grey = lab_to_rgb(torch.cat([lab[:1], torch.zeros(2, 64, 64)])[None])[0]

fig, axes = plt.subplots(1, 6, figsize=(15, 2.8))
panels = [(frame.permute(1, 2, 0), "RGB frame", None), (lab[0], "L (lightness)", "gray"),
          (lab[1], "a (green - red)", "PiYG_r"), (lab[2], "b (blue - yellow)", "cividis"),
          (grey.permute(1, 2, 0), "L only (a = b = 0)", None),
          (repainted.permute(1, 2, 0), "L + 16 quantised colours", None)]
for ax, (img, title, cmap) in zip(axes, panels):
    ax.imshow(img, cmap=cmap)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 7. Colourising a video by copying colours
#
# Colourising one image asks *what colour is this kind of thing*. Vondrick et al. (2018) ask a different
# question: given the colours of a **reference frame** of the same video, colour the **target frame** by
# *copying*. A network $f$ maps each grey frame to a grid of feature vectors; every target position $j$
# looks at all reference positions $i$, weighs them by feature similarity, and takes the weighted average of
# their colours $c_i$:
#
# $$A_{ij} = \frac{\exp(\langle f^\text{ref}_i, f^\text{tgt}_j\rangle / \tau)}{\sum_{i'} \exp(\langle f^\text{ref}_{i'}, f^\text{tgt}_j\rangle / \tau)},
# \qquad \hat c_j = \sum_i A_{ij}\, c_i .$$
#
# The softmax runs over the **reference** positions $i$ (for each target position, its weights sum to 1), so
# every $\hat c_j$ is a convex combination of reference colours. The "colours" can be anything defined per
# position: Lab values, one-hot colour clusters, or one-hot **object labels**. Positions are flattened
# row-major ($i = y \cdot W + x$), the same way for features and colours.
#
# ### First, the loop version (not graded)
#
# Write `attention_color_propagation_loop` from the formula: for every batch element and every target
# position, compute the scores against every reference position, a softmax (subtract the largest score
# before `exp`, so it cannot overflow), and the weighted sum of the reference colours.

# %% [loop] id=attention_color_propagation

# %% [markdown]
# A quick test of the loop version: when the target frame *is* the reference frame and the features are unit
# vectors, each position is most similar to itself, and at a low temperature the attention copies every colour
# to where it already was.

# %% [code]
with optional("attention_color_propagation_loop"):
    unit_feats = F.normalize(torch.randn(1, 16, 3, 3, dtype=torch.float64), dim=1)      # [B, D, H, W], unit length
    demo_colours = torch.rand(1, 3, 3, 3, dtype=torch.float64)                             # [B, C, H, W]
    copied = attention_color_propagation_loop(unit_feats, unit_feats, demo_colours, temperature=0.01)
    print("identical frames at temperature 0.01 copy the colours:", torch.allclose(copied, demo_colours, atol=1e-4))

# %% [markdown]
# ### Task 3: `attention_color_propagation`
#
# Now vectorise it: flatten the spatial dimensions (`reshape`), compute all scores of a batch element with
# one batched matrix product (`torch.bmm`), take `torch.softmax` over the reference axis, and multiply the
# flattened colours by the attention matrix. `torch.softmax` subtracts the maximum internally, which keeps
# it finite for feature norms up to $10^3$ and temperatures down to $10^{-3}$. Wrong ranks, mismatched
# batch / feature / spatial sizes and `temperature <= 0` raise a `ValueError` that names the argument.

# %% [scaffold] id=attention_color_propagation

# %% [readonly]
check("attention_color_propagation", attention_color_propagation)

# %% [tests] id=attention_color_propagation

# %% [markdown]
# Loop against vectorised, on a 10x10 reference and target:

# %% [code]
with optional("attention_color_propagation_loop"):
    g = torch.Generator().manual_seed(0)
    args = (torch.randn(2, 8, 10, 10, generator=g, dtype=torch.float64),
            torch.randn(2, 8, 10, 10, generator=g, dtype=torch.float64),
            torch.rand(2, 3, 10, 10, generator=g, dtype=torch.float64), 0.5)
    t0 = time.perf_counter()
    loop_out = attention_color_propagation_loop(*args)
    t_loop = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(20):
        fast_out = attention_color_propagation(*args)
    t_fast = (time.perf_counter() - t0) / 20
    print("values agree:", torch.allclose(loop_out, fast_out))
    print(f"loop {1e3 * t_loop:.0f} ms, vectorised {1e3 * t_fast:.2f} ms: {t_loop / t_fast:.0f}x faster")

# %% [markdown]
# ### Training the colouriser
#
# `course_lib.experiments.colorization` trains a small conv net $f$ (grey frame in, unit-length 32-d features
# at half resolution out; dilated convolutions give each feature a view of about 60 pixels) on 256 sprite
# videos: clips of textured shapes that move, spin, bounce and occlude each other. Each step takes pairs of
# frames of a clip, 1 to 3 frames apart, and copies the reference's colour clusters (one-hot, averaged over
# each $2 \times 2$ cell) to the target with **your** `attention_color_propagation` ($\tau = 0.05$). The
# result is a probability $p_j(k)$ for every colour cluster $k$ at each of the $N$ target positions $j$, and
# the loss is the negative log-likelihood of the true cluster $k_j$:
#
# $$\mathcal{L} = \frac{1}{N} \sum_{j=1}^{N} -\log\big(p_j(k_j) + \varepsilon\big).$$
#
# This is *not* `F.cross_entropy`, which expects unnormalised logits: the copied $p_j$ is already a
# probability distribution, and the small $\varepsilon$ keeps the loss finite where the copy put no mass on
# the true colour.
#
# ### Tracking emerges
#
# To copy the right colour, $f$ has to find *the same point of the same object* in the reference frame —
# exactly what a tracker does. So after training on colours, we feed the same mechanism **object masks**:
# the first frame's mask, one-hot per object id, is copied to frame 1, the prediction to frame 2, and so on
# (each frame copies from the first frame and from the previous one, placed side by side as one reference).
# We score the propagated masks on 32 held-out clips with the **J measure** of the DAVIS benchmark: the
# intersection over union with the true mask, averaged over objects and frames (the given first frame is
# left out). Baselines: the same propagation with raw grey pixels as features (the very input $f$ sees), with
# raw *colour* pixels (information $f$ never gets), and simply copying the first mask unchanged.
#
# **At the default settings (about three to four minutes on a laptop CPU), the learned features reach a J at
# least 0.2 higher than both the grey-pixel baseline and the copied first mask on held-out sprite videos.** A
# test of the course package checks this with the reference function; we measured J ≈ 0.59 for the learned
# features against 0.19 for grey pixels and 0.15 for the copied mask (0.54, 0.16 and 0.17 with other seeds for
# the clips and the network).

# %% [code]
from course_lib.experiments import propagation as propagation_experiment
from course_lib.experiments.colorization import predict_colors

if GRADING:
    print("skipped while grading")
else:
    prop = propagation_experiment.run(attention_color_propagation, device=device)
    pm = prop["metrics"]
    print(propagation_experiment.format_metrics(pm))

# %% [code]
if not GRADING:
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    losses = torch.tensor(prop["losses"])
    axes[0].plot(losses.unfold(0, min(20, len(losses)), 1).mean(1))
    axes[0].set(xlabel="step", ylabel="-log p(true colour)", title="colourisation loss (moving average)")
    names = {"j_mean": "learned", "j_pixels": "grey pixels", "j_pixels_lab": "colour pixels", "j_copy": "copy mask 0"}
    axes[1].bar(list(names.values()), [pm[k] for k in names], color=["C0", "C1", "C2", "C7"])
    axes[1].set(ylabel="J (mean IoU)", ylim=(0, 1), title="mask propagation on held-out clips")
    plt.tight_layout()
    plt.show()
    # colourisation: the first frame of each test clip gives the colours of a frame 3 steps later
    ref_frames, tgt_frames = clips.frames[:, 0], clips.frames[:, 3]      # held-out clips from section 6
    predicted = predict_colors(prop["net"], prop["quantizer"], ref_frames, tgt_frames, attention_color_propagation)
    grey_tgt = lab_to_rgb(torch.cat([rgb_to_lab(tgt_frames)[:, :1], torch.zeros(4, 2, 64, 64)], 1))
    rows = torch.stack([ref_frames, grey_tgt, predicted, tgt_frames], 1).reshape(-1, 3, 64, 64)   # [4*4, 3, H, W]
    show_images(rows, nrow=4, figsize=(7, 7),
                title="reference | grey target | copied colours | true target")
    plt.show()

# %% [code]
if not GRADING:
    from IPython.display import Image, display

    clip, truth = prop["frames"][0], prop["masks"][0]                   # [T, 3, H, W], [T, H, W]
    preds = prop["predictions"]
    paint = propagation_experiment.paint_masks
    panels = [clip, paint(truth), paint(preds["j_mean"][0]), paint(preds["j_pixels"][0])]
    movie = torch.cat(panels, dim=-1)                                   # [T, 3, H, 4W]: side by side
    show_images(movie[:: max(1, len(movie) // 5)], nrow=1, figsize=(8, 10),
                title="frame | true masks | learned features | grey pixels")
    plt.show()
    gif = save_gif(list(movie), output_path("mask_propagation.gif"), fps=4)
    display(Image(filename=str(gif)))

# %% [markdown]
# Colour pixels do better still on these clips, and that is worth understanding: every sprite of a clip was
# given its own hue, so on this synthetic data colour alone identifies the object. The colouriser never sees
# colour — it has to recognise shapes and textures in grey. On real video, where a silver car drives on a grey
# road or a cream dog walks on dry grass, colour is a much weaker cue. You can try a real sequence of the
# DAVIS benchmark (a folder in DAVIS layout) with
#
# ```
# python -m course_lib.experiments.propagation --davis DAVIS_DIR --sequence car-shadow [--finetune-steps 200] [--gif car.gif]
# ```
#
# which trains on sprites as above, optionally fine-tunes the colouriser on the sequence's own frames (still
# without labels), propagates the first mask through the sequence at 96 pixels high, and prints the same four
# J values. On three DAVIS-2016 sequences, the sprite-trained net of the default settings gave:
#
# | sequence (frames) | learned | grey pixels | colour pixels | copy first mask |
# |---|---|---|---|---|
# | car-shadow (40) | 0.71 | 0.00 | 0.15 | 0.41 |
# | blackswan (50) | 0.70 | 0.01 | 0.86 | 0.55 |
# | dog (60) | 0.64 | 0.56 | 0.59 | 0.32 |
#
# Features learned in a few minutes on cartoon shapes beat copying the mask on all three and colour on two;
# colour wins only on the black swan in green water, and fails on the silver car, which matches the road and
# the white buildings behind it. Grey pixels lose the object within a few frames on two sequences: one
# lightness value matches too many background pixels, so the object's share of the copied labels drops below
# one half and the mask vanishes. Fine-tuning does not always help: 200 steps on car-shadow's own frames
# *lowered* its J to 0.59 — a grey car on a grey road gives colourisation almost nothing to learn from (see
# Question 3). Three short sequences at low resolution are an anecdote, not a benchmark result; Vondrick et
# al. report J on the full DAVIS-2017 validation set with a ResNet trained on Kinetics.

# %% [markdown]
# **Question 3 (written).** (a) Explain why learning to colourise by *copying* from a reference frame forces
# the features to track objects, whereas colourising a single frame (Zhang et al.) does not. (b) Describe two
# situations in which colour copying gives a wrong or no training signal for tracking, and what goes wrong
# in each.

# %% [answer] id=q_tracking_emerges points=3
# (a) The copying model has no colour knowledge of its own: the only way to put the right colour at a target
# position is to give the highest attention to reference positions that show the *same* surface point, so
# the features must match the same object (and part) across frames despite motion, rotation and changes of
# shading — the correspondence problem a tracker solves. A single-image colouriser can instead learn
# category priors ("sky is blue, grass is green") from one frame; nothing rewards it for matching instances
# across time. (b) Colour-ambiguous objects: if two objects (or an object and the background) have the same
# colour, copying from the wrong one gives the same, correct colour, so the loss does not punish confusing
# them and the features need not tell them apart — tracking then jumps between look-alike objects.
# Occlusion and disocclusion: a target pixel whose surface is hidden in the reference (it was behind
# another object, or entered the frame) has no true match, so the model is pushed to copy from some
# similar-looking wrong place; the same happens with large appearance changes (lighting, motion blur) and
# with grey or colourless scenes, where every match gives the same colour and the signal vanishes.

# %% [markdown]
# **Question 4 (written).** The softmax in `attention_color_propagation` normalises over the reference
# positions $i$, not over the target positions $j$. What property of the output does this guarantee, why
# does label propagation need it, and what would go wrong with the other axis?

# %% [answer] id=q_attention_axis points=2
# Normalising over $i$ makes the weights of every target position non-negative and sum to 1, so each output
# is a convex combination of reference colours: one-hot labels become a probability distribution over the
# labels (summing to 1, argmax meaningful), colours stay inside the range of the reference colours, and a
# constant reference colour is reproduced exactly. Every target position must receive exactly one unit of
# "colour" whatever happens elsewhere in the frame. Normalising over $j$ would instead distribute each
# reference position's colour over the target positions: the outputs of a target position would no longer
# sum to 1 (positions similar to many reference pixels get too much mass, others almost none), their scale
# would depend on the target frame's size, and the labels could not be read as probabilities.
