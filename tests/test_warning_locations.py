"""Every warning the package can emit names the user's file and line.

Each test triggers one warning from this file and checks that ``warnings`` reports it
at the line of this file that made the call (the call of the checkpointed function,
``f.rerun``, a cache method, ``defaults[...] = ...``), however deep in the package the
cause was found: on a hit, on a miss, through ``rerun``, through the async wrapper.
The static analysis' blind spots are reported where the blind spot is, a line of the
user's function. Then ``-W error::...:module`` filters, editors and pytest point at
the user's code.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
import warnings
from typing import Any, Callable, List

import pytest

from checkpointing import (
    AutoFuncCallIdentifier,
    CacheBase,
    CheckpointNotExist,
    DecoratorCheckpoint,
    FuncCallIdentifierBase,
    PickleFileCache,
    checkpoint,
    defaults,
    runtime,
)
from checkpointing.errors import (
    BlindSpotWarning,
    CheckpointFailedWarning,
    CorruptEntryWarning,
    ExpensiveOverheadWarning,
    HashFailedWarning,
    SideEffectWarning,
    UntrustedEntryWarning,
)


def next_line() -> int:
    """The number of the line after the caller's."""
    return sys._getframe(1).f_lineno + 1


def warned(category: type, action: Callable[[], Any]) -> List[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        action()
    found = [w for w in got if issubclass(w.category, category)]
    assert found, f"no {category.__name__}: {[str(w.message) for w in got]}"
    return found


def assert_at(found: List[warnings.WarningMessage], line: int) -> None:
    for w in found:
        assert (w.filename, w.lineno) == (__file__, line), f"{w.category.__name__}: {w.message}"


# -- computing the key ----------------------------------------------------------------


def test_an_unhashable_argument(in_tmp) -> None:
    @checkpoint
    def f(data, lock):
        return data

    def call() -> None:
        assert f(1, threading.Lock()) == 1

    found = warned(HashFailedWarning, call)
    assert_at(found, call.__code__.co_firstlineno + 1)


def test_an_unhashable_argument_through_rerun(in_tmp) -> None:
    @checkpoint
    def f(data, lock):
        return data

    line = next_line()
    found = warned(HashFailedWarning, lambda: f.rerun(1, threading.Lock()))
    assert_at(found, line)


def test_an_unhashable_argument_of_an_async_function(in_tmp) -> None:
    @checkpoint
    async def f(data, lock):
        return data

    async def main() -> Any:
        return await f(1, threading.Lock())

    found = warned(HashFailedWarning, lambda: asyncio.run(main()))
    assert_at(found, main.__code__.co_firstlineno + 1)


def test_an_identifier_that_fails(in_tmp) -> None:
    class Broken(FuncCallIdentifierBase):
        def identify(self, context):
            raise RuntimeError("no key today")

    @DecoratorCheckpoint(Broken(), PickleFileCache("store"))
    def f(x):
        return x

    line = next_line()
    found = warned(CheckpointFailedWarning, lambda: f(1))
    assert "computing the key" in str(found[0].message)
    assert_at(found, line)


# -- reading the cache -----------------------------------------------------------------


class Unreadable(CacheBase):
    def save(self, context_id, result):
        pass

    def retrieve(self, context_id):
        raise OSError("the disk is gone")


def test_a_cache_that_fails_to_read(in_tmp) -> None:
    @DecoratorCheckpoint(AutoFuncCallIdentifier(), Unreadable())
    def f(x):
        return x

    line = next_line()
    found = warned(CheckpointFailedWarning, lambda: f(1))
    assert "reading the cache" in str(found[0].message)
    assert_at(found, line)


def corrupt(path: str) -> None:
    with open(path, "r+b") as handle:
        handle.seek(60)
        handle.write(b"garbage")


def test_a_corrupt_entry_on_a_call_and_on_a_direct_read(in_tmp) -> None:
    @checkpoint(directory="store")
    def f(x):
        return x

    f(1)
    cache = f.checkpoint.cache
    corrupt(cache.path_of(f.key(1)))
    line = next_line()
    found = warned(CorruptEntryWarning, lambda: f(1))
    assert_at(found, line)

    corrupt(cache.path_of(f.key(1)))

    def direct() -> None:
        with pytest.raises(CheckpointNotExist):
            cache.retrieve(f.key(1))

    found = warned(CorruptEntryWarning, direct)
    assert_at(found, direct.__code__.co_firstlineno + 2)


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX owners only")
def test_an_untrusted_entry(in_tmp) -> None:
    @checkpoint(directory="store")
    def f(x):
        return x

    f(1)
    os.chmod(f.checkpoint.cache.path_of(f.key(1)), 0o666)
    line = next_line()
    found = warned(UntrustedEntryWarning, lambda: f(1))
    assert_at(found, line)


# -- storing the result ----------------------------------------------------------------


def test_an_unpicklable_result_on_a_call_and_through_rerun(in_tmp) -> None:
    @checkpoint
    def f(x):
        return threading.Lock()

    line = next_line()
    found = warned(CheckpointFailedWarning, lambda: f(1))
    assert "could not store" in str(found[0].message)
    assert_at(found, line)
    line = next_line()
    found = warned(CheckpointFailedWarning, lambda: f.rerun(1))
    assert_at(found, line)


def test_storing_slower_than_running(in_tmp) -> None:
    class Slow(CacheBase):
        def save(self, context_id, result):
            time.sleep(0.15)

        def retrieve(self, context_id):
            raise CheckpointNotExist(context_id)

    @DecoratorCheckpoint(AutoFuncCallIdentifier(), Slow())
    def f(x):
        return x

    line = next_line()
    found = warned(ExpensiveOverheadWarning, lambda: f(1))
    assert_at(found, line)


def test_writing_a_file_once_per_function(in_tmp) -> None:
    @checkpoint
    def writes_a_report(x):
        with open("report.txt", "w") as handle:
            handle.write(str(x))
        return x

    line = next_line()
    found = warned(SideEffectWarning, lambda: writes_a_report(1))
    assert_at(found, line)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SideEffectWarning)
        assert writes_a_report(2) == 2  # once per function and process


def test_a_variant_that_cannot_be_kept_aside(in_tmp) -> None:
    (in_tmp / "data.txt").write_text("1")

    @checkpoint(directory="store", inputs=["data.txt"])
    def f():
        with open("data.txt") as handle:
            return handle.read()

    f()
    (in_tmp / "store" / "variants").write_text("a file where the variants folder goes")
    (in_tmp / "data.txt").write_text("2")
    line = next_line()
    found = warned(CheckpointFailedWarning, lambda: f())
    assert "aside" in str(found[0].message)
    assert_at(found, line)


def test_a_folder_argument_too_large_to_check(in_tmp, monkeypatch) -> None:
    monkeypatch.setattr(runtime, "MAX_FOLDER_FILES", 3)
    folder = in_tmp / "many"
    folder.mkdir()
    for i in range(5):
        (folder / f"{i}.txt").write_text(str(i))

    @checkpoint
    def count_files(path):
        return len(os.listdir(path))

    line = next_line()
    found = warned(BlindSpotWarning, lambda: count_files(str(folder)))
    assert "too many to check" in str(found[0].message)
    assert_at(found, line)


# -- configuration ---------------------------------------------------------------------


def test_deprecated_options() -> None:
    line = next_line()
    found = warned(DeprecationWarning, lambda: defaults.__setitem__("hash.algorithm", "md5"))
    assert_at(found, line)
    line = next_line()
    found = warned(DeprecationWarning, lambda: AutoFuncCallIdentifier(algorithm="md5"))
    assert_at(found, line)


# -- the static analysis: at the blind spot --------------------------------------------


def test_a_blind_spot_of_the_analysis_is_reported_where_it_is(in_tmp) -> None:
    @checkpoint
    def reads_by_name(name):
        return globals()[name]

    found = warned(BlindSpotWarning, lambda: reads_by_name("__name__"))
    assert_at(found, reads_by_name.__wrapped__.__code__.co_firstlineno + 2)


_UNHASHABLE_GLOBAL = threading.Lock()


def test_a_global_value_that_cannot_be_hashed(in_tmp) -> None:
    @checkpoint
    def reads_a_lock(x):
        with _UNHASHABLE_GLOBAL:
            return x

    line = next_line()
    found = warned(BlindSpotWarning, lambda: reads_a_lock(1))
    assert_at(found, line)
