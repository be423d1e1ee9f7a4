"""Datasets for the course: synthetic defaults that a notebook makes offline in seconds, and loaders for
the real formats the lectures cite.

Synthetic (deterministic by seed, cached under ``$COURSE_DATA_DIR`` or ``~/.cache/course_lib``):

    glyphs(n, size=32, seed=0)                      -> ImageDataset  images [N, 3, H, W], labels [N]
    sprite_videos(n_videos, n_frames, size=64, ...) -> VideoDataset  frames [V, T, 3, H, W], masks [V, T, H, W]
    nerf_scene(n_views=100, size=100, seed=0, ...)  -> NerfData      images [N, H, W, 3], poses [N, 4, 4], focal

Real formats (``DatasetError`` names the file and the problem):

    load_tiny_nerf(path), load_blender(root, split, downscale)        -> NerfData
    load_davis(root, sequence, size), davis_sequences(root)           -> VideoDataset
    load_cifar10(root, split), load_mnist(root, split), load_image_folder(path_or_tar, n_per_class)
                                                                      -> ImageDataset

Downloads of the real data sets (checksummed, resumable) live in ``data_scripts/`` and share
:mod:`course_lib.data.download`.
"""
from .cache import data_dir
from .containers import DatasetError, ImageDataset, NerfData, VideoDataset
from .davis import davis_sequences, load_davis, read_davis_mask
from .glyphs import GlyphConfig, glyph_bank, glyphs
from .image_formats import load_cifar10, load_image_folder, load_mnist, read_idx
from .nerf_formats import load_blender, load_tiny_nerf, read_blender_transforms
from .analytic_scene import AnalyticScene, look_at, nerf_scene, sphere_poses
from .sprites import sprite_videos

__all__ = [
    "DatasetError", "ImageDataset", "VideoDataset", "NerfData", "data_dir",
    "glyphs", "GlyphConfig", "glyph_bank", "sprite_videos", "nerf_scene", "AnalyticScene", "look_at", "sphere_poses",
    "load_tiny_nerf", "load_blender", "read_blender_transforms", "load_davis", "davis_sequences", "read_davis_mask",
    "load_cifar10", "load_mnist", "read_idx", "load_image_folder",
]
