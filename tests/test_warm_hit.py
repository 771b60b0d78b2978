"""The warm hit's shortcuts (issue 12, target 4) decide nothing the general path would
decide otherwise: a key from the memo of keys by arguments is the key encoding gives,
arguments that are equal but of other types (1, True, 1.0) or edited globals get other
keys, the memo stays bounded, and a hit served from memory is a fresh copy validated
by one ``lstat``.

Speed is measured by ``benchmarks/warm_hit.py`` and ``benchmarks/suite.py``; these
tests pin down behaviour.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from checkpointing import checkpoint, hashing, store
from checkpointing.identify import _MEMO_KEYS, _MEMO_STR

ARGUMENTS = [
    (1, 2),
    (0, -1),
    (1 << 62, -(1 << 63)),
    ("a", ""),
    ("é", "x" * _MEMO_STR),
    ("x" * (_MEMO_STR + 1), 1),  # too long for the memo
    (1 << 70, 1),  # beyond 64 bits: the general encoding
    ("\ud800", 1),  # a lone surrogate: likewise
    (True, 1),
    (1.0, 1),
    (None, b"b"),
]


# Put before a program (``project.write`` dedents it with the rest): records in
# ``probed`` the type of each value the witness of a hit digests again.
COUNT_PROBES = """
        from checkpointing import keyplan

        probed = []
        _probe = keyplan._probe
        keyplan._probe = lambda value: (probed.append(type(value).__name__), _probe(value))[1]
"""


@pytest.fixture
def counted(tmp_path):
    """f(a, b) under checkpoint, its runs counted on the sys module (a global list would
    be a value it reads, in its key)."""
    sys.ckpt_warm_runs = []

    @checkpoint(directory=tmp_path / "c")
    def f(a, b):
        sys.ckpt_warm_runs.append((a, b))
        return [repr(a), repr(b)]

    yield f
    del sys.ckpt_warm_runs


def general_key(f, args) -> str:
    """The key as the general path makes it: the key's fixed part fed the arguments."""
    identifier = f.checkpoint.identifier
    f.key(*args)  # the prefix of the current plan and values
    prefix = identifier._prefixes[f.__wrapped__]
    return prefix[2].hexdigest_with(args)


def test_keys_from_the_memo_are_the_keys_encoding_gives(counted) -> None:
    for args in ARGUMENTS:
        first = counted.key(*args)
        assert counted.key(*args) == first  # the second from the memo, where it applies
        assert first == general_key(counted, args), args
    assert len(set(map(lambda a: counted.key(*a), ARGUMENTS))) == len(ARGUMENTS)


def test_equal_arguments_of_other_types_are_other_calls(counted) -> None:
    """1 == True == 1.0 and hash alike, but they are other arguments: the memo takes
    exact ints and strs only."""
    calls = [(1, 1), (True, 1), (1.0, 1), (1, 1), (True, 1), (1.0, 1), ("1", 1)]
    results = [counted(*args) for args in calls]
    assert results == [[repr(a), repr(b)] for a, b in calls]
    assert sys.ckpt_warm_runs == [(1, 1), (True, 1), (1.0, 1), ("1", 1)]


def test_the_memo_is_bounded_and_keeps_no_long_string(counted) -> None:
    for i in range(3 * _MEMO_KEYS):
        counted.key(i, "s")
    memo = counted.checkpoint.identifier._prefixes[counted.__wrapped__][3]
    assert 0 < len(memo) <= _MEMO_KEYS
    memo.clear()
    counted.key("x" * (_MEMO_STR + 1), 1)
    counted.key(1 << 70, 1)
    assert memo == {}


def test_a_tuple_digester_registered_later_is_used(counted) -> None:
    """A digester of your own for tuples changes how a call's arguments are digested
    (they are a tuple): keys taken from the memo before it must not be served after."""
    before = counted.key(1, 2)
    assert counted.key(1, 2) == before  # memoised
    saved = hashing.core._registry_state()
    try:
        hashing.register_digester(tuple, lambda t: b"one digest for every tuple")
        assert counted.key(1, 2) == counted.key(3, 4) != before
    finally:
        hashing.core._restore_registry(saved)
    assert counted.key(1, 2) == before


def test_a_global_edited_between_hits_is_another_key(project) -> None:
    """The memo belongs to the values digest it was made with: a global rebound, or a
    list mutated in place, between two calls with the same arguments re-runs."""
    project.write(
        "main.py",
        """
        from checkpointing import checkpoint
        import state

        @checkpoint
        def f(a):
            print("RAN f")
            return a * state.K + sum(state.ITEMS)

        print("RESULT", f(2), f(2))
        state.K = 20
        print("RESULT", f(2), f(2))
        state.ITEMS.append(5)
        print("RESULT", f(2), f(2))
        state.K = 10
        state.ITEMS.pop()
        print("RESULT", f(2), f(2))
        """,
    )
    project.write("state.py", "K = 10\nITEMS = [1]\n")
    run = project.run()
    assert run.results == ["21 21", "41 41", "46 46", "21 21"], run
    assert run.ran == ["f"] * 3, run  # the last is the first call's entry again
    again = project.run()
    assert again.results == run.results and again.ran == [], again


def test_a_registry_of_namedtuples_is_checked_without_digesting_it(project) -> None:
    """A hit of a function reading a registry of namedtuples (tabulate's table formats)
    checks their classes and items instead of digesting each again (1.3 ms a hit for
    tabulate); an item mutated in place, or a namedtuple replaced, still re-runs."""
    project.write(
        "main.py",
        COUNT_PROBES
        + """
        from checkpointing import checkpoint
        import formats

        @checkpoint
        def f(a):
            print("RAN f")
            return formats.render(a)

        print("RESULT", f(2))
        probed.clear()
        print("RESULT", f(2))
        print("PROBED", probed)
        formats.FORMATS["plain"].widths.append(3)
        print("RESULT", f(2))
        formats.FORMATS["plain"] = formats.FORMATS["plain"]._replace(sep=";")
        print("RESULT", f(2), f(2))
        """,
    )
    project.write(
        "formats.py",
        """
        from collections import namedtuple

        Format = namedtuple("Format", "sep widths pad")

        def pad(text, width):
            return text.ljust(width)

        FORMATS = {"plain": Format(",", [1, 2], pad), "grid": Format("|", [4], pad)}

        def render(a):
            spec = FORMATS["plain"]
            return spec.sep.join(spec.pad(str(a * w), 2) for w in spec.widths)
        """,
    )
    run = project.run()
    assert run.results == ["2 ,4 ", "2 ,4 ", "2 ,4 ,6 ", "2 ;4 ;6  2 ;4 ;6 "], run
    assert run.ran == ["f"] * 3, run
    assert "PROBED []" in run.stdout, run.stdout


def test_a_defaultdict_registry_is_checked_without_digesting_it(project) -> None:
    """A registry filled by a decorator into a ``defaultdict(list)``, with enum keys: a
    hit checks it without digesting it again; a handler registered later re-runs."""
    project.write(
        "main.py",
        COUNT_PROBES
        + """
        from checkpointing import checkpoint
        import handlers

        @checkpoint
        def f(a):
            print("RAN f")
            return handlers.run(handlers.Kind.TEXT, a)

        print("RESULT", f(2))
        probed.clear()
        print("RESULT", f(2))
        print("PROBED", probed)

        @handlers.register(handlers.Kind.TEXT)
        def triple(a):
            return a * 3

        print("RESULT", f(2), f(2))
        """,
    )
    project.write(
        "handlers.py",
        """
        import enum
        from collections import defaultdict

        class Kind(enum.Enum):
            TEXT = "text"
            IMAGE = "image"

        HANDLERS = defaultdict(list)

        def register(kind):
            def add(fn):
                HANDLERS[kind].append(fn)
                return fn
            return add

        @register(Kind.TEXT)
        def double(a):
            return a * 2

        def run(kind, a):
            return [h(a) for h in HANDLERS[kind]]
        """,
    )
    run = project.run()
    assert run.results == ["[4]", "[4]", "[4, 6] [4, 6]"], run
    assert run.ran == ["f", "f"], run
    assert "PROBED []" in run.stdout, run.stdout


def test_a_registry_of_slotted_objects_is_checked_without_digesting_it(project) -> None:
    """Objects with ``__slots__`` in a registry: a hit checks what each slot holds
    instead of digesting them again; a slot rebound between calls re-runs."""
    project.write(
        "main.py",
        COUNT_PROBES
        + """
        from checkpointing import checkpoint
        import units

        @checkpoint
        def f(a):
            print("RAN f")
            return units.convert(a, "km")

        print("RESULT", f(2))
        probed.clear()
        print("RESULT", f(2))
        print("PROBED", probed)
        units.UNITS["km"].factor = 1001
        print("RESULT", f(2), f(2))
        """,
    )
    project.write(
        "units.py",
        """
        class Unit:
            __slots__ = ("name", "factor")

            def __init__(self, name, factor):
                self.name, self.factor = name, factor

        UNITS = {"m": Unit("m", 1), "km": Unit("km", 1000)}

        def convert(a, unit):
            return a * UNITS[unit].factor
        """,
    )
    run = project.run()
    assert run.results == ["2000", "2000", "2002 2002"], run
    assert run.ran == ["f", "f"], run
    assert "PROBED []" in run.stdout, run.stdout


def test_a_global_lock_does_not_make_every_hit_digest_the_values(project) -> None:
    """A module's lock (``with LOCK:``) is digested as its type: the hit's witness
    vouches for the function's other values instead of their being digested again at
    every hit; a table entry changed between calls still re-runs."""
    project.write(
        "main.py",
        """
        import threading
        from checkpointing import checkpoint, keyplan

        LOCK = threading.Lock()
        TABLE = {"a": [1, 2], "b": [3]}

        digests = []
        _digest = keyplan.KeyPlan._digest
        keyplan.KeyPlan._digest = lambda self, values: (digests.append(1), _digest(self, values))[1]

        @checkpoint
        def f(key):
            print("RAN f")
            with LOCK:
                return sum(TABLE[key])

        print("RESULT", f("a"))
        digests.clear()
        print("RESULT", f("a"))
        print("DIGESTS", len(digests))
        TABLE["a"].append(10)
        print("RESULT", f("a"), f("a"))
        """,
    )
    run = project.run()
    assert run.results == ["3", "3", "13 13"], run
    assert run.ran == ["f", "f"], run
    assert "DIGESTS 0" in run.stdout, run.stdout


def test_a_hit_from_memory_is_a_fresh_copy_and_sees_a_replaced_entry(counted) -> None:
    first = counted(1, 2)
    first.append("mutated by the caller")
    assert counted(1, 2) == ["1", "2"]  # from the file
    second = counted(1, 2)  # from memory
    assert second == ["1", "2"] and second is not counted(1, 2)
    cache = counted.checkpoint.cache
    path = cache.path_of(counted.key(1, 2))
    assert path in store.MEMORY.entries
    # A save replaces the entry: a new file, never the old bytes served.
    cache.save(counted.key(1, 2), ["replaced"])
    assert counted(1, 2) == ["replaced"]
    os.remove(path)
    assert counted(1, 2) == ["1", "2"]  # deleted: a miss, the body runs again
    assert sys.ckpt_warm_runs == [(1, 2), (1, 2)]
    assert Path(path).exists()


def test_debug_switched_on_between_hits_logs_the_next_hit(counted, caplog) -> None:
    """A hit skips its debug line on the logger's memo of disabled levels; a level set
    later (setLevel empties that memo) is obeyed at the next hit."""
    import logging

    from checkpointing import decorator

    def hit_lines() -> list:
        return [r.getMessage() for r in caplog.records if r.getMessage().startswith("hit: ")]

    counted(1, 2)
    counted(1, 2)
    counted(1, 2)
    assert decorator.logger.levels.get(logging.DEBUG) is False  # skipped without a call
    assert hit_lines() == []
    with caplog.at_level(logging.DEBUG, logger="checkpointing"):
        counted(1, 2)
        assert len(hit_lines()) == 1
    counted(1, 2)
    assert len(hit_lines()) == 1
    assert sys.ckpt_warm_runs == [(1, 2)]
