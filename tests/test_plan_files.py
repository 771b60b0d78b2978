"""Files of stored analysis: their encoding, their checks, and their names.

A plan decides what a key covers, so a plan file is used only once it passed every
check (trusted file, checksum, its own name, a body that decodes to a plan); anything
else is ignored and the function analysed again (tests/test_analysis_cache.py and
tests/faults/ run whole programs on damaged plans). These tests pin the layer below:
what :func:`read_plan_file` accepts and refuses, and how files are named.
"""

from __future__ import annotations

import json
import marshal
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import xxhash

from checkpointing.keyplan import (
    ANALYSIS_FORMAT,
    PLAN_SUFFIX,
    _analysis_name,
    _write_plan_file,
    read_plan_file,
)


def _private(tmp_path: Path) -> Path:
    folder = tmp_path / "analysis"
    folder.mkdir(mode=0o700)
    return folder


def _plant(path: Path, body: bytes, encoding: bytes = b" marshal", digest: bytes = b"") -> None:
    """A plan file as read_plan_file reads it, with a checksum that matches ``body``
    unless ``digest`` is given: what only damage *after* the checksum would leave."""
    digest = digest or xxhash.xxh3_128_hexdigest(body).encode()
    path.write_bytes(digest + b" " + path.name.encode() + encoding + b"\n" + body)
    path.chmod(0o600)


def test_a_plan_reads_back_as_json_would_keep_it(tmp_path: Path) -> None:
    """Tuples come back as lists and int keys as str, as through JSON: the code that
    reads plans compares descriptions with lists (``describe(obj) == expected``)."""
    path = _private(tmp_path) / ("a" + PLAN_SUFFIX)
    data = {"format": ANALYSIS_FORMAT, "root": ("function", "m:f", "/m.py", 3), "n": {1: None}}
    assert _write_plan_file(str(path), data)
    assert path.read_bytes().split(b"\n", 1)[0].endswith(b" " + path.name.encode() + b" marshal")
    assert read_plan_file(str(path)) == json.loads(json.dumps(data))
    assert read_plan_file(str(path))["root"] == ["function", "m:f", "/m.py", 3]
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)


def test_a_value_json_cannot_hold_is_refused_when_written(tmp_path: Path) -> None:
    """marshal would store a set; JSON never could: a plan holding one is a bug of the
    analysis, found when it is written, not a file read back differently."""
    path = _private(tmp_path) / ("a" + PLAN_SUFFIX)
    with pytest.raises(TypeError):
        _write_plan_file(str(path), {"format": ANALYSIS_FORMAT, "names": {"a", "b"}})
    assert not path.exists()


def test_a_plan_file_of_an_earlier_version_in_json_is_still_read(tmp_path: Path) -> None:
    """``checkpointing verify`` reads every file in ``analysis/``: those an earlier
    version wrote (a first line of two fields, a JSON body) are valid files still."""
    path = _private(tmp_path) / "b.json"
    _plant(path, json.dumps({"format": 6, "plans": {}}).encode(), encoding=b"")
    assert read_plan_file(str(path)) == {"format": 6, "plans": {}}


@pytest.mark.parametrize(
    "body, encoding, why",
    [
        (marshal.dumps({"format": ANALYSIS_FORMAT, "root": ["x"] * 50})[:-7], b" marshal", "torn"),
        (marshal.dumps(["format", ANALYSIS_FORMAT]), b" marshal", "not a dict"),
        (b"\xff\x00garbage", b" marshal", "not marshal data"),
        (b'{"format": 7}', b" pickle", "unknown encoding"),
        (b"{", b"", "torn JSON"),
    ],
)
def test_a_body_that_is_not_a_plan_is_refused_even_with_a_valid_checksum(
    tmp_path: Path, body: bytes, encoding: bytes, why: str
) -> None:
    path = _private(tmp_path) / ("c" + PLAN_SUFFIX)
    _plant(path, body, encoding)
    with pytest.raises(ValueError):
        read_plan_file(str(path))


def test_a_checksum_or_place_that_does_not_match_is_refused(tmp_path: Path) -> None:
    folder = _private(tmp_path)
    body = marshal.dumps({"format": ANALYSIS_FORMAT})
    wrong = folder / ("d" + PLAN_SUFFIX)
    _plant(wrong, body, digest=b"0" * 32)
    with pytest.raises(ValueError, match="checksum"):
        read_plan_file(str(wrong))
    moved = folder / ("e" + PLAN_SUFFIX)
    _plant(folder / ("f" + PLAN_SUFFIX), body)
    os.replace(folder / ("f" + PLAN_SUFFIX), moved)
    with pytest.raises(ValueError, match="misplaced"):
        read_plan_file(str(moved))


def test_a_plan_file_others_could_write_is_refused(tmp_path: Path) -> None:
    path = _private(tmp_path) / ("g" + PLAN_SUFFIX)
    assert _write_plan_file(str(path), {"format": ANALYSIS_FORMAT})
    path.chmod(0o622)
    with pytest.raises(ValueError, match="not trusted"):
        read_plan_file(str(path))


NAMES = """
import sys
from checkpointing.keyplan import _analysis_name
print(_analysis_name([["function", "m:f", "/p/m.py", 3]]),
      _analysis_name([["function", "m:f", "/p/m.py", 3]], ["local"]),
      _analysis_name([["function", "m:g", "/p/m.py", 3]]),
      _analysis_name(["module", "m"]))
"""


def test_a_plan_file_name_is_a_function_of_what_it_holds(tmp_path: Path) -> None:
    """The same in every process (whatever the hash seed), different for another
    definition, a local plan, another kind of file."""
    names = set()
    for seed in ("1", "2"):
        proc = subprocess.run(
            [sys.executable, "-c", NAMES],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            cwd=tmp_path,
            check=True,
        )
        names.add(proc.stdout)
    (line,) = names
    here = [
        _analysis_name([["function", "m:f", "/p/m.py", 3]]),
        _analysis_name([["function", "m:f", "/p/m.py", 3]], ["local"]),
        _analysis_name([["function", "m:g", "/p/m.py", 3]]),
        _analysis_name(["module", "m"]),
    ]
    assert line.split() == here and len(set(here)) == 4
    assert all(len(n) == 32 and int(n, 16) >= 0 for n in here)


DAMAGED = """
import logging, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format="%(name)s %(message)s")
from checkpointing import checkpoint

@checkpoint
def f(x):
    print("RAN f")
    return x + 1

print("RESULT", f(1))
"""


def test_a_damaged_plan_is_logged_at_debug_and_analysed_again(project) -> None:
    """The stored-plan functions log through a lazy logger (no ``import logging`` on a
    hit): once the program configured logging, a plan not used says why."""
    project.write("main.py", DAMAGED)
    assert project.run().ran == ["f"]
    (plan,) = (project.root / ".checkpointing" / "analysis").glob("*" + PLAN_SUFFIX)
    data = bytearray(plan.read_bytes())
    data[-3] ^= 0x20
    plan.write_bytes(bytes(data))
    again = project.run()
    assert again.ran == [] and again.results == ["2"]
    assert "checkpointing stored analysis" in again.stdout and "checksum" in again.stdout


def test_a_plan_read_back_follows_its_helpers_and_methods(project) -> None:
    """A stored plan's code guards find the root, a helper a global guard found (taken
    directly) and a method of a class (searched among the class's members): each new
    process reuses the plan, and an edit of either re-runs with the value a fresh run
    gives."""
    project.write(
        "lib.py",
        """
        def helper(x):
            return x + 1

        class Scale:
            def apply(self, x):
                return x * 2
        """,
    )
    project.write(
        "main.py",
        """
        from checkpointing import checkpoint
        from lib import helper, Scale

        @checkpoint
        def f(x):
            print("RAN f")
            return helper(x) + Scale().apply(x)

        print("RESULT", f(3))
        """,
    )
    first = project.run()
    assert first.ran == ["f"] and first.results == ["10"]
    again = project.run()
    assert again.ran == [] and again.results == ["10"]
    project.write("lib.py", (project.root / "lib.py").read_text().replace("x * 2", "x * 3"))
    method = project.run()
    assert method.ran == ["f"] and method.results == ["13"]
    assert project.run().ran == []
    project.write("lib.py", (project.root / "lib.py").read_text().replace("x + 1", "x + 2"))
    helper = project.run()
    assert helper.ran == ["f"] and helper.results == ["14"]
    assert project.run().results == ["14"]


def _helper(x):
    return x + 1


class _Scale:
    def apply(self, x):
        return x * 2


def _uses_both(x):
    return _helper(x) + _Scale().apply(x)


def _uses_helper(x):
    return _helper(x) * 2


@pytest.mark.parametrize("func", [_uses_helper, _uses_both])
def test_code_guards_found_directly_are_those_the_index_finds(tmp_path, monkeypatch, func):
    """_code_owner (the root, or a function a global guard found) answers what
    _Functions answers, guard for guard; with a class among the definitions found it
    leaves the search to _Functions."""
    from checkpointing import keyplan

    directory = str(_private(tmp_path))
    keyplan.plan_for(func, directory)
    data = read_plan_file(keyplan._plan_path(func, directory))
    codes = [g for g in data["guards"] if g[0] == "code"]
    assert len(codes) >= 2  # the root and _helper (and _Scale.apply)
    answered = []
    original = keyplan._code_owner
    monkeypatch.setattr(
        keyplan, "_code_owner", lambda *args: answered.append(original(*args)) or answered[-1]
    )
    direct = keyplan._rebuild(func, data)
    # Without a class found, every code guard is answered directly; with one, none is.
    taken = [owner for owner in answered if owner is not None]
    assert len(taken) == (len(codes) if func is _uses_helper else 0)
    monkeypatch.setattr(keyplan, "_code_owner", lambda *args: None)
    searched = keyplan._rebuild(func, data)
    assert direct is not None and searched is not None
    assert [g[0] for g in direct._guards] == [g[0] for g in searched._guards]
    assert [g[2] for g in direct._guards] == [g[2] for g in searched._guards]


def _in_young_generations(obj) -> bool:
    import gc

    return any(o is obj for o in gc.get_objects(generation=0) + gc.get_objects(generation=1))


def test_what_building_a_plan_leaves_is_promoted_out_of_young_collections(
    tmp_path, monkeypatch
) -> None:
    """The objects a plan is made of live as long as the process: they are moved to the
    oldest generation as the pause of the collector ends (see keyplan._GCPaused), so no
    young collection traverses them later (2.6 ms of a new process's first tabulate hit
    on 3.13). A walk of a hit's arguments promotes only from many more objects (the
    program's own young objects are promoted with them)."""
    import gc
    import importlib

    from checkpointing import keyplan

    # A plan of 80 helpers, each with its guards and a global it reads: more objects
    # than a young collection's threshold live on after it is built.
    helpers = "".join(
        f"RATE{i} = {i}\n\ndef helper{i}(x):\n    return x + RATE{i}\n\n" for i in range(80)
    )
    calls = " + ".join(f"helper{i}(x)" for i in range(80))
    (tmp_path / "fresh_plan_module.py").write_text(f"{helpers}def root(x):\n    return {calls}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    root = importlib.import_module("fresh_plan_module").root
    gc.collect()
    try:
        plan, _ = keyplan.current(root, str(_private(tmp_path)))
        assert gc.is_tracked(plan) and not _in_young_generations(plan)
    finally:
        keyplan._PLANS.pop(root, None)
        sys.modules.pop("fresh_plan_module", None)

    gc.collect()
    with keyplan._GCPaused():  # a walk's pause
        in_walk = [[i] for i in range(2_000)]
    assert _in_young_generations(in_walk[0])
    with keyplan._GCPaused(keyplan._PROMOTE_AFTER_PLANS):
        in_plan = [[i] for i in range(2_000)]
    assert not _in_young_generations(in_plan[0])


def test_a_class_indexed_once_is_indexed_again_when_its_members_change() -> None:
    """_Functions indexes a class's methods once per class while the class holds the
    same member objects: a method replaced by another function that describes the same
    (a copy of its code) is what a later index finds, and of two members that describe
    the same, the first in the class's order wins, as it did before the index."""
    from checkpointing import keyplan

    class Holder:
        def method(self):
            return 1

    original = Holder.__dict__["method"]
    expected = keyplan.describe(original)
    assert keyplan._Functions(Holder, {}).get(expected) is original
    copy = types.FunctionType(original.__code__, original.__globals__, "method")
    copy.__qualname__ = original.__qualname__
    Holder.method = copy
    assert keyplan._Functions(Holder, {}).get(expected) is copy
    Holder.alias = original  # after ``method`` in the class's order
    assert keyplan._Functions(Holder, {}).get(expected) is copy
    # The root comes before the members of a class found after it.
    assert keyplan._Functions(original, {"holder": Holder}).get(expected) is original
