"""Neural rendering stages (assignment a4_rendering): rays -> samplers -> encoding -> volume renderer, plus
sphere tracing of signed distance functions. Each stage is its own module."""
from .encoding import encoding_width, positional_encoding
from .rays import get_rays
from .sampling import sample_pdf, sample_stratified
from .sphere_tracing import sphere_trace
from .volume import volume_render

__all__ = [
    "get_rays",
    "sample_stratified",
    "positional_encoding",
    "encoding_width",
    "volume_render",
    "sample_pdf",
    "sphere_trace",
]
