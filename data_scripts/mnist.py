#!/usr/bin/env python3
"""Download the four MNIST IDX files (gzip, 11 MiB), verify their sha256 and check that they load.

    python data_scripts/mnist.py [--dir DIR]              # default DIR: $COURSE_DATA_DIR/real/mnist

Then: ``course_lib.data.load_mnist(DIR, "train")``. Offline, use ``course_lib.data.glyphs()`` instead.
The files are byte-identical on every mirror below (the original host, yann.lecun.com, often refuses
scripted downloads, so it is tried last). Source: LeCun et al., 1998.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))       # a checkout works without installing

from course_lib.data import load_mnist                              # noqa: E402
from course_lib.data.download import Resource, run_download_script  # noqa: E402

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
FILES = {   # file name: (sha256, size in bytes)
    "train-images-idx3-ubyte.gz": ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9_912_422),
    "train-labels-idx1-ubyte.gz": ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28_881),
    "t10k-images-idx3-ubyte.gz": ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1_648_877),
    "t10k-labels-idx1-ubyte.gz": ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4_542),
}
RESOURCES = [Resource(tuple(m + name for m in MIRRORS), name, sha, size) for name, (sha, size) in FILES.items()]


def _check(paths, target: Path, args) -> str:
    train, test = load_mnist(target, "train"), load_mnist(target, "test")
    return f"MNIST ready in {target}: {len(train)} train / {len(test)} test images"


def main(argv=None) -> int:
    return run_download_script("mnist", RESOURCES, "course_lib.data.glyphs()", _check, argv,
                               description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
