"""Downloading, verifying and unpacking the real datasets (shared by the scripts in ``data_scripts/``).

Guarantees:

* **verified**: every file's sha256 is checked after *every* download and also when a cached copy is reused;
  a mismatch deletes the bad bytes and fails with both hashes in the message. Where no hash is pinned the
  file is downloaded, its hash printed, and the run fails until the caller passes ``--sha256`` (we never
  trust an unverified download); the hash a file was verified with is kept next to it (``<file>.sha256``)
  so later runs re-verify the copy without asking again.
* **resumable**: bytes go to ``<file>.part``; an interrupted transfer continues with an HTTP ``Range``
  request (from scratch when the server ignores ranges); a dropped connection is retried with resume.
* **atomic**: the final name appears only after verification (``os.replace``); archives are unpacked into
  a temporary folder that is renamed into place, and members that would escape it (absolute paths,
  ``..``, links, devices) are refused.
* **offline-friendly**: when the host cannot be reached, :class:`OfflineError` says so and names the
  synthetic data set to use instead.

Only the standard library (``urllib``) is used.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import socket
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path, PurePosixPath
from typing import Callable, Sequence

from .cache import data_dir

__all__ = ["Resource", "DownloadError", "OfflineError", "ChecksumError", "sha256_file", "fetch",
           "safe_extract", "run_download_script"]

_CHUNK = 1 << 20
_PROGRESS_EVERY = 32 << 20
_USER_AGENT = "course_lib-data/0.1 (+urllib)"


class DownloadError(RuntimeError):
    """A download or its verification failed; the message says which file and why."""


class OfflineError(DownloadError):
    """The host could not be reached (no network, DNS failure, refused connection, time-out)."""


class ChecksumError(DownloadError):
    """The downloaded bytes do not have the expected sha256 (or no sha256 was given to check against)."""


@dataclass(frozen=True)
class Resource:
    """One file to fetch: mirror URLs tried in order, the local file name, its pinned sha256 (None when
    not known) and its size in bytes (informational)."""

    urls: tuple[str, ...]
    filename: str
    sha256: str | None = None
    size: int | None = None


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


class _Interrupted(Exception):
    """The transfer stopped early; what arrived is kept in the .part file for a resumed attempt."""


def _log(quiet: bool, msg: str) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def _transfer(url: str, part: Path, timeout: float, quiet: bool) -> None:
    """Append the rest of ``url`` to ``part`` (resuming with Range); raise _Interrupted if it stops early."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": _USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:                        # asked past the end: the .part may be complete
            total = (exc.headers.get("Content-Range") or "").rpartition("/")[2]
            if total.isdigit() and int(total) == have:
                return
            part.unlink()                                   # a stale .part that is not a prefix: start over
            raise _Interrupted(f"HTTP 416 with {have} bytes on disk; restarting") from None
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, socket.timeout, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise OfflineError(f"could not reach {urllib.request.urlparse(url).netloc} ({reason})") from None
    with resp:
        status = getattr(resp, "status", 200)
        if status == 206:
            start = (resp.headers.get("Content-Range") or "").removeprefix("bytes ").partition("-")[0]
            if not start.isdigit() or int(start) != have:
                part.unlink(missing_ok=True)
                raise _Interrupted(f"server resumed at byte {start!r}, expected {have}; restarting")
            mode = "ab"
        else:                                               # 200: the server sent the whole file
            have, mode = 0, "wb"
        length = resp.headers.get("Content-Length")
        expected = have + int(length) if length and length.isdigit() else None
        got, shown = have, have
        with open(part, mode) as f:
            while True:
                try:
                    block = resp.read(_CHUNK)
                except (HTTPException, OSError, socket.timeout) as exc:    # IncompleteRead, reset, time-out
                    raise _Interrupted(f"connection dropped after {got} bytes ({type(exc).__name__})") from None
                if not block:
                    break
                f.write(block)                                  # a disk error here is not retried
                got += len(block)
                if got - shown >= _PROGRESS_EVERY:
                    shown = got
                    total = f" of {expected / 2**20:.1f}" if expected else ""
                    _log(quiet, f"  {got / 2**20:.1f}{total} MiB")
    if expected is not None and got < expected:
        raise _Interrupted(f"connection closed after {got} of {expected} bytes")


def _download_with_resume(url: str, part: Path, timeout: float, retries: int, backoff: float, quiet: bool) -> None:
    attempt = 0
    while True:
        resume = f" (resuming at {part.stat().st_size} bytes)" if part.exists() else ""
        _log(quiet, f"downloading {url} -> {part}{resume}")
        try:
            _transfer(url, part, timeout, quiet)
            return
        except _Interrupted as exc:
            attempt += 1
            _log(quiet, f"  interrupted: {exc}")
            if attempt > retries:
                raise DownloadError(f"{url}: gave up after {retries} resumed attempts ({exc})") from None
            time.sleep(backoff * attempt)


def fetch(
    resource: Resource,
    directory: str | os.PathLike,
    sha256: str | None = None,
    *,
    timeout: float = 60.0,
    retries: int = 5,
    backoff: float = 1.0,
    quiet: bool = False,
) -> Path:
    """Download ``resource`` into ``directory`` (resumable) and verify it; return the final path.

    Args:
        resource: what to fetch; ``sha256`` overrides its pinned hash (e.g. from ``--sha256``).
        directory: where the file goes (created if needed).
        timeout: seconds per network operation.
        retries: attempts per mirror after a dropped connection (each resumes where the last stopped).
        backoff: seconds to wait before attempt k is ``backoff * k``.
        quiet: no progress messages on stderr.

    Raises:
        OfflineError: no mirror could be reached. ChecksumError: the bytes do not match (the bad file is
        deleted), or no hash is known (the file is kept as ``.part`` and its hash is in the message).
        DownloadError: any other failure (HTTP error, repeated interruptions).
    """
    expected = (sha256 or resource.sha256 or "").lower() or None
    if expected is not None and (len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected)):
        raise ValueError(f"sha256 must be 64 hex digits, got {expected!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final, part = directory / resource.filename, directory / (resource.filename + ".part")
    record = directory / (resource.filename + ".sha256")       # the hash a previous run verified the file with
    if expected is None and record.is_file() and final.exists():
        expected = record.read_text().strip().lower() or None
    if final.exists():
        actual = sha256_file(final)
        if expected is not None and actual == expected:
            _log(quiet, f"{final}: present, sha256 verified")
            return final
        if expected is None:
            raise ChecksumError(f"{final}: present but no sha256 to verify it against; its sha256 is {actual}. "
                                "Check it against a trusted source and pass --sha256 " + actual)
        _log(quiet, f"{final}: sha256 {actual} does not match {expected}; downloading again")
        final.unlink()
    errors: list[str] = []
    offline = True
    for url in resource.urls:
        try:
            _download_with_resume(url, part, timeout, retries, backoff, quiet)
        except OfflineError as exc:
            errors.append(str(exc))
            continue
        except DownloadError as exc:
            offline = False
            errors.append(str(exc))
            continue
        offline = False
        actual = sha256_file(part)
        if expected is None:
            raise ChecksumError(f"{part}: downloaded, but no sha256 is pinned for {resource.filename}; the file's "
                                f"sha256 is {actual}. Check it against a trusted source, then rerun with "
                                f"--sha256 {actual} (the download is kept and will not be fetched again)")
        if actual != expected:
            part.unlink()
            errors.append(f"{url}: checksum mismatch for {resource.filename}: expected sha256 {expected}, got {actual}")
            continue
        os.replace(part, final)
        record.write_text(expected + "\n")
        _log(quiet, f"{final}: sha256 verified")
        return final
    message = f"{resource.filename}: download failed: " + "; ".join(errors)
    if offline:
        raise OfflineError(message)
    if any("checksum mismatch" in e for e in errors):
        raise ChecksumError(message)
    raise DownloadError(message)


def _safe_name(name: str, archive: Path) -> PurePosixPath:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or (p.parts and ":" in p.parts[0]):
        raise DownloadError(f"{archive}: refusing unsafe member path {name!r}")
    return p


def safe_extract(
    archive: str | os.PathLike,
    dest: str | os.PathLike,
    select: Callable[[PurePosixPath], PurePosixPath | None] | None = None,
) -> Path:
    """Unpack a zip or tar archive into the folder ``dest``, atomically (temp folder + rename).

    Args:
        select: maps each member path to where it goes below ``dest`` (None skips it); default keeps all.

    Raises:
        DownloadError: on an unreadable archive or a member that would leave ``dest`` (absolute path,
        ``..``, symbolic/hard link, device).
    """
    archive, dest = Path(archive), Path(dest)
    select = select or (lambda p: p)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".", suffix=".extracting", dir=dest.parent))
    count = 0
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    target = select(_safe_name(info.filename, archive))
                    if target is None or info.is_dir():
                        continue
                    out = tmp / _safe_name(str(target), archive)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst, _CHUNK)
                    count += 1
        else:
            try:
                tf = tarfile.open(archive, mode="r:*")
            except (tarfile.TarError, OSError) as exc:
                raise DownloadError(f"{archive}: not a readable zip or tar archive ({exc})") from None
            with tf:
                for member in tf:
                    target = select(_safe_name(member.name, archive))
                    if target is None or member.isdir():
                        continue
                    if not member.isfile():
                        raise DownloadError(f"{archive}: refusing member {member.name!r} (links and devices are "
                                            "not extracted)")
                    out = tmp / _safe_name(str(target), archive)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with tf.extractfile(member) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst, _CHUNK)
                    count += 1
        if count == 0:
            raise DownloadError(f"{archive}: no members matched; nothing extracted")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise DownloadError(f"{archive}: corrupt or truncated archive ({exc})") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _parse_hashes(values: Sequence[str], resources: Sequence[Resource]) -> dict[str, str]:
    """``--sha256 HASH`` (one-file scripts) or ``--sha256 FILENAME=HASH`` -> {filename: hash}."""
    out = {}
    for value in values:
        name, sep, digest = value.rpartition("=")
        if not sep:
            if len(resources) != 1:
                raise ValueError("this script fetches several files: pass --sha256 FILENAME=HASH")
            name, digest = resources[0].filename, value
        if name not in {r.filename for r in resources}:
            raise ValueError(f"--sha256 names unknown file {name!r}")
        out[name] = digest.strip().lower()
    return out


def run_download_script(
    name: str,
    resources: Sequence[Resource],
    synthetic: str,
    post: Callable[[list[Path], Path, argparse.Namespace], str] | None = None,
    argv: Sequence[str] | None = None,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    description: str | None = None,
) -> int:
    """The command-line body every ``data_scripts/*.py`` shares; returns the exit code.

    Args:
        name: the data set's folder name below ``<data dir>/real``.
        resources: the files to fetch.
        synthetic: the offline replacement named in the no-network message, e.g. ``"course_lib.data.glyphs()"``.
        post: called with ``(downloaded files, target folder, args)`` after verification (unpack and check
            by loading); returns a one-line summary.
        argv: arguments (default ``sys.argv[1:]``); add_arguments: extra script options.

    Exit codes: 0 success, 1 any failure (network, checksum, corrupt data), 2 bad usage.
    """
    parser = argparse.ArgumentParser(prog=f"{name}.py", description=description or f"Download {name}.")
    parser.add_argument("--dir", type=Path, default=None,
                        help=f"target folder (default: $COURSE_DATA_DIR/real/{name}, "
                             f"else ~/.cache/course_lib/real/{name})")
    parser.add_argument("--sha256", action="append", default=[], metavar="[FILENAME=]HASH",
                        help="expected sha256 (required for files without a pinned hash)")
    parser.add_argument("--url", default=None, help="download from this URL instead (one-file scripts)")
    parser.add_argument("--mirror", default=None, help="base URL to fetch every file name from instead")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per network operation")
    parser.add_argument("--retries", type=int, default=5, help="resumed attempts after a dropped connection")
    parser.add_argument("--quiet", action="store_true", help="no progress messages")
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    target = args.dir if args.dir is not None else data_dir() / "real" / name
    try:
        hashes = _parse_hashes(args.sha256, resources)
        if args.url and len(resources) != 1:
            raise ValueError("--url works for one-file scripts only; use --mirror BASE_URL")
    except ValueError as exc:
        parser.error(str(exc))                                  # exits 2
    paths = []
    try:
        for res in resources:
            urls = res.urls
            if args.url:
                urls = (args.url,)
            elif args.mirror:
                urls = (args.mirror.rstrip("/") + "/" + res.filename,)
            paths.append(fetch(Resource(urls, res.filename, res.sha256, res.size), target,
                               hashes.get(res.filename), timeout=args.timeout, retries=args.retries,
                               quiet=args.quiet))
        summary = post(paths, target, args) if post is not None else f"{len(paths)} file(s) in {target}"
    except OfflineError as exc:
        print(f"error: {exc}\nno network: use {synthetic} instead (it needs no download)", file=sys.stderr)
        return 1
    except (DownloadError, ValueError, OSError) as exc:         # DatasetError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(summary)
    return 0
