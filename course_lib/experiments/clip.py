"""CLIP on captioned glyphs (or any image folder): can a classifier be built from label text alone?

    python -m course_lib.experiments.clip [--images DIR_OR_TAR] [--n-per-class N] [--steps N]

Every glyph gets a caption made from its attributes, e.g. ``"red bold serif A"``: its character, a named colour
(the glyph is repainted in one of six colours over a dark grey version of its background) and its font (family
and style). An image encoder (the conv encoder of :mod:`course_lib.models` and a linear projection) and a tiny
text encoder (the caption's token embeddings averaged, then an MLP) are trained with ``clip_loss``: each image
must pick its own caption among the batch's captions and each caption its image. The logit scale is learned,
as in CLIP (``exp(log_scale)``, clipped at 100).

**Zero shot.** One (character, colour) combination per character -- character ``i`` in colour ``i mod 6`` --
never appears in training; every character and every colour does. After training, a classifier over all
(character, colour) combinations is *built from text*: the weight vector of a combination is the normalised mean
of the text embeddings of its captions over all fonts (prompt ensembling, as CLIP averages its prompt templates).
It is scored on images of the held-out combinations -- captions it never saw -- against chance (one over the
number of combinations), and on held-out images of the seen combinations.

With ``--images`` the captions are ``"<colour> <class>"``: the folder's class name and the name of the image's
dominant hue (the hue of its mean chroma, in six bins), with class ``i`` in colour ``i mod 6`` held out.

It prints, last, ``zeroshot_acc_unseen=... zeroshot_acc_seen=... chance=...``.

References:
    Radford et al., "Learning Transferable Visual Models From Natural Language Supervision", ICML 2021 (CLIP:
    the symmetric loss, the learned temperature, zero-shot classifiers from prompts, prompt ensembling).
    Joulin, Grave, Bojanowski, Mikolov, "Bag of Tricks for Efficient Text Classification", 2017 (averaged word
    embeddings as a text encoder).
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..augment import random_resized_crop, rgb_to_gray
from ..guards import backward_and_step
from ..manifest import resolve
from ..models import ConvEncoder, EncoderConfig
from ..utils import pick_device, smoke_mode
from . import format_metrics, require_implemented

__all__ = ["ClipExperiment", "CaptionedImages", "COLOURS", "captioned_glyphs", "captioned_folder", "split_combos",
           "dominant_hue", "TextEncoder", "ClipModel", "train_clip", "zero_shot_classifier", "evaluate", "run", "main"]

COLOURS = {"red": (0.95, 0.12, 0.10), "orange": (1.0, 0.55, 0.05), "yellow": (0.95, 0.92, 0.15),
           "green": (0.15, 0.75, 0.20), "blue": (0.15, 0.35, 1.0), "purple": (0.62, 0.22, 0.88)}
FAMILIES = ("sans", "serif", "mono", "stix")                     # course_lib.data.glyphs.DEFAULT_FONTS, 4 x 4
STYLES = ("regular", "bold", "italic", "bold-italic")
HUES = ("red", "yellow", "green", "cyan", "blue", "magenta")     # dominant hues of real images


@dataclass(frozen=True)
class ClipExperiment:
    """Default settings: about a minute on one CPU core; ``smoke()`` in seconds."""

    n_images: int = 6000            # glyphs (the same images as the contrastive experiment)
    width: int = 16                 # image encoder widths 16, 32, 64, 128 -> 128 features
    token_dim: int = 64
    embed_dim: int = 64             # the joint embedding space
    steps: int = 600
    batch_size: int = 64
    lr: float = 2e-3                # Adam, cosine decay to 0
    init_logit_scale: float = 10.0
    crop_min: float = 0.6           # random crops of 60-100% of the area (no colour augmentation: colour is named)
    seen_test: float = 0.1          # images of seen combinations kept out of training
    seed: int = 0

    @staticmethod
    def smoke() -> "ClipExperiment":
        return ClipExperiment(n_images=480, width=4, token_dim=8, embed_dim=8, steps=4, batch_size=32)

    def validate(self) -> "ClipExperiment":
        for name in ("n_images", "width", "token_dim", "embed_dim", "steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.init_logit_scale <= 0 or not 0 < self.crop_min <= 1 or not 0 < self.seen_test < 1:
            raise ValueError(f"need lr > 0, init_logit_scale > 0, crop_min in (0, 1] and seen_test in (0, 1), got "
                             f"{self.lr}, {self.init_logit_scale}, {self.crop_min}, {self.seen_test}")
        return self


@dataclass
class CaptionedImages:
    """Images ``[N, C, H, W]`` and their attributes: ``attrs[name] [N]`` indexes ``vocab[name]``; the caption of
    image n is ``" ".join(vocab[a][attrs[a][n]] for a in order)``. The first two attributes of ``order`` are the
    pair whose combinations are held out."""

    images: torch.Tensor
    attrs: dict[str, torch.Tensor]
    vocab: dict[str, list[str]]
    order: list[str]
    display: list[str] | None = None                # the order of the words in a caption (default: order)

    def tokens(self, attrs: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Token ids ``[N, A]``: one token per attribute, ``offset(attribute) + value``."""
        attrs = self.attrs if attrs is None else attrs
        offsets, ids = 0, []
        for a in self.order:
            ids.append(attrs[a] + offsets)
            offsets += len(self.vocab[a])
        return torch.stack(ids, 1)

    @property
    def vocab_size(self) -> int:
        return sum(len(self.vocab[a]) for a in self.order)

    def caption(self, n: int) -> str:
        return " ".join(self.vocab[a][int(self.attrs[a][n])] for a in self.display or self.order)


def _paint(images: torch.Tensor, masks: torch.Tensor, colour_ids: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Glyph pixels in a named colour (brightness x U(0.8, 1)) over a dark grey copy of the image."""
    palette = torch.tensor(list(COLOURS.values()))                                     # [6, 3]
    shade = 0.8 + 0.2 * torch.rand(len(images), 1, generator=gen)                      # [N, 1]
    fg = (palette[colour_ids] * shade)[:, :, None, None]                               # [N, 3, 1, 1]
    bg = 0.35 * rgb_to_gray(images)                                                    # [N, 1, H, W]
    m = masks[:, None]                                                                 # [N, 1, H, W]
    return (bg * (1 - m) + fg * m).clamp(0, 1)


def captioned_glyphs(n: int, seed: int = 0) -> CaptionedImages:
    """Glyphs (``course_lib.data.glyphs(n, 32, seed)``) repainted in the six named colours, with captions
    ``<colour> <style> <family> <character>``."""
    from ..data import glyphs

    ds = glyphs(n=n, size=32, seed=seed)
    gen = torch.Generator().manual_seed(seed + 101)
    colour = torch.randint(0, len(COLOURS), (n,), generator=gen)
    font = ds.attributes["font"].long()
    images = _paint(ds.images, ds.masks, colour, gen)
    return CaptionedImages(images, {"character": ds.labels.long(), "colour": colour, "style": font % 4,
                                    "family": font // 4},
                           {"character": list(ds.classes), "colour": list(COLOURS), "style": list(STYLES),
                            "family": list(FAMILIES)}, ["character", "colour", "style", "family"],
                           display=["colour", "style", "family", "character"])


def dominant_hue(images: torch.Tensor) -> torch.Tensor:
    """``[N]`` index into :data:`HUES` of each image's mean colour: its HSV hue in six 60-degree sectors centred
    on red (0), yellow (60), green (120), cyan (180), blue (240) and magenta (300 degrees)."""
    rgb = images.mean((2, 3))                                                          # [N, 3]
    r, g, b = rgb.unbind(1)
    hi, lo = rgb.max(1).values, rgb.min(1).values
    chroma = (hi - lo).clamp(min=1e-8)
    sector = torch.where(hi == r, ((g - b) / chroma) % 6,
                         torch.where(hi == g, (b - r) / chroma + 2, (r - g) / chroma + 4))   # [N] hue / 60 deg
    return torch.floor((sector + 0.5) % 6).long()


def captioned_folder(path: str | Path, n_per_class: int | None = None) -> CaptionedImages:
    """An image folder with captions ``<hue> <class>``: the class name and the image's dominant hue."""
    from ..data import load_image_folder

    ds = load_image_folder(path, n_per_class=n_per_class, size=32)
    images = ds.images.float()
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1).contiguous()
    return CaptionedImages(images, {"class": ds.labels.long(), "colour": dominant_hue(images)},
                           {"class": list(ds.classes), "colour": list(HUES)}, ["class", "colour"],
                           display=["colour", "class"])


def split_combos(data: CaptionedImages, seen_test: float, seed: int) -> dict[str, torch.Tensor]:
    """``train``, ``seen`` (held-out images of seen combinations) and ``unseen`` (every image of a held-out
    combination: value ``i`` of the first attribute with value ``i mod n`` of the second) index tensors."""
    a, b = data.order[0], data.order[1]
    heldout = data.attrs[b] == data.attrs[a] % len(data.vocab[b])                      # [N] bool
    unseen = heldout.nonzero().squeeze(1)
    rest = (~heldout).nonzero().squeeze(1)
    rest = rest[torch.randperm(len(rest), generator=torch.Generator().manual_seed(seed))]
    k = max(1, int(round(seen_test * len(rest))))
    return {"train": rest[k:].sort().values, "seen": rest[:k].sort().values, "unseen": unseen}


class TextEncoder(nn.Module):
    """Averaged token embeddings and an MLP: ``tokens [N, A] -> [N, embed_dim]`` (order of the tokens ignored)."""

    def __init__(self, vocab_size: int, token_dim: int, embed_dim: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, token_dim)
        self.mlp = nn.Sequential(nn.Linear(token_dim, 2 * token_dim), nn.ReLU(), nn.Linear(2 * token_dim, embed_dim))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.embedding(tokens).mean(1))                                # [N, A, E] -> [N, E] -> [N, D]


class ClipModel(nn.Module):
    """Image encoder (conv encoder + linear projection), text encoder and the learned log logit scale."""

    def __init__(self, in_channels: int, vocab_size: int, exp: ClipExperiment):
        super().__init__()
        self.encoder = ConvEncoder(EncoderConfig(in_channels=in_channels, width=exp.width))
        self.image_proj = nn.Linear(self.encoder.feature_dim, exp.embed_dim)
        self.text = TextEncoder(vocab_size, exp.token_dim, exp.embed_dim)
        self.log_scale = nn.Parameter(torch.tensor(math.log(exp.init_logit_scale)))

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return self.image_proj(self.encoder(x))                                        # [N, D]

    def logit_scale(self) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=100.0)                                   # CLIP clips it at 100


def train_clip(model: ClipModel, data: CaptionedImages, train_idx: torch.Tensor, clip_loss: Callable,
               exp: ClipExperiment, device: torch.device, progress: bool = True) -> list[float]:
    """Adam with cosine decay on (random crop of the image, caption) pairs; returns the losses."""
    from tqdm.auto import tqdm

    opt = torch.optim.Adam(model.parameters(), lr=exp.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, exp.steps)
    gen = torch.Generator().manual_seed(exp.seed + 1)
    tokens = data.tokens()
    batch = min(exp.batch_size, len(train_idx))
    losses = []
    model.train()
    for step in tqdm(range(exp.steps), desc="CLIP", leave=False, disable=not progress):
        idx = train_idx[torch.randperm(len(train_idx), generator=gen)[:batch]]
        x = random_resized_crop(data.images[idx].to(device), (exp.crop_min, 1.0), (0.8, 1.25), gen)
        img, txt = model.encode_image(x), model.text(tokens[idx].to(device))           # [B, D] each
        loss = clip_loss(img, txt, model.logit_scale())
        backward_and_step(loss, opt, "CLIP loss", step, inputs={"image embeddings": img, "text embeddings": txt})
        sched.step()
        losses.append(loss.item())
    return losses


@torch.no_grad()
def zero_shot_classifier(model: ClipModel, data: CaptionedImages, device: torch.device) -> torch.Tensor:
    """``[n_a * n_b, D]`` unit weight vectors, one per combination of the first two attributes (row
    ``i * n_b + j``): the mean of the normalised text embeddings of its captions over all other attributes."""
    grids = torch.meshgrid(*[torch.arange(len(data.vocab[a])) for a in data.order], indexing="ij")
    attrs = {a: g.flatten() for a, g in zip(data.order, grids)}                        # every caption once
    txt = F.normalize(model.text(data.tokens(attrs).to(device)), dim=1)                # [n_captions, D]
    n_ab = len(data.vocab[data.order[0]]) * len(data.vocab[data.order[1]])
    return F.normalize(txt.view(n_ab, -1, txt.shape[1]).mean(1), dim=1)               # [n_ab, D]


@torch.no_grad()
def evaluate(model: ClipModel, data: CaptionedImages, idx: torch.Tensor, device: torch.device) -> dict[str, float]:
    """Zero-shot accuracies on images ``idx``: the combination, and each of the two attributes of it."""
    model.eval()
    weights = zero_shot_classifier(model, data, device)                                # [n_ab, D]
    img = torch.cat([F.normalize(model.encode_image(x.to(device)), dim=1) for x in data.images[idx].split(500)])
    pred = (img @ weights.T).argmax(1).cpu()                                           # [len(idx)]
    a, b = data.order[0], data.order[1]
    n_b = len(data.vocab[b])
    ta, tb = data.attrs[a][idx], data.attrs[b][idx]
    return {"combo": float(((pred // n_b == ta) & (pred % n_b == tb)).float().mean()),
            a: float((pred // n_b == ta).float().mean()), b: float((pred % n_b == tb).float().mean())}


def run(
    clip_loss: Callable | None = None,
    exp: ClipExperiment | None = None,
    *,
    images_dir: str | Path | None = None,
    n_per_class: int | None = None,
    device: torch.device | None = None,
    progress: bool = True,
) -> dict:
    """Train CLIP on captioned glyphs (or a folder) with ``clip_loss``, then classify zero-shot from text.

    Returns ``metrics`` (``zeroshot_acc_unseen`` / ``zeroshot_acc_seen``: the combination right, on held-out
    combinations / on held-out images of seen ones; ``<attribute>_acc_unseen`` for the two attributes;
    ``chance``: one over the number of combinations; ``logit_scale``), the model, the data, the split, losses.
    """
    clip_loss = resolve("clip_loss", clip_loss)
    exp = (exp or (ClipExperiment.smoke() if smoke_mode() else ClipExperiment())).validate()
    device = device or pick_device()
    require_implemented("clip_loss", clip_loss, torch.eye(2), torch.eye(2))
    data = captioned_glyphs(exp.n_images, exp.seed) if images_dir is None else captioned_folder(images_dir,
                                                                                                  n_per_class)
    split = split_combos(data, exp.seen_test, exp.seed)
    if len(split["train"]) < 2 or len(split["unseen"]) == 0:
        raise ValueError(f"{images_dir or 'glyphs'}: {len(data.images)} images leave {len(split['train'])} for "
                         f"training and {len(split['unseen'])} of held-out combinations; use more images")
    torch.manual_seed(exp.seed)
    model = ClipModel(data.images.shape[1], data.vocab_size, exp).to(device)
    losses = train_clip(model, data, split["train"], clip_loss, exp, device, progress)
    unseen, seen = evaluate(model, data, split["unseen"], device), evaluate(model, data, split["seen"], device)
    a, b = data.order[0], data.order[1]
    metrics = {"zeroshot_acc_unseen": unseen["combo"], "zeroshot_acc_seen": seen["combo"],
               f"{a}_acc_unseen": unseen[a], f"{b}_acc_unseen": unseen[b],
               "chance": 1.0 / (len(data.vocab[a]) * len(data.vocab[b])), "logit_scale": float(model.logit_scale().detach())}
    return {"metrics": metrics, "model": model, "data": data, "split": split, "losses": losses}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.experiments.clip", description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", metavar="DIR", help="<class>/<image> folder or .tar[.gz] of one (default: glyphs)")
    parser.add_argument("--n-per-class", type=int, help="with --images: read at most N images per class")
    parser.add_argument("--steps", type=int, help="training steps (default 600; 4 with COURSE_SMOKE=1)")
    args = parser.parse_args(argv)
    exp = ClipExperiment.smoke() if smoke_mode() else ClipExperiment()
    if args.steps is not None:
        if args.steps < 1:
            parser.error(f"--steps must be >= 1, got {args.steps}")
        exp = replace(exp, steps=args.steps)
    if args.images is not None and not Path(args.images).exists():
        parser.error(f"--images {args.images}: no such folder or archive")
    if args.n_per_class is not None and args.n_per_class < 1:
        parser.error(f"--n-per-class must be >= 1, got {args.n_per_class}")
    try:
        out = run(exp=exp, images_dir=args.images, n_per_class=args.n_per_class, progress=sys.stderr.isatty())
    except ValueError as exc:                    # bad data or settings: a clear message, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    m, data = out["metrics"], out["data"]
    a, b = data.order[0], data.order[1]
    print(f"captions like {data.caption(0)!r}; {len(out['split']['train'])} training images, "
          f"{len(out['split']['unseen'])} of the held-out combinations")
    print(f"zero-shot accuracy from text: held-out combinations {m['zeroshot_acc_unseen']:.3f} ({a} "
          f"{m[f'{a}_acc_unseen']:.3f}, {b} {m[f'{b}_acc_unseen']:.3f}), seen combinations "
          f"{m['zeroshot_acc_seen']:.3f}, chance {m['chance']:.4f}")
    print(format_metrics({k: m[k] for k in ("zeroshot_acc_unseen", "zeroshot_acc_seen", "chance")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
