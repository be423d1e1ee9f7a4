# %% [markdown]
# # Assignment 4 — Neural rendering
#
# A neural radiance field (NeRF) stores a 3-D scene inside a small neural network: asked about a point in
# space, the network answers how dense the space is there and which colour it emits. A picture is made by
# shooting a ray through every pixel, querying the network at points along the ray and adding the answers up
# the way light is absorbed in fog. Every step of that computation is differentiable, so the network can be
# fitted to a set of photos by gradient descent, and then shows the scene from viewpoints no photo was taken
# from.
#
# In this notebook you will write every stage of that pipeline and then assemble them:
#
# 1. a pinhole camera and its rays (`get_rays`);
# 2. where along a ray to look (`sample_stratified`);
# 3. how a coordinate network can represent fine detail (`positional_encoding`), first on a 2-D image;
# 4. how densities and colours become a pixel (`volume_render`), and where to look more closely
#    (`sample_pdf`);
# 5. a TinyNeRF made of your five functions, trained on a synthetic scene and judged on views it never saw;
# 6. surfaces as signed distance functions, rendered by `sphere_trace`;
# 7. (ungraded) learned priors: one network for many shapes, asked to complete a shape from half of it.
#
# **How this notebook is graded.** The six functions you write (`get_rays`, `sample_stratified`,
# `positional_encoding`, `volume_render`, `sample_pdf`, `sphere_trace`) are graded automatically: the grader
# extracts your function definitions from this file and runs them, in a separate sandboxed process, on many
# random inputs against a reference implementation, including edge cases, float32 and float64, gradients and
# bad arguments. The cell after each function runs a *public* subset of those checks so you get feedback
# immediately. The written questions are graded by hand. Experiments and the small "loop" functions are not
# graded, but the experiments only work once your functions do.
#
# Do not rename the functions or change their signatures, keep them vectorised (no Python loop over pixels,
# rays or samples; `sphere_trace` may loop over its marching steps), and keep everything a function needs
# (imports, helpers) at the top level of a code cell.

# %% [readonly]
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Callable

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

import course_lib
from course_lib.checks import check
from course_lib.utils import pick_device, seed_everything, smoke_mode

device = pick_device()
SMOKE = smoke_mode()                                                   # tiny settings when COURSE_SMOKE=1
GRADING = os.environ.get("NBGRADER_EXECUTION") in ("autograde", "validate")   # nbgrader skips experiments
OUT = Path(tempfile.gettempdir()) / "a4_rendering"                     # GIFs are written here
if device.type == "cpu":
    torch.set_num_threads(1)   # the networks here are small: on a busy CPU more threads wait more than they work
seed_everything(0)
print(f"course_lib {course_lib.__version__} | torch {torch.__version__} | device {device} | smoke mode {SMOKE}")

# %% [markdown]
# ## 1. The pinhole camera
#
# A pinhole camera sends every 3-D point along the straight line through the camera centre onto the image
# plane. Rendering runs this backwards: for every pixel we need the **ray** of all points that land on it.
#
# **Camera space.** Put the camera centre at the origin. Like the NeRF code (and OpenGL), the camera looks
# down its own $-z$ axis, with $+x$ to the right and $+y$ up. The **intrinsics** are the image size
# $W \times H$ and the focal length $f$ in pixels (the image centre is the principal point). The pixel in
# column $i$ and row $j$ — row 0 at the top — is seen along the direction
#
# $$d_\text{cam}(i, j) = \Big(\frac{i - W/2}{f},\; -\frac{j - H/2}{f},\; -1\Big).$$
#
# The minus sign in the $y$ component is there because image rows grow downwards while camera $y$ grows
# upwards. We use the pixel's corner $i$ rather than its centre $i + \tfrac12$, as the original NeRF code
# does; it shifts every image by half a pixel, which does no harm as long as training and rendering agree.
# The horizontal field of view follows from the same triangle: $\tan(\text{fov}_x / 2) = (W/2) / f$.
#
# **World space.** The **extrinsics** are a camera-to-world matrix
# $\text{c2w} = \begin{bmatrix} R & o \\ 0 & 1 \end{bmatrix}$: the columns of $R$ are the camera's right,
# up and backward axes written in world coordinates, and $o$ is the camera centre. A direction is rotated,
# $d = R\, d_\text{cam}$; every ray of the camera starts at $o$. The points of the ray are
# $r(t) = o + t\, d$ for $t \ge 0$. We do **not** normalise $d$: its component along the viewing axis is 1,
# so $t$ is the depth of $r(t)$ in front of the camera, and `near` / `far` bound depth.
#
# Our scene: 100 training views and 6 held-out views, $64\times64$ pixels, of four textured objects rendered
# exactly from an analytic scene (`course_lib.data.nerf_scene`; the cameras sit at distance 4 on the upper
# hemisphere with the field of view of NeRF's lego scene, and everything lies between depths 2 and 6).

# %% [code]
from course_lib.data import AnalyticScene, look_at, nerf_scene

scene = nerf_scene(size=16 if SMOKE else 64)
train_views, test_views = scene.train_split(), scene.holdout_split()
H, W, focal = scene.height, scene.width, scene.focal
print(f"{len(train_views)} training views, {len(test_views)} held out, {H}x{W} pixels, focal {focal:.1f} px, "
      f"near {scene.near}, far {scene.far}")
print(f"horizontal field of view: {math.degrees(2 * math.atan(W / 2 / focal)):.1f} degrees")
fig, axes = plt.subplots(1, 6, figsize=(13, 2.4))
for ax, k in zip(axes, range(0, 100, 17)):
    ax.imshow(train_views.images[k].numpy())
    ax.set_title(f"view {k}", fontsize=9)
    ax.axis("off")
plt.show()

# %% [markdown]
# The next picture puts every fifth camera in the world as a small pyramid (its **viewing frustum**, cut off
# at depth 0.8): the apex is the camera centre $o$, the four edges are the rays through the image corners.
# The points in the middle are samples of the true objects (the scene is analytic, so we know where they
# are). Held-out cameras are red.

# %% [code]
def frustum_corners(c2w, height, width, focal, depth):
    """World coordinates ``[4, 3]`` of the image corners pushed to ``depth`` in front of the camera."""
    px = torch.tensor([[0.0, 0.0], [width, 0.0], [width, height], [0.0, height]])        # (i, j) of the corners
    d_cam = torch.stack([(px[:, 0] - width / 2) / focal, -(px[:, 1] - height / 2) / focal, -torch.ones(4)], -1)
    return c2w[:3, 3] + depth * d_cam @ c2w[:3, :3].T                                   # o + depth * R d_cam


truth = AnalyticScene.from_seed(0)                       # nerf_scene(seed=0) renders this scene
cloud = (torch.rand(20000 if not SMOKE else 4000, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1) * 1.3
cloud = cloud[truth.sdf(cloud) < 0]                      # points inside an object

fig = plt.figure(figsize=(7, 7))
ax = fig.add_subplot(projection="3d")
ax.scatter(*cloud.T.numpy(), c=truth.color(cloud).numpy(), s=2)
for views, colour in ((train_views.poses[::5], "C0"), (test_views.poses, "C3")):
    for c2w in views:
        o, corners = c2w[:3, 3], frustum_corners(c2w, H, W, focal, 0.8)
        for c in corners:
            ax.plot(*torch.stack([o, c]).T.numpy(), color=colour, lw=0.6)
        ax.plot(*torch.cat([corners, corners[:1]]).T.numpy(), color=colour, lw=1.0)
ax.set(xlim=(-4, 4), ylim=(-4, 4), zlim=(-1, 4), xlabel="x", ylabel="y", zlabel="z",
       title="cameras (blue: training, red: held out) around the objects")
plt.show()

# %% [markdown]
# ## 2. Rays and samples along them
#
# ### Task 1: `get_rays`
#
# `get_rays(height, width, focal, c2w)` returns the origins and directions of all $H \times W$ rays as two
# `[H, W, 3]` tensors, `rays_d[j, i]` being the ray of column $i$ and row $j$. First write it the way the
# definition reads — one pixel at a time — in `get_rays_loop` (not graded; it is our yardstick), then the
# vectorised version. Hints for the vectorised one: `torch.arange` gives all columns and rows at once;
# `expand` or broadcasting gives the `[H, W]` grids; one matrix product rotates all directions (`d @ R.T`
# applies $R$ to every row vector $d$). Dtype and device follow `c2w`. Check the arguments: a `c2w` that is
# not `[4, 4]` or `[3, 4]` must raise a `ValueError` that names `c2w` and its shape.

# %% [loop] id=get_rays

# %% [markdown]
# A first look, with the camera at the world origin (`c2w` = identity), a $4 \times 4$ image and $f = 2$: every
# ray starts at the origin, and the corner pixels look along the directions below. With pixel corners the
# image is not symmetric: column 0 lies at $x = -W/(2f)$, column $W - 1$ at $(W/2 - 1)/f$.

# %% [code]
o_demo, d_demo = get_rays_loop(4, 4, 2.0, torch.eye(4))
print("origin of every ray:", o_demo[0, 0].tolist())
for j, i in ((0, 0), (0, 3), (3, 0), (3, 3)):
    print(f"row {j}, column {i}: direction {d_demo[j, i].tolist()}")

# %% [scaffold] id=get_rays

# %% [readonly]
check("get_rays", get_rays)

# %% [tests] id=get_rays

# %% [markdown]
# Do the two versions agree, and what does the loop cost? (Vectorised code runs the same arithmetic in a
# few large tensor operations instead of $H \times W$ small ones.)

# %% [code]
pose = train_views.poses[0].double()
side = 16 if SMOKE else 64
start = time.perf_counter()
o_loop, d_loop = get_rays_loop(side, side, focal, pose)
t_loop = time.perf_counter() - start
start = time.perf_counter()
o_vec, d_vec = get_rays(side, side, focal, pose)
t_vec = time.perf_counter() - start
print(f"values agree: {torch.allclose(o_loop, o_vec) and torch.allclose(d_loop, d_vec)}")
print(f"{side}x{side} pixels: loop {1e3 * t_loop:.1f} ms, vectorised {1e3 * t_vec:.2f} ms "
      f"({t_loop / max(t_vec, 1e-9):.0f}x faster)")

# %% [markdown]
# ### Task 2: `sample_stratified`
#
# Along each ray the renderer needs sample positions $t_1 < \dots < t_S$ in $[\text{near}, \text{far}]$.
# Fixed, evenly spaced positions would show the network the same $S$ depths for ever, and it could do
# anything in between. **Stratified sampling** cuts $[\text{near}, \text{far}]$ into $S$ equal bins with
# edges `linspace(near, far, S + 1)` and draws one uniform position inside every bin:
#
# $$t_k = \ell_k + (u_k - \ell_k)\, U_k, \qquad U_k \sim \mathcal{U}[0, 1), \qquad k = 1..S,$$
#
# with $\ell_k, u_k$ the lower and upper edge of bin $k$. Every part of the ray is covered at every step, and
# over many steps the network sees a continuum of depths. With `perturb=False` (rendering, evaluation) take
# the bin midpoints. Draw the uniform numbers with `torch.rand(..., generator=generator)` so that a seeded
# generator reproduces them (create them on the generator's device, then move them to the rays' device).
# The points are `rays_o + t * rays_d`; `rays_o` and `rays_d` may have any leading dims `[...]`.
# Arguments to reject with a `ValueError` naming them: rays without a trailing 3, `near >= far`,
# `n_samples < 1`.

# %% [scaffold] id=sample_stratified

# %% [readonly]
check("sample_stratified", sample_stratified)

# %% [tests] id=sample_stratified

# %% [markdown]
# Rays and their samples: a $4 \times 4$ grid of rays of one training camera (every 16th pixel in each
# direction), each with 8 stratified samples between depth 2 and 6. The samples of one ray differ from
# those of its neighbours, but each stays in its own bin.

# %% [code]
c2w = train_views.poses[3]
rays_o, rays_d = get_rays(H, W, focal, c2w)
step_px = max(1, H // 4)
sub_o, sub_d = rays_o[::step_px, ::step_px].reshape(-1, 3), rays_d[::step_px, ::step_px].reshape(-1, 3)
pts, t_vals = sample_stratified(sub_o, sub_d, scene.near, scene.far, 8, perturb=True,
                                generator=torch.Generator().manual_seed(0))
fig = plt.figure(figsize=(12, 5))
ax = fig.add_subplot(1, 2, 1, projection="3d")
ax.scatter(*cloud.T.numpy(), c=truth.color(cloud).numpy(), s=1)
for o, d in zip(sub_o, sub_d):
    ax.plot(*torch.stack([o + scene.near * d, o + scene.far * d]).T.numpy(), color="0.6", lw=0.5)
ax.scatter(*pts.reshape(-1, 3).T.numpy(), s=4, color="C1")
ax.scatter(*c2w[:3, 3].numpy(), s=30, color="k")                                  # the camera centre
ax.set(title="rays of one camera (black dot) and their stratified samples", xlabel="x", ylabel="y", zlabel="z")
ax2 = fig.add_subplot(1, 2, 2)
edges = torch.linspace(scene.near, scene.far, 9)
for k, row in enumerate(t_vals[:6]):
    ax2.scatter(row.numpy(), torch.full_like(row, k).numpy(), s=12, color="C1")
for e in edges:
    ax2.axvline(float(e), color="0.8", lw=0.8)
ax2.set(xlabel="t (depth)", ylabel="ray", title="one sample per bin (grey lines: bin edges)")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 3. Positional encoding, first in 2-D
#
# An MLP with ReLUs that reads raw coordinates learns smooth, low-frequency functions first and high
# frequencies only very slowly (the **spectral bias** of neural networks; Rahaman et al., 2019). A scene or
# an image is full of sharp edges and fine texture. NeRF's remedy (Mildenhall et al., 2020; analysed by
# Tancik et al., 2020, as *Fourier features*) is to feed the network the coordinates through sines and
# cosines of geometrically increasing frequency,
#
# $$\gamma(x) = \big[x,\ \sin(2^0 \pi x),\ \cos(2^0 \pi x),\ \sin(2^1 \pi x),\ \cos(2^1 \pi x),\ \dots,\
#   \sin(2^{L-1} \pi x),\ \cos(2^{L-1} \pi x)\big],$$
#
# applied to every coordinate of $x \in \mathbb{R}^D$ (each term is a block of $D$ numbers, so the width is
# $D(1 + 2L)$). Points that are close in space but on different sides of a fine detail now differ a lot in
# the high-frequency channels, and a first layer can separate them. The picture shows the channels for
# $D = 1$, $L = 4$ over $x \in [-1, 1]$.

# %% [code]
xs = torch.linspace(-1, 1, 400)
fig, axes = plt.subplots(1, 2, figsize=(12, 3.2), gridspec_kw={"width_ratios": [2, 1]})
for k in range(4):
    axes[0].plot(xs, torch.sin(2**k * math.pi * xs) + 2.5 * k, color=f"C{k}", label=f"k={k}")
    axes[0].plot(xs, torch.cos(2**k * math.pi * xs) + 2.5 * k, color=f"C{k}", ls="--")
axes[0].set(xlabel="x", yticks=[], title="sin (solid) and cos (dashed) of 2^k pi x, shifted apart")
axes[0].legend(loc="upper right", fontsize=8)
channels = [xs] + [f(2**k * math.pi * xs) for k in range(4) for f in (torch.sin, torch.cos)]
manual = torch.stack(channels, 1)                                        # [400, 9]: x, sin, cos, sin, ...
axes[1].imshow(manual.T.numpy(), aspect="auto", cmap="coolwarm", extent=(-1, 1, 8.5, -0.5),
               interpolation="nearest")
axes[1].set(xlabel="x", ylabel="channel", title="gamma(x): 1 + 2L = 9 channels")
plt.tight_layout()
plt.show()

# %% [markdown]
# ### Task 3: `positional_encoding`
#
# Vectorise over everything: compute all frequencies $2^k\pi$ as one tensor, multiply with broadcasting to a
# `[..., L, D]` tensor, and arrange sines and cosines so that the order matches the formula exactly
# (frequency-major; for each frequency first the $D$ sines, then the $D$ cosines) — the grader compares
# numbers. Reject a 0-D `x` and a negative `num_freqs` with a `ValueError` naming the argument.

# %% [scaffold] id=positional_encoding

# %% [readonly]
check("positional_encoding", positional_encoding)

# %% [tests] id=positional_encoding

# %% [markdown]
# ### Fitting an image from its coordinates
#
# The experiment fits an MLP (3 hidden layers of 64 ReLUs, Adam, 1000 full-batch steps) that maps a pixel's
# coordinates $(x, y) \in [-1, 1]^2$ to its colour, on a $64 \times 64$ glyph over a checkerboard texture —
# once on the raw coordinates, once on **your** `positional_encoding` with $L = 6$ (the highest frequency,
# $2^5 \pi$, has a period of 2 pixels: the finest pattern a 64-pixel grid can hold). Everything else is
# equal. About 15 seconds on a laptop CPU.
#
# **At the default settings the encoded fit reaches a PSNR of at least 30 dB, at least 10 dB more than the
# fit on raw coordinates** (a test of the course package checks this with the reference encoding).

# %% [code]
from course_lib.experiments import fourier_features as ff_experiment

if GRADING:
    print("skipped while grading")
else:
    ff = ff_experiment.run(positional_encoding, device=device)
    m = ff["metrics"]
    print(ff_experiment.format_metrics(m))
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.4))
    for ax, img, title in zip(axes, (ff["target"], ff["fits"]["raw"], ff["fits"]["pe"]),
                              ("target", f"raw (x, y): {m['psnr_raw_db']:.1f} dB",
                               f"encoded, L=6: {m['psnr_pe_db']:.1f} dB")):
        ax.imshow(img.numpy())
        ax.set_title(title)
        ax.axis("off")
    for key, label in (("raw", "raw (x, y)"), ("pe", "encoded")):
        steps_, values = zip(*ff["history"][key])
        axes[3].plot(steps_, values, label=label)
    axes[3].set(xlabel="step", ylabel="PSNR (dB)", title="training fit")
    axes[3].legend()
    plt.tight_layout()
    plt.show()

# %% [markdown]
# **Question 1 (written).** (a) In your own words, why does the network on raw coordinates return a blurred
# image while the encoded one fits the checkerboard, although both have the same hidden layers? (b) What
# would you expect with a much larger $L$ (say 12 here) if you looked at the fitted function *between* the
# pixel centres, and why? (c) Why does $\gamma$ keep $x$ itself (`include_input`) when the scene is larger
# than one period of $\sin(\pi x)$?

# %% [answer] id=q_positional_encoding points=3
# (a) A ReLU MLP on $(x, y)$ is biased towards smooth functions: the components of the target that vary
# slowly are learned within a few hundred steps, the fine texture (a period of a few pixels) would take
# orders of magnitude longer, so within the budget the raw network returns a low-pass version of the image.
# The encoding puts high-frequency functions of the coordinates into the input, so the network only has to
# *combine* them (a much smoother map from $\gamma(x)$ to colour) to produce sharp edges; in the NTK view it
# widens the kernel's spectrum (Tancik et al., 2020).
# (b) With frequencies far above the pixel grid's Nyquist limit the network can fit the training pixels
# exactly with functions that oscillate wildly between them: the fit PSNR stays high, but the image rendered
# at other positions (a shifted or finer grid, or a novel view in NeRF) is noisy — overfitting/aliasing.
# (c) $\sin(2^k\pi x)$ and $\cos(2^k \pi x)$ are periodic with period at most 2, so points 2 apart get the same
# encoding; keeping the raw $x$ (the lowest "frequency") keeps the encoding injective over the whole scene.

# %% [markdown]
# ## 4. Volume rendering and where to look closer
#
# Think of the scene as a coloured fog with **density** $\sigma(x) \ge 0$ (probability per unit length that
# a ray is stopped there) and colour $c(x)$. The light a pixel receives along $r(t) = o + t d$ is
#
# $$C = \int_{t_n}^{t_f} T(t)\, \sigma(r(t))\, c(r(t))\, dt, \qquad
#   T(t) = \exp\Big(-\int_{t_n}^{t} \sigma(r(s))\, ds\Big),$$
#
# where the **transmittance** $T(t)$ is the probability that the ray gets from $t_n$ to $t$ without being
# stopped (Max, 1995). With samples $t_1 < \dots < t_S$, constant density and colour inside each interval
# $\delta_i = t_{i+1} - t_i$ and the last interval taken as $\delta_S = 10^{10}$ ("everything that reaches
# the last sample is absorbed there"), the integral becomes the sum NeRF uses:
#
# $$\alpha_i = 1 - e^{-\sigma_i \delta_i},\qquad T_i = \exp\Big(-\sum_{j<i} \sigma_j \delta_j\Big)\ (T_1 = 1),
# \qquad w_i = T_i\, \alpha_i,\qquad C = \sum_i w_i\, c_i.$$
#
# $\alpha_i$ is the probability of stopping inside interval $i$, $T_i$ of reaching it, and $w_i$ of stopping
# exactly there. The weights **telescope**: since $T_{i+1} = T_i (1 - \alpha_i)$,
# $\sum_i w_i = \sum_i (T_i - T_{i+1}) = 1 - \exp(-\sum_i \sigma_i \delta_i)$, the probability that the ray
# is stopped at all. With `white_background`, the remaining $1 - \sum_i w_i$ is filled with white.
#
# The true density along the ray of an object pixel in one of our views, from the analytic scene (2,000 samples;
# the density rises from 0 to its maximum within a few hundredths of a unit at the surface):

# %% [code]
opaque = (train_views.alphas[3] > 0.99).flatten().nonzero().flatten()         # object pixels of view 3
j_obj, i_obj = divmod(int(opaque[len(opaque) // 2]), W)
ray_o, ray_d = rays_o[j_obj, i_obj], rays_d[j_obj, i_obj]
t_dense = torch.linspace(scene.near, scene.far, 2000)
sig_dense = truth.sigma(ray_o + t_dense[:, None] * ray_d)
tau_dense = sig_dense * F.pad(t_dense[1:] - t_dense[:-1], (0, 1))
trans_dense = torch.exp(-(torch.cumsum(tau_dense, 0) - tau_dense))
fig, axes = plt.subplots(1, 2, figsize=(12, 3))
axes[0].plot(t_dense, sig_dense)
axes[0].set(xlabel="t", ylabel="sigma", title="density along the ray")
axes[1].plot(t_dense, trans_dense, label="transmittance T")
axes[1].plot(t_dense, trans_dense * -torch.expm1(-tau_dense), label="weight w")
axes[1].set(xlabel="t", title="T drops to 0 at the first surface; w peaks there")
axes[1].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ### Task 4: `volume_render`
#
# Again the loop first: `volume_render_loop` composites one ray at a time, front to back, exactly as the
# formulas read (not graded). Then the vectorised version: the deltas with one subtraction and a padded
# $10^{10}$, $\alpha$ with `torch.expm1` (accurate when $\sigma\delta$ is tiny), and $T$ as the exponential of
# an **exclusive** cumulative sum (shift the optical thicknesses $\sigma_i\delta_i$ right by one, then
# `torch.cumsum`). This is exact and has finite gradients for $\sigma$ up to $10^6$; a cumulative product of
# $1 - \alpha$ works too, but needs care at $\alpha = 1$. `t_vals` may also be a shared `[S]`. Reject
# mismatched shapes (`colors` that are not `[..., S, C]`, `t_vals` that do not match) with a `ValueError`
# naming the argument.

# %% [loop] id=volume_render

# %% [markdown]
# One ray with three samples at depths 2, 3 and 4: red but empty space ($\sigma = 0$), a light green fog
# ($\sigma = 0.5$), then a blue wall ($\sigma = 50$). The fog takes $1 - e^{-0.5} \approx 0.39$ of the light,
# the wall all the rest:

# %% [code]
rgb_demo, w_demo = volume_render_loop(torch.tensor([[0.0, 0.5, 50.0]]), torch.eye(3)[None],
                                      torch.tensor([[2.0, 3.0, 4.0]]))
print(f"weights {[round(w, 4) for w in w_demo[0].tolist()]} (sum {float(w_demo.sum()):.4f}), "
      f"colour {[round(c, 4) for c in rgb_demo[0].tolist()]}")

# %% [scaffold] id=volume_render

# %% [readonly]
check("volume_render", volume_render)

# %% [tests] id=volume_render

# %% [markdown]
# The loop against the vectorised version, and the telescoping identity checked numerically. A ray whose
# last density is positive has $\sum_i w_i = 1$ exactly: the $10^{10}$ absorbs whatever is left. A ray whose
# last sample is empty shows the identity with the real intervals.

# %% [code]
g = torch.Generator().manual_seed(0)
n_rays_cmp, n_samp_cmp = (8, 16) if SMOKE else (64, 32)
sig = torch.rand(n_rays_cmp, n_samp_cmp, generator=g, dtype=torch.float64) * 3
col = torch.rand(n_rays_cmp, n_samp_cmp, 3, generator=g, dtype=torch.float64)
tv = torch.sort(torch.rand(n_rays_cmp, n_samp_cmp, generator=g, dtype=torch.float64) * 4 + 2, -1).values
start = time.perf_counter()
rgb_loop, w_loop = volume_render_loop(sig, col, tv)
t_loop = time.perf_counter() - start
start = time.perf_counter()
rgb_vec, w_vec = volume_render(sig, col, tv)
t_vec = time.perf_counter() - start
print(f"values agree: {torch.allclose(rgb_loop, rgb_vec) and torch.allclose(w_loop, w_vec)}; "
      f"loop {1e3 * t_loop:.1f} ms, vectorised {1e3 * t_vec:.2f} ms ({t_loop / max(t_vec, 1e-9):.0f}x faster)")

sig_open = sig.clone()
sig_open[:, -1] = 0.0                                     # the last sample is empty
_, w_open = volume_render(sig_open, col, tv)
optical_depth = (sig_open[:, :-1] * (tv[:, 1:] - tv[:, :-1])).sum(-1)
print(f"last sigma > 0:  sum w = {w_vec.sum(-1)[:3].tolist()}")
print(f"last sigma = 0:  sum w = {w_open.sum(-1)[:3].tolist()}")
print(f"1 - exp(-sum sigma delta) = {(-torch.expm1(-optical_depth))[:3].tolist()}")

# %% [markdown]
# **Question 2 (written).** (a) What does the last delta of $10^{10}$ do to the weights of a ray, and why
# does NeRF not simply use the last real interval? (b) Our scene is on **black**. What changes if a scene on a
# **white** background (NeRF's Blender scenes are usually trained that way) is trained with `white_background=True`,
# and why can the $10^{10}$ then hurt: what does the network learn to put at the far end of rays that see
# only background if the last sample's density is not exactly zero?

# %% [answer] id=q_last_delta points=3
# (a) With $\delta_S = 10^{10}$, $\alpha_S = 1$ as soon as $\sigma_S > 0$: the last sample takes all the
# remaining transmittance, $w_S = T_S$, and $\sum_i w_i = 1$. It closes the integral: there is no interval
# after the last sample, and without the padding its weight would be undefined (or 0, making the last
# sample invisible). Light that passes every other sample ends at the last one.
# (b) With a white background the pixel is $\sum_i w_i c_i + (1 - \sum_i w_i)$: background shows only where
# the weights do not sum to 1. A ray that sees only background must then have **no** density anywhere,
# including at the last sample, because any $\sigma_S > 0$ makes $w_S = T_S \approx 1$ and paints the last
# sample's colour instead of the background. The network can also "cheat" and put white, opaque stuff at
# the far plane; on white this produces floaters or walls at depth `far` in novel views and wrong depth maps.
# (On black, our case, the same happens with $c_S = 0$: harmless for the colours, visible only in depth.)
# With a density activation that is never exactly 0 (softplus) the background term is in fact always 0, and
# white *must* be painted at the far end. It matters
# whenever rays are not fully absorbed before `far` (background pixels, open scenes); for rays that end on an
# opaque object $T_S \approx 0$ and it makes no difference.

# %% [markdown]
# ### Task 5: `sample_pdf` — hierarchical sampling
#
# Most samples of a ray are wasted on empty space: in the plot above all the weight sits in a narrow band at
# the first surface. NeRF's **hierarchical sampling** renders a ray first with coarse stratified samples,
# reads the weights $w_i$ as a piecewise-constant probability density over the intervals, and draws the
# fine samples from it by **inverse-transform sampling**: with the cumulative distribution $F$ (piecewise
# linear, from 0 to 1 at the bin edges), a uniform $u$ becomes $t = F^{-1}(u)$.
#
# $$p_i = \frac{w_i + 10^{-5}}{\sum_j (w_j + 10^{-5})},\qquad F_0 = 0,\ F_i = \sum_{j \le i} p_j,$$
#
# find the interval $[F_{k-1}, F_k)$ that contains $u$ (`torch.searchsorted(cdf, u, right=True)` returns
# $k$), and interpolate linearly between its edges:
# $t = b_{k-1} + \frac{u - F_{k-1}}{F_k - F_{k-1}}(b_k - b_{k-1})$ (clamp the indices to the valid range and
# use 1 as the denominator where an interval's probability is below $10^{-5}$). The $10^{-5}$ keeps a little
# probability everywhere, so all-zero weights sample uniformly. `deterministic=True` uses
# $u$ = `linspace(0, 1, n_samples)`, otherwise `torch.rand(..., generator=generator)`. The samples are
# **detached**. The picture shows the construction for 8 bins with made-up weights:

# %% [code]
demo_bins = torch.linspace(2.0, 6.0, 9)
demo_w = torch.tensor([0.02, 0.01, 0.05, 0.6, 0.25, 0.03, 0.02, 0.02])
demo_pdf = (demo_w + 1e-5) / (demo_w + 1e-5).sum()
demo_cdf = torch.cat([torch.zeros(1), torch.cumsum(demo_pdf, 0)])
fig, axes = plt.subplots(1, 2, figsize=(12, 3.4))
axes[0].bar(demo_bins[:-1], demo_pdf / (demo_bins[1:] - demo_bins[:-1]), width=demo_bins[1:] - demo_bins[:-1],
            align="edge", alpha=0.6)
axes[0].set(xlabel="t", ylabel="density", title="piecewise-constant pdf from the weights")
axes[1].plot(demo_bins, demo_cdf, "o-", label="cdf F (linear between edges)")
for u in torch.linspace(0.05, 0.95, 7):
    k = int(torch.searchsorted(demo_cdf, u, right=True))
    t = demo_bins[k - 1] + (u - demo_cdf[k - 1]) / (demo_cdf[k] - demo_cdf[k - 1]) * (demo_bins[k] - demo_bins[k - 1])
    axes[1].plot([2.0, float(t), float(t)], [float(u), float(u), 0.0], color="C1", lw=0.8)
axes[1].set(xlabel="t", ylabel="u", title="u on the vertical axis -> t = F^-1(u): dense where F is steep")
axes[1].legend(loc="lower right")
plt.tight_layout()
plt.show()

# %% [scaffold] id=sample_pdf

# %% [readonly]
check("sample_pdf", sample_pdf)

# %% [tests] id=sample_pdf

# %% [markdown]
# With your `sample_pdf`, 2,000 samples from the weights above follow the pdf (the histogram), and the
# deterministic mode gives evenly spaced quantiles:

# %% [code]
drawn = sample_pdf(demo_bins[None], demo_w[None], 2000, generator=torch.Generator().manual_seed(0))[0]
quantiles = sample_pdf(demo_bins[None], demo_w[None], 9, deterministic=True)[0]
fig, ax = plt.subplots(figsize=(8, 3))
ax.hist(drawn.numpy(), bins=demo_bins.numpy(), density=True, alpha=0.5, label="2000 samples")
ax.stairs((demo_pdf / (demo_bins[1:] - demo_bins[:-1])).numpy(), demo_bins.numpy(), label="pdf", color="C3")
ax.plot(quantiles.numpy(), torch.zeros(9).numpy(), "k|", ms=20, label="deterministic")
ax.set(xlabel="t")
ax.legend()
plt.show()

# %% [markdown]
# ## 5. TinyNeRF from your functions
#
# `course_lib.experiments.nerf` assembles a small NeRF out of **your** five functions:
#
# * **rays**: `get_rays` for all $100 \times 64 \times 64$ training pixels, once; every step trains on 1,024
#   random rays from all views (for the first 150 steps only from the central half of each image, so the
#   network does not start by switching the density off on the black background; the NeRF authors do the same
#   for their object scenes);
# * **sampler**: `sample_stratified`, 32 samples in $[2, 6]$;
# * **field**: an MLP (3 hidden layers of 64 ReLUs) on `positional_encoding` of $0.5\,x$ with $L = 6$, density
#   $\sigma = \operatorname{softplus}(\text{raw} - 1)$ and colour $\operatorname{sigmoid}$ (the objects are
#   diffuse, so there is no view direction);
# * **renderer**: `volume_render`, and the mean squared error to the pixel colours; Adam, 1,000 steps.
#
# The experiment trains this network twice — with the encoding and on the raw points (everything else
# equal) — and renders the 6 held-out views. About 2–3 minutes on a laptop CPU.
#
# **At the default settings the encoded TinyNeRF reaches a held-out PSNR of at least 26 dB, and at least 3 dB
# more than the same network on raw coordinates** (a test of the course package checks this with the reference
# functions; typical values are about 29 and 22 dB).

# %% [code]
from course_lib.experiments import nerf as nerf_experiment

if GRADING:
    print("skipped while grading")
else:
    nerf = nerf_experiment.run(get_rays, sample_stratified, positional_encoding, volume_render, sample_pdf,
                               data=scene, device=device)
    m = nerf["metrics"]
    print(nerf_experiment.format_metrics({k: m[k] for k in ("heldout_psnr_db", "heldout_psnr_noenc_db",
                                                            "pe_gain_db")}))

# %% [code]
if not GRADING:
    exp, stages = nerf["exp"], nerf["stages"]
    fig, ax = plt.subplots(figsize=(7, 3))
    for key, label in (("enc", "encoded"), ("noenc", "raw xyz")):
        steps_, values = zip(*nerf["history"][key])
        ax.plot(steps_, values, label=label)
    ax.set(xlabel="step", ylabel="training PSNR (dB)", title="TinyNeRF training")
    ax.legend()
    plt.show()
    fig, axes = plt.subplots(3, 4, figsize=(11, 8.5))
    for row, k in enumerate(range(min(3, len(test_views)))):
        pose = test_views.poses[k]
        enc = nerf_experiment.render_view(nerf["fields"]["enc"], pose, H, W, focal, scene.near, scene.far,
                                          exp.n_samples, stages)
        raw = nerf_experiment.render_view(nerf["fields"]["noenc"], pose, H, W, focal, scene.near, scene.far,
                                          exp.n_samples, stages)
        panels = (test_views.images[k], enc["rgb"], raw["rgb"], enc["depth"])
        titles = ("held-out view", "encoded", "raw xyz", "depth (encoded)")
        for ax, img, title in zip(axes[row], panels, titles):
            ax.imshow(img.numpy(), **({"cmap": "viridis"} if img.dim() == 2 else {}))
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    plt.tight_layout()
    plt.show()

# %% [markdown]
# The encoded network reproduces the objects, their stripes and silhouettes in views it never saw; the network
# on raw coordinates only finds coloured blobs in the right places. Background pixels get the depth `far`:
# the density here is a softplus, never exactly 0, so the $10^{10}$ interval at the end of every ray absorbs
# whatever light is left, with a black colour (Question 2).
#
# ### Hierarchical sampling at render time
#
# Now spend 64 network evaluations per ray in two ways on the trained (encoded) network: 64 stratified
# samples, or 32 stratified **coarse** samples plus 32 **fine** samples that your `sample_pdf` draws from
# the coarse weights (between the midpoints of the coarse samples). NeRF trains a second "fine" network on
# the union of both sets; we keep one network for both passes (as mip-NeRF does), so the fine pass only
# evaluates the 32 new points and composites all 64. The plot shows where the samples of one ray land.
# Expect a small difference in PSNR here: this network was trained with 32 stratified samples only, so it
# never learned surfaces sharper than their spacing. NeRF gains more because its fine network is *trained*
# on the fine samples.

# %% [code]
if not GRADING:
    print(f"held-out PSNR with {exp.n_samples + exp.n_fine} stratified samples: {m['heldout_psnr_strat_db']:.2f} dB; "
          f"with {exp.n_samples} + {exp.n_fine} hierarchical: {m['heldout_psnr_hier_db']:.2f} dB")
    field = nerf["fields"]["enc"]
    ro_all, rd_all = get_rays(H, W, focal, test_views.poses[0].to(device))
    ro_one, rd_one = ro_all[H // 2, W // 2][None], rd_all[H // 2, W // 2][None]
    with torch.no_grad():
        out = nerf_experiment.render_rays(field, ro_one, rd_one, scene.near, scene.far, exp.n_samples, stages,
                                          n_fine=exp.n_fine)
        coarse = nerf_experiment.render_rays(field, ro_one, rd_one, scene.near, scene.far, exp.n_samples, stages)
    fig, ax = plt.subplots(figsize=(10, 3))
    ax.plot(coarse["t"][0].cpu(), coarse["weights"][0].cpu(), "o-", label="coarse weights (32 samples)")
    ax.plot(out["t"][0].cpu(), out["weights"][0].cpu(), ".-", label="weights over all 64 samples")
    ax.plot(out["t_fine"][0].cpu(), torch.zeros(exp.n_fine), "|", color="C3", ms=18, label="fine samples")
    ax.set(xlabel="t", title="the fine samples gather where the coarse weights are")
    ax.legend()
    plt.show()

# %% [markdown]
# **Question 3 (written).** (a) Why does hierarchical sampling give a sharper image for the same number of
# network evaluations per ray than stratified sampling alone? When would it *not* help? (b) `sample_pdf`
# returns detached samples. What would a gradient through the sample positions do to the coarse weights, and
# why is that not what we want?

# %% [answer] id=q_hierarchical points=3
# (a) For an opaque scene nearly all of a ray's weight lies in a short interval at the first surface; stratified
# samples are spread evenly, so only one or two of them fall there and the quadrature of the integral is crude
# (surfaces blur across a whole bin, thin structures can fall between samples). Drawing the fine samples from
# the coarse weights puts them where the integrand is large — importance sampling — so the same number of
# evaluations resolves the surface much more finely, and the samples in empty space, which contribute nothing,
# are saved. It does not help when the coarse pass misses a structure entirely (the pdf is then ~uniform there
# and little is gained), or for truly volumetric content where the weight is spread along the whole ray.
# (b) The positions depend on the coarse weights only through a sampling procedure; a gradient through them
# would move the coarse density to shift the fine samples towards wherever the fine loss happens to improve,
# rather than to render the image correctly — a shortcut that corrupts the coarse field. The coarse network is
# trained by its own photometric loss; the pdf is treated as a fixed proposal.

# %% [markdown]
# ### Novel views
#
# An orbit of new cameras around the scene (none of them was a training view), rendered from the trained
# network with hierarchical sampling. The GIF is written to a temporary folder and shown below.

# %% [code]
if not GRADING:
    from IPython.display import Image, display

    from course_lib.viz import save_gif

    orbit = nerf_experiment.orbit_poses(4 if SMOKE else 36, radius=4.0, elevation_deg=35.0)
    frames = [nerf_experiment.render_view(field, p, H, W, focal, scene.near, scene.far, exp.n_samples, stages,
                                          n_fine=exp.n_fine)["rgb"] for p in orbit]
    gif = save_gif(frames, OUT / "nerf_orbit.gif", fps=12)
    print(f"written to {gif}")
    display(Image(filename=str(gif)))

# %% [markdown]
# ## 6. Implicit surfaces and sphere tracing
#
# A surface can also be stored as the zero set of a **signed distance function** (SDF): $f(x)$ is the
# distance from $x$ to the nearest surface point, negative inside. Simple shapes have closed-form SDFs
# (sphere: $\lVert x - c\rVert - r$; an axis-aligned box with half-sizes $b$:
# $\lVert \max(q, 0)\rVert + \min(\max_k q_k, 0)$ with $q = |x - c| - b$; a ground plane $z = h$: $z - h$),
# and the union of shapes is the minimum of their SDFs.
#
# Because nothing is closer than $f(x)$, a ray may safely jump ahead by that much. **Sphere tracing**
# (Hart, 1996) marches $t \leftarrow t + f(o + t d)$ from `near`, with unit-length $d$: far from surfaces it
# takes big steps, near a surface the steps shrink and $t$ converges to the first crossing. A ray **hits** when
# $f < \varepsilon$ (with $t \le$ far), and **misses** when $t$ passes `far` or it has not converged after
# `max_steps` steps (misses report $t$ = far). The surface normal is the gradient $\nabla f$, which autograd
# gives for free.
#
# ### Task 6: `sphere_trace`
#
# Loop over the steps (that is the one loop allowed), but treat all rays at once: keep a boolean mask (or a
# list of indices) of the rays still marching, evaluate `sdf` on their current points, retire the ones that
# converged or passed `far`. Run it under `torch.no_grad()`. Reject non-`[N, 3]` inputs, directions that are
# not unit length, `near >= far`, `max_steps < 1` and `eps <= 0` with a `ValueError` naming the argument.

# %% [scaffold] id=sphere_trace

# %% [readonly]
check("sphere_trace", sphere_trace)

# %% [tests] id=sphere_trace

# %% [markdown]
# A small scene — a sphere, a box and a torus on a ground plane — traced with your `sphere_trace` and your
# `get_rays`, shaded with the normals from autograd: Lambertian diffuse light $\max(0, n \cdot l)$ plus a
# constant ambient term, and a shadow where a second traced ray towards the light hits something.

# %% [code]
def sd_sphere(p, centre, radius):
    return (p - p.new_tensor(centre)).norm(dim=-1) - radius


def sd_box(p, centre, half):
    q = (p - p.new_tensor(centre)).abs() - p.new_tensor(half)
    return q.clamp(min=0).norm(dim=-1) + q.amax(dim=-1).clamp(max=0)


def sd_torus(p, centre, big, small):
    q = p - p.new_tensor(centre)
    return torch.stack([q[..., :2].norm(dim=-1) - big, q[..., 2]], -1).norm(dim=-1) - small


def scene_parts(p):
    """Signed distances ``[..., 4]`` to the four objects at points ``[..., 3]``."""
    return torch.stack([sd_sphere(p, (0.0, 0.0, 0.0), 0.6), sd_box(p, (1.3, 0.3, -0.2), (0.35, 0.35, 0.4)),
                        sd_torus(p, (-1.0, -0.5, -0.45), 0.45, 0.15), p[..., 2] + 0.6], dim=-1)


def scene_sdf(p):
    return scene_parts(p).amin(dim=-1)                                       # union = minimum


ALBEDO = torch.tensor([[0.9, 0.35, 0.25], [0.3, 0.6, 0.9], [0.95, 0.8, 0.3], [0.75, 0.75, 0.72]])
LIGHT = F.normalize(torch.tensor([0.6, -0.4, 1.0]), dim=0)


def render_sdf(size, max_steps=64, eps=1e-3, shadows=True):
    cam = look_at(torch.tensor([3.2, -3.6, 2.0]), torch.tensor([0.0, 0.0, -0.2]))
    o, d = get_rays(size, size, 1.1 * size, cam)
    o, d = o.reshape(-1, 3), F.normalize(d.reshape(-1, 3), dim=-1)            # [H W, 3], unit directions
    t, hit = sphere_trace(scene_sdf, o, d, near=0.0, far=12.0, max_steps=max_steps, eps=eps)
    p = (o + t[:, None] * d)[hit].requires_grad_(True)
    normal = F.normalize(torch.autograd.grad(scene_sdf(p).sum(), p)[0], dim=-1)   # grad f at the surface
    p = p.detach()
    diffuse = (normal @ LIGHT).clamp(min=0)
    if shadows:
        _, blocked = sphere_trace(scene_sdf, p + 2e-2 * normal, LIGHT.expand_as(p).contiguous(), 0.0, 12.0,
                                  max_steps, eps)
        diffuse = diffuse * (~blocked)
    albedo = ALBEDO[scene_parts(p).argmin(dim=-1)]
    sky = torch.tensor([0.65, 0.78, 0.95]) * (0.75 + 0.25 * d[:, 2:].clamp(min=0))
    image = sky.clone()
    image[hit] = albedo * (0.15 + 0.85 * diffuse[:, None])
    return image.reshape(size, size, 3).clamp(0, 1), hit.reshape(size, size)


start = time.perf_counter()
image, _ = render_sdf(48 if SMOKE else 192)
print(f"rendered in {time.perf_counter() - start:.1f} s")
plt.figure(figsize=(5, 5))
plt.imshow(image.numpy())
plt.axis("off")
plt.show()

# %% [markdown]
# `max_steps` and `eps` trade speed against accuracy. Few steps stop rays that graze a surface (their SDF
# shrinks slowly, so they need many small steps) before they converge: edges and the far ground turn into
# misses. A large `eps` stops rays early, *in front of* the surface: silhouettes swell, and shadow rays that
# start near a surface hit it immediately. A tiny `eps` needs more steps per ray.

# %% [code]
settings = [(4, 1e-3), (16, 1e-3), (64, 1e-3), (64, 0.1)]
fig, axes = plt.subplots(1, len(settings), figsize=(14, 3.8))
for ax, (steps_, eps_) in zip(axes, settings):
    img, hits = render_sdf(32 if SMOKE else 128, max_steps=steps_, eps=eps_)
    ax.imshow(img.numpy())
    ax.set_title(f"max_steps={steps_}, eps={eps_:g}\n{int(hits.sum())} hits", fontsize=9)
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# **Question 4 (written).** (a) Why must the function given to sphere tracing be a true signed distance, or
# at least never larger than the true distance (a *conservative* bound)? What goes wrong with, say,
# $2 f(x)$, and what is the cost of using $f(x)/2$? (b) A neural network trained to output SDF values is
# usually not exactly a distance function. How could you still trace it safely?

# %% [answer] id=q_sphere_tracing points=3
# (a) Each step advances by $f(x)$ on the promise that a ball of that radius around $x$ contains no surface. If
# $f$ overestimates the distance (e.g. $2f$, or any function whose gradient norm exceeds 1), a step can jump
# across a thin object or past the first crossing into or through the surface: the ray reports a later surface,
# or misses, and images show holes and missing thin parts. An underestimate ($f/2$, gradient norm below 1) is
# still safe, it only converges more slowly: more steps for the same accuracy (roughly twice as many here, and
# grazing rays may run out of `max_steps`).
# (b) Scale the step by a safety factor (step $= k f$ with $k < 1$, or divide by an estimate of the Lipschitz
# constant of the network), clamp large steps, or regularise training so that $\lVert\nabla f\rVert = 1$
# (the eikonal loss of IGR/IDR). One can also refine the crossing after a sign change by bisection/secant steps,
# and fall back to fixed-step marching near the surface.

# %% [markdown]
# ## 7. Learned priors
#
# Everything in this notebook fits one network to one scene. Networks that carry a *prior* learned from many
# shapes or scenes (auto-decoders and encoders, local and pixel-aligned conditioning, light field networks,
# hypernetworks) are the subject of assignment 5, `a5_priors`, which builds on the functions you wrote here.
