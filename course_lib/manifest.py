"""The manifest of the course: its assignments and their graded functions, stated once.

Every tool reads this module (``course_lib/__init__.py``, the autograder, the notebook builder, the release and
student-edition scripts, the tests); nothing else lists assignment names, graded functions or their points. It
imports nothing heavy (no torch), so the grader side, the scripts and ``pip`` metadata can read it cheaply.

A graded function is one :class:`Graded` entry: its name (also its name in ``course_lib`` and in the notebook),
its assignment, its points and the ``course_lib`` module that holds the reference. The loop version the tests
and the notebooks compare against is ``course_lib.naive.<name>_naive``. The contract (shapes, math, stable
ranges) is the reference's docstring, summarised in ``docs/graded-api.md``.

``resolve(name, fn)`` is how experiments and trainers pick the function they run: the caller's own function
(the student's), else the reference -- and in the student edition, whose unreleased references are withheld
stubs, the caller's function is required and the error says so.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

__all__ = ["Assignment", "Graded", "ASSIGNMENTS", "GRADED", "assignment_names", "functions", "entry", "reference",
           "loop_version", "is_withheld", "resolve", "WithheldError"]


@dataclass(frozen=True)
class Assignment:
    name: str                 # folder and notebook name: solutions/<name>/<name>.py, assignments/<name>/<name>.ipynb
    title: str


@dataclass(frozen=True)
class Graded:
    name: str                 # course_lib.<name>, the scaffold's function name, the registry's key
    assignment: str
    module: str               # reference module, relative to course_lib ("rendering.rays")
    points: float = 10.0


ASSIGNMENTS: tuple[Assignment, ...] = (
    Assignment("a1_gans", "Generative adversarial networks"),
    Assignment("a2_pretext", "Self-supervised pretext tasks"),
    Assignment("a3_contrastive", "Contrastive learning"),
    Assignment("a4_rendering", "Neural rendering"),
    Assignment("a5_priors", "Neural fields as priors"),
)

# In contract order: the order of the notebook's tasks, of results.json's tests and of the gradebook's columns.
GRADED: tuple[Graded, ...] = (
    Graded("discriminator_loss", "a1_gans", "gan"),
    Graded("generator_loss", "a1_gans", "gan"),
    Graded("rotate_batch", "a2_pretext", "pretext"),
    Graded("attention_color_propagation", "a2_pretext", "colorization"),
    Graded("relative_patch_pairs", "a2_pretext", "pretext"),
    Graded("info_nce_loss", "a3_contrastive", "contrastive"),
    Graded("nt_xent_loss", "a3_contrastive", "contrastive"),
    Graded("momentum_update", "a3_contrastive", "moco"),
    Graded("enqueue", "a3_contrastive", "moco"),
    Graded("moco_loss", "a3_contrastive", "moco"),
    Graded("clip_loss", "a3_contrastive", "contrastive"),
    Graded("get_rays", "a4_rendering", "rendering.rays"),
    Graded("sample_stratified", "a4_rendering", "rendering.sampling"),
    Graded("positional_encoding", "a4_rendering", "rendering.encoding"),
    Graded("volume_render", "a4_rendering", "rendering.volume"),
    Graded("sample_pdf", "a4_rendering", "rendering.sampling"),
    Graded("sphere_trace", "a4_rendering", "rendering.sphere_tracing"),
    Graded("splat_gaussians_2d", "a4_rendering", "rendering.splatting"),
    Graded("project_points", "a5_priors", "priors"),
    Graded("plucker_coordinates", "a5_priors", "priors"),
    Graded("bilinear_sample_2d", "a5_priors", "priors"),
    Graded("batched_mlp", "a5_priors", "priors"),
)

_BY_NAME = {g.name: g for g in GRADED}


class WithheldError(TypeError):
    """An experiment needs a graded function that the caller did not pass and this edition does not contain."""


def assignment_names() -> tuple[str, ...]:
    return tuple(a.name for a in ASSIGNMENTS)


def functions(assignment: str) -> tuple[str, ...]:
    """The graded functions of ``assignment``, in contract order.

    Raises:
        ValueError: for an unknown assignment (the message lists the known ones).
    """
    if assignment not in assignment_names():
        raise ValueError(f"unknown assignment {assignment!r}; known: {', '.join(assignment_names())}")
    return tuple(g.name for g in GRADED if g.assignment == assignment)


def entry(name: str) -> Graded:
    """The manifest entry of graded function ``name``.

    Raises:
        ValueError: when ``name`` is not a graded function.
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"{name!r} is not a graded function; the graded functions are "
                         f"{', '.join(_BY_NAME)}") from None


def reference(name: str) -> Callable:
    """``course_lib``'s reference of graded function ``name`` (a withheld stub in the student edition)."""
    module = importlib.import_module(f"course_lib.{entry(name).module}")
    return getattr(module, name)


def loop_version(name: str) -> Callable:
    """The loop version ``course_lib.naive.<name>_naive`` (instructor edition only)."""
    entry(name)
    return getattr(importlib.import_module("course_lib.naive"), f"{name}_naive")


def is_withheld(fn: Callable) -> bool:
    """True for the student edition's stand-in of a reference it does not contain."""
    return bool(getattr(fn, "__withheld__", False))


def resolve(name: str, fn: Callable | None) -> Callable:
    """``fn`` when given, else the reference of graded function ``name``.

    Raises:
        WithheldError: when ``fn`` is None and this edition withholds the reference (the student edition, for an
            assignment whose references the instructor has not released): the experiment needs your function.
    """
    if fn is not None:
        if not callable(fn):
            raise TypeError(f"{name} must be a function, got {type(fn).__name__}")
        return fn
    ref = reference(name)
    if is_withheld(ref):
        raise WithheldError(f"this needs your own `{name}`: pass it, e.g. `{name}={name}` (the student edition of "
                            f"course_lib does not contain the reference of {name})")
    return ref
