"""The public API of checkpointing 1.0 keeps working, plus what 2.0 adds to it."""

from __future__ import annotations

import asyncio
import logging
import pickle
import threading
import warnings
from typing import Any, Dict

import pytest

import checkpointing
from checkpointing import (
    AutoFuncCallIdentifier,
    CacheBase,
    CheckpointFailedError,
    CheckpointFailedWarning,
    CheckpointNotExist,
    ConfigurationError,
    CorruptEntryWarning,
    DecoratorCheckpoint,
    FuncCallContext,
    FuncCallIdentifierBase,
    HashFailedError,
    HashFailedWarning,
    PickleFileCache,
    checkpoint,
    defaults,
    hashing,
)


class CallLog(list):
    """Records which bodies ran. Registered as invisible to keys: the functions under
    test append to it, and a value they read and change would otherwise (rightly)
    change their key at every call."""


hashing.register_digester(CallLog, lambda log: b"CallLog")


def entries(directory) -> list:
    path = directory / "entries"
    return sorted(p.name for p in path.iterdir()) if path.exists() else []


# -- The decorator and its options ------------------------------------------------


def test_bare_and_called_decorator_cache_in_default_directory(in_tmp) -> None:
    calls = CallLog()

    @checkpoint
    def bare(a, b):
        calls.append("bare")
        return a + b

    @checkpoint()
    def called(a, b):
        calls.append("called")
        return a * b

    assert bare(1, 2) == 3 and bare(1, 2) == 3
    assert called(2, 3) == 6 and called(2, 3) == 6
    assert calls == ["bare", "called"]
    assert len(entries(in_tmp / ".checkpointing")) == 2


def test_directory_option_and_pathlike(in_tmp) -> None:
    @checkpoint(directory=in_tmp / "custom")
    def f(x):
        return x

    f(1)
    assert len(entries(in_tmp / "custom")) == 1
    assert not (in_tmp / ".checkpointing").exists()


@pytest.mark.parametrize(
    "kwargs, accepted",
    [
        ({"on_error": "loud"}, "'warn', 'raise', 'ignore'"),
        ({"cache_pickle_protocol": 99}, "from 0 to"),
        ({"cache_pickle_protocol": "5"}, "from 0 to"),
        ({"directory": 3}, "str or pathlib.Path"),
        ({"directory": ""}, "str or pathlib.Path"),
    ],
)
def test_invalid_option_fails_at_decoration_naming_accepted_values(kwargs, accepted) -> None:
    with pytest.raises(ConfigurationError, match="accepted|not a path") as info:
        checkpoint(**kwargs)
    assert accepted in str(info.value)


def test_ignore_must_name_parameters() -> None:
    with pytest.raises(ConfigurationError, match="'verbos'.*not a parameter"):

        @checkpoint(ignore=["verbos"])
        def f(x, verbose=False):
            return x


def test_ignored_argument_is_left_out_of_the_key(in_tmp) -> None:
    calls = CallLog()

    @checkpoint(ignore=["verbose"])
    def f(x, verbose=False):
        calls.append(x)
        return x

    f(1, verbose=True)
    f(1, verbose=False)
    assert calls == [1]


def test_defaults_apply_when_the_argument_is_left_out(in_tmp, recwarn) -> None:
    defaults["cache.filesystem.directory"] = str(in_tmp / "from-defaults")
    defaults["checkpoint.on_error"] = "raise"
    defaults["cache.pickle_protocol"] = 4

    @checkpoint
    def unpicklable():
        return threading.Lock()

    # on_error="raise" from the defaults (1.0 passed its own "warn" and ignored it).
    with pytest.raises(CheckpointFailedError) as info:
        unpicklable()
    assert info.value.has_result and type(info.value.result) is type(threading.Lock())

    @checkpoint
    def g(x):
        return x

    g(1)
    cache = g.checkpoint.cache
    assert cache.directory == str(in_tmp / "from-defaults")
    assert cache.pickle_protocol == 4
    assert len(entries(in_tmp / "from-defaults")) == 1


def test_defaults_reject_unknown_keys_and_bad_values() -> None:
    with pytest.raises(ConfigurationError, match="known keys"):
        defaults["cache.directory"] = "x"
    with pytest.raises(ConfigurationError, match="'warn', 'raise', 'ignore'"):
        defaults["checkpoint.on_error"] = "never"


def test_rerun_runs_the_body_and_overwrites_the_entry(in_tmp, monkeypatch) -> None:
    import os

    checkpointing.defaults["runtime.track_env"] = False

    @checkpoint
    def f(x):
        return x + int(os.environ["CHECKPOINTING_TEST_OFFSET"])

    monkeypatch.setenv("CHECKPOINTING_TEST_OFFSET", "1")
    assert f(1) == 2
    # Environment variables untracked: the stale value is served...
    monkeypatch.setenv("CHECKPOINTING_TEST_OFFSET", "10")
    assert f(1) == 2
    # ...until rerun() runs the body and overwrites the entry.
    assert f.rerun(1) == 11
    assert f(1) == 11


def test_closure_values_are_part_of_the_key(in_tmp) -> None:
    state = {"value": 1}

    @checkpoint
    def f(x):
        return x + state["value"]

    assert f(1) == 2
    state["value"] = 10
    assert f(1) == 11


def test_arguments_are_bound_by_name(in_tmp) -> None:
    calls = CallLog()

    @checkpoint
    def f(a, b=2, *rest, c=3, **extra):
        calls.append((a, b, rest, c, extra))
        return a

    f(1)
    f(1, 2)
    f(1, b=2)
    f(a=1, c=3)
    assert len(calls) == 1
    f(1, 2, 3)
    f(1, d=4)
    f(1, d=4, e=5)
    f(1, e=5, d=4)  # a function may iterate **kwargs: another order is another call
    assert len(calls) == 5


def test_binding_error_is_pythons_own(in_tmp) -> None:
    @checkpoint
    def f(a):
        return a

    with pytest.raises(TypeError, match="argument"):
        f(1, 2)


# -- Kinds of functions -------------------------------------------------------------


def test_methods_hash_self_by_state(in_tmp) -> None:
    runs = CallLog()

    class Model:
        def __init__(self, weight: int) -> None:
            self.weight = weight

        @checkpoint
        def predict(self, x: int) -> int:
            runs.append(self.weight)
            return self.weight * x

    a = Model(10)
    assert a.predict(2) == 20 and a.predict(2) == 20
    assert Model(10).predict(2) == 20  # another object, same state: a hit
    assert runs == [10]
    a.weight = 3
    assert a.predict(2) == 6  # the state changed: a miss
    assert runs == [10, 3]


def test_async_functions_cache_the_awaited_value(in_tmp) -> None:
    calls = CallLog()

    @checkpoint
    async def fetch(x):
        calls.append(x)
        await asyncio.sleep(0)
        return {"x": x}

    assert asyncio.run(fetch(1)) == {"x": 1}
    assert asyncio.run(fetch(1)) == {"x": 1}
    assert calls == [1]
    assert asyncio.run(fetch.rerun(1)) == {"x": 1} and calls == [1, 1]


def test_generator_functions_are_refused_at_decoration() -> None:
    with pytest.raises(TypeError, match="generator function .*return a list"):

        @checkpoint
        def gen():
            yield 1

    with pytest.raises(TypeError, match="generator"):

        @checkpoint()
        async def agen():
            yield 1


def test_decorator_order_with_staticmethod_is_explained() -> None:
    with pytest.raises(TypeError, match="below @staticmethod"):
        checkpoint(staticmethod(lambda: 1))  # type: ignore[arg-type]


def test_none_result_is_cached(in_tmp) -> None:
    calls = CallLog()

    @checkpoint
    def f():
        calls.append(1)

    assert f() is None and f() is None
    assert calls == [1]


def test_user_exceptions_propagate_and_nothing_is_cached(in_tmp) -> None:
    calls = CallLog()

    @checkpoint
    def f(x):
        calls.append(x)
        raise KeyError(x)

    for _ in range(2):
        with pytest.raises(KeyError):
            f(1)
    assert calls == [1, 1]
    assert entries(in_tmp / ".checkpointing") == []


# -- The extension API ----------------------------------------------------------------


class NameIdentifier(FuncCallIdentifierBase):
    def __init__(self) -> None:
        self.contexts = []

    def identify(self, context: FuncCallContext) -> str:
        self.contexts.append(context)
        return context.name


class DictCache(CacheBase):
    def __init__(self) -> None:
        self.data: Dict[str, Any] = {}

    def save(self, context_id: str, result: Any) -> None:
        self.data[context_id] = result

    def retrieve(self, context_id: str) -> Any:
        try:
            return self.data[context_id]
        except KeyError:
            raise CheckpointNotExist(context_id) from None


def test_custom_identifier_and_dict_backed_cache() -> None:
    identifier, cache = NameIdentifier(), DictCache()

    @DecoratorCheckpoint(identifier, cache, on_error="raise")
    def square(x, power=2):
        """Squares."""
        return x**power

    assert square(3) == 9
    assert square(4) == 9  # the identifier looks at the name only: as the user asked
    assert cache.data == {"square": 9}
    context = identifier.contexts[0]
    assert context.name == "square"
    assert context.qualified_name.endswith("square")
    assert context.module == __name__
    assert context.full_name == f"{__name__}.{context.qualified_name}"
    assert context.arguments == {"x": 3, "power": 2}
    assert context.code.lstrip().startswith("@DecoratorCheckpoint")
    assert "return x**power" in context.code


def test_auto_identifier_with_custom_cache_and_synchronized_cache() -> None:
    cache = DictCache()
    lock = threading.Lock()

    @DecoratorCheckpoint(AutoFuncCallIdentifier(), cache.synchronize_with(lock))
    def f(x):
        return [x]

    assert f(1) == [1] and f(1) == [1] and f(2) == [2]
    assert len(cache.data) == 2
    assert all(len(k) == 32 for k in cache.data)


def test_pickle_file_cache_is_usable_directly(in_tmp) -> None:
    cache = PickleFileCache(directory="store", pickle_protocol=5)
    with pytest.raises(CheckpointNotExist):
        cache.retrieve("abc")
    cache.save("abc", {"a": 1})
    assert cache.retrieve("abc") == {"a": 1}


def test_extension_api_rejects_wrong_objects() -> None:
    with pytest.raises(ConfigurationError, match="FuncCallIdentifierBase"):
        DecoratorCheckpoint(object(), DictCache())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="CacheBase"):
        DecoratorCheckpoint(NameIdentifier(), object())  # type: ignore[arg-type]


def test_identifier_returning_a_non_string_key_to_a_file_cache_is_a_clear_failure(in_tmp) -> None:
    class Numbered(FuncCallIdentifierBase):
        def identify(self, context):
            return 42

    @DecoratorCheckpoint(Numbered(), PickleFileCache("store"), on_error="raise")
    def f():
        return 1

    with pytest.raises(
        CheckpointFailedError, match="takes only a non-empty str; return a str .*InMemoryLRUCache"
    ):
        f()


def test_identifier_returning_none_is_a_clear_failure() -> None:
    class Forgetful(FuncCallIdentifierBase):
        def identify(self, context):
            context.name  # no return

    @DecoratorCheckpoint(Forgetful(), DictCache(), on_error="raise")
    def f():
        return 1

    with pytest.raises(CheckpointFailedError, match="returned None"):
        f()


def test_a_non_string_key_is_served_by_a_cache_that_takes_it() -> None:
    """1.0: the key may be any value the cache accepts (a tuple for a dict)."""

    class ByFirstArgument(FuncCallIdentifierBase):
        def identify(self, context):
            return (context.name, context.arguments["x"])

    calls = []
    cache = DictCache()

    @DecoratorCheckpoint(ByFirstArgument(), cache, on_error="raise")
    def f(x, noise=0):
        calls.append(x)
        return x * 2

    assert (f(3), f(3, noise=1), f(4)) == (6, 6, 8)
    assert calls == [3, 4]
    assert set(cache.data) == {("f", 3), ("f", 4)}


# -- Failures never lose the result --------------------------------------------------


def test_unhashable_argument_names_the_argument_and_its_type(in_tmp) -> None:
    @checkpoint(on_error="raise")
    def f(data, lock):
        return data

    with pytest.raises(HashFailedError, match=r"argument 'lock'.*_thread\.lock.*ignore=\['lock'\]"):
        f(1, threading.Lock())

    @checkpoint
    def g(data, lock):
        return data

    with pytest.warns(HashFailedWarning, match="argument 'lock'"):
        assert g(1, threading.Lock()) == 1

    @checkpoint(on_error="ignore")
    def h(data, lock):
        return data

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert h(1, threading.Lock()) == 1


def test_unpicklable_result_is_returned_with_a_warning_and_no_entry(in_tmp) -> None:
    @checkpoint
    def f():
        return threading.Lock()

    with pytest.warns(CheckpointFailedWarning, match="result is returned but not cached"):
        result = f()
    assert isinstance(result, type(threading.Lock()))
    assert entries(in_tmp / ".checkpointing") == []


def test_raise_policy_carries_the_result_and_leaves_no_broken_entry(in_tmp) -> None:
    @checkpoint(on_error="raise")
    def f():
        return threading.Lock()

    with pytest.raises(CheckpointFailedError) as info:
        f()
    assert info.value.has_result
    assert entries(in_tmp / ".checkpointing") == []
    # The error survives pickling (e.g. across multiprocessing) with its message.
    assert "could not store" in str(
        pickle.loads(pickle.dumps(CheckpointFailedError("could not store", None, False)))
    )


def test_full_disk_on_save_returns_the_result(in_tmp, monkeypatch) -> None:
    import errno
    import os as os_module

    @checkpoint
    def f(x):
        return x * 2

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os_module, "fsync", full)
    with pytest.warns(CheckpointFailedWarning, match="No space left"):
        assert f(21) == 42
    monkeypatch.undo()
    assert [n for n in entries(in_tmp / ".checkpointing")] == []
    assert f(21) == 42  # and now it is stored
    assert len(entries(in_tmp / ".checkpointing")) == 1


def test_corrupt_entry_is_a_miss_that_gets_replaced(in_tmp) -> None:
    calls = CallLog()

    @checkpoint
    def f(x):
        calls.append(x)
        return x

    f(1)
    (path,) = (in_tmp / ".checkpointing" / "entries").iterdir()
    path.write_bytes(path.read_bytes()[:10])
    with pytest.warns(CorruptEntryWarning, match=path.name):
        assert f(1) == 1
    assert calls == [1, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert f(1) == 1
    assert calls == [1, 1]


# -- Quiet --------------------------------------------------------------------------


def test_prints_nothing_and_logs_hit_miss_save_at_debug(in_tmp, capsys, caplog) -> None:
    @checkpoint
    def quiet(x):
        return x

    with caplog.at_level(logging.DEBUG, logger="checkpointing"):
        quiet(1)
        quiet(1)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("checkpointing")]
    assert any(m.startswith("miss") and "quiet" in m for m in messages), messages
    assert any(m.startswith("save") and "quiet" in m for m in messages), messages
    assert any(m.startswith("hit") and "quiet" in m for m in messages), messages
    assert all(r.levelno == logging.DEBUG for r in caplog.records)


def test_public_names_and_type_marker() -> None:
    import importlib.resources

    for name in (
        "checkpoint",
        "defaults",
        "DecoratorCheckpoint",
        "FuncCallIdentifierBase",
        "AutoFuncCallIdentifier",
        "CacheBase",
        "PickleFileCache",
        "CheckpointNotExist",
        "FuncCallContext",
    ):
        assert hasattr(checkpointing, name)
    assert (importlib.resources.files("checkpointing") / "py.typed").is_file()
