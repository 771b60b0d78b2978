"""The extension points the decorator itself goes through (in process).

``DecoratorCheckpoint`` calls ``identifier.prepare/key/fingerprint`` and
``cache.read_entry/exists/variants/...`` for every identifier and cache: the defaults
of :class:`FuncCallIdentifierBase` and :class:`CacheBase` make a 1.0-style subclass
(``identify``; ``save``/``retrieve``) work through them, and a subclass that overrides
one of them is honoured.
"""

from __future__ import annotations

import threading
from typing import Any, Dict

import pytest

from checkpointing import (
    AutoFuncCallIdentifier,
    CacheBase,
    CheckpointNotExist,
    DecoratorCheckpoint,
    FuncCallIdentifierBase,
    InMemoryLRUCache,
    PickleFileCache,
)
from checkpointing.errors import ConfigurationError
from checkpointing.identify import FuncCallContext


class ByArguments(FuncCallIdentifierBase):
    """1.0 style: identify() only."""

    def identify(self, context: FuncCallContext) -> str:
        return f"{context.name}-{sorted(context.arguments.items())}"


class DictCache(CacheBase):
    """1.0 style: save() and retrieve() only."""

    def __init__(self) -> None:
        self.data: Dict[Any, Any] = {}
        self.retrieved = 0

    def save(self, context_id: Any, result: Any) -> None:
        self.data[context_id] = result

    def retrieve(self, context_id: Any) -> Any:
        self.retrieved += 1
        try:
            return self.data[context_id]
        except KeyError:
            raise CheckpointNotExist(context_id) from None


def test_the_defaults_rest_on_identify_save_and_retrieve() -> None:
    identifier, cache = ByArguments(), DictCache()
    calls = []

    @DecoratorCheckpoint(identifier, cache, on_error="raise")
    def f(x, y=1):
        calls.append(x)
        return x + y

    assert (f(1), f(1), f(2, y=3)) == (2, 2, 5)
    assert calls == [1, 2]
    assert f.key(1) == "f-[('x', 1), ('y', 1)]" == identifier.key(f.__wrapped__, (1,), {})
    assert identifier.fingerprint(f.__wrapped__, (1,), {}) is None
    assert cache.read_entry(f.key(1)) == (2, None)
    assert cache.exists(f.key(1)) and not cache.exists(f.key(7))
    assert cache.variants(f.key(1)) == []
    explanation = f.checkpoint.explain(f.__wrapped__, (1,), {})
    assert explanation.key == f.key(1)


def test_what_a_1_0_cache_cannot_do_says_how_to_add_it() -> None:
    cache = DictCache()
    with pytest.raises(NotImplementedError, match=r"DictCache cannot delete .*delete\(key\)"):
        cache.delete("k")
    with pytest.raises(NotImplementedError, match=r"DictCache cannot list .*entries\(\)"):
        cache.entries()


def test_a_cache_that_overrides_read_entry_serves_the_hits() -> None:
    class Counted(DictCache):
        def __init__(self) -> None:
            super().__init__()
            self.read = 0

        def read_entry(self, context_id: Any):
            self.read += 1
            return super().read_entry(context_id)

    cache = Counted()

    @DecoratorCheckpoint(ByArguments(), cache, on_error="raise")
    def f(x):
        return x

    f(1), f(1), f(1)
    assert cache.read == 3 and cache.retrieved == 3  # the default went through retrieve


def test_an_identifier_fingerprint_is_stored_and_recorded(in_tmp) -> None:
    class Explained(ByArguments):
        def fingerprint(self, func, args, kwargs):
            return {"arguments": {"x": str(args[0])}, "nodes": {}, "globals": {}}

    cache = PickleFileCache("store")

    @DecoratorCheckpoint(Explained(), cache, on_error="raise")
    def f(x):
        return x

    f(5)
    assert cache.read_metadata(f.key(5))["fingerprint"]["arguments"] == {"x": "5"}
    name = cache.read_metadata(f.key(5))["function"]
    assert [e["key"] for e in cache.history(name)] == [f.key(5)]


def test_a_subclass_of_the_default_identifier_that_overrides_identify_keys_by_it() -> None:
    class Suffixed(AutoFuncCallIdentifier):
        def identify(self, context: FuncCallContext) -> str:
            return super().identify(context) + "-v2"

    cache = DictCache()

    @DecoratorCheckpoint(Suffixed(), cache, on_error="raise")
    def f(x):
        return x * 3

    assert f(2) == 6 and f(2) == 6
    (key,) = cache.data
    assert key.endswith("-v2") and len(key) == 35
    assert f.key(2) == key  # the key a call uses, and the one f.key() reports


def test_the_default_identifier_keeps_analyses_beside_the_default_store(in_tmp) -> None:
    identifier = AutoFuncCallIdentifier()
    cache = PickleFileCache("store")

    @DecoratorCheckpoint(identifier, cache)
    def f(x):
        return x

    assert identifier.analysis_directory == str(in_tmp / "store" / "analysis")
    other = AutoFuncCallIdentifier()
    DecoratorCheckpoint(other, DictCache())(lambda: 1)
    assert other.analysis_directory is None  # in memory only


def test_a_synchronized_file_store_keeps_and_verifies_run_time_checks(in_tmp) -> None:
    (in_tmp / "data.txt").write_text("1")
    cache = PickleFileCache("store").synchronize_with(threading.Lock())
    assert cache.stores_checks and cache.str_keys_only

    @DecoratorCheckpoint(AutoFuncCallIdentifier(), cache, inputs=["data.txt"])
    def total():
        with open("data.txt") as handle:
            return int(handle.read())

    def created() -> float:  # when the entry was stored: a run stores a new one
        return cache.read_metadata(total.key())["created"]

    assert total() == 1
    first = created()
    assert total() == 1 and created() == first  # a hit
    (in_tmp / "data.txt").write_text("22")
    assert total() == 22 and created() > first  # the input changed: it ran again
    assert list(cache.entries()) == [total.key()]
    assert cache.exists(total.key())
    assert cache.delete(total.key()) and not cache.exists(total.key())


def test_a_synchronized_file_store_records_what_a_run_reads(in_tmp) -> None:
    """Recorded, not declared: the store's folder is left out of what a run reads, and
    only it (not the current folder, where data.txt is)."""
    (in_tmp / "data.txt").write_text("1")
    cache = PickleFileCache("store").synchronize_with(threading.Lock())
    assert cache.directory == str(in_tmp / "store")

    @DecoratorCheckpoint(AutoFuncCallIdentifier(), cache)
    def total():
        with open("data.txt") as handle:
            return int(handle.read())

    def created() -> float:
        return cache.read_metadata(total.key())["created"]

    assert total() == 1
    first = created()
    assert total() == 1 and created() == first
    (in_tmp / "data.txt").write_text("333")
    assert total() == 333 and created() > first


def test_inputs_still_need_a_cache_that_stores_checks() -> None:
    with pytest.raises(ConfigurationError, match="needs a cache that stores run-time"):
        DecoratorCheckpoint(AutoFuncCallIdentifier(), DictCache(), inputs=["x.csv"])
    with pytest.raises(ConfigurationError, match="needs a cache that stores run-time"):
        DecoratorCheckpoint(AutoFuncCallIdentifier(), InMemoryLRUCache(), inputs=["x.csv"])


def test_the_in_memory_cache_lists_checks_and_deletes() -> None:
    cache = InMemoryLRUCache()
    cache.save(("a", 1), 1)
    cache.save("b", 2)
    assert list(cache.entries()) == [("a", 1), "b"]
    assert cache.exists("b") and not cache.exists("c")
    assert cache.delete("b") and not cache.delete("b")
    assert cache.read_entry(("a", 1)) == (1, None)
    with pytest.raises(CheckpointNotExist):
        cache.read_entry("b")


def test_the_file_store_lists_checks_and_deletes(in_tmp) -> None:
    cache = PickleFileCache("store")
    assert list(cache.entries()) == [] and not cache.exists("k")
    cache.save("k", 1)
    cache.save("odd key", 2)
    assert sorted(cache.entries()) == ["k", "odd key"]
    assert cache.exists("odd key")
    assert cache.delete("k") and not cache.delete("k")
    assert list(cache.entries()) == ["odd key"]
