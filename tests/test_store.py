"""The result store: format, atomic writes, corruption handling and the 1.0 interface."""

from __future__ import annotations

import errno
import json
import os
import pickle
import struct
import sys
import threading
import time
import types
from collections import OrderedDict
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
import xxhash

from checkpointing.config import defaults
from checkpointing.errors import CheckpointNotExist, ConfigurationError, CorruptEntryWarning
from checkpointing.store import (
    CACHEDIR_TAG,
    FORMAT_VERSION,
    CacheBase,
    EntryInfo,
    PickleFileCache,
    SynchronizedCache,
)


@pytest.fixture
def cache(tmp_path) -> PickleFileCache:
    return PickleFileCache(tmp_path / "cache")


def entry_files(cache: PickleFileCache) -> list:
    path = cache.entries_directory
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def payload_offsets(data: bytes) -> list:
    """(start, length) of the pickle and each buffer, decoded independently."""
    magic, version, header_length, _, _ = struct.unpack_from("<4sBIQ32s", data)
    pickle_size, count, _, _ = struct.unpack_from("<QII16s", data, 49)
    buffers = list(struct.unpack_from(f"<{count}Q", data, 81))
    header = json.loads(data[81 + 8 * count : 49 + header_length])
    assert header["pickle_size"] == pickle_size and header["buffers"] == buffers
    position, segments = 49 + header_length, []
    for length in [pickle_size, *buffers]:
        position += (-position) % 64
        segments.append((position, length))
        position += length
    assert position == len(data)
    return segments


# -- roundtrips ----------------------------------------------------------------------
class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


VALUES = [
    0,
    1,
    -(10**40),
    3.5,
    float("inf"),
    "text",
    "é\u2603",
    b"\x00bytes",
    None,
    True,
    (1, "a"),
    [1, [2, [3]]],
    {"a": 1, 2: "b"},
    {1, 2},
    frozenset({3}),
    OrderedDict(a=1),
    Decimal("1.10"),
    Fraction(1, 3),
    complex(1, 2),
    Point(1, 2),
    b"x" * 200_000,
    list(range(50_000)),
    bytearray(b"ba"),
]


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_roundtrip_of_various_objects(cache, protocol) -> None:
    cache = PickleFileCache(cache.directory, pickle_protocol=protocol)
    for i, value in enumerate(VALUES):
        cache.save(f"k{i}", value)
    for i, value in enumerate(VALUES):
        back = cache.retrieve(f"k{i}")
        assert back == value and type(back) is type(value)


def test_nan_and_nested_arrays(cache) -> None:
    value = {
        "nan": float("nan"),
        "arrays": [np.arange(5), np.ones((3, 4), order="F"), np.zeros(0), np.array(["a", "bc"])],
    }
    cache.save("k", value)
    back = cache.retrieve("k")
    assert back["nan"] != back["nan"]
    for a, b in zip(back["arrays"], value["arrays"]):
        assert np.array_equal(a, b) and a.dtype == b.dtype


def test_50mb_array_goes_out_of_band_aligned_and_comes_back_writable(cache) -> None:
    array = np.random.default_rng(0).random(50 * 1024 * 1024 // 8)
    small = np.arange(10, dtype=np.int16)
    cache.save("big", {"x": array, "small": small, "n": 3})
    meta = cache.read_metadata("big")
    assert meta["pickle_protocol"] == 5
    assert meta["buffers"] == [array.nbytes, small.nbytes]  # not in the pickle stream
    assert meta["pickle_size"] < 1000
    data = open(cache.path_of("big"), "rb").read()
    (_, _), (start, length), (start2, length2) = payload_offsets(data)
    assert start % 64 == 0 and start2 % 64 == 0
    assert data[start : start + length] == array.tobytes()
    back = cache.retrieve("big")
    assert np.array_equal(back["x"], array) and np.array_equal(back["small"], small)
    assert back["n"] == 3
    back["x"][0] = -1.0  # writable, like the stored array
    back["small"][0] = 7
    assert back["x"].ctypes.data % 8 == 0


def test_buffers_within_the_first_read_are_writable_too(cache) -> None:
    cache.save("k", np.arange(100))
    back = cache.retrieve("k")
    back[0] = 5
    assert back[0] == 5


@pytest.mark.parametrize("n", [8000, 8200, 16384, 65536, 200_000])
def test_sizes_around_the_first_read(cache, n) -> None:
    value = (np.arange(n, dtype=np.uint8), b"y" * n)
    cache.save("k", value)
    back = cache.retrieve("k")
    assert np.array_equal(back[0], value[0]) and back[1] == value[1]


def test_protocol_4_has_no_out_of_band_buffers(tmp_path) -> None:
    cache = PickleFileCache(tmp_path, pickle_protocol=4)
    array = np.arange(100_000)
    cache.save("k", array)
    assert np.array_equal(cache.retrieve("k"), array)
    meta = cache.read_metadata("k")
    assert meta["buffers"] == [] and meta["pickle_protocol"] == 4


def test_metadata_roundtrip(cache) -> None:
    metadata = {
        "function": "pkg.mod:f",
        "created": time.time(),
        "run_time": 1.25,
        "nested": {"a": [1, 2]},
        "odd": Point(1, 2),
        "size": "overridden",
    }
    cache.save_entry("k", [1, 2], metadata)
    meta = cache.read_metadata("k")
    for key in ("function", "created", "run_time", "nested"):
        assert meta[key] == metadata[key]
    assert isinstance(meta["odd"], str)  # not JSON: stored as its str
    assert meta["size"] == meta["pickle_size"] > 0  # the store's own keys win
    assert meta["context_id"] == "k"
    assert cache.retrieve("k") == [1, 2]
    cache.save("k", 3)  # save() replaces the metadata too
    assert "function" not in cache.read_metadata("k")
    with pytest.raises(CheckpointNotExist):
        cache.read_metadata("missing")


def test_large_metadata_header(cache) -> None:
    metadata = {"blob": "m" * 200_000}
    cache.save_entry("k", 1, metadata)
    assert cache.read_metadata("k")["blob"] == metadata["blob"]
    assert cache.retrieve("k") == 1


# -- the 1.0 interface ----------------------------------------------------------------------
class DictCache(CacheBase):
    def __init__(self) -> None:
        self.results: dict = {}

    def save(self, context_id, result) -> None:
        self.results[context_id] = result

    def retrieve(self, context_id):
        try:
            return self.results[context_id]
        except KeyError:
            raise CheckpointNotExist(context_id) from None


class CountingLock:
    def __init__(self) -> None:
        self.enters = 0
        self.held = False

    def __enter__(self):
        assert not self.held
        self.enters += 1
        self.held = True
        return self

    def __exit__(self, *exc):
        self.held = False
        return False


def test_dict_backed_subclass_with_only_save_and_retrieve() -> None:
    cache = DictCache()
    with pytest.raises(CheckpointNotExist):
        cache.retrieve("k")
    cache.save_entry("k", 1, {"function": "f"})  # the metadata is dropped
    assert cache.retrieve("k") == 1
    with pytest.raises(CheckpointNotExist):
        cache.read_metadata("k")
    with pytest.raises(TypeError):
        CacheBase()  # type: ignore[abstract]


def test_synchronize_with_takes_the_lock_on_every_access(cache) -> None:
    for inner in (DictCache(), cache):
        lock = CountingLock()
        synced = inner.synchronize_with(lock)
        assert isinstance(synced, SynchronizedCache) and isinstance(synced, CacheBase)
        synced.save("a", 1)
        synced.save_entry("b", 2, {"function": "f"})
        assert synced.retrieve("a") == 1 and synced.retrieve("b") == 2
        assert lock.enters == 4 and not lock.held
        with pytest.raises(CheckpointNotExist):
            synced.retrieve("missing")
        assert lock.enters == 5 and not lock.held
        if inner is cache:
            assert synced.read_metadata("b")["function"] == "f"
            assert lock.enters == 6


def test_synchronize_with_a_real_lock_across_threads(cache) -> None:
    synced = cache.synchronize_with(threading.Lock())
    threads = [threading.Thread(target=synced.save, args=(f"k{i}", i)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [synced.retrieve(f"k{i}") for i in range(8)] == list(range(8))


# -- corruption ----------------------------------------------------------------------
def assert_warned_miss(cache: PickleFileCache, context_id: str, match: str = "") -> None:
    path = cache.path_of(context_id)
    with pytest.warns(CorruptEntryWarning) as record:
        with pytest.raises(CheckpointNotExist):
            cache.retrieve(context_id)
    messages = [str(w.message) for w in record if w.category is CorruptEntryWarning]
    assert len(messages) == 1 and path in messages[0], messages
    assert "recomputed" in messages[0] and match in messages[0], messages


@pytest.mark.parametrize(
    "value",
    [{"value": list(range(100))}, {"array": np.arange(30_000), "tail": "t" * 100}],
    ids=["small", "larger-than-first-read"],
)
def test_truncated_anywhere_is_a_warned_miss(cache, value) -> None:
    cache.save("k", value)
    path = cache.path_of("k")
    good = open(path, "rb").read()
    segments = payload_offsets(good)
    cuts = {
        0,
        1,
        3,
        4,
        5,
        9,
        16,
        17,
        18,
        30,
        segments[0][0] - 1,
        segments[0][0],
        segments[0][0] + 5,
        len(good) // 2,
        len(good) - 64,
        len(good) - 1,
    }
    for cut in sorted(c for c in cuts if 0 <= c < len(good)):
        with open(path, "wb") as handle:
            handle.write(good[:cut])
        assert_warned_miss(cache, "k")
    with open(path, "wb") as handle:
        handle.write(good)
    back = cache.retrieve("k")  # and the intact file is still fine
    assert back.keys() == value.keys()


def write_variant(cache: PickleFileCache, context_id: str, data: bytes) -> None:
    with open(cache.path_of(context_id), "wb") as handle:
        handle.write(data)


def test_flipped_bytes_are_caught_by_the_checksum(cache) -> None:
    for value in ({"v": list(range(100))}, np.arange(100_000)):
        cache.save("k", value)
        good = open(cache.path_of("k"), "rb").read()
        for position in (len(good) - 1, len(good) // 2, payload_offsets(good)[0][0]):
            flipped = bytearray(good)
            flipped[position] ^= 0x01
            write_variant(cache, "k", bytes(flipped))
            assert_warned_miss(cache, "k", "checksum")


def test_foreign_empty_future_and_padded_files(cache) -> None:
    cache.save("k", 1)
    good = open(cache.path_of("k"), "rb").read()
    future = bytearray(good)
    future[4] = FORMAT_VERSION + 1
    garbled_header = bytearray(good)
    garbled_header[50] = 0xFF
    cases = [
        (b"hello", "truncated"),
        (b"hello, I am not a checkpoint at all, nor anything like one", "magic"),
        (b"", "empty"),
        (bytes(future), f"format {FORMAT_VERSION + 1}"),
        (good + b"\x00", "after the end"),
        (bytes(garbled_header), "header"),
        (pickle.dumps(1), ""),
    ]
    for data, reason in cases:
        write_variant(cache, "k", data)
        assert_warned_miss(cache, "k", reason)
        with pytest.raises(CheckpointNotExist):
            cache.read_metadata("k") if reason != "after the end" else cache.read_metadata("x")
    cache.save("k", 2)  # the next save replaces a broken entry
    assert cache.retrieve("k") == 2


def test_header_lying_about_sizes_is_a_miss(cache) -> None:
    cache.save("k", np.arange(100_000))
    good = open(cache.path_of("k"), "rb").read()
    header_length = struct.unpack_from("<I", good, 5)[0]
    pickle_size, count, flags, key = struct.unpack_from("<QII16s", good, 49)
    metadata = good[81 + 8 * count : 49 + header_length]
    rest = good[49 + header_length :]
    for lengths in ([10**15], [2**64 - 1], [], [1, 2]):
        body = (
            struct.pack("<QII16s", pickle_size, len(lengths), flags, key)
            + b"".join(struct.pack("<Q", n) for n in lengths)
            + metadata
        )
        checksum = xxhash.xxh3_64_intdigest(body + rest)
        data = (
            struct.pack("<4sBIQ32s", b"CKPT", FORMAT_VERSION, len(body), checksum, bytes(32))
            + body
            + rest
        )
        write_variant(cache, "k", data)
        assert_warned_miss(cache, "k")


def test_an_entry_whose_class_is_gone_is_a_warned_miss(cache) -> None:
    module = types.ModuleType("ckpt_vanishing_module")

    class Gone:
        pass

    Gone.__module__ = module.__name__
    Gone.__qualname__ = "Gone"
    module.Gone = Gone
    sys.modules[module.__name__] = module
    try:
        cache.save("k", Gone())
        del module.Gone  # renamed: AttributeError on load
        assert_warned_miss(cache, "k", "AttributeError")
    finally:
        del sys.modules[module.__name__]
    assert_warned_miss(cache, "k", "ModuleNotFoundError")  # module removed
    assert os.path.exists(cache.path_of("k"))  # not deleted by a read


# -- failures while saving ----------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [lambda: 1, threading.Lock(), (1, threading.Lock())],
    ids=["lambda", "lock", "nested-lock"],
)
def test_unpicklable_result_raises_and_leaves_no_file(cache, value) -> None:
    with pytest.raises((TypeError, pickle.PicklingError, AttributeError)):
        cache.save("k", value)
    assert not os.path.exists(cache.directory)  # nothing at all was touched
    cache.save("k", "old")
    with pytest.raises((TypeError, pickle.PicklingError, AttributeError)):
        cache.save("k", value)
    assert entry_files(cache) == [os.path.basename(cache.path_of("k"))]
    assert cache.retrieve("k") == "old"


@pytest.mark.parametrize("target", ["fsync", "replace", "write"])
def test_failing_write_keeps_old_entry_and_leaves_no_temp_file(cache, monkeypatch, target) -> None:
    cache.save("k", "old")

    def fail(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, target, fail)
    with pytest.raises(OSError) as info:
        cache.save("k", "new" * 100_000)
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert entry_files(cache) == [os.path.basename(cache.path_of("k"))]
    assert cache.retrieve("k") == "old"


def test_read_only_directory_fails_cleanly(cache, monkeypatch) -> None:
    cache.save("k", "old")
    if os.geteuid() == 0:  # root ignores permission bits: simulate them
        real_open = os.open

        def denied(path, flags, *args, **kwargs):
            if flags & os.O_CREAT:
                raise PermissionError(errno.EACCES, "Permission denied", path)
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", denied)
        with pytest.raises(PermissionError):
            cache.save("k", "new")
        monkeypatch.undo()
    else:
        os.chmod(cache.entries_directory, 0o500)
        try:
            with pytest.raises(PermissionError):
                cache.save("k", "new")
        finally:
            os.chmod(cache.entries_directory, 0o700)
    assert entry_files(cache) == [os.path.basename(cache.path_of("k"))]
    assert cache.retrieve("k") == "old"


def test_entries_directory_removed_after_first_save(cache) -> None:
    cache.save("k", 1)
    import shutil

    shutil.rmtree(cache.directory)
    cache.save("k", 2)
    assert cache.retrieve("k") == 2
    assert os.path.exists(os.path.join(cache.directory, "CACHEDIR.TAG"))


# -- directory ----------------------------------------------------------------------
def test_construction_creates_nothing_and_first_save_creates_markers(tmp_path) -> None:
    root = tmp_path / "c"
    cache = PickleFileCache(root)
    assert cache.directory == str(root) and cache.pickle_protocol == 5
    with pytest.raises(CheckpointNotExist):
        cache.retrieve("k")
    assert list(cache.iter_entries()) == [] and cache.clear() == 0
    assert not cache.delete("k")
    assert not root.exists()
    cache.save("k", 1)
    assert (root / "CACHEDIR.TAG").read_text() == CACHEDIR_TAG
    assert CACHEDIR_TAG.startswith("Signature: 8a477f597d28d172789f06886806bc55\n")
    assert (root / ".gitignore").read_text() == "*\n"
    assert sorted(os.listdir(root)) == [".gitignore", "CACHEDIR.TAG", "entries"]


def test_existing_marker_files_are_not_overwritten(tmp_path) -> None:
    (tmp_path / ".gitignore").write_text("mine\n")
    (tmp_path / "CACHEDIR.TAG").write_text("theirs\n")
    PickleFileCache(tmp_path).save("k", 1)
    assert (tmp_path / ".gitignore").read_text() == "mine\n"
    assert (tmp_path / "CACHEDIR.TAG").read_text() == "theirs\n"


def test_directory_is_absolute_from_construction(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cache = PickleFileCache("rel")
    assert cache.directory == os.path.join(str(tmp_path), "rel")
    monkeypatch.chdir(tmp_path.parent)
    cache.save("k", 1)
    assert (tmp_path / "rel" / "entries").is_dir()
    assert cache.retrieve("k") == 1


def test_defaults_are_read_at_construction(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(defaults, "cache.filesystem.directory", "from-defaults")
    monkeypatch.setitem(defaults, "cache.pickle_protocol", 4)
    cache = PickleFileCache()
    monkeypatch.setitem(defaults, "cache.filesystem.directory", "later")
    assert cache.directory == str(tmp_path / "from-defaults")
    assert cache.pickle_protocol == 4
    with pytest.raises(ConfigurationError):
        PickleFileCache(tmp_path, pickle_protocol=99)
    with pytest.raises(ConfigurationError):
        PickleFileCache(b"bytes")  # type: ignore[arg-type]


# -- keys ----------------------------------------------------------------------
def test_safe_ids_are_file_names_and_others_are_mapped(cache) -> None:
    for context_id in ("abc", "0f3e" * 16, "a.b_c-d", "-x", "x" * 200):
        assert os.path.basename(cache.path_of(context_id)) == context_id + ".ckpt"
    odd = [
        "f(1, 2)",
        "../../etc/passwd",
        ".hidden",
        "a/b\\c",
        "é" * 300,
        "x" * 201,
        "Key",
        "key ",
        "con",
        "NUL.txt",
        "\udcff",
        ".",
        "..",
    ]
    paths = set()
    for context_id in odd:
        path = cache.path_of(context_id)
        name = os.path.basename(path)
        assert os.path.dirname(path) == cache.entries_directory
        assert not name.startswith(".") and len(name) < 120
        assert all(c.isascii() and (c.isalnum() or c in "._-") for c in name)
        paths.add(path)
        cache.save(context_id, context_id)
        assert cache.retrieve(context_id) == context_id
    assert len(paths) == len(odd)
    assert cache.path_of("f(1, 2)") != cache.path_of("f(1,_2)")
    assert cache.path_of("Key") != cache.path_of("key")  # case-insensitive file systems
    assert os.path.basename(cache.path_of("f(1, 2)")).startswith("f_1__2_-")
    assert {info.context_id for info in cache.iter_entries()} == set(odd)


@pytest.mark.parametrize("bad", ["", None, 3, b"k"])
def test_invalid_ids_are_rejected(cache, bad) -> None:
    with pytest.raises(ValueError, match="non-empty str"):
        cache.save(bad, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty str"):
        cache.retrieve(bad)  # type: ignore[arg-type]
    assert not os.path.exists(cache.directory)


# -- maintenance ----------------------------------------------------------------------
def test_iter_entries_delete_and_clear(cache) -> None:
    for i in range(3):
        cache.save_entry(f"k{i}", i, {"function": "m:f", "i": i})
    cache.save("odd id", "x")
    infos = list(cache.iter_entries())
    assert all(isinstance(info, EntryInfo) for info in infos)
    by_id = {info.context_id: info for info in infos}
    assert set(by_id) == {"k0", "k1", "k2", "odd id"}
    assert by_id["k1"].metadata["i"] == 1 and by_id["k1"].path == cache.path_of("k1")
    assert by_id["k1"].size == os.path.getsize(cache.path_of("k1"))
    with pytest.raises(Exception):
        by_id["k1"].size = 0  # type: ignore[misc]  # frozen

    # a broken entry is not listed but is cleared
    write_variant(cache, "k2", b"garbage")
    assert {info.context_id for info in cache.iter_entries()} == {"k0", "k1", "odd id"}

    assert cache.delete("k0") and not cache.delete("k0")
    with pytest.raises(CheckpointNotExist):
        cache.retrieve("k0")

    entries = cache.entries_directory
    stray = os.path.join(entries, "notes.txt")
    open(stray, "w").close()
    old_temp = os.path.join(entries, ".tmp-crashed.ckpt")
    fresh_temp = os.path.join(entries, ".tmp-writing.ckpt")
    for path in (old_temp, fresh_temp):
        open(path, "wb").close()
    two_hours_ago = time.time() - 7200
    os.utime(old_temp, (two_hours_ago, two_hours_ago))
    outside = os.path.join(cache.directory, "other.ckpt")
    open(outside, "w").close()

    assert cache.clear() == 3  # k1, k2 and odd id
    assert entry_files(cache) == [".tmp-writing.ckpt", "notes.txt"]
    assert os.path.exists(outside)
    assert list(cache.iter_entries()) == []
    assert cache.clear() == 0


def test_concurrent_writers_never_produce_a_torn_entry(cache) -> None:
    payloads = [np.full(100_000, i) for i in range(6)]

    def writer(p):
        for _ in range(4):
            cache.save("shared", p)

    threads = [threading.Thread(target=writer, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(40):
            try:
                back = cache.retrieve("shared")
            except CheckpointNotExist:
                continue
            assert any(np.array_equal(back, p) for p in payloads)
    for t in threads:
        t.join()
    assert [n for n in entry_files(cache) if n.startswith(".tmp-")] == []


# -- cost of a hit ----------------------------------------------------------------------
def test_a_small_hit_is_one_open_one_fstat_and_one_read(cache, monkeypatch) -> None:
    cache.save("k", 42)
    cache.save("big", np.arange(100_000))
    assert cache.retrieve("k") == 42  # the folders' ownership is checked once
    calls: list = []
    for name in ("open", "read", "fstat", "stat", "lstat", "readinto"):
        real = getattr(os, name, None)
        if real is None:
            continue

        def counting(*args, _name=name, _real=real, **kwargs):
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(os, name, counting)
    assert cache.retrieve("k") == 42
    assert calls == ["open", "fstat", "read"]
    calls.clear()
    cache.retrieve("big")
    assert calls[:3] == ["open", "fstat", "read"] and len(calls) <= 6
