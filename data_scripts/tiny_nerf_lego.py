#!/usr/bin/env python3
"""Download tiny_nerf_data.npz (106 views of the lego scene at 100x100, 12.7 MB) and check that it loads.

    python data_scripts/tiny_nerf_lego.py --sha256 HASH [--dir DIR]
    # default DIR: $COURSE_DATA_DIR/real/tiny_nerf_lego

No sha256 is pinned for this file (the NeRF authors publish none): the first run downloads it, prints its
sha256 and stops; compare the hash with a trusted source and run again with ``--sha256 HASH`` (the
download is kept). Then: ``course_lib.data.load_tiny_nerf(DIR / "tiny_nerf_data.npz")``.
Offline, use ``course_lib.data.nerf_scene()`` instead.
Source: Mildenhall et al., "NeRF", ECCV 2020 (the tiny_nerf.ipynb data of github.com/bmild/nerf).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))       # a checkout works without installing

from course_lib.data import load_tiny_nerf                          # noqa: E402
from course_lib.data.download import Resource, run_download_script  # noqa: E402

RESOURCES = [Resource(
    urls=("http://cseweb.ucsd.edu/~viscomp/projects/LF/papers/ECCV20/nerf/tiny_nerf_data.npz",
          "https://people.eecs.berkeley.edu/~bmild/nerf/tiny_nerf_data.npz"),
    filename="tiny_nerf_data.npz",
    sha256=None,
)]


def _check(paths, target: Path, args) -> str:
    data = load_tiny_nerf(paths[0])
    return (f"tiny NeRF ready: {paths[0]} ({len(data)} views of {data.height}x{data.width}, focal {data.focal:.2f}, "
            f"{int(data.holdout.sum())} held out)")


def main(argv=None) -> int:
    return run_download_script("tiny_nerf_lego", RESOURCES, "course_lib.data.nerf_scene()", _check, argv,
                               description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
