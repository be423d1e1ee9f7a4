#!/usr/bin/env python3
"""Download DAVIS-2017 trainval at 480p (about 0.8 GB), verify it, and unpack a subset of sequences.

    python data_scripts/davis2017_subset.py --sha256 HASH [--dir DIR] [--sequences blackswan dog ...]
    # default DIR: $COURSE_DATA_DIR/real/davis2017

No sha256 is pinned (the DAVIS site publishes none): the first run prints the archive's hash and stops;
check it and run again with ``--sha256 HASH`` (the download is kept and resumes if interrupted). Only
``JPEGImages/480p/<seq>`` and ``Annotations/480p/<seq>`` of the chosen sequences are unpacked, into
DIR/DAVIS. Then: ``course_lib.data.load_davis(DIR / "DAVIS", "blackswan", size=(240, 427))``.
Offline, use ``course_lib.data.sprite_videos()`` instead.
Source: Pont-Tuset et al., "The 2017 DAVIS Challenge on Video Object Segmentation", arXiv:1704.00675
(https://davischallenge.org/davis2017/code.html); sequences CC BY 4.0 unless stated otherwise.
"""
from __future__ import annotations

import sys
from pathlib import Path, PurePosixPath

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))       # a checkout works without installing

from course_lib.data import DatasetError, davis_sequences, load_davis   # noqa: E402
from course_lib.data.download import Resource, run_download_script, safe_extract   # noqa: E402

RESOURCES = [Resource(
    urls=("https://data.vision.ee.ethz.ch/csergi/share/davis/DAVIS-2017-trainval-480p.zip",),
    filename="DAVIS-2017-trainval-480p.zip",
    sha256=None,
)]
# validation sequences: single objects (blackswan, car-shadow) and several objects (bike-packing, dogs-jump, judo)
DEFAULT_SEQUENCES = ("blackswan", "car-shadow", "dog", "bike-packing", "dogs-jump", "judo")


def _add_arguments(parser) -> None:
    parser.add_argument("--sequences", nargs="+", default=list(DEFAULT_SEQUENCES),
                        help=f"sequences to unpack (default: {' '.join(DEFAULT_SEQUENCES)})")


def _unpack(paths, target: Path, args) -> str:
    wanted = set(args.sequences)

    def select(member: PurePosixPath):
        # members look like DAVIS/JPEGImages/480p/<seq>/00000.jpg; keep the part below DAVIS/
        parts = member.parts[member.parts.index("DAVIS") + 1:] if "DAVIS" in member.parts else member.parts
        if len(parts) == 4 and parts[0] in ("JPEGImages", "Annotations") and parts[1] == "480p" and parts[2] in wanted:
            return PurePosixPath(*parts)
        return None

    folder = safe_extract(paths[0], target / "DAVIS", select)
    found = davis_sequences(folder)
    missing = sorted(wanted - set(found))
    if missing:
        raise DatasetError(f"{paths[0]}: sequences not in the archive: {', '.join(missing)}")
    first = load_davis(folder, found[0], max_frames=2)
    return f"DAVIS ready in {folder}: {', '.join(found)} (first frames load as {list(first.frames.shape)})"


def main(argv=None) -> int:
    return run_download_script("davis2017", RESOURCES, "course_lib.data.sprite_videos()", _unpack, argv,
                               _add_arguments, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
