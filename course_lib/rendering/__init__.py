"""Neural rendering stages (assignment a4_rendering): rays -> samplers -> encoding -> volume renderer, plus
sphere tracing of signed distance functions, and 2-D Gaussian splatting. Each stage is its own module; the
modules hold only graded references (the student edition replaces them), shared helpers live here."""
from .encoding import positional_encoding
from .rays import get_rays
from .sampling import sample_pdf, sample_stratified
from .sphere_tracing import sphere_trace
from .splatting import splat_gaussians_2d
from .volume import volume_render

__all__ = [
    "get_rays",
    "sample_stratified",
    "positional_encoding",
    "encoding_width",
    "volume_render",
    "sample_pdf",
    "sphere_trace",
    "splat_gaussians_2d",
]


def encoding_width(dim: int, num_freqs: int, include_input: bool = True) -> int:
    """Output width of :func:`positional_encoding` for ``dim`` input coordinates: ``D * (include_input + 2L)``."""
    return dim * (int(include_input) + 2 * num_freqs)
