"""The four a4_rendering stages the TinyNeRF trainer runs, passed in by the caller.

The trainer, the fields and the renderer of :mod:`course_lib.nerf` never import a graded reference: they call
the functions held by a :class:`NerfStages`, which the notebook fills with the student's own ``get_rays``,
``sample_stratified``, ``positional_encoding`` and ``volume_render``. A stage left as None is resolved with
:func:`course_lib.manifest.resolve` (the course_lib reference; in the student edition, where the references are
withheld, the error says which function to pass).

Where each stage runs:

* ``get_rays`` -- the rays of every training pixel (:func:`course_lib.nerf.data.all_rays`) and of every
  rendered image (:func:`course_lib.nerf.renderer.render_image`);
* ``sample_stratified`` -- the samples along each ray, in ``[near, far]`` or inside the grid's box
  (:func:`course_lib.nerf.sampler.sample_along`);
* ``positional_encoding`` -- the MLP field's input (and the view direction of a grid's colour MLP);
* ``volume_render`` -- compositing, and the weights that decide where colours are evaluated.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..manifest import resolve

__all__ = ["NerfStages", "STAGE_NAMES"]

STAGE_NAMES = ("get_rays", "sample_stratified", "positional_encoding", "volume_render")


@dataclass(frozen=True)
class NerfStages:
    """The stage functions; each one left as None is resolved by :func:`course_lib.manifest.resolve`.

    Raises:
        course_lib.manifest.WithheldError: for a stage left as None in an edition that withholds its reference.
        TypeError: for a stage that is not callable.
    """

    get_rays: Callable | None = None
    sample_stratified: Callable | None = None
    positional_encoding: Callable | None = None
    volume_render: Callable | None = None

    def __post_init__(self) -> None:
        for name in STAGE_NAMES:
            object.__setattr__(self, name, resolve(name, getattr(self, name)))      # frozen: set once, here

    @classmethod
    def of(cls, stages: object | None = None, **functions: Callable | None) -> "NerfStages":
        """Stages from keyword functions, or from any object with the four attributes (e.g. the notebook
        experiment's ``course_lib.experiments.nerf.Stages``); a keyword that is not None wins.

        Raises:
            TypeError: for a keyword that is not one of :data:`STAGE_NAMES`.
        """
        unknown = sorted(set(functions) - set(STAGE_NAMES))
        if unknown:
            raise TypeError(f"unknown stage(s) {unknown}; the stages are {list(STAGE_NAMES)}")
        if isinstance(stages, cls) and all(functions.get(n) is None for n in STAGE_NAMES):
            return stages
        picked = {n: functions.get(n) if functions.get(n) is not None else getattr(stages, n, None)
                  for n in STAGE_NAMES}
        return cls(**picked)
