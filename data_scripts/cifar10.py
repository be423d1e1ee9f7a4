#!/usr/bin/env python3
"""Download CIFAR-10 (python version, 163 MiB), verify its sha256, unpack it and check that it loads.

    python data_scripts/cifar10.py [--dir DIR]            # default DIR: $COURSE_DATA_DIR/real/cifar10

Then: ``course_lib.data.load_cifar10(DIR)``. Offline, use ``course_lib.data.glyphs()`` instead.
Source: Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009
(https://www.cs.toronto.edu/~kriz/cifar.html; published md5 c58f30108f718f92721af3b95e74349a).
"""
from __future__ import annotations

import sys
from pathlib import Path, PurePosixPath

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))       # a checkout works without installing

from course_lib.data import load_cifar10                            # noqa: E402
from course_lib.data.download import Resource, run_download_script, safe_extract   # noqa: E402

RESOURCES = [Resource(
    urls=("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
    filename="cifar-10-python.tar.gz",
    sha256="6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    size=170_498_071,
)]
TOP = "cifar-10-batches-py"


def _unpack(paths, target: Path, args) -> str:
    def select(member: PurePosixPath):
        return PurePosixPath(*member.parts[1:]) if member.parts[:1] == (TOP,) and len(member.parts) > 1 else None

    folder = safe_extract(paths[0], target / TOP, select)
    train, test = load_cifar10(folder, "train"), load_cifar10(folder, "test")
    return f"CIFAR-10 ready in {folder}: {len(train)} train / {len(test)} test images, classes {test.classes}"


def main(argv=None) -> int:
    return run_download_script("cifar10", RESOURCES, "course_lib.data.glyphs()", _unpack, argv,
                               description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
