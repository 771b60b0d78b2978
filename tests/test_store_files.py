"""The local store never loses a result and never serves a broken entry."""

from __future__ import annotations

import errno
import os
import threading
import warnings

import numpy as np
import pytest

from checkpointing import CheckpointNotExist, CorruptEntryWarning, PickleFileCache
from checkpointing.store import CACHEDIR_TAG, FORMAT_VERSION, CacheBase


@pytest.fixture
def cache(tmp_path) -> PickleFileCache:
    return PickleFileCache(tmp_path / "cache")


def files_in(cache: PickleFileCache) -> list:
    path = cache.entries_directory
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def test_roundtrip_with_metadata(cache) -> None:
    value = {"a": [1, 2.5, None], "b": b"bytes", "c": {1, 2}}
    cache.save_entry("k1", value, {"function": "m:f", "run_seconds": 1.5})
    assert cache.retrieve("k1") == value
    meta = cache.read_metadata("k1")
    assert meta["function"] == "m:f" and meta["run_seconds"] == 1.5
    assert meta["size"] > 0 and meta["pickle_protocol"] == 5
    (info,) = list(cache.iter_entries())
    assert info.context_id == "k1" and info.metadata["function"] == "m:f"


def test_large_arrays_travel_out_of_band_and_come_back_writable(cache) -> None:
    array = np.random.default_rng(1).random(50 * 1024 * 1024 // 8)
    cache.save("big", {"x": array, "n": 3})
    meta = cache.read_metadata("big")
    assert meta["buffers"] == [array.nbytes]  # not copied into the pickle stream
    back = cache.retrieve("big")
    assert np.array_equal(back["x"], array)
    back["x"][0] = -1.0  # writable, like the array that was stored


def test_protocol_4_roundtrip(tmp_path) -> None:
    cache = PickleFileCache(tmp_path, pickle_protocol=4)
    cache.save("k", np.arange(10))
    assert np.array_equal(cache.retrieve("k"), np.arange(10))
    assert cache.read_metadata("k")["buffers"] == []


def test_nothing_is_created_before_the_first_save(tmp_path) -> None:
    cache = PickleFileCache(tmp_path / "c")
    with pytest.raises(CheckpointNotExist):
        cache.retrieve("k")
    assert not (tmp_path / "c").exists()
    cache.save("k", 1)
    assert (tmp_path / "c" / "CACHEDIR.TAG").read_text() == CACHEDIR_TAG
    assert (tmp_path / "c" / ".gitignore").read_text() == "*\n"


def test_directory_is_absolute_at_construction(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cache = PickleFileCache("rel")
    monkeypatch.chdir(tmp_path.parent)
    cache.save("k", 1)
    assert (tmp_path / "rel" / "entries").is_dir()


def corrupt_variants(data: bytes):
    for cut in (0, 3, 10, 17, 25, len(data) // 2, len(data) - 1):
        yield f"truncated-at-{cut}", data[:cut]
    flipped = bytearray(data)
    flipped[-5] ^= 0xFF
    yield "flipped-payload-byte", bytes(flipped)
    yield "foreign-file", b"hello, I am not a checkpoint"
    yield "empty-file", b""
    future = bytearray(data)
    future[4] = FORMAT_VERSION + 1
    yield "future-format", bytes(future)
    bad_header = bytearray(data)
    bad_header[18] ^= 0xFF
    yield "garbled-header", bytes(bad_header)


def test_every_kind_of_broken_entry_is_a_warned_miss(cache) -> None:
    cache.save("k", {"value": list(range(100))})
    path = cache.path_of("k")
    good = open(path, "rb").read()
    for name, data in corrupt_variants(good):
        with open(path, "wb") as handle:
            handle.write(data)
        with pytest.warns(CorruptEntryWarning, match=os.path.basename(path)):
            with pytest.raises(CheckpointNotExist):
                cache.retrieve("k")
        # the next save replaces it
        cache.save("k", name)
        assert cache.retrieve("k") == name


def test_an_entry_that_cannot_be_rebuilt_is_a_miss(cache) -> None:
    # Like a stored object whose class was since removed or renamed.
    cache.save_entry("k", _Unloadable(), {})
    with pytest.warns(CorruptEntryWarning, match="unpickling failed"):
        with pytest.raises(CheckpointNotExist):
            cache.retrieve("k")


class _Unloadable:
    def __reduce__(self):
        return (_explode, ())


def _explode():
    raise RuntimeError("cannot be rebuilt")


def test_unpicklable_result_raises_before_touching_any_file(cache) -> None:
    cache.save("k", "old")
    with pytest.raises(TypeError):
        cache.save("k", threading.Lock())
    assert cache.retrieve("k") == "old"
    assert [n for n in files_in(cache) if n.startswith(".tmp-")] == []


@pytest.mark.parametrize("target", ["fsync", "replace"])
def test_failing_write_leaves_old_entry_and_no_temp_file(cache, monkeypatch, target) -> None:
    cache.save("k", "old")

    def fail(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, target, fail)
    with pytest.raises(OSError, match="No space"):
        cache.save("k", "new")
    monkeypatch.undo()
    assert cache.retrieve("k") == "old"
    assert files_in(cache) == [os.path.basename(cache.path_of("k"))]


def test_read_only_directory_fails_cleanly(cache, monkeypatch) -> None:
    cache.save("k", "old")
    if os.geteuid() == 0:
        # root ignores permission bits: simulate what a read-only directory does.
        import tempfile

        def denied(*args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied")

        monkeypatch.setattr(tempfile, "mkstemp", denied)
        with pytest.raises(PermissionError):
            cache.save("k", "new")
    else:
        os.chmod(cache.entries_directory, 0o500)
        try:
            with pytest.raises(PermissionError):
                cache.save("k", "new")
        finally:
            os.chmod(cache.entries_directory, 0o700)
    assert cache.retrieve("k") == "old"


def test_any_identifier_string_maps_to_a_safe_file(cache) -> None:
    for context_id in ("f(1, 2)", "../../etc/passwd", ".hidden", "a/b\\c", "é" * 300):
        cache.save(context_id, context_id)
        assert cache.retrieve(context_id) == context_id
        path = cache.path_of(context_id)
        assert os.path.dirname(path) == cache.entries_directory
        assert not os.path.basename(path).startswith(".")
    assert cache.path_of("f(1, 2)") != cache.path_of("f(1,_2)")
    for bad in ("", None, 3):
        with pytest.raises(ValueError, match="non-empty str"):
            cache.path_of(bad)  # type: ignore[arg-type]


def test_delete_and_clear(cache) -> None:
    for i in range(3):
        cache.save(f"k{i}", i)
    assert cache.delete("k0") and not cache.delete("k0")
    stray = os.path.join(cache.entries_directory, "notes.txt")
    open(stray, "w").close()
    assert cache.clear() == 2
    assert files_in(cache) == ["notes.txt"]


def test_minimal_custom_cache_gets_metadata_defaults() -> None:
    class Mem(CacheBase):
        def __init__(self):
            self.d = {}

        def save(self, context_id, result):
            self.d[context_id] = result

        def retrieve(self, context_id):
            try:
                return self.d[context_id]
            except KeyError:
                raise CheckpointNotExist(context_id) from None

    mem = Mem()
    mem.save_entry("k", 1, {"function": "f"})
    assert mem.retrieve("k") == 1
    with pytest.raises(CheckpointNotExist):
        mem.read_metadata("k")

    entered = []

    class CountingLock:
        def __enter__(self):
            entered.append(1)

        def __exit__(self, *exc):
            return False

    synced = mem.synchronize_with(CountingLock())
    synced.save("j", 2)
    assert synced.retrieve("j") == 2 and len(entered) == 2


def test_concurrent_writers_never_produce_a_torn_entry(cache) -> None:
    payloads = [list(range(i, i + 20000)) for i in range(8)]

    def writer(p):
        for _ in range(5):
            cache.save("shared", p)

    threads = [threading.Thread(target=writer, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(50):
            try:
                assert cache.retrieve("shared") in payloads
            except CheckpointNotExist:
                pass
    for t in threads:
        t.join()
    assert cache.retrieve("shared") in payloads
