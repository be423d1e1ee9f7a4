#!/usr/bin/env python3
"""Generate every synthetic data set the notebooks use, with the course defaults, into the data cache, so
that a class (or a CI job) starts with a warm cache. Idempotent: sets already cached are only verified.

    python data_scripts/pregenerate.py [--dir DIR] [--quick]
    # default DIR: $COURSE_DATA_DIR, else ~/.cache/course_lib

``--quick`` makes the small versions the notebooks use under COURSE_SMOKE=1.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))       # a checkout works without installing

from course_lib.data import glyphs, nerf_scene, sprite_videos       # noqa: E402

FULL = [
    ("glyphs (pretext + contrastive)", glyphs, dict(n=6000, size=32, seed=0)),
    ("glyphs, held-out set", glyphs, dict(n=2000, size=32, seed=1)),
    ("sprite videos (colourisation, mask propagation)", sprite_videos, dict(n_videos=32, n_frames=16, size=64)),
    ("analytic NeRF scene", nerf_scene, dict(n_views=100, size=100, n_holdout=6)),
]
QUICK = [
    ("glyphs (smoke)", glyphs, dict(n=512, size=32, seed=0)),
    ("sprite videos (smoke)", sprite_videos, dict(n_videos=4, n_frames=8, size=32)),
    ("analytic NeRF scene (smoke)", nerf_scene, dict(n_views=8, size=32, n_holdout=2)),
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None,
                        help="data root (default $COURSE_DATA_DIR or ~/.cache/course_lib)")
    parser.add_argument("--quick", action="store_true", help="only the small smoke-test versions")
    args = parser.parse_args(argv)
    for title, make, kwargs in (QUICK if args.quick else FULL):
        start = time.perf_counter()
        try:
            data = make(**kwargs, cache_dir=args.dir)
        except (OSError, ValueError) as exc:
            print(f"error: {title}: {exc}", file=sys.stderr)
            return 1
        print(f"{title:50s} {len(data):6d} items  {time.perf_counter() - start:6.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
