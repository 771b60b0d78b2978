"""A large value read by several functions is digested once per process: a function's
large values are digested as values of the walk of definitions (networkx's registry of
750 dispatchers, which its dispatchers read too, is labelled once per key computation,
not also encoded in full), and the digest is offered to the next function reading it
(keyplan's ``_REUSABLE_VALUES``).

The digest taken must be exactly what digesting it afresh gives, and must never be used
once anything it covers changed: the containers (an entry replaced), the definitions
inside (a class attribute, a function's code) or what a wrapper around a function
inside carries. Each program below changes one of those between the first key of ``f``
(which keeps the encoding) and the first key of ``g`` (which may use it); a process that
makes the same change before any key must then find ``g``'s entry, and one that makes
no change must not.
"""

from __future__ import annotations

import pytest

from checkpointing import hashing, keyplan


class Point:
    def __init__(self, x: int) -> None:
        self.x = x


def _helper(x: int) -> int:
    return x + 1


def _values() -> list:
    big = {f"k{i}": (i, str(i), [i, i + 1], Point(i)) for i in range(150)}
    big["self"] = big  # a cycle through the large value itself
    listed = [i * 0.5 for i in range(120)] + [_helper, {"nested": big}]
    return [1, "s", big, listed, None, list(range(5))]


def _digest(values: list) -> bytes:
    """As ``KeyPlan.values_digest`` does it: the values, then their witness."""
    with keyplan.walk_scope():
        digest = keyplan._feed_values(hashing.Hasher(), values).digest()
        assert keyplan._values_witness(values) is not None
    return digest


def _fresh(values: list) -> bytes:
    """The digest with nothing offered by earlier walks, as a new process makes it."""
    keyplan._REUSABLE.clear()
    keyplan._REUSABLE_VALUES.clear()
    return _digest(values)


def test_the_kept_digest_is_what_digesting_again_gives() -> None:
    values = _values()
    expected = _fresh(values)
    for _ in range(3):  # made, then taken from _REUSABLE_VALUES
        assert _digest(values) == expected
    kept = [entry.digests[where][0] for where, entry in keyplan._REUSABLE_VALUES.items()]
    assert any(v is values[2] for v in kept) and any(v is values[3] for v in kept)
    values[2]["k3"] = (3, "3", [3, 4], Point(3))  # equal contents, new objects
    assert _digest(values) == expected
    values[2]["k3"][3].x = 4
    changed = _digest(values)
    assert changed != expected and changed == _fresh(values)
    del values[3][0]  # the other large value, in place
    shorter = _digest(values)
    assert shorter not in (expected, changed) and shorter == _fresh(values)


def test_small_values_encode_as_they_always_did() -> None:
    """Below the size of a node of the walk, a value is encoded in the list as
    ``Hasher.feed`` encodes it."""
    values = [1, "s", {"a": [1, 2]}, list(range(99))]
    assert _fresh(values) == hashing.Hasher().feed(values).digest()


LIB = """
import functools

class Item:
    SCALE = 1

    def __init__(self, n):
        self.n = n

    def value(self):
        return self.n * Item.SCALE


def plain(x):
    return x + 1


def wrapped_logic(x):
    return x * 2


@functools.wraps(wrapped_logic)
def wrapper(x):
    return wrapped_logic(x) + wrapper.bonus

wrapper.bonus = 10

REGISTRY = {f"item{i}": Item(i) for i in range(120)}
REGISTRY["plain"] = plain
REGISTRY["wrapper"] = wrapper


def replacement(x):
    return x + 100


def count():  # a definition reading the registry: it is a value of the walk too
    return len(REGISTRY)


def change(how):
    if how == "entry":
        REGISTRY["item7"] = Item(700)
    elif how == "class-attribute":
        Item.SCALE = 3
    elif how == "code":
        plain.__code__ = replacement.__code__
    elif how == "wrapper-attribute":
        wrapper.bonus = 20
"""

MAIN = """
import os
from checkpointing import checkpoint
import lib

@checkpoint
def f(x):
    print("RAN f")
    return sum(i.value() for k, i in lib.REGISTRY.items() if k.startswith("item")) + extra()

# Read by the functions only (READ=root), or also by a definition they call (the
# registry is then a value of the walk too, whose witness vouches for it).
extra = lib.count if os.environ["READ"] == "helper" else int

@checkpoint
def g(x):
    print("RAN g")
    r = lib.REGISTRY
    return r["item7"].value() + r["plain"](x) + r["wrapper"](x) + extra()

how = os.environ["HOW"]
if os.environ["WHEN"] == "start":
    lib.change(how)
    print("RESULT", g(1))
elif os.environ["WHEN"] == "between":
    f(1)  # keeps the registry's encoding
    lib.change(how)
    print("RESULT", g(1))
else:
    print("RESULT", g(1))
"""


@pytest.mark.parametrize("read", ["root", "helper"])
@pytest.mark.parametrize("how", ["entry", "class-attribute", "code", "wrapper-attribute"])
def test_a_kept_encoding_is_not_used_once_what_it_covers_changed(
    project, how: str, read: str
) -> None:
    project.write("lib.py", LIB)
    project.write("main.py", MAIN)
    between = project.run(env={"HOW": how, "WHEN": "between", "READ": read})
    assert between.ran == ["f", "g"], between
    # The same change made before any key: the same key, so g's entry is found.
    start = project.run(env={"HOW": how, "WHEN": "start", "READ": read})
    assert start.ran == [] and start.results == between.results, start
    # No change: another key (a kept encoding used after the change would give this one).
    unchanged = project.run(env={"HOW": how, "WHEN": "never", "READ": read})
    assert unchanged.ran == ["g"] and unchanged.results != between.results, unchanged


CYCLE_LIB = """
def make(i):
    def handler(x):
        # Each handler reads the registry that holds it: a cycle through a large value,
        # as networkx's dispatchers read their registry.
        return x + i + len(REGISTRY)

    handler.__name__ = handler.__qualname__ = f"handler{i}"
    return handler


def first(x):
    return REGISTRY["h0"](x)


REGISTRY = {f"h{i}": make(i) for i in range(120)}
Z_HANDLER = REGISTRY["h3"]  # a member of the cycle, read on its own
TABLE = [i * 2 for i in range(130)]  # a large value outside the cycle


def change(how):
    if how == "entry":
        REGISTRY["h5"] = make(500)
    elif how == "table":
        TABLE[3] = -1
"""

CYCLE_MAIN = """
import os
from checkpointing import checkpoint
import lib


@checkpoint
def f(x):
    return len(lib.REGISTRY) + lib.first(x) + len(lib.TABLE)


@checkpoint
def g(x):
    return sum(h(x) for h in lib.REGISTRY.values()) + lib.TABLE[3]


@checkpoint
def h(x):
    return lib.first(x)


@checkpoint
def a(x):
    return len(lib.REGISTRY) + lib.Z_HANDLER(x)


@checkpoint
def b(x):
    return lib.Z_HANDLER(x) + len(lib.REGISTRY)


@checkpoint
def c(x):  # as a: takes what a's walk offers
    return len(lib.REGISTRY) - lib.Z_HANDLER(x)


funcs = {"f": f, "g": g, "h": h, "a": a, "b": b, "c": c}
change = os.environ.get("CHANGE", "")
for name in os.environ["ORDER"]:
    if name == "!":
        lib.change(change)
        continue
    print("RESULT", name, funcs[name].key(1))
"""


@pytest.mark.parametrize("change", ["entry", "table"])
def test_a_large_value_in_a_cycle_digests_alike_in_any_order(project, change: str) -> None:
    """The large value's digest taken from an earlier walk (in a cycle with the
    definitions inside it, or not) is the one a walk of this function alone makes; a
    change between two keys of one process gives the key a fresh process gives."""
    project.write("lib.py", CYCLE_LIB)
    project.write("main.py", CYCLE_MAIN)

    def keys(order: str, env_change: str = "") -> dict:
        out = project.run(env={"ORDER": order, "CHANGE": env_change})
        return dict(line.split() for line in out.results)

    alone = {name: keys(name)[name] for name in "fghabc"}
    for order in ("fghabc", "cbahgf", "gac", "gbc", "hfgab"):
        assert keys(order) == {name: alone[name] for name in order}, order
    # Changed between the keys of one process: what a fresh process computes.
    after = keys("fghabc!fghabc", change)
    fresh = {name: keys("!" + name, change)[name] for name in "fghabc"}
    assert after == fresh
    assert all(fresh[name] != alone[name] for name in "fg")


UNHASHABLE_MAIN = """
import threading
import warnings
from checkpointing import checkpoint

warnings.simplefilter("always")
LOCKS = {f"lock{i}": threading.Lock() for i in range(150)}  # large, with no digest
SIZES = list(range(150))


@checkpoint
def f(x):
    print("RAN f")
    return x + len(LOCKS) + SIZES[-1]


print("RESULT", f(1))
"""


def test_a_large_value_with_no_digest_warns_and_stays_cacheable(project) -> None:
    """Keyed by its type, with the warning that names it, as a small one is."""
    project.write("main.py", UNHASHABLE_MAIN)
    first = project.run()
    assert first.ran == ["f"] and first.results == ["300"], first
    assert "__main__:LOCKS" in first.stderr and "cannot be hashed" in first.stderr, first.stderr
    second = project.run()
    assert second.ran == [] and second.results == ["300"], second
