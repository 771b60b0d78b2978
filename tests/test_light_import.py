"""``import checkpointing`` stays light (issue 12, target 5): what only decorating,
misses, analysis, drawing or the command line need is imported there, not at import.

The time itself is measured by ``benchmarks/suite.py`` (fresh-process table); these
tests pin down which modules a bare import loads, and that the deferred logger
behaves like a plain one once the application configures logging.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checkpointing._lazylog import DEBUG, INFO, WARNING, LazyLogger
from checkpointing.store.format import _WINDOWS_RESERVED, _file_stem

# Heavy modules (a few ms each) that only decorating, a miss, the analyzer, graph
# drawing or the command line need.
DEFERRED = [
    "logging",
    "inspect",
    "json",
    "datetime",
    "subprocess",
    "shutil",
    "ast",
    "networkx",
    "checkpointing.keyplan",
    "checkpointing.depgraph",
    "checkpointing.analysis.resolve",
    "checkpointing.analysis.canon",
    "checkpointing.cli",
    "glob",  # inputs= patterns, matched at a miss
    "checkpointing.render",  # checkpointing.graph and DependencyGraph load at first use
    "checkpointing.store.remote",  # checkpointing.RemoteStore, or a URL given as directory
    "checkpointing.store.evict",  # the usage log: at decoration; prune: at first use
    "checkpointing.store.mapped",  # mmap_mode=, at decoration
    "checkpointing._typing",  # 1.0's type variables, at first use
    "checkpointing.store.locks",  # compute-once locks: a miss's
    "checkpointing.store.compress",  # compress=, at decoration; a compressed entry, at its read
    "checkpointing.store.memory",  # checkpointing.InMemoryLRUCache, at first use
    "checkpointing.store.history",  # a function's history: a miss's, why's, the CLI's
    "checkpointing.store.variants",  # a key's variants: a save's with checks, a stale hit's
    "checkpointing.runtime",  # what a miss records
    "checkpointing.checks",  # what a hit of an entry with run-time checks checks
    "checkpointing.explanation",  # checkpointing.explain, at first use; why a miss ran
    "checkpointing.store.entryinfo",  # a listing's entries (a named tuple: collections)
]

# Standard modules a hit does not need, and that ``import checkpointing`` must not load
# (unless the interpreter's own start-up did): typing (and what it imports), re and
# enum (pickle.py imports re; the store uses _pickle), importlib.util (it imports
# typing on 3.9), threading (the locks are _thread's) and contextlib. About 8 ms of the
# 12 ms budget together (issue 12, target 5).
NOT_LOADED = [
    "typing",
    "re",
    "enum",
    "pickle",
    "importlib.util",
    "contextlib",
    "inspect",
    "logging",
    "importlib",  # the import hook uses the loaded importlib (importlib imports warnings)
    "struct",  # the store and the hasher use _struct, which struct.py re-exports
]
if sys.version_info < (3, 12):  # from 3.12 sysconfig (the source index's) imports it
    NOT_LOADED.append("threading")
    NOT_LOADED.append("warnings")  # report.warn imports it (threading does, from 3.12)


def _python(code: str, cwd: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=cwd
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout + proc.stderr


def test_import_loads_none_of_the_deferred_modules(tmp_path) -> None:
    out = _python(
        f"import sys, checkpointing\nprint(sorted(m for m in {DEFERRED!r} if m in sys.modules))\n",
        str(tmp_path),
    )
    assert out.strip().splitlines()[-1] == "[]", out


def test_logging_configured_after_the_import_gets_the_records(tmp_path) -> None:
    code = (
        "import checkpointing, logging, sys\n"
        "logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format='%(name)s %(message)s')\n"
        "@checkpointing.checkpoint()\n"
        "def f(x):\n"
        "    return x + 1\n"
        "print('RESULT', f(1), f(1))\n"
    )
    out = _python(code, str(tmp_path))
    assert "RESULT 2 2" in out
    assert "checkpointing.decorator miss: __main__:f" in out, out
    assert "checkpointing.decorator hit: __main__:f" in out, out


def test_lazy_logger_without_logging_imported_drops_below_warning(monkeypatch) -> None:
    import logging

    logger = LazyLogger("checkpointing.test_lazy")
    # As if nothing had imported logging: nothing can have configured it.
    monkeypatch.delitem(sys.modules, "logging")
    assert not logger.isEnabledFor(DEBUG)
    assert not logger.isEnabledFor(INFO)
    assert logger.isEnabledFor(WARNING)
    logger.debug("dropped %s", 1)  # must not import logging back
    assert "logging" not in sys.modules
    monkeypatch.setitem(sys.modules, "logging", logging)
    real = logging.getLogger("checkpointing.test_lazy")
    monkeypatch.setattr(real, "level", logging.DEBUG)
    assert logger.isEnabledFor(DEBUG)


@pytest.mark.parametrize("level", [DEBUG, INFO, WARNING])
def test_lazy_logger_follows_the_configured_level(level, caplog) -> None:
    logger = LazyLogger("checkpointing.test_levels")
    with caplog.at_level(level, logger="checkpointing.test_levels"):
        logger.debug("d")
        logger.info("i")
        logger.warning("w")
    got = [r.getMessage() for r in caplog.records if r.name == "checkpointing.test_levels"]
    expected = [m for m, lv in (("d", DEBUG), ("i", INFO), ("w", WARNING)) if lv >= level]
    assert got == expected
    # The record names the caller's line, as a plain logger's would.
    assert all(r.filename == "test_light_import.py" for r in caplog.records)


def test_lazy_public_names_are_the_package_attributes(tmp_path) -> None:
    """``graph``, ``DependencyGraph`` and ``RemoteStore`` load at first use, under the
    package's name, and ``from checkpointing import *`` still gives them."""
    out = _python(
        "import checkpointing\n"
        "names = {}\n"
        "exec('from checkpointing import *', names)\n"
        "print(all(n in names for n in checkpointing.__all__))\n"
        "from checkpointing.render import graph\n"
        "from checkpointing.store.remote import RemoteStore\n"
        "print(checkpointing.graph is graph, checkpointing.RemoteStore is RemoteStore)\n"
        "print(RemoteStore.__module__, 'RemoteStore' in dir(checkpointing))\n",
        str(tmp_path),
    )
    assert out.split() == ["True", "True", "True", "checkpointing", "True"], out


def test_import_compiles_no_annotation(tmp_path) -> None:
    """No string annotation becomes a typing ForwardRef at import (one per field of a
    class-syntax NamedTuple under ``from __future__ import annotations``, or
    ``Callable[["Hasher"], ...]``): each is compiled, and the first ``compile()`` of a
    process builds the AST types, about 0.7 ms of the import budget."""
    out = _python(
        "import typing\n"
        "seen = []\n"
        "init = typing.ForwardRef.__init__\n"
        "def record(self, arg, *args, **kwargs):\n"
        "    seen.append(arg)\n"
        "    init(self, arg, *args, **kwargs)\n"
        "typing.ForwardRef.__init__ = record\n"
        "import checkpointing\n"
        "print(seen)\n",
        str(tmp_path),
    )
    assert out.strip().splitlines()[-1] == "[]", out


def test_import_loads_no_typing_re_enum_or_pickle(tmp_path) -> None:
    out = _python(
        "import sys\n"
        "before = set(sys.modules)\n"
        "import checkpointing\n"
        f"print(sorted(m for m in {NOT_LOADED!r} if m in sys.modules and m not in before))\n",
        str(tmp_path),
    )
    assert out.strip().splitlines()[-1] == "[]", out


def _run_script(program: Path) -> str:
    """The output of ``python program`` run in its folder (which must succeed)."""
    proc = subprocess.run(
        [sys.executable, str(program)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(program.parent),
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_first_hit_in_a_fresh_process_imports_nothing(tmp_path) -> None:
    """What a hit needs is loaded by the import and the decoration: the first call of a
    new process, answered from the stored analysis and the stored entry, imports no
    module (issue 12, target 5: it stays well under a millisecond), not even logging,
    which nothing on that path needs unless the program imported it."""
    program = tmp_path / "main.py"
    program.write_text(
        "import sys\n"
        "from checkpointing import checkpoint\n"
        "def helper(a, b):\n"
        "    print('RAN f')\n"
        "    return a + b\n"
        "@checkpoint(directory='cache')\n"
        "def f(a, b):\n"
        "    return helper(a, b)\n"
        "before = set(sys.modules)\n"
        "print('VALUE', f(1, 2))\n"
        "print('NEW', sorted(set(sys.modules) - before))\n"
        "print('LOGGING', 'logging' in sys.modules)\n"
    )

    first = _run_script(program)
    assert "RAN f" in first and "VALUE 3" in first, first
    second = _run_script(program)
    assert "RAN f" not in second and "VALUE 3" in second, second
    assert "NEW []" in second and "LOGGING False" in second, second


def test_first_hit_of_an_entry_with_checks_imports_the_checks_alone(tmp_path) -> None:
    """An entry that recorded an input file is verified at a hit by checkpointing.checks,
    without the recorder (checkpointing.runtime, a miss's: 0.4 ms of a first hit); an
    edit of the input is still seen."""
    (tmp_path / "data.txt").write_text("1")
    program = tmp_path / "main.py"
    program.write_text(
        "import sys\n"
        "from checkpointing import checkpoint\n"
        "@checkpoint(directory='cache')\n"
        "def load(path):\n"
        "    print('RAN load')\n"
        "    with open(path) as f:\n"
        "        return int(f.read())\n"
        "before = set(sys.modules)\n"
        "print('VALUE', load('data.txt'))\n"
        "print('NEW', sorted(m for m in set(sys.modules) - before if 'checkpointing' in m))\n"
    )

    assert "RAN load" in _run_script(program)
    hit = _run_script(program)
    assert "RAN load" not in hit and "VALUE 1" in hit, hit
    assert "NEW ['checkpointing.checks']" in hit, hit
    (tmp_path / "data.txt").write_text("22")
    edited = _run_script(program)
    assert "RAN load" in edited and "VALUE 22" in edited, edited


def test_touch_interval_written_out_in_the_decorator_is_the_usage_logs() -> None:
    import checkpointing.decorator as decorator
    from checkpointing.store.evict import TOUCH_INTERVAL

    assert decorator._TOUCH_INTERVAL == TOUCH_INTERVAL


def test_names_made_at_first_use_are_the_real_ones() -> None:
    """Names kept importable for code that used them, now made at first use."""
    import typing

    import checkpointing
    from checkpointing import _typing, hashing, store
    from checkpointing.store import evict

    assert isinstance(checkpointing.ContextId, typing.TypeVar)
    assert checkpointing.ReturnValue is _typing.ReturnValue
    assert checkpointing.prune is evict.prune and evict.prune.__module__ == "checkpointing"
    assert hashing.Encoder == typing.Callable[[hashing.Hasher, typing.Any], None]
    assert hashing.Digester == typing.Callable[[typing.Any], bytes]
    assert store._SAFE_ID.fullmatch("abc") and store._LEGACY_NAME.fullmatch("0" * 32 + ".pickle")
    with pytest.raises(AttributeError):
        hashing.no_such_name  # noqa: B018


def test_cache_base_subscripted_at_run_time() -> None:
    """``CacheBase[K, V]`` without typing at run time: an alias that subclasses as the
    class itself, as typing.Generic's does."""
    from checkpointing import CacheBase, PickleFileCache

    alias = CacheBase[str, int]
    assert alias.__origin__ is CacheBase and alias.__args__ == (str, int)

    class Mine(CacheBase[str, int]):
        def save(self, context_id, result):  # pragma: no cover - not called
            pass

        def retrieve(self, context_id):  # pragma: no cover - not called
            pass

    assert Mine.__mro__[1] is CacheBase and issubclass(PickleFileCache, CacheBase)


_FORMER_SAFE_ID = re.compile(r"[a-z0-9_-][a-z0-9._-]{0,199}")


def _former_file_stem(key: str) -> str:
    """_file_stem as it was written with re (the file names must not change)."""
    import xxhash

    if _FORMER_SAFE_ID.fullmatch(key) is not None and key.split(".", 1)[0] not in _WINDOWS_RESERVED:
        return key
    readable = re.sub(r"[^A-Za-z0-9._-]", "_", key)[:80].lstrip(".") or "id"
    digest = xxhash.xxh3_64_hexdigest(key.encode("utf-8", "surrogatepass"))
    return f"{readable}-{digest}"


_KEY_CHARS = "abcxyzABCXYZ0189._-/ \n\x00é\u0130\u212a\udc80"


@settings(derandomize=True, deadline=None, max_examples=600)
@given(
    st.one_of(
        st.text(alphabet=_KEY_CHARS, min_size=1, max_size=210),
        st.text(min_size=1, max_size=90),
        st.sampled_from(sorted(_WINDOWS_RESERVED)).map(lambda r: r + ".x"),
        st.integers(195, 205).map(lambda n: "a" * n),
    )
)
def test_file_names_without_re_are_the_former_ones(key: str) -> None:
    assert _file_stem(key) == _former_file_stem(key)


def test_decorating_loads_no_typing_or_pickle_module(tmp_path) -> None:
    """The decoration loads the key machinery (and inspect, with re and enum), but not
    typing nor pickle.py: about 2.5 ms more of a program's start (issue 12)."""
    out = _python(
        "import sys\n"
        "before = set(sys.modules)\n"
        "from checkpointing import checkpoint\n"
        "@checkpoint(directory='cache')\n"
        "def f(x):\n"
        "    return x\n"
        "print(sorted(m for m in ['typing', 'pickle'] if m in sys.modules and m not in before))\n",
        str(tmp_path),
    )
    assert out.strip().splitlines()[-1] == "[]", out


def test_the_wrapper_carries_what_functools_wraps_would_copy() -> None:
    """The decorator copies a function's identity onto its wrapper itself (functools is
    not imported for it): the same attributes, the same values, as functools.wraps."""
    import functools

    import checkpointing

    def reference(x: int, y: "list[int]" = []) -> int:  # noqa: B006
        """Adds."""
        return x

    reference.custom = "kept"  # type: ignore[attr-defined]
    wrapped = checkpointing.checkpoint(reference)
    expected = functools.wraps(reference)(lambda *a, **k: None)
    for name in functools.WRAPPER_ASSIGNMENTS:
        assert getattr(wrapped, name) == getattr(expected, name), name
    assert wrapped.__wrapped__ is reference
    assert wrapped.custom == "kept"
    assert wrapped.clear.__wrapped__.__doc__ == wrapped.clear.__doc__
