"""Shared fixtures: a throw-away project directory whose programs run in subprocesses.

The most important tests of checkpointing run a real program twice, edit its files in
between, and check what re-ran. ``Project.run`` returns the names of the function
bodies that executed (each test program prints ``RAN <name>``) and the other output.

Those tests, and every other test that starts a process, carry the ``e2e`` marker,
given here at collection: a test that uses the ``project`` fixture, or whose code (or
a fixture's, or a helper's of its own test module, transitively) names ``subprocess``.
``pytest -m "not e2e"`` is the inner loop (seconds); CI runs everything. A test that
starts a process without being marked fails, naming the marker, so the split stays
true.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Set

import pytest

import checkpointing

# The moto S3 server and a bucket per test (tests/_s3.py), for the shared-cache tests.
pytest_plugins = ["_s3"]


class Run:
    """The outcome of one program run."""

    def __init__(self, proc: subprocess.CompletedProcess) -> None:
        self.stdout: str = proc.stdout
        self.stderr: str = proc.stderr
        lines = self.stdout.splitlines()
        self.ran: List[str] = [line[4:] for line in lines if line.startswith("RAN ")]
        self.results: List[str] = [line[7:] for line in lines if line.startswith("RESULT ")]

    def __repr__(self) -> str:
        return f"Run(ran={self.ran}, results={self.results}, stderr={self.stderr[-2000:]!r})"


class Project:
    """A directory with a small program, run with the interpreter running the tests."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, relpath: str, text: str) -> Path:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        # The edit must be seen even when it lands within the file system's mtime
        # granularity of the previous write (stale .pyc files would hide it).
        stamp = path.stat().st_mtime + 2 + len(list(self.root.rglob("*.py")))
        os.utime(path, (stamp, stamp))
        return path

    def run(self, *argv: str, env: Optional[Dict[str, str]] = None, expect_ok: bool = True) -> Run:
        args = list(argv) or ["main.py"]
        full_env = dict(os.environ)
        full_env.pop("PYTHONHASHSEED", None)  # each run hashes strings differently
        full_env["PYTHONDONTWRITEBYTECODE"] = "1"
        full_env.update(env or {})
        proc = subprocess.run(
            [sys.executable, *args],
            cwd=self.root,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        result = Run(proc)
        if expect_ok and proc.returncode != 0:
            raise AssertionError(f"program failed ({proc.returncode}):\n{proc.stderr}")
        result.returncode = proc.returncode  # type: ignore[attr-defined]
        return result


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test inside a fresh directory, so ./.checkpointing is private to it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(autouse=True)
def _restore_defaults() -> None:
    saved = dict(checkpointing.defaults)
    yield
    dict.clear(checkpointing.defaults)
    dict.update(checkpointing.defaults, saved)


# -- the e2e marker ------------------------------------------------------------------

_TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
_SPAWNING_MODULES = {"subprocess"}


def _codes(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


def _spawns(obj: Any, seen: Set[int]) -> bool:
    """Does ``obj`` (a test, fixture or helper of ``tests/``) name ``subprocess``,
    directly or through the functions and classes of ``tests/`` it names?"""
    if id(obj) in seen:
        return False
    seen.add(id(obj))
    if isinstance(obj, type):
        return any(
            _spawns(member, seen)
            for member in vars(obj).values()
            if isinstance(member, types.FunctionType)
        )
    code = getattr(obj, "__code__", None)
    if code is None or not code.co_filename.startswith(_TESTS_DIR):
        return False
    namespace = obj.__globals__
    for inner in _codes(code):
        for name in inner.co_names:
            if name in _SPAWNING_MODULES:
                return True
            value = namespace.get(name)
            if isinstance(value, types.ModuleType) and value.__name__ in _SPAWNING_MODULES:
                return True
            if isinstance(value, (types.FunctionType, type)) and _spawns(value, seen):
                return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    faults = os.path.join(_TESTS_DIR, "faults") + os.sep
    for item in items:
        # The fault-injection suite kills, forks and spawns processes throughout.
        if "project" in getattr(item, "fixturenames", ()) or str(
            getattr(item, "path", "")
        ).startswith(faults):
            item.add_marker(pytest.mark.e2e)
            continue
        seen: Set[int] = set()
        candidates = [getattr(item, "function", None)]
        info = getattr(item, "_fixtureinfo", None)
        for defs in (getattr(info, "name2fixturedefs", None) or {}).values():
            candidates.extend(d.func for d in defs)
        if any(c is not None and _spawns(c, seen) for c in candidates):
            item.add_marker(pytest.mark.e2e)


_SPAWN_EVENTS = {
    "subprocess.Popen",
    "os.system",
    "os.posix_spawn",
    "os.exec",
    "os.fork",
    "os.spawn",
}
_spawned: Optional[List[str]] = None  # events seen while an unmarked test runs


def _audit(event: str, args: Any) -> None:
    if _spawned is not None and event in _SPAWN_EVENTS:
        _spawned.append(event)


sys.addaudithook(_audit)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    global _spawned
    unmarked = item.get_closest_marker("e2e") is None
    _spawned = [] if unmarked else None
    try:
        outcome = yield
    finally:
        events, _spawned = _spawned, None
    if events and outcome.excinfo is None:
        raise AssertionError(
            f"{item.nodeid} started a process ({events[0]}) but is not marked e2e: "
            "mark it @pytest.mark.e2e (or let it use the `project` fixture)"
        )


# The fault-injection figures of xdist workers (tests/faults/conftest.py records them in
# the process that ran the test; under ``pytest -n`` that is a worker, which hands them
# over when it finishes).
_WORKER_FIGURES: List[str] = []


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    _WORKER_FIGURES.extend(getattr(node, "workeroutput", {}).get("fault_figures", ()))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _WORKER_FIGURES:
        terminalreporter.section("fault-injection figures")
        for line in sorted(_WORKER_FIGURES):
            terminalreporter.write_line(line)
