#!/usr/bin/env python3
"""Download the NeRF-synthetic lego scene (Blender renders, RGBA PNGs 800x800 + transforms_*.json) and
check that it loads.

    python data_scripts/nerf_synthetic_lego.py --sha256 HASH [--dir DIR]
    # default DIR: $COURSE_DATA_DIR/real/nerf_synthetic_lego

The NeRF authors host the complete nerf_synthetic.zip on Google Drive
(https://drive.google.com/drive/folders/128yBriW1IG_3NJ5Rp7APSTZsJqdJdfc1), which urllib cannot fetch
directly; by default this script fetches their nerf_example_data.zip (the lego scene and the LLFF fern
scene, from the host of github.com/bmild/nerf's download_example_data.sh). ``--url`` accepts any zip or tar
that contains a ``lego/transforms_train.json``. No sha256 is pinned: the first run prints the archive's
hash and stops; check it and run again with ``--sha256 HASH``. Only ``lego/`` is unpacked, into DIR/lego.
Then: ``course_lib.data.load_blender(DIR / "lego", "train", downscale=8)``.
Offline, use ``course_lib.data.nerf_scene()`` instead.
Source: Mildenhall et al., "NeRF", ECCV 2020.
"""
from __future__ import annotations

import sys
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))       # a checkout works without installing

from course_lib.data import DatasetError, load_blender              # noqa: E402
from course_lib.data.download import Resource, run_download_script, safe_extract   # noqa: E402

RESOURCES = [Resource(
    urls=("http://cseweb.ucsd.edu/~viscomp/projects/LF/papers/ECCV20/nerf/nerf_example_data.zip",),
    filename="nerf_example_data.zip",
    sha256=None,
)]
SCENE = "lego"


def _members(archive: Path) -> list[str]:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            return zf.namelist()
    with tarfile.open(archive, "r:*") as tf:
        return tf.getnames()


def _unpack(paths, target: Path, args) -> str:
    marker = next((PurePosixPath(n) for n in _members(paths[0])
                   if n.endswith(f"{SCENE}/transforms_train.json") and "__MACOSX" not in n), None)
    if marker is None:
        raise DatasetError(f"{paths[0]}: no {SCENE}/transforms_train.json inside the archive")
    prefix = marker.parent.parts

    def select(member: PurePosixPath):
        return PurePosixPath(*member.parts[len(prefix):]) if member.parts[:len(prefix)] == prefix else None

    folder = safe_extract(paths[0], target / SCENE, select)
    data = load_blender(folder, "train", downscale=8, max_views=2)
    return (f"lego ready in {folder} (views load at {data.height}x{data.width}, focal {data.focal:.2f} "
            "after downscale=8)")


def main(argv=None) -> int:
    return run_download_script("nerf_synthetic_lego", RESOURCES, "course_lib.data.nerf_scene()", _unpack, argv,
                               description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
