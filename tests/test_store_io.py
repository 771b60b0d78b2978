"""The read and write paths of the local store (issue 12): entries streamed to disk
with their checksum computed in the same pass, and byte for byte the format they
always had; big payloads read into their final memory; the durability policy; the
memory tier; histories appended, never rewritten, by concurrent writers.

Speed itself is measured by ``benchmarks/suite.py``; these tests pin down behaviour.
"""

from __future__ import annotations

import json
import os
import pickle
import stat
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from checkpointing import store
from checkpointing.config import defaults
from checkpointing.errors import CheckpointNotExist, CorruptEntryWarning, UntrustedEntryWarning
from checkpointing.store import PickleFileCache, history
from checkpointing.store.tier import file_identity

SRC = str(Path(store.__file__).resolve().parents[2])


@pytest.fixture
def cache(tmp_path) -> PickleFileCache:
    store.MEMORY.clear()
    yield PickleFileCache(tmp_path / "cache")
    store.MEMORY.clear()


def file_bytes(cache: PickleFileCache, key: str) -> bytes:
    return Path(cache.path_of(key)).read_bytes()


# -- the format: unchanged, written in one pass -----------------------------------------
VALUES = {
    "small": {"a": 1, "b": [1.5, None, "x"]},
    "in band, 200 KB": b"x" * 200_000,
    "out of band, several slices": np.arange(3 * (1 << 20), dtype=np.int64),  # 24 MiB
    "several buffers and padding": [np.ones(1000), np.zeros(3 << 18, dtype=np.uint8), "s"],
}


@pytest.mark.parametrize("name", list(VALUES))
@pytest.mark.parametrize("secret", [None, b"team secret"])
def test_a_saved_file_is_the_reference_serialization_byte_for_byte(tmp_path, name, secret):
    """Streaming (checksum and signature computed while writing, prefix written last)
    changes nothing in the file: format 3 as :func:`_serialize` lays it out, which
    earlier versions wrote and read."""
    cache = PickleFileCache(tmp_path / "c", secret=secret)
    metadata = {"function": "m:f", "run_seconds": 0.01, "checks": {"files": [["a", 1]]}}
    cache.save_entry("k", VALUES[name], metadata)
    expected = b"".join(
        bytes(chunk) for chunk in store._serialize("k", VALUES[name], metadata, 5, secret)
    )
    assert file_bytes(cache, "k") == expected
    store.MEMORY.clear()
    value, checks = PickleFileCache(tmp_path / "c", secret=secret).retrieve_entry("k")
    assert checks == {"files": [["a", 1]]}
    assert pickle.dumps(value) == pickle.dumps(VALUES[name])


def test_an_entry_written_by_the_earlier_writer_is_read(cache):
    """A file laid out by the reference serializer (as the previous version's save did,
    chunk after chunk) reads back: the format did not change."""
    cache.save("k", 0)  # creates the folders
    value = {"array": np.arange(1 << 20), "text": "t"}
    chunks = store._serialize("k", value, {}, 5, None)
    store._atomic_write(cache.entries_directory, cache.path_of("k"), chunks)
    store.MEMORY.clear()
    back = cache.retrieve("k")
    assert np.array_equal(back["array"], value["array"]) and back["text"] == "t"


def test_a_big_payload_is_read_into_writable_memory_of_its_own(cache):
    array = np.arange(2 << 20, dtype=np.float64)  # 16 MiB: fresh pages, not a bytearray
    cache.save("k", array)
    store.MEMORY.clear()
    back = cache.retrieve("k")
    assert np.array_equal(back, array) and back.flags.writeable
    back[0] = -1  # the caller owns it
    assert cache.retrieve("k")[0] == 0


@pytest.mark.parametrize("where", ["in a slice", "in the padding", "last byte"])
def test_a_damaged_big_entry_is_a_warned_miss(cache, where):
    cache.save("k", [np.ones(3 << 20), np.ones(5)])
    store.MEMORY.clear()
    path = cache.path_of("k")
    data = bytearray(Path(path).read_bytes())
    header_end = store._PREFIX.size + store._PREFIX.unpack_from(data)[2]
    position = {
        "in a slice": len(data) // 2 + 12345,
        "in the padding": header_end + 1,  # between the header and the pickle
        "last byte": len(data) - 1,
    }[where]
    data[position] ^= 0x01
    Path(path).write_bytes(bytes(data))
    with pytest.warns(CorruptEntryWarning, match="checksum"):
        with pytest.raises(CheckpointNotExist):
            cache.retrieve("k")


def test_a_big_entry_is_checksummed_beside_its_reads_and_damage_is_still_found(cache, monkeypatch):
    """An entry of 16 MiB or more is hashed by a helper thread while the next slice is
    read (as a save hashes beside its writes); the checksum is compared once every
    slice is hashed, so a damaged byte is still a warned miss. A smaller entry is hashed
    in the reading thread."""
    from checkpointing.store import format as entry_format

    made: list = []

    class Counting(entry_format._HashBehind):
        def __init__(self, update):
            made.append(self)
            super().__init__(update)

    monkeypatch.setattr(entry_format, "_HashBehind", Counting)
    big, small = np.arange(3 << 20, dtype=np.float64), np.arange(1 << 20, dtype=np.float64)
    cache.save("big", big)
    cache.save("small", small)
    store.MEMORY.clear()
    assert np.array_equal(cache.retrieve("big"), big) and len(made) == 1
    assert np.array_equal(cache.retrieve("small"), small) and len(made) == 1
    store.MEMORY.clear()
    path = cache.path_of("big")
    data = bytearray(Path(path).read_bytes())
    data[len(data) // 3] ^= 0x10
    Path(path).write_bytes(bytes(data))
    with pytest.warns(CorruptEntryWarning, match="checksum"):
        with pytest.raises(CheckpointNotExist):
            cache.retrieve("big")
    assert len(made) == 2


# -- durability --------------------------------------------------------------------------
def count_fsyncs(monkeypatch) -> list:
    calls: list = []
    real = os.fsync

    def counting(fd):
        calls.append(fd)
        return real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    return calls


@pytest.mark.parametrize(
    "policy, run_seconds, synced",
    [
        ("auto", 0.01, False),  # a quick call: a lost entry is a cheap re-run
        ("auto", None, False),  # save() without a run time (1.0's API)
        ("auto", store.FSYNC_AFTER_SECONDS, True),
        ("auto", 30.0, True),
        ("always", 0.0, True),
        ("never", 3600.0, False),
    ],
)
def test_the_durability_policy(cache, monkeypatch, policy, run_seconds, synced):
    monkeypatch.setitem(defaults, "cache.durability", policy)
    cache.save("warm-up", 0)  # folders and markers
    calls = count_fsyncs(monkeypatch)
    metadata = {} if run_seconds is None else {"run_seconds": run_seconds}
    cache.save_entry("k", list(range(100)), metadata)
    # The entry, then its folder (so that the rename survives a power cut too).
    assert len(calls) == (2 if synced else 0)
    assert cache.retrieve("k") == list(range(100))


def test_a_history_append_is_never_fsynced(cache, monkeypatch):
    monkeypatch.setitem(defaults, "cache.durability", "always")
    cache.save("k", 1)
    calls = count_fsyncs(monkeypatch)
    cache.record_history("m:f", {"key": "k"})
    assert calls == []


# -- the memory tier -----------------------------------------------------------------------
def count_opens(monkeypatch) -> list:
    calls: list = []
    real = os.open

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(os, "open", counting)
    return calls


def test_a_save_does_not_vouch_for_folders_no_read_has_checked(cache, monkeypatch):
    """Only a read checks the folders (once per cache object); a save's bytes are
    remembered only after that, so a folder opened to others between a save and the
    first read is still seen by that read (tests/faults/test_malicious.py)."""
    cache.save("k", 1)
    opens = count_opens(monkeypatch)
    assert cache.retrieve("k") == 1
    assert opens  # read from the file


def test_a_repeated_hit_is_one_lstat_and_a_fresh_copy(cache, monkeypatch):
    value = {"list": [1, 2, 3], "array": np.arange(10)}
    cache.save("k", value)
    first = cache.retrieve("k")
    opens = count_opens(monkeypatch)
    second = cache.retrieve("k")
    assert opens == []  # from memory
    assert second is not first and second["list"] is not first["list"]
    second["list"].append(4)
    second["array"][0] = 99  # its buffer is a copy too
    third = cache.retrieve("k")
    assert third["list"] == [1, 2, 3] and third["array"][0] == 0


def test_a_save_is_remembered_but_not_the_callers_object(cache, monkeypatch):
    cache.save("first", 0)
    assert cache.retrieve("first") == 0  # a read checks the folders: saves are kept since
    array = np.zeros(10)
    cache.save("k", array)
    array[0] = 1  # the caller keeps using its array after saving it
    opens = count_opens(monkeypatch)
    back = cache.retrieve("k")
    assert opens == [] and back[0] == 0


def test_a_save_stats_its_file_only_for_the_memory_tier(cache, monkeypatch):
    """The ``fstat`` after the rename is what the memory tier validates a later hit
    against: a process that has not read an entry of this cache (the tier takes none
    of its saves, see above) does not make it; once a read checked the folders, it
    does, and the saved entry is then served from memory."""
    cache.save("first", 0)  # (the first save writes the cache's marker files)
    calls: list = []
    real = os.fstat
    monkeypatch.setattr(os, "fstat", lambda fd: calls.append(fd) or real(fd))
    cache.save("a", 1)
    assert calls == []
    assert cache.retrieve("a") == 1  # (a read fstats what it opened)
    calls.clear()
    cache.save("b", 2)
    assert len(calls) == 1
    # What the tier records (its own copy of file_identity, for speed) is what the
    # store's read compares an lstat with (another copy): the one definition.
    path = cache.path_of("b")
    assert store.MEMORY.entries[path].identity == file_identity(os.lstat(path))
    opens = count_opens(monkeypatch)
    assert cache.retrieve("b") == 2 and opens == []


def test_a_small_entry_whose_temporary_file_a_cleaner_removed_is_written_again(cache, monkeypatch):
    """A small entry's temporary file is not locked (it lives microseconds; a cleaner
    takes one for a leftover at a minute old): should one be removed under a writer
    stopped that long, the rename fails and the save writes it again."""
    cache.save("first", 0)
    real, removed = os.replace, []

    def cleaner_first(source, target, **kwargs):
        if not removed and os.path.basename(source).startswith(".tmp-"):
            os.remove(source)  # what remove_stale_temporaries would do
            removed.append(source)
        return real(source, target, **kwargs)

    monkeypatch.setattr(os, "replace", cleaner_first)
    cache.save("k", {"small": 1})
    assert removed and not os.path.exists(removed[0])
    assert cache.retrieve("k") == {"small": 1}
    assert cache.temporaries() == []


REPLACE = """
import sys
sys.path.insert(0, {src!r})
from checkpointing.store import PickleFileCache
PickleFileCache({directory!r}).save("k", {value!r})
"""


def test_an_entry_replaced_by_another_process_is_read_again(cache):
    cache.save("k", "old")
    assert cache.retrieve("k") == "old"
    # Same size, written by another process: a new inode.
    code = REPLACE.format(src=SRC, directory=cache.directory, value="new")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert cache.retrieve("k") == "new"


def test_a_rewrite_in_place_with_the_old_mtime_is_not_served_from_memory(cache):
    cache.save("k", "aaaa")
    assert cache.retrieve("k") == "aaaa"
    path = cache.path_of("k")
    before = os.stat(path)
    data = Path(path).read_bytes().replace(b"aaaa", b"bbbb")  # same size; bad checksum
    with open(path, "r+b") as handle:  # in place: same inode
        handle.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime put back
    assert os.stat(path).st_ino == before.st_ino
    with pytest.warns(CorruptEntryWarning):
        with pytest.raises(CheckpointNotExist):  # the ctime changed: the file is read
            cache.retrieve("k")


def test_a_deleted_entry_is_a_miss(cache):
    cache.save("k", 1)
    assert cache.retrieve("k") == 1
    os.remove(cache.path_of("k"))
    with pytest.raises(CheckpointNotExist):
        cache.retrieve("k")


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX owners")
def test_an_entry_made_writable_by_others_is_refused_even_when_remembered(cache):
    cache.save("k", 1)
    assert cache.retrieve("k") == 1
    os.chmod(cache.path_of("k"), 0o666)
    with pytest.warns(UntrustedEntryWarning):
        with pytest.raises(CheckpointNotExist):
            cache.retrieve("k")


def test_bytes_remembered_without_a_secret_are_not_served_to_a_signed_cache(tmp_path):
    store.MEMORY.clear()
    plain = PickleFileCache(tmp_path / "c")
    plain.save("k", 1)
    assert plain.retrieve("k") == 1
    signed = PickleFileCache(tmp_path / "c", secret="s")
    with pytest.warns(UntrustedEntryWarning, match="not signed"):
        with pytest.raises(CheckpointNotExist):
            signed.retrieve("k")


def test_the_tier_is_bounded_by_bytes(cache, monkeypatch):
    monkeypatch.setitem(defaults, "cache.memory_bytes", 1 << 20)
    cache.save("first", 0)
    assert cache.retrieve("first") == 0
    for i in range(40):
        cache.save(f"k{i}", bytes(100_000))  # 100 KB each: ten fit in 1 MiB
    assert store.MEMORY.nbytes <= 1 << 20 and 5 <= len(store.MEMORY) <= 10
    cache.save("big", bytes(300_000))  # over a quarter of the bound: not kept
    assert cache.path_of("big") not in store.MEMORY.entries
    monkeypatch.setitem(defaults, "cache.memory_bytes", 0)
    store.MEMORY.clear()
    cache.save("k", 1)
    assert cache.retrieve("k") == 1
    assert len(store.MEMORY) == 0  # off


# -- histories -------------------------------------------------------------------------
def test_a_history_is_appended_not_rewritten(cache):
    cache.record_history("m:f", {"key": "a", "n": 1})
    path = cache._history_path("m:f")
    inode = os.stat(path).st_ino
    for i in range(30):
        cache.record_history("m:f", {"key": f"k{i}", "n": i})
    cache.record_history("m:f", {"key": "a", "n": 2})
    assert os.stat(path).st_ino == inode  # the same file, grown
    history = cache.history("m:f")
    assert len(history) == store.HISTORY_LENGTH
    assert history[-1] == {"key": "a", "n": 2}  # a key's latest entry, last
    assert [e["key"] for e in history].count("a") == 1
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_history_written_by_the_earlier_version_is_read_and_extended(cache):
    cache.save("k", 1)
    path = cache._history_path("m:f")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    body = json.dumps({"function": "m:f", "entries": [{"key": "old"}]}).encode()
    import xxhash

    Path(path).write_bytes(xxhash.xxh3_64_hexdigest(body).encode() + b"\n" + body)
    assert cache.history("m:f") == [{"key": "old"}]
    cache.record_history("m:f", {"key": "new"})
    assert cache.history("m:f") == [{"key": "old"}, {"key": "new"}]
    assert store.read_history_file(path)["entries"] == [{"key": "old"}, {"key": "new"}]


def test_a_history_cut_between_two_lines_is_reported(cache):
    for i in range(3):
        cache.record_history("m:f", {"key": f"k{i}"})
    path = cache._history_path("m:f")
    history.flush_histories()  # the lines after the first wait in memory (batched)
    data = Path(path).read_bytes()
    first_line = data.index(b"\n") + 1
    Path(path).write_bytes(data[:first_line])  # a whole line, the end marker lost
    with pytest.raises(ValueError):
        store.read_history_file(path)
    assert cache.history("m:f") == [{"key": "k0"}]  # what is intact still explains
    cache.record_history("m:f", {"key": "k9"})  # appending after it still works
    assert [e["key"] for e in cache.history("m:f")] == ["k0", "k9"]


APPENDER = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    from checkpointing.store import history
    history.HISTORY_LENGTH = 100_000
    history.HISTORY_COMPACT_BYTES = int(sys.argv[4])
    from checkpointing.store import PickleFileCache
    cache = PickleFileCache(sys.argv[2])
    history._HISTORY_BATCH = int(sys.argv[5])
    me = sys.argv[3]
    for i in range(150):
        cache.record_history("m:f", {"key": f"{me}-{i % 50}", "n": i, "pad": "x" * 200})
""")


@pytest.mark.parametrize("batch", [1, 7, 1000], ids=["each-line", "batches", "at-exit"])
@pytest.mark.parametrize("compact_at", [1 << 30, 8_000], ids=["appends", "compactions"])
def test_concurrent_writers_lose_no_history_line(tmp_path, compact_at, batch):
    """Four processes append 150 lines each to one history, each process cycling
    through 50 keys of its own, each line at once, in batches of 7, or (the default
    batch) all but the first at exit; with compactions at 8 KB (which keep the latest
    line of every key, the length limit being lifted), rewrites race with appends: the
    file stays intact and every key's latest line, the one its process wrote last, is
    there."""
    directory = tmp_path / "cache"
    PickleFileCache(directory).save("k", 1)
    script = tmp_path / "append.py"
    script.write_text(APPENDER)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                SRC,
                str(directory),
                f"p{n}",
                str(compact_at),
                str(batch),
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    path = PickleFileCache(directory)._history_path("m:f")
    old_length = history.HISTORY_LENGTH
    try:
        history.HISTORY_LENGTH = 100_000
        entries = store.read_history_file(path)["entries"]  # strict: no damaged line
    finally:
        history.HISTORY_LENGTH = old_length
    latest = {e["key"]: e["n"] for e in entries}
    assert latest == {f"p{n}-{k}": 100 + k for n in range(4) for k in range(50)}
    if compact_at < 1 << 30:  # it was rewritten (600 lines of over 250 bytes appended)
        assert os.path.getsize(path) < 600 * 250
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(PickleFileCache(directory).history("m:f")) == store.HISTORY_LENGTH


def test_threads_appending_to_one_history_lose_no_line(cache, monkeypatch):
    """Appends reuse the history file's descriptor (kept open by the process): threads
    take turns on it, and each key's latest line is there."""
    import threading

    monkeypatch.setattr(history, "HISTORY_LENGTH", 100_000)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch inside appends, not between them

    def append(me: int) -> None:
        for i in range(60):
            cache.record_history("m:f", {"key": f"t{me}-{i % 20}", "n": i})

    threads = [threading.Thread(target=append, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)
    entries = store.read_history_file(cache._history_path("m:f"))["entries"]  # strict
    assert {e["key"]: e["n"] for e in entries} == {
        f"t{n}-{k}": 40 + k for n in range(6) for k in range(20)
    }


def test_an_append_after_the_history_was_removed_or_compacted_goes_to_the_new_file(
    cache, monkeypatch
):
    path = cache._history_path("m:f")
    cache.record_history("m:f", {"key": "a"})
    cache.record_history("m:f", {"key": "b"})
    history.flush_histories()  # b written through the descriptor kept open
    os.remove(path)
    cache.record_history("m:f", {"key": "c"})
    assert [e["key"] for e in cache.history("m:f")] == ["c"]
    monkeypatch.setattr(history, "HISTORY_COMPACT_BYTES", 2_000)
    for i in range(40):  # compacted (renamed over) several times meanwhile
        cache.record_history("m:f", {"key": f"k{i}", "pad": "x" * 100})
    assert os.path.getsize(path) < 4_000
    assert [e["key"] for e in cache.history("m:f")] == [f"k{i}" for i in range(20, 40)]
    store.read_history_file(path)  # strict: intact


def history_lines(path: str) -> list:
    """The keys of the intact lines of the history file at ``path``, in file order."""
    records = [history._record(line, json) for line in Path(path).read_bytes().split(b"\n")]
    return [r["entry"]["key"] for r in records if r is not None]


def test_history_lines_wait_in_memory_and_a_read_of_this_process_sees_them(cache):
    for i in range(5):
        cache.record_history("m:f", {"key": f"k{i}"})
    path = cache._history_path("m:f")
    assert history_lines(path) == ["k0"]  # the first at once (the file exists), then batched
    assert [e["key"] for e in cache.history("m:f")] == [f"k{i}" for i in range(5)]
    assert history_lines(path) == [f"k{i}" for i in range(5)]  # the read wrote them
    cache.record_history("m:f", {"key": "k5"})
    assert store.read_history_file(path)["entries"][-1] == {"key": "k5"}  # strict: intact


def test_waiting_history_lines_go_out_after_a_second_or_a_batch(cache, monkeypatch):
    now = [100.0]
    monkeypatch.setattr(history, "_monotonic", lambda: now[0])
    monkeypatch.setattr(history, "_HISTORY_BATCH", 3)
    path = cache._history_path("m:f")
    for key in ("a", "b", "c"):
        cache.record_history("m:f", {"key": key})
    assert history_lines(path) == ["a"]
    cache.record_history("m:f", {"key": "d"})  # the third waiting: all three go
    assert history_lines(path) == ["a", "b", "c", "d"]
    cache.record_history("m:f", {"key": "e"})
    now[0] += history.HISTORY_BATCH_SECONDS - 0.01
    assert history_lines(path) == ["a", "b", "c", "d"]
    cache.record_history("m:f", {"key": "f"})
    now[0] += 0.01  # "e" waited a second: the next line takes both out
    cache.record_history("m:f", {"key": "g"})
    assert history_lines(path) == ["a", "b", "c", "d", "e", "f", "g"]


@pytest.mark.e2e
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this system")
def test_a_batch_writes_what_a_read_would_return_of_all_its_lines(tmp_path, monkeypatch):
    """Of a batch, only the latest line of each of its last HISTORY_LENGTH keys is
    written: what a read returns, compacted or not, is what it returns when every line
    is written at once."""
    keys = [f"k{i % 30}" for i in range(70)] + ["k3", "k29", "k3"]
    caches = {}
    for batch in (1, 1000):
        monkeypatch.setattr(history, "_HISTORY_BATCH", batch)
        cache = caches[batch] = PickleFileCache(tmp_path / f"batch-{batch}")
        for n, key in enumerate(keys):
            cache.record_history("m:f", {"key": key, "n": n})
        history.flush_histories()
    every_line, batched = (caches[b]._history_path("m:f") for b in (1, 1000))
    assert len(history_lines(every_line)) == len(keys)
    assert len(history_lines(batched)) == 1 + store.HISTORY_LENGTH  # the first, at once
    assert caches[1000].history("m:f") == caches[1].history("m:f")
    assert [e["key"] for e in caches[1].history("m:f")][-3:] == ["k9", "k29", "k3"]


def _fork() -> int:
    """``os.fork``; 3.12+ warns that this process has threads (pytest-xdist's, under
    -n): the children here use none of their locks (they write a few lines and exit)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


@pytest.mark.e2e
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this system")
def test_a_forked_child_writes_its_history_lines_at_once(cache):
    """A ``multiprocessing`` worker ends with ``os._exit`` (no exit handlers): a forked
    child does not batch, and the parent's waiting lines are the parent's to write."""
    cache.record_history("m:f", {"key": "parent-1"})
    cache.record_history("m:f", {"key": "parent-2"})  # waits in the parent
    pid = _fork()
    if pid == 0:
        try:
            cache.record_history("m:f", {"key": "child-1"})
            cache.record_history("m:f", {"key": "child-2"})
        finally:
            os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
    path = cache._history_path("m:f")
    assert history_lines(path) == ["parent-1", "child-1", "child-2"]
    assert [e["key"] for e in cache.history("m:f")] == [
        "parent-1",
        "child-1",
        "child-2",
        "parent-2",
    ]


HISTORY_PROGRAM = """
import os, signal, sys
from checkpointing import checkpoint
from checkpointing.store import history

history.HISTORY_LENGTH = int(os.environ.get("HISTORY_LENGTH", history.HISTORY_LENGTH))

@checkpoint
def f(x):
    print(f"RAN f{x}")
    return x * 2

for x in range(int(sys.argv[1]), int(sys.argv[2])):
    print("RESULT", f(x))
if sys.argv[3:] == ["kill"]:
    os.kill(os.getpid(), signal.SIGKILL)
"""


def keys_in_history(project) -> list:
    (path,) = (project.root / ".checkpointing" / "functions").glob("*.json")
    return history_lines(str(path))


def test_a_killed_process_loses_only_its_waiting_history_lines_never_an_entry(project):
    project.write("main.py", HISTORY_PROGRAM)
    killed = project.run("main.py", "0", "5", "kill", expect_ok=False)
    assert killed.returncode == -9
    assert killed.ran == [f"f{x}" for x in range(5)]
    assert len(keys_in_history(project)) == 1  # the first line; the others waited
    assert ", 1 recorded" in project.run("-m", "checkpointing", "why", "main:f").stdout
    again = project.run("main.py", "0", "5")
    assert again.ran == [] and again.results == killed.results  # every entry is there
    fresh = project.run("main.py", "5", "8")
    assert fresh.ran == ["f5", "f6", "f7"]
    assert len(set(keys_in_history(project))) == 1 + 3  # a normal exit wrote its lines
    assert ", 4 recorded" in project.run("-m", "checkpointing", "why", "main:f").stdout


def test_two_processes_saving_at_once_lose_no_history_line(project):
    project.write("main.py", HISTORY_PROGRAM)
    project.run("main.py", "-1", "0")  # the analysis stored, the history begun
    # Every line is read back (a batch writes the lines a read returns: a longer
    # history, all of them).
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", HISTORY_LENGTH="100000")
    env.pop("PYTHONHASHSEED", None)
    procs = [
        subprocess.Popen(
            [sys.executable, "main.py", str(start), str(start + 150)],
            cwd=project.root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for start in (0, 1000)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    keys = keys_in_history(project)
    assert len(keys) == len(set(keys)) == 1 + 300


def test_a_result_its_caller_mutates_is_served_unchanged(tmp_path):
    from checkpointing import checkpoint

    # Runs counted on the sys module: a list the function read would be in its key.
    sys.ckpt_test_runs = 0

    @checkpoint(directory=tmp_path / "c")
    def f(x):
        sys.ckpt_test_runs += 1
        return {"items": [x], "array": np.zeros(3)}

    try:
        for _ in range(4):  # the miss, a hit from the file, then hits from memory
            value = f(1)
            assert value["items"] == [1] and not value["array"].any()
            value["items"].append(2)
            value["array"][:] = 7
        assert sys.ckpt_test_runs == 1
    finally:
        del sys.ckpt_test_runs


def test_small_files_read_whole_up_to_the_limit(tmp_path) -> None:
    """Plans and logs are read as the size fstat gives (not into a buffer of the limit,
    64 MiB for a plan): the same bytes as one read of the limit, a file that grew since
    the fstat read on, and never past the limit."""
    from checkpointing.store.fileio import _read_regular, _read_up_to, read_trusted_file

    folder = tmp_path / "plans"
    folder.mkdir(mode=0o700)
    path = folder / "p.json"
    path.write_bytes(b"x" * 1000)
    path.chmod(0o600)
    assert read_trusted_file(str(path)) == b"x" * 1000
    assert _read_regular(str(path), 1 << 26) == b"x" * 1000
    assert _read_regular(str(path), 10) == b"x" * 10
    assert _read_regular(str(path), 1000) == b"x" * 1000
    empty = folder / "empty"
    empty.write_bytes(b"")
    assert _read_regular(str(empty), 1 << 26) == b""
    with open(path, "rb", buffering=0) as handle:  # grew after an fstat gave 400 bytes
        assert _read_up_to(handle.fileno(), 400, 1 << 26) == b"x" * 1000
    with open(path, "rb", buffering=0) as handle:
        assert _read_up_to(handle.fileno(), 400, 700) == b"x" * 700


def test_a_fingerprint_encoded_once_reads_back_as_the_dict_in_entry_and_history(cache):
    """A miss encodes its fingerprint once (EncodedJSON) and splices that text into the
    entry's header and the function's history line: both read back exactly as the
    dict, also with names and keys that JSON must escape."""
    from checkpointing.store.format import EncodedJSON

    fingerprint = {
        "nodes": {'pkg.mod:Cl\u00e4ss."q"': ["d1", "/p\\a\tth.py", 3]},
        "globals": {},
        "arguments": {"x": "a1"},
        "static": "s1",
    }
    fingerprint["argument_values"] = fingerprint["arguments"]
    encoded = EncodedJSON(fingerprint)
    key = 'odd "key" \u00e9\n\\'
    cache.save_entry(key, 42, {"function": "m:f\u00e9", "fingerprint": encoded})
    assert cache.read_metadata(key)["fingerprint"] == fingerprint
    assert cache.retrieve(key) == 42
    cache.record_history("m:f\u00e9", encoded.history_entry(key, 1.25))
    cache.record_history("m:f\u00e9", {"key": "plain", "created": 2.5, **fingerprint})
    entries = store.read_history_file(cache._history_path("m:f\u00e9"))["entries"]
    assert entries == [
        {"key": key, "created": 1.25, **fingerprint},
        {"key": "plain", "created": 2.5, **fingerprint},
    ]
    assert cache.history("m:f\u00e9") == entries


@pytest.mark.e2e
def test_a_forked_child_draws_other_temporary_names(tmp_path):
    """Temporary names are counted from one random draw per process; a forked child
    draws again, so parent and child do not try the same names (a taken name would
    only cost a retry: O_EXCL)."""
    from checkpointing.store import fileio

    if not hasattr(os, "fork"):
        pytest.skip("no fork here")
    read, write = os.pipe()
    pid = _fork()
    if pid == 0:  # the child: its next names, to the parent
        os.write(write, " ".join(fileio._temporary_name() for _ in range(3)).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 1000).decode().split()
    os.waitpid(pid, 0)
    mine = [fileio._temporary_name() for _ in range(3)]
    assert len(child) == 3 and not set(child) & set(mine)
    assert all(len(name) == 16 and int(name, 16) >= 0 for name in mine + child)
