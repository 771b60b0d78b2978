"""Upgrading from checkpointing 1.0.1 without changing a line (issue 16).

* every import path and public name of 1.0.1 imports, and names the one object of
  this package (thin re-export modules, no second implementation);
* programs written against 1.0's extension API (an identifier that keys by the
  function's name, a dict-backed cache, non-str keys, ``get_nonlocal_variable``) run
  unchanged, twice, in subprocesses;
* a cache directory written by the real checkpointing 1.0.1 (installed in a venv of
  its own) is upgraded in place: its files are never served, ``ls``/``verify`` mention
  them, ``clear`` removes them.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

import checkpointing
from checkpointing import (
    CheckpointNotExist,
    DecoratorCheckpoint,
    FuncCallContext,
    FuncCallIdentifierBase,
    InMemoryLRUCache,
)

# -- the public names of 1.0.1 ----------------------------------------------------------

# Every module of the checkpointing==1.0.1 wheel and the public names it holds that are
# objects of the package (its classes, functions, TypeVars, `defaults`, `logger`), as
# listed by walking the installed 1.0.1 package (pkgutil.walk_packages + vars()).
INVENTORY_1_0_1: Dict[str, List[str]] = {
    "checkpointing": [
        "AutoFuncCallIdentifier",
        "CacheBase",
        "CheckpointNotExist",
        "ContextId",
        "DecoratorCheckpoint",
        "FuncCallIdentifierBase",
        "PickleFileCache",
        "ReturnValue",
        "checkpoint",
        "defaults",
    ],
    "checkpointing._typing": ["ContextId", "ReturnValue"],
    "checkpointing.cache": ["CacheBase", "InMemoryLRUCache", "PickleFileCache"],
    "checkpointing.cache.base": [
        "CacheBase",
        "CacheSubclass",
        "CheckpointNotExist",
        "ContextId",
        "ReturnValue",
        "SynchronizedCache",
    ],
    "checkpointing.cache.in_mem_lru": [
        "CacheBase",
        "CheckpointNotExist",
        "ContextId",
        "InMemoryLRUCache",
        "ReturnValue",
    ],
    "checkpointing.cache.pickle_file": [
        "CacheBase",
        "CheckpointNotExist",
        "PickleFileCache",
        "ReturnValue",
        "defaults",
    ],
    "checkpointing.config": ["defaults"],
    "checkpointing.decorator": ["DecoratorCheckpoint", "checkpoint"],
    "checkpointing.decorator.base": [
        "CacheBase",
        "CheckpointFailedError",
        "CheckpointFailedWarning",
        "CheckpointNotExist",
        "ContextId",
        "DecoratorCheckpoint",
        "ExpensiveOverheadWarning",
        "FuncCallContext",
        "FuncCallIdentifierBase",
        "ReturnValue",
        "Timer",
        "defaults",
        "logger",
        "timed_run",
    ],
    "checkpointing.decorator.default": [
        "AutoFuncCallIdentifier",
        "DecoratorCheckpoint",
        "PickleFileCache",
        "checkpoint",
    ],
    "checkpointing.exceptions": [
        "CheckpointFailedError",
        "CheckpointFailedWarning",
        "CheckpointNotExist",
        "ExpensiveOverheadWarning",
        "GlobalStatementError",
        "HashFailedError",
        "HashFailedWarning",
        "NonlocalStatementError",
        "RefactorFailedError",
    ],
    "checkpointing.hash": ["HashStream", "defaults", "hash_anything", "hash_generic"],
    "checkpointing.hash.generic": [
        "FunctionDefinitionUnifier",
        "HashFailedWarning",
        "HashStream",
        "hash_generic",
        "hash_string",
        "hash_with_dill",
        "hash_with_pickle",
        "hash_with_qualname",
        "logger",
    ],
    "checkpointing.hash.stream": ["HashStream", "defaults"],
    "checkpointing.identifier": [
        "AutoFuncCallIdentifier",
        "FuncCallContext",
        "FuncCallIdentifierBase",
    ],
    "checkpointing.identifier.func_call": [
        "AutoFuncCallIdentifier",
        "FuncCallContext",
        "FuncCallIdentifierBase",
    ],
    "checkpointing.identifier.func_call.auto": [
        "AutoFuncCallIdentifier",
        "ContextId",
        "FuncCallContext",
        "FuncCallIdentifierBase",
        "FunctionDefinitionUnifier",
        "GlobalStatementError",
        "NonlocalStatementError",
        "defaults",
        "hash_anything",
    ],
    "checkpointing.identifier.func_call.base": [
        "ContextId",
        "FuncCallContext",
        "FuncCallIdentifierBase",
    ],
    "checkpointing.identifier.func_call.context": ["FuncCallContext", "ReturnValue"],
    "checkpointing.logging": ["logger"],
    "checkpointing.refactor": [],
    "checkpointing.refactor.funcdef": [
        "FunctionDefinitionUnifier",
        "RefactorFailedError",
        "local_variable_names_generator",
        "nonlocal_variable_names_generator",
    ],
    "checkpointing.refactor.util": [
        "local_variable_names_generator",
        "nonlocal_variable_names_generator",
    ],
    "checkpointing.util": [],
    "checkpointing.util.pickle": ["dump", "load"],
    "checkpointing.util.timing": ["ReturnValue", "Timer", "timed_run"],
}

# 1.0's internals that have no counterpart, and why (docs/migrating.md says the same).
UNMAPPED_MODULES = {
    # 1.0's normalizer of one function's source; replaced by the dependency analysis.
    "checkpointing.refactor",
    "checkpointing.refactor.funcdef",
    "checkpointing.refactor.util",
    # hashing by pickle, then dill, then repr; values are digested by checkpointing.hashing.
    "checkpointing.hash.generic",
    "checkpointing.hash.stream",
    # private helpers of 1.0 (a pickle wrapper, a stopwatch).
    "checkpointing.util",
    "checkpointing.util.pickle",
    "checkpointing.util.timing",
}
UNMAPPED_NAMES = {
    ("checkpointing.hash", "HashStream"),
    ("checkpointing.hash", "hash_generic"),
    ("checkpointing.decorator.base", "Timer"),
    ("checkpointing.decorator.base", "timed_run"),
    ("checkpointing.identifier.func_call.auto", "FunctionDefinitionUnifier"),
}

MAPPED: List[Tuple[str, str]] = [
    (module, name)
    for module, names in INVENTORY_1_0_1.items()
    if module not in UNMAPPED_MODULES
    for name in names
    if (module, name) not in UNMAPPED_NAMES
]


@pytest.mark.parametrize("module", [m for m in INVENTORY_1_0_1 if m not in UNMAPPED_MODULES])
def test_every_1_0_module_imports(module: str) -> None:
    importlib.import_module(module)


@pytest.mark.parametrize("module,name", MAPPED, ids=[f"{m}.{n}" for m, n in MAPPED])
def test_every_1_0_name_is_the_one_object_of_this_package(module: str, name: str) -> None:
    exec(f"from {module} import {name}", {})  # the import statement a 1.0 user wrote
    obj = getattr(importlib.import_module(module), name)
    # The same name in every 1.0 module is one object, the top-level one where there is
    # one: re-exports, never a second implementation.
    others = {id(getattr(importlib.import_module(m), name)) for m, n in MAPPED if n == name}
    assert others == {id(obj)}
    if hasattr(checkpointing, name):
        assert obj is getattr(checkpointing, name)


def test_unmapped_1_0_modules_fail_with_an_import_error() -> None:
    """What is not provided is said plainly (ImportError), not half-provided."""
    for module in sorted(UNMAPPED_MODULES):
        with pytest.raises(ImportError):
            importlib.import_module(module)
    assert UNMAPPED_NAMES.isdisjoint(MAPPED)


def test_old_exception_names_are_this_package_s_exceptions() -> None:
    from checkpointing.exceptions import (
        GlobalStatementError,
        NonlocalStatementError,
        RefactorFailedError,
    )

    for cls in (GlobalStatementError, NonlocalStatementError, RefactorFailedError):
        assert issubclass(cls, checkpointing.CheckpointError) and issubclass(cls, RuntimeError)


def test_hash_anything_digests_equal_values_equally() -> None:
    from checkpointing.hash import hash_anything

    assert hash_anything(0, "hello", [1, {"a": "b"}]) == hash_anything(0, "hello", [1, {"a": "b"}])
    assert hash_anything(0, "hello") != hash_anything(0, "hellO")
    assert re.fullmatch(r"[0-9a-f]{32}", hash_anything(1))
    assert len(hash_anything(1, algorithm="sha256")) == 64


# -- InMemoryLRUCache and FuncCallContext as 1.0 documents them ----------------------------


def test_in_memory_lru_cache_drops_the_least_recently_used() -> None:
    cache = InMemoryLRUCache(maxsize=2)
    value = ["mutable"]
    cache.save(("f", 1), value)
    cache.save(("f", 2), "two")
    assert cache.retrieve(("f", 1)) is value  # the object itself, as in 1.0
    cache.save(("f", 3), "three")  # ("f", 2) is now the least recently used
    with pytest.raises(CheckpointNotExist):
        cache.retrieve(("f", 2))
    assert cache.retrieve(("f", 1)) is value and cache.retrieve(("f", 3)) == "three"
    unbounded = InMemoryLRUCache()
    for i in range(1000):
        unbounded.save(i, i)
    assert len(unbounded) == 1000 and unbounded.retrieve(0) == 0
    with pytest.raises(checkpointing.ConfigurationError, match="maxsize"):
        InMemoryLRUCache(-1)


def test_in_memory_lru_cache_under_threads_keeps_its_bound() -> None:
    cache = InMemoryLRUCache(maxsize=8)

    def work(offset: int) -> None:
        for i in range(2000):
            cache.save(offset + i % 20, i)
            try:
                cache.retrieve(offset + (i * 7) % 20)
            except CheckpointNotExist:
                pass

    threads = [threading.Thread(target=work, args=(k * 100,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 8


def test_cache_base_is_generic_in_key_and_result_as_in_1_0() -> None:
    from checkpointing.cache.base import CacheBase, ContextId, ReturnValue
    from checkpointing.identifier import AutoFuncCallIdentifier

    class Generic10(CacheBase[ContextId, ReturnValue]):  # 1.0's own spelling
        def __init__(self) -> None:
            self.d: dict = {}

        def save(self, context_id, result) -> None:
            self.d[context_id] = result

        def retrieve(self, context_id):
            if context_id not in self.d:
                raise CheckpointNotExist
            return self.d[context_id]

    class Ints(Generic10, CacheBase[str, int]):
        pass

    cache = Ints()

    @DecoratorCheckpoint(AutoFuncCallIdentifier(), cache, on_error="raise")
    def f(x: int) -> int:
        return x * 10

    assert (f(1), f(1), f(2)) == (10, 10, 20)
    assert sorted(cache.d.values()) == [10, 20]
    cache.d[f.key(1)] = -1  # a hit is served from this cache
    assert f(1) == -1


SCALE = 3


def test_func_call_context_reads_nonlocal_variables_as_1_0_documents() -> None:
    def outer():
        offset = 10

        def inner(x):
            return x * SCALE + offset

        return inner, inspect.currentframe()

    inner, frame = outer()
    context = FuncCallContext(inner, (1,), {})
    assert context.get_nonlocal_variable("offset") == 10  # its closure
    assert context.get_nonlocal_variable("SCALE") == 3  # its module's globals
    assert context.get_nonlocal_variable("missing") is None
    with_frame = FuncCallContext(inner, (1,), {}, frame)
    assert with_frame.get_nonlocal_variable("inner") is inner  # the defining frame's locals
    assert with_frame.arguments == {"x": 1}


def test_a_tuple_key_with_in_memory_lru_cache_is_served() -> None:
    class ByArguments(FuncCallIdentifierBase):
        def identify(self, context):
            return (context.full_name, tuple(sorted(context.arguments.items())))

    calls = []

    @DecoratorCheckpoint(ByArguments(), InMemoryLRUCache(maxsize=1), on_error="raise")
    def f(x):
        calls.append(x)
        return x + 1

    assert [f(1), f(1), f(2), f(2), f(1)] == [2, 2, 3, 3, 2]
    assert calls == [1, 2, 1]  # maxsize=1: f(2) dropped the entry of f(1)


# -- 1.0's extension examples, as programs run twice -----------------------------------------


def test_identifier_keyed_by_function_name_runs_unchanged(project) -> None:
    """1.0's docs: an identifier keying by ``context.name`` with a PickleFileCache reruns
    the function only when it is renamed."""
    program = """
        from checkpointing import DecoratorCheckpoint, FuncCallIdentifierBase, PickleFileCache

        class ByName(FuncCallIdentifierBase):
            def identify(self, context):
                return context.name

        @DecoratorCheckpoint(ByName(), PickleFileCache())
        def {name}(n):
            print("RAN {name}")
            return n * {factor}

        print("RESULT", {name}(5))
        """
    project.write("main.py", program.format(name="total", factor=2))
    first = project.run()
    assert first.ran == ["total"] and first.results == ["10"], first
    second = project.run()
    assert second.ran == [] and second.results == ["10"], second
    # The key is the name only: a new body is not a new key (what this identifier asks).
    project.write("main.py", program.format(name="total", factor=3))
    assert project.run().results == ["10"]
    project.write("main.py", program.format(name="grand_total", factor=3))
    renamed = project.run()
    assert renamed.ran == ["grand_total"] and renamed.results == ["15"], renamed
    assert "Warning" not in first.stderr + second.stderr + renamed.stderr


def test_dict_backed_cache_runs_unchanged_and_gets_tracking(project) -> None:
    """1.0's docs: a CacheBase over a dict with the default identifier. Its keys are
    hexdigest strings, results live in memory, and helpers are now tracked."""
    project.write("helpers.py", "def weight():\n    return 2\n")
    project.write(
        "main.py",
        """
        from checkpointing import (DecoratorCheckpoint, CacheBase, AutoFuncCallIdentifier,
                                   CheckpointNotExist)
        from helpers import weight

        class InDict(CacheBase):
            def __init__(self):
                self.entries = {}

            def save(self, context_id, result):
                self.entries[context_id] = result

            def retrieve(self, context_id):
                if context_id in self.entries:
                    return self.entries[context_id]
                raise CheckpointNotExist

        store = InDict()

        @DecoratorCheckpoint(AutoFuncCallIdentifier(), store)
        def scaled(x):
            print("RAN scaled")
            return x * weight()

        print("RESULT", scaled(4))
        print("RESULT", scaled(4))
        print("RESULT", all(isinstance(k, str) and len(k) == 32 for k in store.entries))
        """,
    )
    first = project.run()
    assert first.ran == ["scaled"] and first.results == ["8", "8", "True"], first
    second = project.run()  # in memory: nothing survives the process
    assert second.ran == ["scaled"] and second.results == ["8", "8", "True"], second
    project.write("helpers.py", "def weight():\n    return 5\n")
    edited = project.run()
    assert edited.results == ["20", "20", "True"], edited
    assert "Warning" not in first.stderr + second.stderr + edited.stderr


def test_identifier_reading_a_nonlocal_variable_runs_unchanged(project) -> None:
    program = """
        from checkpointing import DecoratorCheckpoint, FuncCallIdentifierBase, PickleFileCache

        RATE = {rate}

        class ByNameAndRate(FuncCallIdentifierBase):
            def identify(self, context):
                return f"{{context.name}}-{{context.get_nonlocal_variable('RATE')}}"

        @DecoratorCheckpoint(ByNameAndRate(), PickleFileCache())
        def price(n):
            print("RAN price")
            return n * RATE

        print("RESULT", price(10))
        """
    project.write("main.py", program.format(rate=2))
    assert project.run().ran == ["price"]
    again = project.run()
    assert again.ran == [] and again.results == ["20"], again
    project.write("main.py", program.format(rate=3))
    changed = project.run()
    assert changed.ran == ["price"] and changed.results == ["30"], changed


def test_a_tuple_key_with_the_file_cache_says_how_to_fix_it(project) -> None:
    project.write(
        "main.py",
        """
        from checkpointing import DecoratorCheckpoint, FuncCallIdentifierBase, PickleFileCache

        class ByTuple(FuncCallIdentifierBase):
            def identify(self, context):
                return (context.name, context.arguments["n"])

        @DecoratorCheckpoint(ByTuple(), PickleFileCache())
        def twice(n):
            print("RAN twice")
            return 2 * n

        print("RESULT", twice(4))
        """,
    )
    run = project.run()
    assert run.ran == ["twice"] and run.results == ["8"], run  # the result is never lost
    assert (
        "PickleFileCache names files after keys and takes only a non-empty str" in run.stderr
        and "InMemoryLRUCache" in run.stderr
    ), run.stderr
    assert not (project.root / ".checkpointing" / "entries").exists()


# -- a directory written by the real checkpointing 1.0.1 ---------------------------------------


def _wheels_of_1_0_1(request: pytest.FixtureRequest) -> Path:
    """checkpointing 1.0.1 and dill as wheels, downloaded once into pytest's cache dir
    (benchmarks/.work/ when the cache plugin is off)."""
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        folder = Path(str(cache.mkdir("checkpointing-1.0.1-wheels")))
    else:
        folder = (
            Path(__file__).resolve().parent.parent
            / "benchmarks"
            / ".work"
            / "checkpointing-1.0.1-wheels"
        )
        folder.mkdir(parents=True, exist_ok=True)
    if not list(folder.glob("checkpointing-1.0.1-*.whl")) or not list(folder.glob("dill-*")):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--disable-pip-version-check",
                "--only-binary",
                ":all:",
                "--ignore-requires-python",
                "--python-version",
                "3.11",
                "checkpointing==1.0.1",
                "-d",
                str(folder),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if proc.returncode != 0:
            pytest.fail(
                "could not download checkpointing==1.0.1 and dill from PyPI into "
                f"{folder} (needed once, then cached):\n{proc.stderr[-3000:]}"
            )
    return folder


def _python_for_1_0_1() -> str:
    """An interpreter checkpointing 1.0.1 runs on: it requires Python <= 3.12 (on 3.13 it
    fails copying frame locals, a FrameLocalsProxy there). This one if it fits, else an
    older one from PATH or pyenv; only 1.0's side of the test runs on it."""
    if sys.version_info < (3, 13):
        return sys.executable
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = sorted((str(p / "bin" / "python") for p in pyenv.glob("3.1[0-2].*")), reverse=True)
    candidates += [str(p / "bin" / "python") for p in pyenv.glob("3.9.*")]
    candidates += [shutil.which(f"python3.{minor}") for minor in (12, 11, 10, 9)]
    for candidate in candidates:
        if (
            candidate
            and os.path.exists(candidate)
            and subprocess.run(
                [candidate, "-c", "import sys; assert sys.version_info < (3, 13)"],
                capture_output=True,
                timeout=60,
            ).returncode
            == 0
        ):
            return candidate
    pytest.skip(
        "checkpointing 1.0.1 runs on Python <= 3.12 only, and none was found on "
        "PATH or in pyenv to write the 1.0 cache folder this test upgrades"
    )


def _venv_with_1_0_1(request: pytest.FixtureRequest, where: Path) -> Path:
    wheels = _wheels_of_1_0_1(request)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_REQUIRE_VIRTUALENV")}
    subprocess.run(
        [_python_for_1_0_1(), "-m", "venv", str(where)],
        check=True,
        env=env,
        capture_output=True,
        timeout=300,
    )
    python = where / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    proc = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-index",
            "--ignore-requires-python",
            "--find-links",
            str(wheels),
            "checkpointing==1.0.1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"could not install checkpointing 1.0.1 from {wheels} into {where}:\n"
            f"{proc.stderr[-3000:]}"
        )
    return python


PROGRAM_1_0 = """
    from checkpointing import checkpoint

    @checkpoint
    def area(w, h):
        print("RAN area")
        return {"area": w * h}

    print("RESULT", area(3, 4)["area"])
    """


def test_a_directory_used_by_1_0_1_upgrades_in_place(project, request, tmp_path_factory) -> None:
    python_1_0 = _venv_with_1_0_1(request, tmp_path_factory.mktemp("venv") / "cp10")
    project.write("main.py", PROGRAM_1_0)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    def run_1_0() -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(python_1_0), "main.py"],
            cwd=project.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    version = subprocess.run(
        [str(python_1_0), "-c", "import checkpointing, sys; print(checkpointing.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert str(python_1_0.parent.parent) in version.stdout, version  # 1.0 is what ran
    first, again = run_1_0(), run_1_0()
    assert first.returncode == 0 and "RAN area" in first.stdout, first.stderr
    assert "RAN area" not in again.stdout and "RESULT 12" in again.stdout, again
    cache = project.root / ".checkpointing"
    old_files = sorted(p.name for p in cache.iterdir())
    assert len(old_files) == 1 and re.fullmatch(r"[0-9a-f]{32}\.pickle", old_files[0])

    upgraded = project.run()  # this package, on the same directory: 1.0's file not served
    assert upgraded.ran == ["area"] and upgraded.results == ["12"], upgraded
    assert project.run().ran == []
    assert (cache / old_files[0]).exists()  # left alone until clear

    def cli(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "checkpointing", *argv],
            cwd=project.root,
            capture_output=True,
            text=True,
            timeout=120,
        )

    note = "1 files of checkpointing 1.0"
    listing = cli("ls")
    assert listing.returncode == 0 and "__main__:area" in listing.stdout, listing
    assert note in listing.stdout and "'checkpointing clear' removes them" in listing.stdout
    verify = cli("verify")
    assert verify.returncode == 0 and note in verify.stdout, verify
    assert "0 corrupt" in verify.stdout
    assert cli("verify", "--json").stdout.count('"legacy_1_0_files": 1') == 1
    cleared = cli("clear", "--yes")
    assert cleared.returncode == 0, cleared
    assert "deleted 1 entries" in cleared.stdout
    assert "deleted 1 files of checkpointing 1.0" in cleared.stdout, cleared
    assert not (cache / old_files[0]).exists()
    assert note not in cli("ls").stdout + cli("verify").stdout
    assert project.run().ran == ["area"]  # cleared means cleared
