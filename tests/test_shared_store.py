"""The cache on an object store (issue 14, part 1), against a real S3-protocol server.

moto's server runs in a thread (see ``_s3.py``); s3fs talks to it over HTTP as it would
to S3. What is checked: entries written by one store are read by another with its own
local tier (another machine); the local tier is checked against the remote ETag once
per process and key, then served without a request; a corrupted or misplaced object is
a warned miss, then replaced; a missing bucket or bad credentials give a clear error
and the function's result all the same; nothing of fsspec is imported for a local cache.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest

import checkpointing
from checkpointing import CheckpointNotExist, checkpoint, defaults
from checkpointing.errors import (
    CheckpointFailedWarning,
    ConfigurationError,
    CorruptEntryWarning,
    UntrustedEntryWarning,
)
from checkpointing.store import PickleFileCache
from checkpointing.store.remote import RemoteStore, open_store


def _store(bucket, tier) -> RemoteStore:
    return RemoteStore(bucket.url, local_tier=str(tier))


def test_a_url_makes_a_remote_store_and_a_path_a_local_one(s3, tmp_path) -> None:
    assert isinstance(open_store(s3.url), RemoteStore)
    assert isinstance(open_store(str(tmp_path / "c")), PickleFileCache)
    local = open_store(f"file://{tmp_path / 'd'}")
    assert isinstance(local, PickleFileCache) and local.directory == str(tmp_path / "d")
    defaults["cache.filesystem.directory"] = s3.url
    assert isinstance(open_store(), RemoteStore)


def test_entries_are_shared_between_stores_with_their_own_tiers(s3, tmp_path) -> None:
    first, second = _store(s3, tmp_path / "a"), _store(s3, tmp_path / "b")
    first.save_entry("k1", {"value": [1, 2, 3]}, {"function": "f"})
    value, checks = second.read_entry("k1")
    assert value == {"value": [1, 2, 3]} and checks is None
    assert second.read_metadata("k1")["function"] == "f"
    (path,) = s3.objects()
    assert path.startswith(f"{s3.name}/cache/entries/") and path.endswith("/k1.ckpt")
    with pytest.raises(CheckpointNotExist):
        second.read_entry("k2")


def test_the_tier_is_checked_once_per_process_and_key(s3, tmp_path) -> None:
    writer = _store(s3, tmp_path / "w")
    writer.save_entry("k", 41, {})
    reader = _store(s3, tmp_path / "r")
    assert reader.retrieve("k") == 41  # downloaded into the tier
    (path,) = s3.objects()
    s3.fs.rm_file(path)
    # Checked in this process already: served from the tier without any request.
    assert reader.retrieve("k") == 41
    # Another process (a new store on the same tier) checks once: the entry is gone.
    with pytest.raises(CheckpointNotExist):
        _store(s3, tmp_path / "r").retrieve("k")
    # A new entry under the key replaces the tier's copy at the next process's check.
    writer.save_entry("k", 42, {})
    assert _store(s3, tmp_path / "r").retrieve("k") == 42


def test_a_warm_tier_is_used_without_downloading_again(s3, tmp_path) -> None:
    _store(s3, tmp_path / "w").save_entry("k", "v", {})
    _store(s3, tmp_path / "r").retrieve("k")
    tier_file = PickleFileCache(tmp_path / "r").path_of("k")
    before = open(tier_file, "rb").read()
    later = _store(s3, tmp_path / "r")
    assert later.retrieve("k") == "v"
    assert open(tier_file, "rb").read() == before
    assert "k" in later._checked


def _square(x):
    return x * x


def test_a_corrupted_object_is_a_warned_miss_then_replaced(s3, tmp_path) -> None:
    defaults["cache.filesystem.directory"] = s3.url
    defaults["cache.local_tier"] = str(tmp_path / "tier")
    assert checkpoint(_square)(3) == 9
    (path,) = s3.objects()
    data = bytearray(s3.fs.cat_file(path))
    data[-1] ^= 0xFF
    s3.fs.pipe_file(path, bytes(data))
    with pytest.warns(CorruptEntryWarning, match=rf"s3://{path}.*checksum mismatch"):
        assert checkpoint(_square)(3) == 9  # another process: it checks the ETag
    assert s3.fs.cat_file(path) != bytes(data)  # replaced by a valid entry
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _store(s3, tmp_path / "other").retrieve(checkpoint(_square).key(3)) == 9


def test_an_object_signed_with_another_secret_is_not_loaded(s3, tmp_path) -> None:
    RemoteStore(s3.url, secret="another secret", local_tier=str(tmp_path / "o")).save("k", 1)
    with pytest.warns(UntrustedEntryWarning, match="signature does not match"):
        with pytest.raises(CheckpointNotExist):
            _store(s3, tmp_path / "r").retrieve("k")


def test_a_remote_store_needs_a_secret(s3, monkeypatch) -> None:
    monkeypatch.delenv("CHECKPOINTING_SECRET")
    with pytest.raises(ConfigurationError, match="CHECKPOINTING_SECRET"):
        RemoteStore(s3.url)
    RemoteStore("memory://no-secret-needed")  # lives in this process only


def test_a_missing_bucket_warns_clearly_and_returns_the_result(s3, tmp_path) -> None:
    @checkpoint(f"s3://{s3.name}-missing/cache", compute_once=False)
    def double(x):
        return 2 * x

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert double(21) == 42
    messages = [str(w.message) for w in caught if w.category is CheckpointFailedWarning]
    assert any(
        f"the bucket '{s3.name}-missing' does not exist" in m and "not cached" in m
        for m in messages
    ), messages


def test_a_missing_bucket_raises_under_on_error_raise(s3) -> None:
    @checkpoint(f"s3://{s3.name}-missing/cache", on_error="raise")
    def double(x):
        return 2 * x

    with pytest.raises(checkpointing.CheckpointFailedError, match="does not exist") as info:
        double(21)
    assert info.value.result == 42


def test_bad_credentials_warn_clearly_and_return_the_result(s3, monkeypatch) -> None:
    import moto.settings

    monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # check every key

    @checkpoint(s3.url)
    def double(x):
        return 2 * x

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert double(21) == 42
    messages = [str(w.message) for w in caught if w.category is CheckpointFailedWarning]
    assert any("access was denied: check the credentials" in m for m in messages), messages


def test_clear_delete_and_listing_work_on_the_remote_store(s3, tmp_path) -> None:
    store = _store(s3, tmp_path / "t")
    for i in range(3):
        store.save_entry(f"k{i}", i, {"function": "f"})
    listed = sorted(e.context_id for e in store.iter_entries())
    assert listed == ["k0", "k1", "k2"]
    assert all(store.check_file(path) is None for path in store.entry_files())
    assert store.delete("k1") and not store.delete("k1")
    assert store.clear() == 2 and not s3.objects()
    with pytest.raises(CheckpointNotExist):
        _store(s3, tmp_path / "t").retrieve("k0")


def test_history_travels_with_the_entries(s3, tmp_path) -> None:
    store = _store(s3, tmp_path / "a")
    store.record_history("mod.f", {"key": "k", "created": 1.0})
    assert _store(s3, tmp_path / "b").history("mod.f") == [{"key": "k", "created": 1.0}]


def test_a_store_travels_to_workers_by_its_settings(s3, tmp_path) -> None:
    import pickle

    store = _store(s3, tmp_path / "t")
    store.save("k", [1])
    copy = pickle.loads(pickle.dumps(store))
    assert copy.url == store.url and copy.directory == store.directory
    assert copy.retrieve("k") == [1]


def test_memory_protocol_works_without_a_secret(monkeypatch, tmp_path, caplog) -> None:
    monkeypatch.delenv("CHECKPOINTING_SECRET", raising=False)
    defaults["cache.local_tier"] = str(tmp_path / "tier")
    square = checkpoint("memory://checkpointing-test/cache")(_square)
    caplog.set_level("DEBUG", logger="checkpointing.decorator")
    assert square(4) == 16 and square(4) == 16
    assert [r.message.split(":")[0] for r in caplog.records] == ["miss", "miss", "save", "hit"]
    assert [e.context_id for e in square.checkpoint.cache.iter_entries()] == [square.key(4)]


def test_a_local_cache_imports_nothing_of_fsspec(tmp_path) -> None:
    program = (
        "import sys\n"
        "from checkpointing import checkpoint\n"
        f"@checkpoint({str(tmp_path / 'c')!r})\n"
        "def f(x):\n"
        "    return x\n"
        "f(1); f(1)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fsspec', 's3fs')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


@pytest.mark.e2e  # verify --deep unpickles in a child process
def test_the_command_line_lists_verifies_and_clears_a_bucket(s3, tmp_path, capsys) -> None:
    import json

    from checkpointing.cli import main

    defaults["cache.local_tier"] = str(tmp_path / "tier")
    square = checkpoint(s3.url)(_square)
    assert square(5) == 25 and square(6) == 36
    assert main(["ls", "--dir", s3.url, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["function"].endswith("_square") and row["entries"] == 2, row
    assert main(["verify", "--dir", s3.url]) == 0, capsys.readouterr()
    capsys.readouterr()
    assert main(["verify", "--dir", s3.url, "--deep", "--json"]) == 0
    deep = json.loads(capsys.readouterr().out)
    assert deep["checked"] == 2 and deep["corrupt"] == [] and deep["other"] == [], deep
    (path,) = [p for p in s3.objects() if p.endswith(f"/{square.key(5)}.ckpt")]
    data = bytearray(s3.fs.cat_file(path))
    data[-1] ^= 0xFF
    s3.fs.pipe_file(path, bytes(data))
    capsys.readouterr()
    assert main(["verify", "--dir", s3.url, "--json"]) != 0
    assert "checksum mismatch" in capsys.readouterr().out
    assert main(["clear", "--dir", s3.url, "--yes"]) == 0
    assert not s3.objects()


def test_without_a_local_tier_every_hit_downloads_and_nothing_stays(s3, tmp_path) -> None:
    writer = RemoteStore(s3.url, local_tier=False)
    writer.save("k", {"a": 1})
    reader = RemoteStore(s3.url, local_tier=False)
    assert reader.retrieve("k") == {"a": 1} and reader.retrieve("k") == {"a": 1}
    assert not reader._checked
    for store in (writer, reader):
        assert store.tier.entry_files() == []


def test_a_store_made_by_hand_with_storage_options(s3, tmp_path, monkeypatch) -> None:
    import fsspec.config

    from checkpointing import AutoFuncCallIdentifier, DecoratorCheckpoint

    monkeypatch.setitem(fsspec.config.conf, "s3", {})  # only the options below
    store = checkpointing.RemoteStore(
        s3.url, local_tier=str(tmp_path / "t"), storage_options={"endpoint_url": s3.endpoint}
    )
    square = DecoratorCheckpoint(AutoFuncCallIdentifier(), store)(_square)
    assert square(7) == 49 and square(7) == 49
    assert [e.context_id for e in store.iter_entries()] == [square.key(7)]
