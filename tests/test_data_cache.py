"""Does the synthetic-data cache return exactly what was generated, key on every parameter, write
atomically, and detect and repair a corrupted file?"""
import warnings
from pathlib import Path

import pytest
import torch

from course_lib.data import glyphs, sprite_videos
from course_lib.data import cache as cache_mod
from course_lib.data.cache import CacheWarning, cache_key, cache_path, cached, data_dir
from data_fixtures.common import isolated_data_dir, one_torch_thread  # noqa: F401  (autouse fixtures)


def _counting_build(counter, value=1.0):
    def build():
        counter.append(1)
        return {"x": torch.arange(6, dtype=torch.float32).reshape(2, 3) * value,
                "ids": torch.tensor([3, 1], dtype=torch.int64)}, {"names": ["a", "b"], "focal": 1.25}
    return build


def test_second_call_is_a_hit_with_identical_tensors(tmp_path):
    calls = []
    a, meta_a = cached("demo", 1, {"n": 2}, _counting_build(calls), directory=tmp_path)
    b, meta_b = cached("demo", 1, {"n": 2}, _counting_build(calls), directory=tmp_path)
    assert len(calls) == 1
    assert torch.equal(a["x"], b["x"]) and b["ids"].dtype == torch.int64 and torch.equal(a["ids"], b["ids"])
    assert meta_a == meta_b == {"names": ["a", "b"], "focal": 1.25}
    assert cache_path("demo", 1, {"n": 2}, tmp_path).is_file()


def test_generator_cache_hit_equals_fresh_generation(isolated_data_dir):
    first = glyphs(n=32, seed=5)
    files = list((isolated_data_dir / "synthetic").glob("glyphs-*.bin"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    again = glyphs(n=32, seed=5)
    fresh = glyphs(n=32, seed=5, cache=False)
    assert files[0].stat().st_mtime_ns == stamp                    # read, not rewritten
    for d in (again, fresh):
        assert torch.equal(first.images, d.images) and torch.equal(first.labels, d.labels)
        assert torch.equal(first.masks, d.masks) and first.classes == d.classes
        assert all(torch.equal(first.attributes[k], d.attributes[k]) for k in first.attributes)


def test_key_changes_with_every_parameter_name_and_version():
    base = cache_key("glyphs", 1, {"n": 10, "size": 32, "cfg": {"rot": 25.0}})
    assert base == cache_key("glyphs", 1, {"size": 32, "n": 10, "cfg": {"rot": 25.0}})   # order does not matter
    others = [
        cache_key("glyphs", 2, {"n": 10, "size": 32, "cfg": {"rot": 25.0}}),
        cache_key("sprites", 1, {"n": 10, "size": 32, "cfg": {"rot": 25.0}}),
        cache_key("glyphs", 1, {"n": 11, "size": 32, "cfg": {"rot": 25.0}}),
        cache_key("glyphs", 1, {"n": 10, "size": 32, "cfg": {"rot": 25.000001}}),
        cache_key("glyphs", 1, {"n": 10, "size": 32, "cfg": {"rot": 25.0}, "extra": None}),
    ]
    assert len({base, *others}) == 6


def test_different_parameters_get_different_files(isolated_data_dir):
    sprite_videos(n_videos=1, n_frames=2, size=16, seed=0)
    sprite_videos(n_videos=1, n_frames=2, size=16, seed=1)
    assert len(list((isolated_data_dir / "synthetic").glob("sprite_videos-*.bin"))) == 2


@pytest.mark.parametrize("damage", ["flip_byte", "truncate", "garbage"])
def test_corrupted_file_is_detected_and_regenerated(tmp_path, damage):
    calls = []
    good, _ = cached("demo", 1, {"n": 3}, _counting_build(calls), directory=tmp_path)
    path = cache_path("demo", 1, {"n": 3}, tmp_path)
    blob = bytearray(path.read_bytes())
    if damage == "flip_byte":
        blob[-10] ^= 0xFF
    elif damage == "truncate":
        blob = blob[: len(blob) // 2]
    else:
        blob = bytearray(b"not a cache file at all")
    path.write_bytes(bytes(blob))
    with pytest.warns(CacheWarning, match="regenerating demo"):
        again, _ = cached("demo", 1, {"n": 3}, _counting_build(calls), directory=tmp_path)
    assert len(calls) == 2 and torch.equal(good["x"], again["x"])
    with warnings.catch_warnings():                                  # the file was repaired: no warning now
        warnings.simplefilter("error")
        cached("demo", 1, {"n": 3}, _counting_build(calls), directory=tmp_path)
    assert len(calls) == 2


def test_interrupted_write_leaves_neither_file_nor_temp(tmp_path, monkeypatch):
    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(cache_mod.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        cache_mod.atomic_write_bytes(tmp_path / "sub" / "f.bin", b"payload")
    assert list((tmp_path / "sub").iterdir()) == []


def test_unwritable_cache_still_returns_data(tmp_path, monkeypatch):
    def boom(path, data):
        raise PermissionError("read-only")

    monkeypatch.setattr(cache_mod, "atomic_write_bytes", boom)
    with pytest.warns(CacheWarning, match="could not write"):
        out, _ = cached("demo", 1, {"n": 1}, _counting_build([]), directory=tmp_path)
    assert out["x"].shape == (2, 3)


def test_cache_false_touches_no_file(isolated_data_dir):
    glyphs(n=4, cache=False)
    assert not isolated_data_dir.exists()


def test_data_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "elsewhere"))
    assert data_dir() == tmp_path / "elsewhere"
    assert data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    monkeypatch.delenv("COURSE_DATA_DIR")
    assert data_dir() == Path.home() / ".cache" / "course_lib"


def test_generation_runs_on_one_thread_and_restores_the_thread_count(monkeypatch):
    seen = []
    real = cache_mod._build
    monkeypatch.setattr(cache_mod, "_build", lambda build: real(lambda: (seen.append(torch.get_num_threads()),
                                                                          build())[1]))
    torch.set_num_threads(2)                        # the autouse fixture restores the count afterwards
    sprite_videos(n_videos=1, n_frames=2, size=16, cache=False)
    assert seen == [1] and torch.get_num_threads() == 2


def test_parameters_must_be_json_like():
    with pytest.raises(TypeError, match="JSON-like"):
        cache_key("demo", 1, {"x": object()})
