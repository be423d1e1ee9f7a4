"""Do downloads verify sha256 after every transfer, resume after a dropped connection, refuse unsafe
archives, fail clearly offline, and do the data scripts exit non-zero on every failure? (A local HTTP
server in a thread stands in for the internet.)"""
import gzip
import hashlib
import importlib.util
import io
import re
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import pytest

import course_lib.data as data_api
from course_lib.data import load_cifar10
from course_lib.data.download import (ChecksumError, DownloadError, OfflineError, Resource, fetch, safe_extract,
                                      sha256_file)
from data_fixtures.common import isolated_data_dir, one_torch_thread  # noqa: F401  (autouse fixtures)
from data_fixtures.fabricate import idx_bytes, write_blender_scene, write_cifar10, write_davis, write_tiny_nerf
from data_fixtures.http_server import closed_port_url, serve

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD = np.random.default_rng(0).bytes(300_000)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def _res(server, name="blob.bin", sha=SHA, mirrors=None):
    return Resource(tuple(mirrors or [server.url(name)]), "blob.bin", sha)


def test_fetch_downloads_and_verifies(tmp_path):
    with serve({"blob.bin": PAYLOAD}) as srv:
        path = fetch(_res(srv), tmp_path, quiet=True)
    assert path.read_bytes() == PAYLOAD and sha256_file(path) == SHA
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob.bin", "blob.bin.sha256"]   # no .part left


def test_checksum_mismatch_deletes_the_download_and_names_both_hashes(tmp_path):
    corrupted = bytearray(PAYLOAD)
    corrupted[1234] ^= 1
    with serve({"blob.bin": bytes(corrupted)}) as srv:
        with pytest.raises(ChecksumError) as info:
            fetch(_res(srv), tmp_path, quiet=True, backoff=0)
    msg = str(info.value)
    assert "checksum mismatch for blob.bin" in msg and SHA in msg and hashlib.sha256(corrupted).hexdigest() in msg
    assert list(tmp_path.iterdir()) == []


def test_dropped_connection_resumes_with_a_range_request(tmp_path):
    with serve({"blob.bin": PAYLOAD}) as srv:
        srv.drop_after["blob.bin"] = [100_000, 50_000]                        # two drops, then complete
        path = fetch(_res(srv), tmp_path, quiet=True, backoff=0)
        ranges = [r for _, r in srv.requests]
    assert path.read_bytes() == PAYLOAD
    assert ranges[0] is None and len(ranges) == 3
    starts = [int(re.fullmatch(r"bytes=(\d+)-", r).group(1)) for r in ranges[1:]]
    assert starts[0] >= 100_000 - 70_000 and starts[1] > starts[0]           # resumed, not restarted


def test_server_ignoring_range_restarts_cleanly(tmp_path):
    with serve({"blob.bin": PAYLOAD}) as srv:
        srv.drop_after["blob.bin"] = [120_000]
        srv.ignore_range.add("blob.bin")
        path = fetch(_res(srv), tmp_path, quiet=True, backoff=0)
    assert path.read_bytes() == PAYLOAD


def test_too_many_drops_give_up_with_a_download_error(tmp_path):
    with serve({"blob.bin": PAYLOAD}) as srv:
        srv.drop_after["blob.bin"] = [1000] * 10
        with pytest.raises(DownloadError, match="gave up after 2 resumed attempts") as info:
            fetch(_res(srv), tmp_path, retries=2, quiet=True, backoff=0)
    assert not isinstance(info.value, OfflineError)
    assert not (tmp_path / "blob.bin").exists()


def test_existing_file_is_verified_not_downloaded_and_a_bad_one_is_replaced(tmp_path):
    (tmp_path / "blob.bin").write_bytes(PAYLOAD)
    with serve({"blob.bin": PAYLOAD}) as srv:
        fetch(_res(srv), tmp_path, quiet=True)
        assert srv.requests == []
        (tmp_path / "blob.bin").write_bytes(b"stale copy")
        fetch(_res(srv), tmp_path, quiet=True)
        assert len(srv.requests) == 1
    assert (tmp_path / "blob.bin").read_bytes() == PAYLOAD


def test_unpinned_file_prints_its_hash_and_completes_with_sha256_without_refetching(tmp_path):
    with serve({"blob.bin": PAYLOAD}) as srv:
        with pytest.raises(ChecksumError, match=f"no sha256 is pinned.*--sha256 {SHA}"):
            fetch(_res(srv, sha=None), tmp_path, quiet=True)
        assert not (tmp_path / "blob.bin").exists() and (tmp_path / "blob.bin.part").exists()
        path = fetch(_res(srv, sha=None), tmp_path, sha256=SHA, quiet=True)
        assert srv.requests[-1][1] == f"bytes={len(PAYLOAD)}-"                # asked only for what is missing
        n_requests = len(srv.requests)
        assert fetch(_res(srv, sha=None), tmp_path, quiet=True) == path         # the verified hash was recorded
        assert len(srv.requests) == n_requests
        path.write_bytes(b"tampered")                                           # ... and the copy is checked
        fetch(_res(srv, sha=None), tmp_path, quiet=True)                        # against it: refetched
        assert len(srv.requests) == n_requests + 1 and path.read_bytes() == PAYLOAD
    assert (tmp_path / "blob.bin.sha256").read_text().strip() == SHA


def test_mirrors_are_tried_in_order(tmp_path):
    with serve({"blob.bin": PAYLOAD}) as srv:
        res = _res(srv, mirrors=[srv.url("missing.bin"), srv.url("blob.bin")])
        assert fetch(res, tmp_path, quiet=True).read_bytes() == PAYLOAD


def test_offline_and_http_errors_are_told_apart(tmp_path):
    with pytest.raises(OfflineError, match="could not reach 127.0.0.1"):
        fetch(Resource((closed_port_url(),), "x.bin", SHA), tmp_path, quiet=True)
    with serve({}) as srv:
        with pytest.raises(DownloadError, match="HTTP 404") as info:
            fetch(Resource((srv.url("x.bin"),), "x.bin", SHA), tmp_path, quiet=True)
    assert not isinstance(info.value, OfflineError)
    with pytest.raises(ValueError, match="64 hex digits"):
        fetch(Resource(("http://x",), "x.bin", "abc"), tmp_path)


# ------------------------------------------------------------------------------------------- extraction
def _tar_bytes(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, kind, blob in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
            else:
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tar.addfile(info)
    return buf.getvalue()


def test_safe_extract_selects_members_atomically(tmp_path):
    entries = [("top/keep/x.txt", "file", b"x"), ("top/skip/y.txt", "file", b"y")]
    (tmp_path / "a.tar.gz").write_bytes(_tar_bytes(entries))
    out = safe_extract(tmp_path / "a.tar.gz", tmp_path / "out",
                       lambda p: PurePosixPath(*p.parts[2:]) if p.parts[:2] == ("top", "keep") else None)
    assert [p.name for p in out.iterdir()] == ["x.txt"] and (out / "x.txt").read_bytes() == b"x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar.gz", "out"]   # no temp folder left


@pytest.mark.parametrize("entries, problem", [
    ([("ok.txt", "file", b"1"), ("../evil.txt", "file", b"2")], "unsafe member path '../evil.txt'"),
    ([("/abs/evil.txt", "file", b"2")], "unsafe member path '/abs/evil.txt'"),
    ([("link", "symlink", b"")], "refusing member 'link'"),
])
def test_safe_extract_refuses_members_that_escape(tmp_path, entries, problem):
    (tmp_path / "bad.tar.gz").write_bytes(_tar_bytes(entries))
    with pytest.raises(DownloadError, match=re.escape(problem)):
        safe_extract(tmp_path / "bad.tar.gz", tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "evil.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tar.gz"]


def test_safe_extract_zip_and_corrupt_archive(tmp_path):
    def zip_of(names):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for name in names:
                zf.writestr(name, b"hello")
        return buf.getvalue()

    (tmp_path / "evil.zip").write_bytes(zip_of(["a/b.txt", "../../evil.txt"]))
    with pytest.raises(DownloadError, match="unsafe member path"):       # even if the selection skipped it
        safe_extract(tmp_path / "evil.zip", tmp_path / "out", lambda p: p if p.parts[0] == "a" else None)
    assert not (tmp_path / "out").exists()
    (tmp_path / "z.zip").write_bytes(zip_of(["a/b.txt", "c/d.txt"]))
    out = safe_extract(tmp_path / "z.zip", tmp_path / "out", lambda p: p if p.parts[0] == "a" else None)
    assert (out / "a" / "b.txt").read_bytes() == b"hello" and not (out / "c").exists()
    (tmp_path / "junk.tar.gz").write_bytes(b"\x1f\x8b junk")
    with pytest.raises(DownloadError, match="junk.tar.gz"):
        safe_extract(tmp_path / "junk.tar.gz", tmp_path / "out2")


# ------------------------------------------------------------------------------------------- the scripts
def _script(name):
    spec = importlib.util.spec_from_file_location(f"data_script_{name}", ROOT / "data_scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCRIPTS = ["cifar10", "mnist", "tiny_nerf_lego", "nerf_synthetic_lego", "davis2017_subset"]


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_pins_real_urls_and_valid_hashes_and_names_an_offline_default(name):
    module = _script(name)
    text = (ROOT / "data_scripts" / f"{name}.py").read_text()
    for res in module.RESOURCES:
        assert res.urls and all(u.startswith(("https://", "http://")) for u in res.urls)
        assert res.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", res.sha256)
    hint = re.search(r'"course_lib\.data\.(\w+)\(\)"', text).group(1)
    assert callable(getattr(data_api, hint))


def test_pinned_hashes_of_files_present_locally_match():
    # the MNIST files in the shared sample are byte-identical to the official ones
    folder = Path("/work/shared/realdata/mnist")
    if not folder.is_dir():
        pytest.skip("no shared MNIST sample")
    for res in _script("mnist").RESOURCES:
        if (folder / res.filename).is_file():
            assert sha256_file(folder / res.filename) == res.sha256


def _cifar_tarball(tmp_path):
    write_cifar10(tmp_path / "src", per_batch=2)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return buf.getvalue()


def test_cifar10_script_downloads_verifies_unpacks_and_loads(tmp_path, capsys):
    blob = _cifar_tarball(tmp_path)
    sha = hashlib.sha256(blob).hexdigest()
    with serve({"c.tgz": blob}) as srv:
        code = _script("cifar10").main(["--dir", str(tmp_path / "out"), "--url", srv.url("c.tgz"),
                                        "--sha256", sha, "--quiet"])
    assert code == 0
    assert len(load_cifar10(tmp_path / "out" / "cifar-10-batches-py", "train")) == 10
    assert "CIFAR-10 ready" in capsys.readouterr().out


def test_cifar10_script_fails_on_the_pinned_hash_and_when_offline(tmp_path, capsys):
    blob = _cifar_tarball(tmp_path)
    with serve({"c.tgz": blob}) as srv:                             # a real-looking file that is not CIFAR-10
        assert _script("cifar10").main(["--dir", str(tmp_path / "out"), "--url", srv.url("c.tgz"), "--quiet"]) == 1
    assert "checksum mismatch" in capsys.readouterr().err
    assert not (tmp_path / "out" / "cifar-10-batches-py").exists()
    assert _script("cifar10").main(["--dir", str(tmp_path / "o2"), "--url", closed_port_url(), "--quiet"]) == 1
    assert "no network: use course_lib.data.glyphs() instead" in capsys.readouterr().err


def test_mnist_script_fetches_all_four_files_from_a_mirror(tmp_path):
    rng = np.random.default_rng(1)
    files = {}
    for prefix, n in (("train", 5), ("t10k", 3)):
        images = rng.integers(0, 255, (n, 28, 28)).astype(np.uint8)
        files[f"{prefix}-images-idx3-ubyte.gz"] = gzip.compress(idx_bytes(images))
        files[f"{prefix}-labels-idx1-ubyte.gz"] = gzip.compress(idx_bytes(rng.integers(0, 10, n).astype(np.uint8)))
    hashes = [f"--sha256={k}={hashlib.sha256(v).hexdigest()}" for k, v in files.items()]
    with serve(files) as srv:
        mirror = srv.url("")
        assert _script("mnist").main(["--dir", str(tmp_path), "--mirror", mirror, "--quiet", *hashes]) == 0
        # without overriding the pinned (official) hashes these files are rejected
        assert _script("mnist").main(["--dir", str(tmp_path / "b"), "--mirror", mirror, "--quiet"]) == 1


def test_tiny_nerf_script_requires_a_hash_then_succeeds(tmp_path, capsys):
    write_tiny_nerf(tmp_path / "t.npz", n=3)
    blob = (tmp_path / "t.npz").read_bytes()
    sha = hashlib.sha256(blob).hexdigest()
    out = tmp_path / "out"
    with serve({"tiny_nerf_data.npz": blob}) as srv:
        url = srv.url("tiny_nerf_data.npz")
        assert _script("tiny_nerf_lego").main(["--dir", str(out), "--url", url, "--quiet"]) == 1
        assert sha in capsys.readouterr().err
        assert _script("tiny_nerf_lego").main(["--dir", str(out), "--url", srv.url("tiny_nerf_data.npz"),
                                               "--sha256", sha, "--quiet"]) == 0
    assert "3 views" in capsys.readouterr().out


def test_nerf_synthetic_script_unpacks_only_the_lego_scene(tmp_path):
    write_blender_scene(tmp_path / "scene", n=2, size=16)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in (tmp_path / "scene").rglob("*"):
            if p.is_file():
                zf.write(p, "nerf_example_data/nerf_synthetic/lego/" + p.relative_to(tmp_path / "scene").as_posix())
        zf.writestr("nerf_example_data/nerf_llff_data/fern/x.txt", b"other scene")
    blob = buf.getvalue()
    with serve({"n.zip": blob}) as srv:
        code = _script("nerf_synthetic_lego").main(["--dir", str(tmp_path / "out"), "--url", srv.url("n.zip"),
                                                    "--sha256", hashlib.sha256(blob).hexdigest(), "--quiet"])
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "out" / "lego").iterdir()) == ["train", "transforms_train.json"]


def test_davis_script_unpacks_the_chosen_sequences(tmp_path):
    write_davis(tmp_path / "src", "blackswan", n=2)
    write_davis(tmp_path / "src", "judo", n=2)
    write_davis(tmp_path / "src", "other", n=2)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in (tmp_path / "src").rglob("*"):
            if p.is_file():
                zf.write(p, "DAVIS/" + p.relative_to(tmp_path / "src").as_posix())
    blob = buf.getvalue()
    sha = hashlib.sha256(blob).hexdigest()
    with serve({"d.zip": blob}) as srv:
        args = ["--dir", str(tmp_path / "out"), "--url", srv.url("d.zip"), "--sha256", sha, "--quiet"]
        assert _script("davis2017_subset").main(args + ["--sequences", "judo", "blackswan"]) == 0
        assert data_api.davis_sequences(tmp_path / "out" / "DAVIS") == ["blackswan", "judo"]
        assert _script("davis2017_subset").main(args + ["--sequences", "nope"]) == 1     # names a missing sequence


def test_scripts_reject_bad_usage_with_exit_code_2(tmp_path):
    with pytest.raises(SystemExit) as info:
        _script("mnist").main(["--dir", str(tmp_path), "--sha256", "0" * 64])   # ambiguous for four files
    assert info.value.code == 2


def test_pregenerate_fills_the_cache_once(tmp_path, capsys):
    module = _script("pregenerate")
    assert module.main(["--dir", str(tmp_path), "--quick"]) == 0
    files = sorted((tmp_path / "synthetic").iterdir())
    assert [f.name.split("-")[0] for f in files] == ["glyphs", "nerf_scene", "sprite_videos"]
    stamps = [f.stat().st_mtime_ns for f in files]
    assert module.main(["--dir", str(tmp_path), "--quick"]) == 0
    assert [f.stat().st_mtime_ns for f in files] == stamps
