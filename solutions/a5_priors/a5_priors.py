# %% [markdown]
# # Assignment 5 — Neural fields as priors
#
# In assignment 4 one network learned one scene from a hundred photos. A person needs one photo, or two, to
# have a good idea of a scene's shape — because they have seen many scenes before. This assignment follows the
# lecture "Neural networks as prior-based inference algorithms": a single scene fitted from few observations is
# **under-constrained**; a **prior** learned from many scenes fills in what the observations leave open; and how
# the network is told *which* scene to draw — its **conditioning** — decides what the prior can do on inputs
# unlike its training data.
#
# In this notebook you will
#
# 1. fit the TinyNeRF of assignment 4 to 3 views and watch it reproduce them perfectly and get everything else
#    wrong;
# 2. write `project_points`, the inverse of `get_rays`, and see a pixel's ray as a line in another view;
# 3. write `plucker_coordinates` and train a **light field network**, which renders a pixel with one network
#    evaluation instead of dozens — and pays for it with 3-D consistency;
# 4. learn a prior over shapes by **auto-decoding** and compare it with an **encoder**, on observations the
#    encoder was and was not trained for;
# 5. write `bilinear_sample_2d` and use it for **local** codes, which generalise to scenes busier than any seen in
#    training, and for **pixel-aligned features**, the input of pixelNeRF;
# 6. write `batched_mlp` and condition a network by a **hypernetwork** instead of concatenation.
#
# **The functions of assignment 4.** Rendering needs your `get_rays`, `sample_stratified`,
# `positional_encoding`, `volume_render`, `sample_pdf` and `sphere_trace`. The first code cell below reads them
# from your assignment-4 notebook, `../a4_rendering/a4_rendering.ipynb` (the file is read, not run; only those
# definitions and what they need are executed). If that notebook is elsewhere, change the path. A function that
# is missing there, or still a scaffold, is taken from the course package's reference instead *when the
# instructor has released the assignment-4 references*; otherwise the cell says which one to finish.
#
# **How this notebook is graded.** The four functions you write (`project_points`, `plucker_coordinates`,
# `bilinear_sample_2d`, `batched_mlp`, 10 points each) are graded automatically: the grader extracts your function
# definitions from this file and runs them, in a separate sandboxed process, on many random inputs against a
# reference implementation, including edge cases, float32 and float64, gradients and bad arguments. The cell after
# each function runs a *public* subset of those checks. The written questions are graded by hand. The experiments
# and the loop warm-ups are not graded, but the experiments only work once your functions do. The whole notebook
# runs in about 5 minutes on one CPU core.
#
# Do not rename the functions or change their signatures, keep them vectorised (no Python loop over points, rays
# or batch elements; `batched_mlp` may loop over its layers), and keep everything a function needs (imports,
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
from course_lib.notebook import figure_title, load_functions, optional, output_path
from course_lib.utils import pick_device, seed_everything, smoke_mode

device = pick_device()
SMOKE = smoke_mode()                                                   # tiny settings when COURSE_SMOKE=1
GRADING = os.environ.get("NBGRADER_EXECUTION") in ("autograde", "validate")   # nbgrader skips experiments
if device.type == "cpu":
    torch.set_num_threads(1)   # the networks here are small: on a busy CPU more threads wait more than they work
seed_everything(0)
print(f"course_lib {course_lib.__version__} | torch {torch.__version__} | device {device} | smoke mode {SMOKE}")

# %% [code]
A4_NAMES = ["get_rays", "sample_stratified", "positional_encoding", "volume_render", "sample_pdf", "sphere_trace"]
a4 = load_functions("../a4_rendering/a4_rendering.ipynb", A4_NAMES)
get_rays, sample_stratified, positional_encoding = a4["get_rays"], a4["sample_stratified"], a4["positional_encoding"]
volume_render, sample_pdf, sphere_trace = a4["volume_render"], a4["sample_pdf"], a4["sphere_trace"]
for name, fn in a4.items():
    origin = "the course package's reference" if (fn.__module__ or "").startswith("course_lib") else "your a4 notebook"
    print(f"{name:20s} from {origin}")

# %% [markdown]
# ## 1. One scene, three views
#
# NeRF fits a field $F_\theta(x) = (\sigma, c)$ to one scene by minimising the photometric error of its training
# rays and nothing else:
#
# $$\min_\theta \sum_{\text{views } k}\ \sum_{\text{pixels } r} \big\lVert C_\theta(r) - C_k(r) \big\rVert^2 .$$
#
# Every ray constrains only the integral $C_\theta(r) = \int T(t)\,\sigma(t)\,c(t)\,dt$ along itself. With a
# hundred cameras around the scene, every point is crossed by many rays from many directions and only the true
# geometry satisfies them all. With three, a great many fields render the same three images: a picture of each
# view painted on a card in front of its camera, or "floaters" that only one camera sees, reproduce the training
# images exactly. Nothing in the loss prefers the real scene — NeRF++ (Zhang et al., 2020) calls this the
# **shape-radiance ambiguity** — and gradient descent returns whichever solution it finds first.
#
# `course_lib.experiments.priors_fewviews` trains the TinyNeRF of assignment 4 — your five rendering functions,
# the same network and settings, 800 steps of 1,024 rays — twice: on 3 training views picked far apart, and on all
# 100. It then renders the 3 views both models were trained on, and the 6 held-out views, and compares the
# rendered depth $\sum_k w_k t_k$ with the true depth of the first surface, which your `sphere_trace` finds on
# the analytic SDF of the synthetic scene. About 2 minutes on a laptop CPU.
#
# **At the default settings both models reproduce their training views (training PSNR of at least 25 dB on the 3
# shared views), but on the held-out views the 3-view model is at least 8 dB worse, and its depth error on the
# held-out views is at least 5 times that of the 100-view model** (a test of the course package checks this with
# the reference functions; we measured 30.8 and 28.3 dB on the training views, 14.3 against 28.3 dB held out,
# and depth errors of 2.13 against 0.14).

# %% [code]
from course_lib.data import AnalyticScene, nerf_scene
from course_lib.experiments import priors_fewviews

if GRADING:
    print("skipped while grading")
else:
    few = priors_fewviews.run(get_rays, sample_stratified, positional_encoding, volume_render, sample_pdf,
                              sphere_trace, device=device, progress=False)
    m = few["metrics"]
    print(priors_fewviews.format_metrics(m))

# %% [code]
if not GRADING:
    data, views = few["data"], few["few"]
    train_views, test_views = data.train_split(), data.holdout_split()
    fig, axes = plt.subplots(1, len(views), figsize=(2.4 * len(views), 2.6))
    for ax, k in zip(axes, views.tolist()):
        ax.imshow(train_views.images[k].numpy())
        ax.set_title(f"training view {k}", fontsize=9)
        ax.axis("off")
    plt.suptitle(figure_title("the only views the 3-view model sees"), fontsize=10)
    plt.show()

    k = 0
    hit = few["true_hit"][k]
    true_d = torch.where(hit, few["true_depth"][k], torch.full_like(hit, float("nan"), dtype=torch.float32))
    panels = [(test_views.images[k], "held-out view"), (few["renders"]["few"]["heldout"]["rgb"][k], "3 views"),
              (few["renders"]["all"]["heldout"]["rgb"][k], "100 views"), (true_d, "true depth"),
              (few["renders"]["few"]["heldout"]["depth"][k], "depth, 3 views"),
              (few["renders"]["all"]["heldout"]["depth"][k], "depth, 100 views")]
    fig, axes = plt.subplots(1, 6, figsize=(15, 2.9))
    for ax, (img, title) in zip(axes, panels):
        kw = {"cmap": "viridis", "vmin": data.near, "vmax": data.far} if img.dim() == 2 else {}
        ax.imshow(img.numpy(), **kw)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    plt.suptitle(figure_title("a camera neither model was trained on"), fontsize=10)
    plt.show()
    print(f"training views: {m['train_psnr_few_db']:.1f} dB (3 views) and {m['train_psnr_all_db']:.1f} dB (100); "
          f"held out: {m['heldout_psnr_few_db']:.1f} and {m['heldout_psnr_all_db']:.1f} dB; "
          f"depth error: {m['depth_err_few']:.2f} and {m['depth_err_all']:.2f}")

# %% [markdown]
# The 3-view model is *better* on its own training views — it has fewer pixels to explain — and it is a good
# model of those three images, not of the scene: from a new camera the objects dissolve into faint coloured
# clouds in the wrong places, and its depth map finds no surface where the objects are (most of each ray's weight
# reaches the far end of the interval, plus a few floaters near the camera at the edges). More photos of the same
# scene fix that; the rest of this assignment is about the other fix — knowledge of what scenes look like, learned
# from *other* scenes.
#
# **Question 1 (written).** (a) Why can the 3-view model reach a training PSNR as high as the 100-view model's
# while being wrong about the geometry? Describe one concrete field that renders the three training views exactly
# and is not the scene. (b) A hand-written regulariser (e.g. "depth should be smooth", "density should be
# sparse") also reduces the ambiguity. In what sense is that a prior, and what does a *learned* prior add?

# %% [answer] id=q_few_views points=3
# (a) Each pixel constrains only the integral of colour along its own ray. With three cameras most points of
# space are seen by at most one ray of one camera, so the field is free to put anything there that integrates to
# the right colour. One exact solution: for each camera, a thin opaque "billboard" just in front of it (closer
# than the other cameras' rays pass, or outside their frusta) carrying that camera's image, with empty space
# everywhere else; each view then sees its own billboard and the training loss is zero. A held-out camera sees
# billboards edge-on or from behind and no objects. More generally the colour can compensate for wrong geometry
# (the shape-radiance ambiguity), and floaters seen by a single camera cost nothing.
# (b) A regulariser encodes an assumption about which scenes are likely — a prior written by hand: it
# prefers smooth depth or few occupied points among the fields that explain the views. But it is generic (the same
# for every scene and weak). A learned prior captures what *this kind* of scene looks like (shapes, symmetries,
# typical textures and layouts, what the hidden side of an object probably is), so it can fill in regions no
# camera constrains, e.g. the back of an object seen from the front, which no smoothness term can.

# %% [markdown]
# ## 2. From points to pixels: `project_points`
#
# A prior that looks at input images must be able to ask, for a 3-D point, *which pixel of this image sees me?*
# That is projection, the inverse of `get_rays`. With $R = \text{c2w}[:3, :3]$ and $o = \text{c2w}[:3, 3]$:
#
# $$x_c = R^\top (p - o), \qquad \text{depth} = -z_c, \qquad
#   u = f\,\frac{x_c}{\text{depth}} + \frac{W}{2}, \qquad v = -f\,\frac{y_c}{\text{depth}} + \frac{H}{2}.$$
#
# The first step moves the point into camera space ($R$ is a rotation, so $R^{-1} = R^\top$); the camera looks
# down $-z$, so a point in front of it has $z_c < 0$ and a positive depth; the pinhole divides by the depth; the
# minus sign of $v$ undoes the flip between camera $y$ (up) and image rows (down). The conventions are those of
# `get_rays` (pixel corners, no $+\tfrac12$), so the point $o + t\, d_{ij}$ on the ray of pixel (column $i$, row
# $j$) projects back to exactly $(u, v) = (i, j)$ with depth $t$, for every $t > 0$.
#
# ### Task 1: `project_points`
#
# `points` may have any leading dims `[..., 3]`; use one matrix product for all of them (the row-vector form of
# $R^\top (p - o)$ is $(p - o) R$). Return `uv [..., 2]` (column $u$ first) and `depth [...]`, unclamped and
# unmasked: a point behind the camera gets a negative depth and a meaningless `uv`, and the caller drops it.
# Accept `c2w` of shape `[4, 4]` or `[3, 4]`, and reject anything else — and `points` without a trailing 3,
# `focal <= 0`, non-positive image sizes, or a `c2w` whose dtype or device differs from `points` — with a
# `ValueError` that names the argument.

# %% [scaffold] id=project_points

# %% [readonly]
check("project_points", project_points)

# %% [tests] id=project_points

# %% [markdown]
# With your function: the ray of one pixel of a training view is a **line** in another view — the *epipolar
# line*. Every point of the ray projects somewhere on it, and which one is the surface, one view cannot say. The
# dots are points of the ray from depth 2 to 6 (purple to yellow); the red cross is where the ray really meets the
# surface (found by `sphere_trace`). The first line checks the round trip through `get_rays`.

# %% [code]
scene = nerf_scene(size=16 if SMOKE else 64)
views_a4 = scene.train_split()
H, W, focal = scene.height, scene.width, scene.focal
truth = AnalyticScene.from_seed(0)
pose_a, pose_b = views_a4.poses[0], views_a4.poses[1]
o_a, d_a = get_rays(H, W, focal, pose_a)
uv_back, depth_back = project_points(o_a + 3.7 * d_a, pose_a, focal, H, W)
cols, rows = torch.meshgrid(torch.arange(W, dtype=torch.float32), torch.arange(H, dtype=torch.float32), indexing="xy")
print(f"round trip through get_rays: largest pixel error {(uv_back - torch.stack([cols, rows], -1)).abs().max():.2e}, "
      f"depth error {(depth_back - 3.7).abs().max():.2e}")

units = F.normalize(d_a.reshape(-1, 3), dim=-1)                # [H W, 3] unit directions of view a
t_all, hit_all = sphere_trace(truth.sdf, o_a.reshape(-1, 3), units, 0.0, 8.0, 128, 1e-4)
rows_cols = torch.stack(torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij"), -1).reshape(-1, 2)
centre_dist = (rows_cols.float() - torch.tensor([H / 2, W / 2])).norm(dim=-1) + 1e9 * (~hit_all)
pick = int(centre_dist.argmin())                              # the pixel nearest the centre that sees an object
j, i = rows_cols[pick].tolist()
ts = torch.linspace(scene.near, scene.far, 40)
ray_points = o_a[j, i] + ts[:, None] * d_a[j, i]            # [40, 3]
uv_line, _ = project_points(ray_points, pose_b, focal, H, W)
uv_hit, _ = project_points(o_a[j, i] + t_all[pick] * units[pick], pose_b, focal, H, W)
fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
axes[0].imshow(views_a4.images[0].numpy())
axes[0].plot([i], [j], "w+", ms=14, mew=2)
axes[0].set_title("view a: one pixel", fontsize=9)
axes[1].imshow(views_a4.images[1].numpy())
axes[1].scatter(uv_line[:, 0], uv_line[:, 1], c=ts, cmap="viridis", s=10)
axes[1].plot([float(uv_hit[0])], [float(uv_hit[1])], "rx", ms=12, mew=2)
axes[1].set(xlim=(-0.5, W - 0.5), ylim=(H - 0.5, -0.5))
axes[1].set_title("view b: the same ray, depth 2 (purple) to 6 (yellow)", fontsize=9)
for ax in axes:
    ax.axis("off")
plt.show()

# %% [markdown]
# ### A loop version (not graded)
#
# `project_points_loop` writes $R^\top(p - o)$ as three dot products with the columns of $R$, one point at a
# time. Fill it in if you like; the cell after it compares the two versions.

# %% [loop] id=project_points

# %% [code]
with optional("project_points_loop"):
    pts_demo = torch.randn(300, 3, dtype=torch.float64) * 0.5
    pose_demo = pose_b.double()
    start = time.perf_counter()
    uv_l, depth_l = project_points_loop(pts_demo, pose_demo, focal, H, W)
    t_loop = time.perf_counter() - start
    start = time.perf_counter()
    uv_v, depth_v = project_points(pts_demo, pose_demo, focal, H, W)
    t_vec = time.perf_counter() - start
    print(f"agree: {torch.allclose(uv_l, uv_v) and torch.allclose(depth_l, depth_v)}; 300 points: loop "
          f"{1e3 * t_loop:.1f} ms, vectorised {1e3 * t_vec:.2f} ms")

# %% [markdown]
# ## 3. Rays as inputs: Plücker coordinates and light field networks
#
# NeRF renders a pixel by asking its network about $S$ points along the ray (32 here, 192 in NeRF) and
# integrating. A **light field network** (Sitzmann et al., 2021) asks once: it maps the *ray itself* to the
# colour it carries. That needs a description of a ray that does not depend on where along the line its origin
# was put. The **Plücker coordinates** of the line through $o$ with direction $d$ are
#
# $$\hat d = \frac{d}{\lVert d\rVert}, \qquad m = o \times \hat d, \qquad \text{plücker} = (\hat d,\ m)
#   \in \mathbb{R}^6 .$$
#
# Moving the origin along the line changes nothing: $(o + s\hat d) \times \hat d = o \times \hat d$ because
# $\hat d \times \hat d = 0$. The moment $m$ is perpendicular to the line's plane through the world origin, and
# $\lVert m\rVert$ is the distance from the world origin to the line.
#
# ### Task 2: `plucker_coordinates`
#
# `rays_o` and `rays_d` are `[..., 3]` with leading dims that match or broadcast (one camera centre `[3]` with
# all the directions `[H, W, 3]` of a view, for instance); `torch.linalg.cross(..., dim=-1)` computes the cross
# product. The directions need not be unit length, but a direction of length zero describes no line: reject it
# with a `ValueError`, like mismatched shapes or dtypes.

# %% [scaffold] id=plucker_coordinates

# %% [readonly]
check("plucker_coordinates", plucker_coordinates)

# %% [tests] id=plucker_coordinates

# %% [markdown]
# The six coordinates of every pixel of one view, as images: the direction changes smoothly across the image,
# and $\lVert m\rVert$, the distance of each pixel's ray from the world origin, is smallest for the rays that pass
# through the middle of the scene. Moving every origin to a random point of its ray leaves them unchanged.

# %% [code]
o_v, d_v = get_rays(H, W, focal, pose_a)
pl = plucker_coordinates(o_v, d_v)                                         # [H, W, 6]
slid = plucker_coordinates(o_v + torch.rand(H, W, 1) * 3 * d_v, 2.5 * d_v)
print(f"origins moved along the rays and directions scaled by 2.5: largest change {(slid - pl).abs().max():.2e}")
fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
axes[0].imshow(views_a4.images[0].numpy())
axes[1].imshow((pl[..., :3] * 0.5 + 0.5).numpy())
im = axes[2].imshow(pl[..., 3:].norm(dim=-1).numpy(), cmap="magma")
plt.colorbar(im, ax=axes[2], fraction=0.046)
for ax, title in zip(axes, ("view", "unit direction (as RGB)", "|m| = distance of the ray from the origin")):
    ax.set_title(title, fontsize=9)
    ax.axis("off")
plt.show()

# %% [loop] id=plucker_coordinates

# %% [code]
with optional("plucker_coordinates_loop"):
    o_demo, d_demo = torch.randn(200, 3, dtype=torch.float64), torch.randn(200, 3, dtype=torch.float64)
    same = torch.allclose(plucker_coordinates_loop(o_demo, d_demo), plucker_coordinates(o_demo, d_demo))
    print(f"loop and vectorised versions agree on 200 rays: {same}")

# %% [markdown]
# ### A light field network against TinyNeRF
#
# `course_lib.experiments.lightfield` trains an MLP (4 hidden layers of 128 ReLUs) on `positional_encoding` of
# your Plücker coordinates (moments scaled by 1/4, $L = 6$) to output a colour, on the same 409,600 training rays
# as the 100-view TinyNeRF of Section 1 (which it reuses), for 2,000 steps of 1,024 rays. A pixel costs one
# network evaluation instead of 32. About half a minute.
#
# What does the LFN give up? Nothing in its architecture says that two rays from two cameras that meet at the same
# surface point should carry the same colour: NeRF gets that for free, because both rays read the same 3-D field
# and the rendering integral ties each colour to a place. The LFN must learn it from the training rays alone, and
# between them it can only interpolate in the 4-D space of rays.
#
# **At the default settings the LFN renders a view with 1 network evaluation per ray instead of 32, fits the
# training views to at least 23 dB, and is at least 4 dB worse than TinyNeRF on the held-out views, while TinyNeRF
# loses less than 1.5 dB from training to held-out views** (a test of the course package checks this; we measured
# 25.6 and 22.0 dB for the LFN, 28.9 and 28.3 dB for TinyNeRF, and rendering 15 to 25 times faster, depending on
# the machine's load).

# %% [code]
from course_lib.experiments import lightfield

if GRADING:
    print("skipped while grading")
else:
    lfn = lightfield.run(plucker_coordinates, get_rays, sample_stratified, positional_encoding, volume_render,
                         sample_pdf, nerf_field=few["fields"]["all"], device=device, progress=False)
    m = lfn["metrics"]
    print(lightfield.format_metrics(m))
    k_show = min(3, len(test_views))
    fig, axes = plt.subplots(k_show, 3, figsize=(7.5, 2.6 * k_show), squeeze=False)
    for r in range(k_show):
        for ax, img, title in zip(axes[r], (test_views.images[r], lfn["renders"]["lfn"][r], lfn["renders"]["nerf"][r]),
                                  ("held-out view", "light field network", "TinyNeRF")):
            ax.imshow(img.numpy())
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    plt.suptitle(figure_title("new cameras"), fontsize=10)
    plt.tight_layout()
    plt.show()
    print(f"render time per view: LFN {m['render_ms_lfn']:.0f} ms, TinyNeRF {m['render_ms_nerf']:.0f} ms "
          f"({m['render_ms_nerf'] / max(m['render_ms_lfn'], 1e-9):.0f}x)")

# %% [markdown]
# **Question 2 (written).** (a) Why is the LFN's gap between training and held-out PSNR so much larger than
# NeRF's, although both saw exactly the same rays? (b) The LFN paper trains its network with a *prior*: an
# auto-decoded (or hypernetwork-produced) code per scene, over thousands of scenes. Why does the light field
# network need such a prior much more than NeRF does? (c) Name one application where one evaluation per ray is
# worth the price.

# %% [answer] id=q_light_field points=3
# (a) NeRF's rays all read one 3-D field and colour is attached to points: a surface point fitted from the
# training rays is automatically seen correctly by any new ray through it (multi-view consistency is built into
# the architecture and the rendering integral). The LFN maps each ray independently to a colour; a new ray is a new
# point of the 4-D ray space, and its colour is whatever the MLP interpolates between nearby training rays. Nothing
# forces it to agree with the colours of other rays through the same surface point, so it overfits the training
# rays and blurs or ghosts in between.
# (b) Because consistency is not built in, it must be learned: across many scenes the network (through the prior
# over codes) learns what light fields of real 3-D scenes look like — that they come from surfaces and therefore
# have a particular structure (rays through one point share colours, occlusion) — and a new scene's code can then
# only produce consistent light fields. NeRF gets most of that structure from its rendering model, so a single
# scene with many views is enough.
# (c) Anything that renders many rays per second from a fixed or slowly changing scene: real-time novel-view
# rendering (VR), rendering inside an optimisation loop (e.g. inverse problems, planning), or on small devices;
# also when training over many scenes, where each scene's rendering is in the inner loop.

# %% [markdown]
# ## 4. A prior over shapes: auto-decoding and encoding
#
# One network can represent a whole family of shapes if it is told which one to draw: a per-shape **latent code**
# $z$ is concatenated to the encoded coordinates, $f_\theta([z, \gamma(x, y)]) \to$ ink coverage. How does the
# network get the code of a shape it is shown?
#
# * An **encoder** $z = E_\phi(\text{observation})$ is trained together with (or after) $f_\theta$ to answer in
#   one forward pass. It learns the mapping for the kind of observation it is trained on — here the top half of a
#   glyph.
# * An **auto-decoder** (DeepSDF, Park et al. 2019) has no encoder. Every training shape owns a code, a free
#   parameter optimised jointly with $\theta$, with a penalty $\lambda \lVert z_i\rVert^2$ (a zero-mean Gaussian
#   prior on codes). At test time $\theta$ is frozen and a new code is found by gradient descent on whatever is
#   observed: $\hat z = \arg\min_z \sum_{x\ \text{observed}} \ell(f_\theta([z, \gamma(x)]), \text{obs}(x)) +
#   \lambda\lVert z\rVert^2$. It is inference by optimisation: slower, but any observation that can be written as
#   a loss can be used.
#
# `course_lib.experiments.autodecoder` trains both on 2,000 nearly upright glyph masks ($32 \times 32$), with your
# `positional_encoding`, and completes 100 unseen glyphs from three observations: the **top half** (what the
# encoder was trained on), the **left half** and a fixed random **25% of the pixels** (which the encoder never
# saw). The mean training glyph is the baseline. It also draws the fitted codes at 4 times the training resolution
# and walks along straight lines between the codes of training glyphs. About a minute.
#
# **At the default settings, from the top half the encoder beats the auto-decoder (whose error on the hidden half
# is at most 0.85 times the mean glyph's; the encoder's at most 0.7 times); from the left half and from the random
# pixels the auto-decoder wins, with at most 0.7 and 0.5 times the encoder's error, and the encoder is then worse
# than the mean glyph** (a test of the course package checks this; we measured hidden-pixel errors of 0.041 and
# 0.026 from the top half, 0.042 and 0.086 from the left half, 0.017 and 0.075 from the random pixels, for the
# auto-decoder and the encoder, against 0.055–0.059 for the mean glyph).

# %% [code]
from course_lib.experiments import autodecoder as prior_experiment
from course_lib.viz import make_grid, save_gif

if GRADING:
    print("skipped while grading")
else:
    prior = prior_experiment.run(positional_encoding, device=device, progress=False)
    m = prior["metrics"]
    for pattern, suffix in (("top half", ""), ("left half", "_left"), ("random 25%", "_random")):
        print(f"{pattern:10s}: hidden-pixel MSE  mean glyph {m['mse_hidden_mean_glyph' + suffix]:.4f}   "
              f"auto-decoder {m['mse_hidden_autodecoder' + suffix]:.4f}   "
              f"encoder {m['mse_hidden_encoder' + suffix]:.4f}")

# %% [code]
if not GRADING:
    test_masks, k_show = prior["test"], min(8, len(prior["test"]))
    fig, axes = plt.subplots(3, 1, figsize=(11, 7.5))
    for ax, pattern in zip(axes, prior_experiment.PATTERNS):
        vis = prior["patterns"][pattern].float()
        shown = 0.35 * test_masks[:k_show] + 0.65 * test_masks[:k_show] * vis      # dimmed: hidden pixels
        rows = torch.cat([shown, prior["autodecoder"][pattern][:k_show], prior["encoder"][pattern][:k_show]])
        ax.imshow(make_grid(rows[:, None], nrow=k_show)[0].numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"{pattern}: observed (bright), auto-decoder, encoder", fontsize=9)
        ax.axis("off")
    plt.suptitle(figure_title("completing unseen glyphs"), fontsize=10)
    plt.tight_layout()
    plt.show()
    frames = [make_grid(s[:8, None], nrow=8)[0] for s in prior["snapshots"]]
    print(f"code fitting from the top half, step by step: {save_gif(frames, output_path('code_fitting.gif'), fps=4)}")

# %% [markdown]
# The encoder is excellent at the one question it was trained to answer and lost on any other: shown a left half,
# it reads the vertical stroke as the top of a glyph and draws an L or an E whatever the glyph; shown scattered
# pixels, it draws a faint blur. The auto-decoder answers all three with the same network, because only the set of
# pixels in its test-time loss changes.
#
# The field is a function of continuous coordinates, so a code can be drawn at any resolution; and its codes form
# a space in which straight lines pass through glyph-like shapes. **At the default settings the codes fitted from
# the random pixels, drawn at $128 \times 128$ and averaged back to $32 \times 32$, have an error within 10% of the
# drawing at $32 \times 32$ (0.0145 against 0.0146), and the midpoints between the codes of two training glyphs
# have fewer grey pixels (coverage between 0.25 and 0.75) than the midpoints of a cross-fade of their pixels
# (0.09 against 0.15).**

# %% [code]
if not GRADING:
    up = prior["exp"].upsample
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
    nearest = prior["autodecoder"]["random"][0].repeat_interleave(up, 0).repeat_interleave(up, 1)
    for ax, img, title in zip(axes, (test_masks[0], nearest, prior["upsampled"][0]),
                              ("glyph (32 px)", "drawn at 32 px, shown enlarged", f"drawn at {32 * up} px")):
        ax.imshow(img.numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    plt.show()
    interp = prior["interpolation"]
    rows = torch.cat([interp["decoded"][:3].flatten(0, 1), interp["crossfade"][:3].flatten(0, 1)])
    plt.figure(figsize=(11, 5))
    plt.imshow(make_grid(rows[:, None], nrow=interp["decoded"].shape[1])[0].numpy(), cmap="gray", vmin=0, vmax=1)
    plt.title("top 3 rows: straight lines between codes; bottom 3 rows: cross-fades of the pixels", fontsize=9)
    plt.axis("off")
    plt.show()
    print(f"resolution: MSE {m['mse_native']:.4f} drawn at 32 px, {m['mse_upsampled']:.4f} drawn at {32 * up} px; "
          f"grey pixels at the midpoints: {m['grey_fraction_code']:.3f} (codes), {m['grey_fraction_crossfade']:.3f} "
          "(cross-fade)")

# %% [markdown]
# **Question 3 (written).** (a) Why does the encoder win from the top half and lose from the left half, and what
# would it take to make an encoder handle all three observation patterns? (b) What does the auto-decoder pay for
# its flexibility at test time? (c) What does the penalty $\lambda\lVert z\rVert^2$ do during training and during
# test-time fitting, and what would happen to the completions with $\lambda = 0$?

# %% [answer] id=q_autodecoder points=3
# (a) The encoder was trained only on top halves, and it learned the map "top half -> code" (amortised inference
# for that one observation model). A left half is an input from a different distribution: its features do not
# mean what the encoder learned, and the code it outputs is arbitrary, so the decoder draws nonsense — worse than
# the mean glyph. To handle all patterns the encoder would have to be trained on all of them (random masks, with
# the mask as an extra input channel), and still only for the patterns seen in training. The auto-decoder's
# inference is an optimisation whose loss uses whatever pixels are observed, so it works for any pattern without
# retraining (it is the same network with a different data term).
# (b) Time and robustness: a test shape needs an optimisation (here 100 Adam steps, each a forward and backward
# pass through the network) instead of one forward pass, the result depends on the initialisation, step size and
# number of steps, and the optimisation can fall into a poor local minimum. It also does not learn from the test
# data what the observation model is, so from exactly the trained pattern an encoder can be better (as here).
# (c) It is a zero-mean Gaussian prior on the codes: in training it keeps the code space compact and
# well-behaved (codes do not drift apart, the space between them is meaningful, which makes interpolation and
# fitting work); at test time it keeps the fitted code near the region where training codes live, i.e. where the
# decoder draws plausible glyphs. With $\lambda = 0$ the test-time code would fit the visible pixels better and
# wander to regions the decoder never saw, so the hidden half would become implausible (overfitting the
# observation); in training the codes could grow without bound.

# %% [markdown]
# ## 5. Local conditioning
#
# One code for a whole shape works for glyphs. For a room, a street or a page of text it does not: the code would
# have to describe everything at once, and a scene with more objects than any training scene is simply outside
# the prior. **Local** conditioning stores codes on a grid that spans the scene and lets each point read only the
# codes near it (Local Implicit Grids, Convolutional Occupancy Networks, Deep Local Shapes; and pixelNeRF, whose
# "grid" is the feature map of an input image). The look-up is bilinear interpolation.
#
# ### Task 3: `bilinear_sample_2d`
#
# `grid` is a batch of feature maps `[B, C, Hg, Wg]`, `coords [B, P, 2]` holds $P$ positions $(x, y)$ per map in
# $[-1, 1]$, **vertex-aligned**: $x = -1$ is column 0 and $x = 1$ is column $W_g - 1$ (likewise $y$ and rows).
# With $f_x = \frac{x + 1}{2}(W_g - 1)$, $x_0 = \lfloor f_x \rfloor$, $x_1 = \min(x_0 + 1, W_g - 1)$,
# $a_x = f_x - x_0$ (and the same for $y$), the result is
#
# $$(1 - a_y)(1 - a_x)\, g[y_0, x_0] + (1 - a_y)\, a_x\, g[y_0, x_1] + a_y (1 - a_x)\, g[y_1, x_0] + a_y a_x\,
#   g[y_1, x_1],$$
#
# returned as `[B, P, C]`. Clamp the coordinates to $[-1, 1]$ first (outside, the border value repeats). Gather
# the four corners with advanced indexing (a `[B, 1]` column of batch indices broadcasts against `[B, P]` index
# tensors). Do not call `F.grid_sample` — it is the reference we compare with below — and keep the result
# differentiable in `grid` and `coords` (compute the weights from the float positions; only the indices are
# integers).

# %% [code]
g_demo = torch.tensor([[0.0, 1.0, 0.0, 0.5], [1.0, 0.2, 0.8, 0.0], [0.0, 0.6, 0.3, 1.0]])    # [Hg=3, Wg=4]
fig, ax = plt.subplots(figsize=(5, 3.6))
ax.imshow(g_demo.numpy(), cmap="viridis", extent=(-1 - 1 / 3, 1 + 1 / 3, 1 + 1 / 2, -1 - 1 / 2))
xs_v, ys_v = torch.linspace(-1, 1, 4), torch.linspace(-1, 1, 3)
ax.scatter(*torch.meshgrid(xs_v, ys_v, indexing="xy"), c="w", s=25, edgecolors="k")
ax.add_patch(plt.Rectangle((-1, -1), 2, 2, fill=False, ec="w", ls="--"))
ax.set(xlabel="x (columns)", ylabel="y (rows)")
ax.set_title("a 3 x 4 grid: its vertices sit on x, y = -1 ... 1", fontsize=10)
plt.show()

# %% [scaffold] id=bilinear_sample_2d

# %% [readonly]
check("bilinear_sample_2d", bilinear_sample_2d)

# %% [tests] id=bilinear_sample_2d

# %% [markdown]
# Your function on the grid above, read at $200 \times 200$ positions from $-1.2$ to $1.2$ (the border repeats
# outside the dashed square), next to `F.grid_sample` with `align_corners=True` (the same convention) and with
# `align_corners=False` (pixel-*centre* alignment: the grid spans a slightly larger square, and values shift).

# %% [code]
lin = torch.linspace(-1.2, 1.2, 200)
query = torch.stack(torch.meshgrid(lin, lin, indexing="xy"), -1).reshape(1, -1, 2)      # [1, P, 2] (x, y)
ours = bilinear_sample_2d(g_demo[None, None], query).reshape(200, 200)
aligned = F.grid_sample(g_demo[None, None], query[:, None], align_corners=True, padding_mode="border").reshape(200, 200)
centres = F.grid_sample(g_demo[None, None], query[:, None], align_corners=False,
                        padding_mode="border").reshape(200, 200)
print(f"largest difference to grid_sample(align_corners=True): {(ours - aligned).abs().max():.2e}; "
      f"to align_corners=False: {(ours - centres).abs().max():.2f}")
fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
for ax, img, title in zip(axes, (ours, aligned, centres), ("yours", "align_corners=True", "align_corners=False")):
    ax.imshow(img.numpy(), cmap="viridis", extent=(-1.2, 1.2, 1.2, -1.2), vmin=0, vmax=1)
    ax.add_patch(plt.Rectangle((-1, -1), 2, 2, fill=False, ec="w", ls="--"))
    ax.set_title(title, fontsize=9)
plt.show()

# %% [loop] id=bilinear_sample_2d

# %% [code]
with optional("bilinear_sample_2d_loop"):
    grid_l = torch.randn(2, 3, 5, 7, dtype=torch.float64)
    coords_l = torch.rand(2, 40, 2, dtype=torch.float64) * 2.4 - 1.2
    same = torch.allclose(bilinear_sample_2d_loop(grid_l, coords_l), bilinear_sample_2d(grid_l, coords_l))
    print(f"loop and vectorised versions agree on 2 x 40 points: {same}")

# %% [markdown]
# ### Global and local codes
#
# `course_lib.experiments.priors_conditioning` builds canvases of $48 \times 48$ pixels with glyphs in some of the
# 9 cells of a $3 \times 3$ layout — **one glyph per training canvas** — and trains two auto-decoders with the same
# number of latent floats per canvas (625):
#
# * **global**: one 625-float code concatenated to $\gamma(x, y)$, as in Section 4;
# * **local**: a $25 \times 25$ grid of 1-channel codes over the canvas (a vertex every 2 pixels), read at each
#   point with your `bilinear_sample_2d`; the decoder sees that feature and the point's offset from its nearest
#   vertex, **never the absolute position**. Each pixel depends on its 4 neighbouring codes only (*locality*), and
#   shifting the codes by whole cells shifts the drawing (*shift equivariance*, exact for whole cells, like a
#   convolution): a glyph is drawn the same way in any cell.
#
# New canvases are completed from a random half of their pixels — with 1 glyph (like training) and with **6
# glyphs** (never seen). Busier canvases have more ink to miss, so the errors are also divided by the error of
# drawing nothing (an empty canvas): that *relative* error says how much of the ink a model gets wrong. About a
# minute and a half.
#
# **At the default settings the local codes complete the hidden pixels at least as well as the global code on
# 1-glyph canvases and with at most 0.7 times its error on 6-glyph canvases; from 1 to 6 glyphs the local model's
# relative error grows by at most 15%, the global model's by at least 20%** (a test of the course package checks
# this; we measured hidden-pixel errors of 0.0030 (local) against 0.0044 (global) with 1 glyph and 0.020 against
# 0.037 with 6, and relative errors going from 0.27 to 0.28 (local) and from 0.40 to 0.54 (global)).

# %% [code]
from course_lib.experiments import priors_conditioning

if GRADING:
    print("skipped while grading")
else:
    cond = priors_conditioning.run(bilinear_sample_2d, positional_encoding, device=device, progress=False)
    m = cond["metrics"]
    for k in cond["exp"].test_glyphs:
        print(f"{k} glyph(s) per canvas: hidden-pixel MSE global {m[f'mse_hidden_global_{k}']:.4f}, local "
              f"{m[f'mse_hidden_local_{k}']:.4f}; relative to drawing nothing: global "
              f"{m[f'rel_hidden_global_{k}']:.3f}, local {m[f'rel_hidden_local_{k}']:.3f}")

# %% [code]
if not GRADING:
    fig, axes = plt.subplots(2, 4, figsize=(11, 5.8))
    for row, k in enumerate(cond["exp"].test_glyphs):
        canvas = cond["test"][k][0]
        panels = (canvas, canvas * cond["visible"], cond["pred"]["global"][k][0], cond["pred"]["local"][k][0])
        for ax, img, title in zip(axes[row], panels, ("canvas", "observed half", "global code", "local codes")):
            ax.imshow(img.numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"{title} ({k} glyph{'s' if k > 1 else ''})", fontsize=9)
            ax.axis("off")
    plt.suptitle(figure_title("trained on 1 glyph per canvas"), fontsize=10)
    plt.tight_layout()
    plt.show()

# %% [markdown]
# Shift equivariance, checked with the trained local decoder: shifting a fitted code grid by 8 vertices (one
# glyph cell, 16 pixels) to the right shifts the drawing by exactly 16 pixels.

# %% [code]
if not GRADING:
    ex = cond["exp"]
    fld_local = cond["fields"]["local"]
    z_grid = cond["codes"]["local"][ex.test_glyphs[0]][:1].reshape(1, ex.channels, ex.grid, ex.grid)
    cells = (ex.grid - 1) // ex.slots
    shifted = torch.zeros_like(z_grid)
    shifted[..., cells:] = z_grid[..., :-cells]
    settings = ex.autodecoder()
    before = prior_experiment.predict(fld_local, z_grid.reshape(1, -1), settings, device)[0].cpu()
    after = prior_experiment.predict(fld_local, shifted.reshape(1, -1), settings, device)[0].cpu()
    print(f"largest difference between the shifted drawing and the drawing of the shifted codes: "
          f"{(after[:, ex.tile:] - before[:, :-ex.tile]).abs().max():.1e}")

# %% [markdown]
# ### Pixel-aligned features
#
# pixelNeRF takes local conditioning to its end: the grid of codes *is* the feature map of an input image, aligned
# with its pixels. A 3-D point $x$ is projected into each input view with `project_points`, the view's features
# are read there with `bilinear_sample_2d`, and the network decides density and colour from the features of all
# views. Why is that a good input? `course_lib.experiments.priors_pixel_aligned` uses the colours themselves as
# the "features" (no network, no training) for a reference view of the synthetic scene and its 8 nearest training
# views:
#
# 1. **Photo-consistency along a ray**: for the reference pixels whose ray hits a surface, the point at the true
#    depth plus an offset $\delta$ is looked up in all 9 views, and the variance of the 9 colours is averaged over
#    the pixels. On the surface every view sees the same point and the colours agree; off it they do not.
# 2. **Depth from photo-consistency** (a plane sweep): along each ray, the depth of least variance.
# 3. **Lifting**: the reference image back-projected onto a $48^3$ voxel grid is constant along every camera
#    ray — one image says nothing about depth — while the variance over all views is low near the surfaces.
#
# **At the default settings the colour variance across views is at least 3 times lower on the surface than 0.3
# off it; the plane sweep's median depth error is at most half that of the best constant depth; and the voxels
# inside every view's silhouette whose colours agree (variance below 0.001) lie within 0.1 of a surface at least
# 1.5 times as often as the silhouette voxels in general** (a test of the course package checks this; we measured
# variances of 0.0008 on the surface and 0.0051 off it, median depth errors of 0.022 for the sweep and 0.084 for
# the constant, and 61% against 31% of the voxels near a surface).

# %% [code]
from course_lib.experiments import priors_pixel_aligned

if GRADING:
    print("skipped while grading")
else:
    pix = priors_pixel_aligned.run(project_points, bilinear_sample_2d, get_rays, sphere_trace)
    m = pix["metrics"]
    print(priors_pixel_aligned.format_metrics(m))
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    axes[0].plot(pix["offsets"].numpy(), pix["curve"].numpy(), "o-")
    axes[0].axvline(0, color="0.6", ls=":")
    axes[0].set(xlabel="offset from the true surface along the ray", ylabel="colour variance across views")
    axes[0].set_title("photo-consistency", fontsize=9)
    hit = pix["sweep"]["hit"]
    nan = torch.full(hit.shape, float("nan"))
    maps = (torch.where(hit, pix["sweep"]["true"], nan), torch.where(hit, pix["sweep"]["depth"], nan))
    for ax, img, title in zip(axes[1:], maps, ("true depth", "depth of least variance (plane sweep)")):
        ax.imshow(img.numpy(), cmap="viridis")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    plt.suptitle(figure_title("pixel-aligned colours of 9 views"), fontsize=10)
    plt.tight_layout()
    plt.show()

    # a vertical plane through the reference camera and the world z axis: lifted colours, and variance over views
    images, poses, focal_ref = pix["images"], pix["poses"], pix["focal"]
    rgba = torch.cat([images, pix["alphas"][..., None]], -1)                  # colour and coverage of the 9 views
    side = F.normalize(poses[0][:2, 3], dim=0)                                # horizontal direction to the camera
    s_axis, z_axis = torch.linspace(-1.6, 1.6, 160), torch.linspace(-1.0, 1.6, 130)
    plane = (s_axis[None, :, None] * torch.cat([side, torch.zeros(1)]) +
             z_axis[:, None, None] * torch.tensor([0.0, 0.0, 1.0]))          # [Z, S, 3]
    lifted, _ = priors_pixel_aligned.lift(images[0], poses[0], focal_ref, plane.reshape(-1, 3), project_points,
                                          bilinear_sample_2d)
    feats, valid = priors_pixel_aligned.look_up(plane.reshape(-1, 3), rgba, poses, focal_ref, project_points,
                                                bilinear_sample_2d)
    hull = (valid & (feats[..., 3] > 0.5)).all(0)                             # inside every view's silhouette
    spread = priors_pixel_aligned.view_variance(feats[..., :3], valid)
    spread = torch.where(hull, spread, torch.full_like(spread, float("nan"))).reshape(len(z_axis), len(s_axis))
    sdf_plane = truth.sdf(plane)
    extent = (float(s_axis[0]), float(s_axis[-1]), float(z_axis[0]), float(z_axis[-1]))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    axes[0].imshow(lifted.reshape(len(z_axis), len(s_axis), 3).clamp(0, 1).numpy(), origin="lower", extent=extent)
    axes[0].set_title("the reference view lifted onto a vertical plane through its camera", fontsize=9)
    axes[1].set_facecolor("0.85")
    im = axes[1].imshow(spread.numpy(), origin="lower", extent=extent, cmap="magma", vmin=0, vmax=0.01)
    plt.colorbar(im, ax=axes[1], fraction=0.046)
    axes[1].set_title("colour variance over the 9 views, inside every silhouette", fontsize=9)
    for ax in axes:
        ax.contour(s_axis.numpy(), z_axis.numpy(), sdf_plane.numpy(), levels=[0], colors="c", linewidths=1)
        ax.set(xlabel="horizontal (towards the camera)", ylabel="z")
    plt.tight_layout()
    plt.show()
    print(f"voxels inside every silhouette within 0.1 of a surface: {m['hull_near_surface']:.2f}; "
          f"of those whose colours agree: {m['consistent_near_surface']:.2f}")

# %% [markdown]
# On the left, the lifted colours run in straight streaks that point to the camera (high above the scene, so they
# are nearly vertical): every point on a pixel's ray gets that pixel's colour, the colour of the first surface the
# ray meets (on the cyan contours of the true cross-sections) — but nothing in one image says where along the
# streak that is. On the right, inside the region that every view sees as an object (the *visual hull*; grey
# outside it), the views disagree in stripes inside the textured box and agree mainly near its top surface, while
# on the plain orange capsule they agree along its whole streak: where a surface has no texture, agreement between views
# cannot tell depth either, and only a prior can. pixelNeRF's network receives such lifted features from
# every input view and learns, from many scenes, where along the streaks the surfaces are — from the agreement
# between views when there are several, and from its prior when there is one.
#
# **Question 4 (written).** (a) Why does the local model generalise to canvases with 6 glyphs so much better than
# the global one, although both have 625 latent floats and were trained on one glyph per canvas? Name the two
# properties of the architecture that matter. (b) What can the global code do that the local grid cannot? Think of
# an observation that hides a whole glyph cell. (c) How do pixelNeRF's pixel-aligned features relate to the local
# codes of the canvas experiment, and what does the photo-consistency curve above tell you about what a pixelNeRF
# network can learn from them?

# %% [answer] id=q_local points=3
# (a) Locality: each pixel depends only on the few codes around it, so what the decoder learned is a map from a
# local neighbourhood of codes to local ink — a pattern that occurs in every canvas, however many glyphs it has.
# Shift equivariance: the decoder never sees absolute positions, so a glyph is drawn the same way in any cell, and
# 6 glyphs are just 6 copies of the local problem it already solves. The global decoder maps one code to the
# whole canvas; its prior has only seen canvases with one glyph, and nothing in its architecture composes a canvas
# from parts, so a 6-glyph canvas lies outside what it learned to represent (like an encoder facing an unseen
# input, its prior is wrong there) and its share of missed ink grows.
# (b) Global reasoning: a global code ties distant parts together, so it can fill a region with no observations
# at all from the rest (the other half of a symmetric object, a hidden glyph inferred from the layout). A local
# code in an unobserved region receives no gradient and stays at the prior mean: a whole hidden cell stays
# empty. Local models trade global context for generalisation; practical systems combine both (a global code or
# a large receptive field plus local features, e.g. a U-Net encoder in ConvONet/pixelNeRF).
# (c) The feature map of an input image is a grid of local codes aligned with the image, produced by an encoder
# instead of optimised; projecting a 3-D point into it and sampling bilinearly is the same local look-up, and it
# inherits the same generalisation (translation-equivariant CNN features, local decisions, so new scenes and
# new object arrangements work). The curve shows that the features of several views agree at a surface and
# disagree off it: the variance across views is a depth signal available without any learning, which the network
# can learn to turn into density (as classical multi-view stereo does); with a single view there is no such
# signal, and the density must come from the learned prior.

# %% [markdown]
# ## 6. Hypernetworks: `batched_mlp`
#
# Concatenation is only one way to condition a coordinate network. A **hypernetwork** (Ha et al., 2016; used by
# Scene Representation Networks and by the light field networks) maps the code to the *weights* of the network
# that is then evaluated at the points: $\theta_b = h(z_b)$, $\text{out}_b(x) = \text{MLP}_{\theta_b}(\gamma(x))$.
# With a batch of $B$ codes there are $B$ different small networks, one per shape, to evaluate on their own $P$
# points each. That is `batched_mlp`: row $b$ of `params [B, n]` holds the weights of network $b$, layer after
# layer — for `sizes` $= [D_0, D_1, \dots, D_L]$, first $W_1$ (row-major, `[D_1, D_0]`), then $b_1$ `[D_1]`, then
# $W_2$, $b_2$, ... — and
#
# $$y_0 = x_b,\qquad y_l = \operatorname{ReLU}(y_{l-1} W_l^\top + b_l)\ \ (l < L),\qquad y_L = y_{L-1} W_L^\top + b_L .$$
#
# ### Task 4: `batched_mlp`
#
# Loop over the layers only: slice each layer's weights out of `params` for all $B$ rows at once, reshape them to
# `[B, out, in]`, and apply them with one batched matrix product (`torch.bmm`, or `torch.baddbmm` for product and
# bias together). A row of `params` must give exactly the network `nn.Sequential(nn.Linear(D_0, D_1), nn.ReLU(),
# ..., nn.Linear(D_{L-1}, D_L))` whose `weight`/`bias` tensors are flattened and concatenated in that order. Check
# that `params` has $n = \sum_l (D_l D_{l-1} + D_l)$ columns and raise a `ValueError` that states $n$ otherwise.

# %% [scaffold] id=batched_mlp

# %% [readonly]
check("batched_mlp", batched_mlp)

# %% [tests] id=batched_mlp

# %% [loop] id=batched_mlp

# %% [code]
with optional("batched_mlp_loop"):
    sizes_demo = [3, 5, 2]
    n_demo = sum(a * b + b for a, b in zip(sizes_demo[:-1], sizes_demo[1:]))
    x_demo, p_demo = torch.randn(4, 6, 3, dtype=torch.float64), torch.randn(4, n_demo, dtype=torch.float64)
    same = torch.allclose(batched_mlp_loop(x_demo, p_demo, sizes_demo), batched_mlp(x_demo, p_demo, sizes_demo))
    print(f"loop and vectorised versions agree on 4 networks x 6 points: {same}")

# %% [markdown]
# **Concatenation is a (very small) hypernetwork.** Split the first layer of the concatenation network into the
# columns that read the code and those that read the encoding: $W [z, \gamma] + b = W_x \gamma + (W_z z + b)$. The
# code only shifts the first layer's bias, linearly. `course_lib.experiments.hypernetwork.concat_as_hypernetwork`
# writes those per-glyph weights out as rows of `params`; your `batched_mlp` must then reproduce the concatenation
# network exactly:

# %% [code]
from course_lib.experiments import hypernetwork

torch.manual_seed(0)
concat_demo = prior_experiment.ConditionedField(lambda c: positional_encoding(c, 4), 18, 16, 32, 3).double()
z_demo = torch.randn(5, 16, dtype=torch.float64)
xy_demo = torch.rand(5, 50, 2, dtype=torch.float64) * 2 - 1
params_demo, sizes_demo = hypernetwork.concat_as_hypernetwork(concat_demo, z_demo)
via_hyper = batched_mlp(positional_encoding(xy_demo, 4), params_demo, sizes_demo)[..., 0]
print(f"sizes {sizes_demo}, {params_demo.shape[1]} weights per glyph; largest difference to the concatenation "
      f"network: {(via_hyper - concat_demo(z_demo, xy_demo)).abs().max():.1e}")

# %% [markdown]
# A full hypernetwork lets the code change *every* weight. `course_lib.experiments.hypernetwork` trains one — the
# code (16 floats, as before) goes through a hidden layer of 64 units to all 1,697 weights of a per-glyph network
# $\gamma(x, y) \to 32 \to 32 \to 1$ evaluated with your `batched_mlp` — as an auto-decoder on the same glyphs with
# the same settings as Section 4, and compares it with the concatenation model of Section 4 (reused). About a
# minute.
#
# **At the default settings the hypernetwork completes the unseen glyphs with at most 0.8 times the error of the
# concatenation model, from the top half and from 25% of the pixels, and redraws the training glyphs from their
# codes with at most 0.8 times its error — with about ten times as many parameters but fewer multiply-adds per
# point** (a test of the course package checks this; we measured hidden-pixel errors of 0.026 against 0.041 from
# the top half — as good as the encoder of Section 4, which was trained for that pattern — and 0.008 against 0.017
# from 25% of the pixels, training-glyph errors of 0.008 against 0.015, 111,393 against 10,625 parameters and
# 1,632 against 10,432 multiply-adds per point).

# %% [code]
if GRADING:
    print("skipped while grading")
else:
    hyper = hypernetwork.run(batched_mlp, positional_encoding, concat=prior, device=device, progress=False)
    m = hyper["metrics"]
    for name in ("concat", "hyper"):
        print(f"{name:6s}: {m[f'params_{name}']:6d} parameters, {m[f'macs_per_point_{name}']:5d} multiply-adds per "
              f"point; MSE on training glyphs {m[f'mse_recon_{name}']:.4f}, hidden pixels from the top half "
              f"{m[f'mse_hidden_{name}']:.4f}, from 25% of the pixels {m[f'mse_hidden_{name}_random']:.4f}")
    k_show = min(8, len(hyper["test"]))
    rows = torch.cat([hyper["test"][:k_show], hyper["pred"]["concat"]["top"][:k_show],
                      hyper["pred"]["hyper"]["top"][:k_show]])
    plt.figure(figsize=(10, 4))
    plt.imshow(make_grid(rows[:, None], nrow=k_show)[0].numpy(), cmap="gray", vmin=0, vmax=1)
    plt.title(figure_title("unseen glyphs; completed from the top half by concatenation and by the hypernetwork"),
              fontsize=9)
    plt.axis("off")
    plt.show()

# %% [markdown]
# **Question 5 (written).** (a) Counting parameters: the hypernetwork above has about ten times as many parameters
# as the concatenation model, yet evaluates fewer multiply-adds per point. Where do its parameters sit, and why is
# the cost per point lower? When does that matter? (b) Concatenation lets the code shift only the first layer's
# bias. Describe a family of shapes for which that is a real restriction for a small network, and explain how a
# hypernetwork (or FiLM-style modulation of every layer) lifts it.

# %% [answer] id=q_hypernetwork points=3
# (a) Almost all of them are in the hypernetwork's output layer, which maps 64 hidden units to the 1,697 weights of
# the per-glyph network (about 110,000 parameters). They are used once per glyph, to produce that glyph's weights;
# each point is then evaluated by the small per-glyph network only ($\gamma \to 32 \to 32 \to 1$, about 1,600
# multiply-adds), while the concatenation network carries the 16 code inputs and its 64-unit layers for every
# point (about 10,000). The split pays off when many points are queried per code — rendering an image or a volume
# from one scene code — and costs when codes change often and few points are queried per code.
# (b) With concatenation the code moves the first layer's pre-activations by a vector; all later layers are shared,
# so every shape is produced by the same network from a shifted input embedding. Shapes that need different
# functions of the coordinates — e.g. different topologies or frequencies (a glyph with one stroke vs one with many
# fine strokes, or a family where the code sets the number of repetitions of a pattern) — need the shared layers
# to contain all the variants and the bias shift to select among them, which a small network cannot. A
# hypernetwork (or FiLM: per-layer scales and shifts computed from the code) changes every layer per shape, so the
# same small network size can represent very different functions for different codes; the price is the large
# hypernetwork and a harder optimisation.

# %% [markdown]
# ## Summary
#
# * Fitting one scene to few observations is ill-posed: perfect training views, wrong geometry.
# * A prior learned from many shapes or scenes fills in what is unobserved; auto-decoding infers codes by
#   optimisation from any observation, an encoder amortises inference for the observations it was trained on.
# * Conditioning decides generalisation: local codes (and pixel-aligned image features) generalise to bigger and
#   busier scenes through locality and shift equivariance; global codes capture global structure.
# * Light field networks render with one evaluation per ray but give up the 3-D consistency that NeRF's rendering
#   integral provides, so they depend on priors even more.
# * Concatenation is the simplest hypernetwork; a full hypernetwork changes every weight per shape, with a cost
#   per point set by the small network it produces.
