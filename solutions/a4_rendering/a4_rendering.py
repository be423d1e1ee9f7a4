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
# 5. a TinyNeRF made of your five functions, trained on a synthetic scene and judged on views it never saw,
#    and what a voxel grid buys in speed and costs in memory;
# 6. surfaces as signed distance functions, rendered by `sphere_trace`; shiny surfaces and NeRF's viewing
#    direction as a fifth input; how voxels, point clouds, meshes and networks compare in memory and accuracy;
# 7. Gaussian splatting (`splat_gaussians_2d`): an explicit scene made of Gaussians, composited like §4;
# 8. where learned priors come in: a pointer to assignment 5 (`a5_priors`).
#
# **How this notebook is graded.** The seven functions you write (`get_rays`, `sample_stratified`,
# `positional_encoding`, `volume_render`, `sample_pdf`, `sphere_trace`, `splat_gaussians_2d`) are graded
# automatically: the grader
# extracts your function definitions from this file and runs them, in a separate sandboxed process, on many
# random inputs against a reference implementation, including edge cases, float32 and float64, gradients and
# bad arguments. The cell after each function runs a *public* subset of those checks so you get feedback
# immediately. The written questions are graded by hand. Experiments and the small "loop" functions are not
# graded, but the experiments only work once your functions do.
#
# Do not rename the functions or change their signatures, keep them vectorised (no Python loop over pixels,
# rays, samples or Gaussians; `sphere_trace` may loop over its marching steps), and keep everything a function
# needs (imports, helpers) at the top level of a code cell.

# %% [readonly]
import math
import os
import time
from typing import Callable

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
OUT = output_path("nerf_orbit.gif").parent                             # outputs/ beside the notebook (GIFs)
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
with optional("get_rays_loop"):
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
with optional("get_rays_loop"):
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
# $D(1 + 2L)$). The NeRF paper's $\gamma(p)$ (their eq. 4) has only the sines and cosines, $2L$ numbers per
# coordinate: 60 for a 3-D point with $L = 10$. Their code, and our contract, also put $x$ itself in front
# (`include_input=True`), which makes 63 (Question 1(c) asks why). Points that are close in space but on
# different sides of a fine detail now differ a lot in the high-frequency channels, and a first layer can
# separate them. The picture shows the channels for $D = 1$, $L = 4$ over $x \in [-1, 1]$.

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
    ff = ff_experiment.run(positional_encoding=positional_encoding, device=device, progress=False)
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
with optional("volume_render_loop"):
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
rgb_vec, w_vec = volume_render(sig, col, tv)
t_vec = time.perf_counter() - start
with optional("volume_render_loop"):
    start = time.perf_counter()
    rgb_loop, w_loop = volume_render_loop(sig, col, tv)
    t_loop = time.perf_counter() - start
    print(f"values agree: {torch.allclose(rgb_loop, rgb_vec) and torch.allclose(w_loop, w_vec)}; loop "
          f"{1e3 * t_loop:.1f} ms, vectorised {1e3 * t_vec:.2f} ms ({t_loop / max(t_vec, 1e-9):.0f}x faster)")

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
# With a density activation that is never exactly 0 (softplus) the background term $e^{-\sigma_S 10^{10}}$ is
# *usually* near 0, and white must then be painted at the far end: usually, because it holds only while the
# softplus's argument at the last sample stays above about $-21$ ($\operatorname{softplus}(-21)\cdot 10^{10}
# \approx 7.6$, so $e^{-7.6} \approx 5\cdot 10^{-4}$ of the light reaches the background); at $-23$ it is
# $e^{-1} \approx 0.37$, and below $-27$ nearly all of it ($0.98$), so a network can still learn to show the
# background by pushing that argument far down. It matters
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
    nerf = nerf_experiment.run(get_rays=get_rays, sample_stratified=sample_stratified,
                               positional_encoding=positional_encoding, volume_render=volume_render,
                               sample_pdf=sample_pdf, data=scene, device=device, progress=False)
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

    orbit = nerf_experiment.orbit_poses(4 if SMOKE else 24, radius=4.0, elevation_deg=35.0)
    frames = [nerf_experiment.render_view(field, p, H, W, focal, scene.near, scene.far, exp.n_samples, stages,
                                          n_fine=exp.n_fine)["rgb"] for p in orbit]
    gif = save_gif(frames, OUT / "nerf_orbit.gif", fps=8)
    print(f"written to {gif}")
    display(Image(filename=str(gif)))

# %% [markdown]
# ### Space against time: an MLP or a voxel grid
#
# The lecture compares NeRF with LLFF (Mildenhall et al., 2019), which stores a scene as a stack of
# multiplane images: NeRF needs **5 MB** of weights where LLFF produces **15 GB** of voxel grids for one
# scene (the NeRF paper's numbers), but NeRF trains for about **12 hours** per scene where LLFF takes about
# **10 minutes**. Memory buys speed. `course_lib.nerf` has a
# TinyNeRF of each kind, and both run on your four stage functions:
#
# * `plain`: the NeRF authors' tiny NeRF, an $8 \times 256$ MLP on $\gamma(x)$ with $L = 6$, 64 samples per
#   ray, every sample through all eight layers; **0.48 million floats**;
# * `fast`: no network at all, a dense voxel grid that stores a density and an RGB colour at every vertex,
#   read by trilinear interpolation (DVGO, Plenoxels); it starts with $40^3$ vertices and is resampled to
#   $64^3$, $96^3$ and $128^3$ (**8.4 million floats**) as training goes on, and skips the empty space its
#   current density marks (an occupancy grid). A grid lookup costs a few operations where the MLP costs half a
#   million multiply-adds per sample.
#
# Both train for the same budget on the same 100 views and are judged on two held-out views. (The budget is
# counted in CPU time of the notebook's process, so a busy machine slows both alike; on a GPU it is wall-clock
# time.)
#
# **At the default settings (25 s of training each), the grid reaches a held-out PSNR at least 10 dB higher
# than the MLP, and stores at least twice as many floats** (by then it has been resampled to $64^3$ vertices,
# 1.05 million floats; a test of the course package checks this; on the NeRF authors' $100 \times 100$ lego
# views, the last 10 held out, we measured 22.3 against 10.6 dB). Left to train, the grid
# keeps growing to its $128^3$ vertices and 8.4 million floats, seventeen times the MLP.

# %% [code]
from course_lib.experiments import space_time
from course_lib.nerf import render_image

if GRADING:
    print("skipped while grading")
else:
    st = space_time.run(get_rays=get_rays, sample_stratified=sample_stratified,
                        positional_encoding=positional_encoding, volume_render=volume_render, data=scene,
                        device=device)
    m = st["metrics"]
    for name, label in (("plain", "MLP (plain)"), ("fast", "voxel grid (fast)")):
        print(f"{label:>17}: held-out PSNR {m[f'psnr_{name}_db']:5.2f} dB after {m[f'steps_{name}']:4d} steps, "
              f"{m[f'floats_{name}']:>9,} floats ({4 * m[f'floats_{name}'] / 2**20:.1f} MB as float32)")
    pose = st["views"]["poses"][-1]
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
    panels = [(st["views"]["images"][-1], "held-out view")]
    panels += [(render_image(st["models"][k], pose, H, W, focal).cpu(), f"{k}: {m[f'psnr_{k}_db']:.1f} dB")
               for k in ("plain", "fast")]
    for ax, (img, title) in zip(axes, panels):
        ax.imshow(img.clamp(0, 1).numpy())
        ax.set_title(figure_title(title), fontsize=9)
        ax.axis("off")
    plt.tight_layout()
    plt.show()

# %% [markdown]
# The MLP has barely started: in the same time it takes a handful of steps, each pushing 65,536 samples
# through eight wide layers, while the grid takes hundreds. The grid pays in memory, and in what it cannot do: it
# stores one value per vertex whether the space there is empty or not, its resolution is fixed by the box and
# the vertex count, and it has no smooth prior between vertices (a network interpolates with its learned
# function). Instant-NGP and 3D Gaussian splatting (section 7) are later points on the same curve.

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
# ### Highlights, and NeRF's fifth input
#
# The renders above shade with $\max(0, n \cdot l)$, which does not depend on where the camera is: a
# Lambertian surface looks the same from every direction, and so do the objects of section 5. A shiny surface
# does not. Blinn's model adds a highlight where the normal bisects the directions to the light and to the
# camera: with the viewing direction $d$ (from the camera) and $h = \frac{l - d}{\lVert l - d\rVert}$,
#
# $$c(x, d) = c_\text{diffuse}(x) + k_s \max(0, n(x) \cdot h)^p .$$
#
# The original NeRF therefore reads a **5-D input**: position and viewing direction. The position (through
# $\gamma$ with $L = 10$) alone decides the density and a feature vector; only then the direction joins,
# encoded with $L = 4$, in one more layer that outputs the colour. Density cannot depend on the direction —
# the geometry is the same from every side — but colour can.
#
# The experiment adds a white highlight ($k_s = 0.8$, $p = 20$) to every view of section 5's scene, where the
# camera ray meets a surface — found by **your** `sphere_trace`, with normals from autograd as above — and
# trains section 5's TinyNeRF twice with a small colour head, fed $[\text{feature}, \gamma(d)]$ or only
# $[\text{feature}]$ (your five functions again, section 5's 1,000 steps of 1,024 rays; about three minutes).
#
# **At the default settings the network that sees the viewing direction reaches a held-out PSNR at least
# 1.5 dB higher than the same network without it** (a test of the course package checks this; we measured
# 2.4 dB). The gain varies from one training run to the next, and shrinks for weaker, sharper highlights: a
# network this small learns highlights late, after the geometry and the diffuse colours. On the NeRF
# authors' lego views, whose materials are mostly matte, the same comparison gives 0.1 dB (21.3 against
# 21.2 dB): within the noise.

# %% [code]
from course_lib.experiments import view_dependence

if GRADING:
    print("skipped while grading")
else:
    vd = view_dependence.run(get_rays=get_rays, sample_stratified=sample_stratified,
                             positional_encoding=positional_encoding, volume_render=volume_render,
                             sample_pdf=sample_pdf, sphere_trace=sphere_trace, device=device, progress=False)
    m = vd["metrics"]
    print(view_dependence.format_metrics({k: m[k] for k in ("heldout_psnr_view_db", "heldout_psnr_noview_db",
                                                            "view_gain_db")}))
    test_spec = vd["data"].holdout_split()
    fig, axes = plt.subplots(2, 3, figsize=(9, 6.2))
    for row, k in enumerate((0, 1)):
        pose = test_spec.poses[k]
        renders = [nerf_experiment.render_view(vd["fields"][key], pose, H, W, focal, scene.near, scene.far,
                                               vd["exp"].nerf.n_samples, vd["stages"])["rgb"]
                   for key in ("view", "noview")]
        for ax, img, title in zip(axes[row], [test_spec.images[k]] + renders,
                                  ("held-out view", "with d", "without d")):
            ax.imshow(img.numpy())
            ax.set_title(figure_title(title), fontsize=9)
            ax.axis("off")
    plt.tight_layout()
    plt.show()

# %% [markdown]
# Without the direction the network can only paint one colour per point, the average over the views that saw
# it: highlights smear into a faint glow, or vanish. With it, the colour head moves them with the camera. The
# same freedom is also a risk: a network allowed to explain any view-dependent change by colour alone can fit
# the training views with wrong geometry (the "shape-radiance ambiguity" of NeRF++); NeRF's limited
# direction input — one small layer, $L = 4$ — keeps that in check.

# %% [markdown]
# ### Voxels, points, meshes or a network?
#
# An SDF is one way to store a shape. The lecture's others: a **voxel grid** ($N^3$ cells, inside or
# outside), a **point cloud** ($K$ points on the surface, no inside and no connectivity), a **mesh**
# (vertices and triangles), and an **implicit** function stored as a network (occupancy networks, DeepSDF:
# an MLP that answers "how far / inside?" for any query point). The experiment stores section 5's analytic
# scene (four objects, about 2.4 units across) in each, at several sizes:
#
# * voxels: $N = 16 \dots 128$, one value per voxel (inside when the SDF at its centre is negative);
# * meshes: extracted from the SDF sampled at the same $N^3$ vertices by **marching tetrahedra** (every
#   grid cube cut into six tetrahedra; a tetrahedron whose corners change sign gets one or two triangles,
#   with vertices where the linear interpolation crosses 0); a mesh stores 3 floats per vertex and 3 indices
#   per triangle;
# * point clouds: $K = 256 \dots 16{,}384$ points of the true surface;
# * a neural SDF: a 3-layer, 64-wide MLP on **your** `positional_encoding` of $x$, fitted to the SDF
#   (clamped to $\pm 0.1$, as DeepSDF does), and meshed at $96^3$.
#
# Accuracy is the **Chamfer distance** — the mean distance from points on the representation's surface to the
# nearest point of the true surface and back, halved — on 10,000 surface points each, and, for the solids,
# the **IoU** of the inside with the true inside on 200,000 random points. Two independent samples of the
# true surface itself are 0.012 apart: the floor of this measurement.
#
# **At the default settings each doubling of $N$ multiplies the voxel grid's memory by 8 but divides its
# Chamfer distance by only about 1.8 (0.053 at $N = 32$, 0.016 at $N = 128$ with 2.1 million values); a mesh
# at $N = 32$ is more accurate than the $128^3$ grid with 70 times fewer floats; and the network, with 10,945
# floats, matches the $128^3$ grid's IoU of 0.95 within 0.01** (a test of the course package checks this).

# %% [code]
from course_lib.experiments import representations

if GRADING:
    print("skipped while grading")
else:
    rep = representations.run(positional_encoding=positional_encoding, device=device)
    print(representations.format_rows(rep["rows"]))
    print(f"two samples of the true surface: Chamfer {rep['metrics']['chamfer_floor']:.4f}")
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for name, marker in (("voxels", "s-"), ("mesh", "o-"), ("points", "^-"), ("network", "*")):
        rows = [r for r in rep["rows"] if r["name"] == name]
        axes[0].loglog([r["floats"] for r in rows], [r["chamfer"] for r in rows], marker, label=name, ms=9)
    axes[0].axhline(rep["metrics"]["chamfer_floor"], color="0.6", ls=":", label="floor of the measurement")
    axes[0].set(xlabel="floats stored", ylabel="Chamfer distance", title=figure_title("memory against accuracy"))
    axes[0].legend()
    bound = rep["bound"]
    near_z0 = rep["truth"][rep["truth"][:, 2].abs() < 0.02]                  # true surface points near z = 0
    axes[1].scatter(near_z0[:, 0], near_z0[:, 1], s=1, color="k", label="true surface")
    sizes = rep["exp"].resolutions
    for n, colour in ((sizes[0], "C0"), (sizes[min(2, len(sizes) - 1)], "C1")):
        verts, faces = rep["meshes"][n]
        tri = verts[faces]                                                   # [F, 3, 3]
        cut = tri[(tri[..., 2].amin(-1) < 0) & (tri[..., 2].amax(-1) > 0)]  # triangles crossing z = 0
        axes[1].scatter(cut[..., 0].mean(-1), cut[..., 1].mean(-1), s=2, color=colour, label=f"mesh, N = {n}")
    axes[1].set(xlim=(-bound, bound), ylim=(-bound, bound), aspect="equal",
                title=figure_title("a slice at z = 0"))
    axes[1].legend(markerscale=4, fontsize=8)
    plt.tight_layout()
    plt.show()

# %% [markdown]
# Voxels do not scale: a fine grid spends almost all of its cells on empty space and solid interior, where
# nothing needs to be stored, so memory grows as $N^3$ while the detail that matters lives on a surface
# that holds only about $N^2$ cells. Meshes and point clouds store the surface only ($\sim N^2$); a network
# stores neither — its size is chosen, not dictated by the resolution, and it can be queried at any point,
# which is what made occupancy networks, DeepSDF and NeRF possible. The price is that every query runs the
# network (section 5's space against time).

# %% [markdown]
# ## 7. Gaussian splatting
#
# NeRF's scene is **implicit**: to learn what is at a point you ask the network, and every pixel asks it at
# every sample of its ray. 3D Gaussian splatting (Kerbl et al., 2023) stores the scene **explicitly**, as a
# few million 3-D Gaussians, each with a position, a covariance (a scale per axis and a rotation), an opacity
# and a colour. To render a view, every Gaussian is projected onto the image, where it becomes a 2-D Gaussian
# footprint — a *splat* — the splats are sorted by depth, and each pixel blends those that cover it, front to
# back. No network runs, so it renders in real time (over 100 frames per second at 1080p on a GPU), and the
# Gaussians are fitted to the photos by gradient descent exactly like a NeRF. It **costs memory**: hundreds
# of megabytes per scene (734 MB on the Mip-NeRF 360 scenes, against 8.6 MB for Mip-NeRF 360's MLP; their
# Table 1).
#
# We start after the projection: the Gaussians already live in the image plane, with a depth for sorting.
# Gaussian $g$ has mean $\mu_g$ (pixels), scales $s_g$ (standard deviations along its two axes), angle $a_g$,
# colour $c_g$, opacity $o_g$ and depth $z_g$. With $R(a) = \begin{bmatrix}\cos a & -\sin a\\ \sin a & \cos a
# \end{bmatrix}$ and $\Sigma_g = R(a_g)\,\operatorname{diag}(s_g^2)\,R(a_g)^\top$, its opacity at the pixel
# centre $p = (i + \tfrac12, j + \tfrac12)$ (column $i$, row $j$; $x$ to the right, $y$ down) is
#
# $$\alpha_g(p) = \min\Big(o_g \exp\big(-\tfrac12 (p - \mu_g)^\top \Sigma_g^{-1} (p - \mu_g)\big),\ 0.99\Big),$$
#
# and, with the Gaussians sorted by increasing depth,
#
# $$T_g(p) = \prod_{h \text{ in front of } g} \big(1 - \alpha_h(p)\big), \qquad
#   \text{image}(p) = \sum_g T_g(p)\, \alpha_g(p)\, c_g, \qquad
#   \text{alpha}(p) = 1 - \prod_g \big(1 - \alpha_g(p)\big).$$
#
# This is section 4's compositing, $w = T \alpha$, with $\alpha$ read from a closed-form footprint instead of
# $1 - e^{-\sigma \delta}$ at a ray sample. (The cap at 0.99 is 3DGS's; it keeps every $1 - \alpha$ away from
# 0.) Three Gaussians, their one- and two-standard-deviation ellipses, and the order in which a pixel meets them:

# %% [code]
from matplotlib.patches import Ellipse

demo_means = torch.tensor([[14.0, 12.0], [22.0, 16.0], [17.0, 21.0]])
demo_scales = torch.tensor([[6.0, 2.5], [4.0, 4.0], [7.0, 1.5]])
demo_angles = torch.tensor([0.5, 0.0, -0.3])
demo_colors = torch.tensor([[0.9, 0.2, 0.2], [0.2, 0.7, 0.3], [0.2, 0.3, 0.9]])
demo_opac = torch.tensor([0.9, 0.6, 0.95])
demo_depths = torch.tensor([2.0, 1.0, 3.0])                                  # green is nearest, blue farthest
fig, ax = plt.subplots(figsize=(4.5, 4.5))
for m_, s_, a_, c_, z_ in zip(demo_means, demo_scales, demo_angles, demo_colors, demo_depths):
    for k in (1, 2):
        ax.add_patch(Ellipse(m_.tolist(), 2 * k * float(s_[0]), 2 * k * float(s_[1]),
                             angle=math.degrees(float(a_)), fill=False, color=c_.tolist(), lw=2 / k))
    ax.text(float(m_[0]), float(m_[1]), f"z={float(z_):g}", ha="center", va="center", fontsize=9)
ax.set(xlim=(0, 32), ylim=(32, 0), aspect="equal", title="1- and 2-sigma ellipses (y points down)")
plt.show()

# %% [markdown]
# ### Task 7: `splat_gaussians_2d`
#
# `splat_gaussians_2d(means, scales, angles, colors, opacities, depths, height, width)` returns
# `(image [H, W, C], alpha [H, W])`. First the loop (not graded): `splat_gaussians_2d_loop` visits one pixel
# and one Gaussian at a time, as the formulas read. Then the vectorised version, over all pixels and Gaussians
# at once:
#
# * sort the Gaussians by depth with a **stable** sort (`torch.sort(depths, stable=True)`: equal depths keep
#   their input order) and reorder every per-Gaussian tensor;
# * build the pixel centres and the offsets $p - \mu_g$ as an `[H W, G]` pair by broadcasting;
# * the Mahalanobis distance needs no inverse: rotate the offset into the Gaussian's frame,
#   $u = R(a)^\top (p - \mu)$, then it is $(u_1 / s_1)^2 + (u_2 / s_2)^2$;
# * the transmittance as in `volume_render`: the exponential of an **exclusive** cumulative sum of the optical
#   thicknesses $-\log(1 - \alpha)$ (`torch.log1p(-alpha)`; finite because of the cap), and one matrix
#   product `[H W, G] @ [G, C]` for the image.
#
# Reject with a `ValueError` naming the argument: scales $\le 0$, opacities outside $[0, 1]$, and a number of
# Gaussians that differs between the arguments. `depths` may be any real dtype; no gradient flows into it.

# %% [loop] id=splat_gaussians_2d

# %% [code]
with optional("splat_gaussians_2d_loop"):
    demo_args = (demo_means, demo_scales, demo_angles, demo_colors, demo_opac, demo_depths, 32, 32)
    img_loop, alpha_loop = splat_gaussians_2d_loop(*demo_args)
    print(f"pixel (row 16, column 20): colour {[round(v, 3) for v in img_loop[16, 20].tolist()]}, "
          f"alpha {float(alpha_loop[16, 20]):.3f}")

# %% [scaffold] id=splat_gaussians_2d

# %% [readonly]
check("splat_gaussians_2d", splat_gaussians_2d)

# %% [tests] id=splat_gaussians_2d

# %% [markdown]
# Your function on the three Gaussians, and the same Gaussians with the depths reversed (blue in front):

# %% [code]
fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
img_front, alpha_front = splat_gaussians_2d(demo_means, demo_scales, demo_angles, demo_colors, demo_opac,
                                            demo_depths, 32, 32)
img_back, _ = splat_gaussians_2d(demo_means, demo_scales, demo_angles, demo_colors, demo_opac, -demo_depths,
                                 32, 32)
for ax, img, title in zip(axes, (img_front, alpha_front, img_back),
                          ("image (green nearest)", "alpha", "depths reversed (blue nearest)")):
    ax.imshow(img.clamp(0, 1).numpy(), **({"cmap": "gray"} if img.dim() == 2 else {}))
    ax.set_title(title, fontsize=9)
    ax.axis("off")
plt.show()
with optional("splat_gaussians_2d_loop"):
    print(f"loop and vectorised agree: {torch.allclose(img_loop, img_front, atol=1e-6)}")

# %% [markdown]
# ### One Gaussian per sample is volume rendering
#
# Take a ray of section 4 with samples $t_i$, densities $\sigma_i$ and colours $c_i$. Put one Gaussian per
# sample on a $1 \times 1$ image, centred on the pixel (its exponent is then 0, so its alpha is its opacity),
# with depth $t_i$ and opacity $\alpha_i = 1 - e^{-\sigma_i \delta_i}$ — equivalently, a Gaussian of opacity
# $\alpha$ is a ray segment of optical thickness $\sigma_i \delta_i = -\log(1 - \alpha_i)$. Then `splat_gaussians_2d`
# and `volume_render` compute the same weights and the same colour (with one-hot colours the splatted pixel
# *is* the weight vector). The cap needs every $\alpha_i \le 0.99$, so the last sample (whose $\delta$ is
# $10^{10}$) is empty here. Your two functions, on 16 random rays of 24 samples:

# %% [code]
from course_lib.experiments import splatting as splat_experiment

g = torch.Generator().manual_seed(1)
sig = torch.rand(16, 24, generator=g, dtype=torch.float64) * 3
sig[:, -1] = 0.0                                                   # the last sample (delta = 1e10) is empty
col = torch.rand(16, 24, 3, generator=g, dtype=torch.float64)
tv = torch.sort(2 + 4 * torch.rand(16, 24, generator=g, dtype=torch.float64), -1).values
same = splat_experiment.splats_as_volume_rendering(splat_gaussians_2d, volume_render, sig, col, tv)
print(f"largest alpha {float(same['alphas'].max()):.3f} (the cap is 0.99)")
print(f"weights: largest difference {float((same['weights_splat'] - same['weights_volume']).abs().max()):.1e}; "
      f"colours: {float((same['rgb_splat'] - same['rgb_volume']).abs().max()):.1e}")

# %% [markdown]
# ### Fitting the image of section 3 with Gaussians
#
# The experiment fits the glyph of section 3 with $G$ = 128, 512 and 2,048 Gaussians. Each stores a mean
# (2), scales (2), an angle, a colour (3), an opacity and a depth: **10 floats**. They start spread at random
# with the colour of the pixel under them, and Adam moves all of it (except the depth order) for 150 steps to
# reduce the pixel error. Like 3DGS's rasteriser, rendering goes by **tiles** of $16 \times 16$ pixels, each
# splatted (with your function) from only the Gaussians that can reach an opacity of 1/255 inside it; the
# PSNR is measured on the exact render over all Gaussians. The positional-encoding MLP of section 3 is the
# implicit counterpart, and its fit from section 3 is reused. About 20 seconds.
#
# **At the default settings the MLP (10,243 floats) fits the image at least 3 dB better than 512 Gaussians,
# which store half as many floats (5,120); 2,048 Gaussians fit it at least 5 dB better than the MLP, but store
# twice its floats (20,480) — more than the image itself has values (12,288)** (a test of the course package
# checks this). On a $100 \times 100$ lego view (30,000 values) we measured 33.8 dB for the MLP, 33.2 dB for 512
# Gaussians and 43.1 dB for 2,048.

# %% [code]
if GRADING:
    print("skipped while grading")
else:
    sp = splat_experiment.run(splat_gaussians_2d=splat_gaussians_2d, positional_encoding=positional_encoding,
                              mlp_prediction=ff["fits"]["pe"], device=device)
    m = sp["metrics"]
    print(f"{'':>15}{'PSNR':>9}{'floats':>9}{'render (tiles)':>16}{'render (dense)':>16}")
    for n in sp["exp"].counts:
        print(f"{n:>5} Gaussians{m[f'psnr_g{n}_db']:>7.2f} dB{m[f'floats_g{n}']:>9,}"
              f"{m[f'render_ms_g{n}']:>13.1f} ms{m[f'render_dense_ms_g{n}']:>13.1f} ms")
    print(f"{'MLP (PE)':>15}{m['psnr_mlp_db']:>7.2f} dB{m['floats_mlp']:>9,}{m['render_ms_mlp']:>13.1f} ms")
    print(f"the image itself: {m['floats_image']:,} values")
    counts = sp["exp"].counts
    fig, axes = plt.subplots(1, len(counts) + 2, figsize=(3 * (len(counts) + 2), 3.2))
    panels = [(sp["target"], "target"), (sp["fits"]["mlp"], f"MLP: {m['psnr_mlp_db']:.1f} dB")]
    panels += [(sp["fits"][n], f"{n} Gaussians: {m[f'psnr_g{n}_db']:.1f} dB") for n in counts]
    for ax, (img, title) in zip(axes, panels):
        ax.imshow(img.clamp(0, 1).numpy())
        ax.set_title(figure_title(title), fontsize=9)
        ax.axis("off")
    plt.tight_layout()
    plt.show()

# %% [markdown]
# Per float the MLP is the more compact: its weights are shared by every pixel, while each Gaussian describes
# one small patch, so detail costs Gaussians — an explicit representation grows with what it must hold. The
# render times are the other half of the story. The dense render costs $H W G$ alpha evaluations, growing
# with every Gaussian added; the tiled one touches only the (pixel, Gaussian) pairs that matter, which is why
# 3DGS sorts and rasterises per tile. In 2-D the MLP
# runs once per pixel, so there is no ray to march and little for splatting to save; in 3-D NeRF runs its
# network at every one of the 64–192 samples of every ray, and that is what splatting removes.
#
# **Question 5 (written).** (a) Splatting sorts the Gaussians by depth once (per view, or per tile), while
# `volume_render` never sorts. Why does volume rendering not need a sort, and what goes wrong in a splatted
# image where two Gaussians interpenetrate, so that neither is in front everywhere? (b) Use the experiment's
# numbers: how do the floats stored by 2,048 Gaussians compare with the MLP and with the image itself? Why
# does a 3-D scene in 3DGS need millions of Gaussians and hundreds of megabytes where NeRF needs 5 MB?
# (c) What does the cap $\alpha \le 0.99$ protect, and what does a Gaussian lose where the cap is active?

# %% [answer] id=q_splatting points=3
# (a) Volume rendering samples each ray in order of $t$, so the samples are sorted by construction: front to
# back is the order of the quadrature. Splatting has a list of primitives in no order, and its blending is
# only front-to-back correct if they are composited nearest first. Because the sort is per Gaussian (by the
# depth of its centre), not per pixel and per depth along the ray, two interpenetrating Gaussians are blended
# in the same order at every pixel: where the "behind" one actually comes first along the ray, it is drawn
# behind anyway, and as the camera moves the order can flip at once ("popping"). (b) 2,048 Gaussians store
# 20,480 floats: twice the MLP's 10,243 and more than the 12,288 values of the image itself, and only at that
# size do they beat the MLP (with half its floats, 512 Gaussians are several dB worse). The explicit
# representation grows with the detail it must hold (here, about one Gaussian per two pixels), whereas the
# MLP's size is chosen and its weights are shared by all pixels. A 3-D scene must cover every surface seen
# from every view at pixel resolution: 1–6 million Gaussians of 59 floats each (position 3, scale 3,
# rotation 4, opacity 1, spherical-harmonics colour 48) are hundreds of MB; NeRF shares one small network
# across all of space. (c) The transmittance uses
# $\log(1 - \alpha)$ (or a division by $1 - \alpha$ when composited back to front or differentiated): at
# $\alpha = 1$ it is $-\infty$ and gradients blow up; the cap keeps the optical thickness at most $\log 100$.
# Where it is active the Gaussian's opacity is constant, so its gradient with respect to its footprint (mean,
# scale, angle, opacity) is 0 there: that pixel stops pulling on it.

# %% [markdown]
# ## 8. Learned priors
#
# Everything in this notebook fits one network to one scene. Networks that carry a *prior* learned from many
# shapes or scenes (auto-decoders and encoders, local and pixel-aligned conditioning, light field networks,
# hypernetworks) are the subject of assignment 5, `a5_priors`, which builds on the functions you wrote here.
