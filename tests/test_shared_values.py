"""A large value read by several functions is encoded once per process (keyplan's
``_SHARED``): networkx's registry of 750 dispatchers was encoded again by the first key
of every function that calls one of them.

The encoding kept must be exactly what encoding it again gives, and must never be used
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


def test_the_kept_encoding_is_what_encoding_again_gives() -> None:
    values = _values()
    expected = hashing.Hasher().feed(values).digest()
    keyplan._SHARED.clear()
    for _ in range(3):  # made, then taken from _SHARED
        assert _digest(values) == expected
    assert id(values[2]) in keyplan._SHARED and id(values[3]) in keyplan._SHARED
    values[2]["k3"] = (3, "3", [3, 4], Point(3))  # equal contents, new objects
    assert _digest(values) == expected
    values[2]["k3"][3].x = 4
    changed = _digest(values)
    assert changed != expected and changed == hashing.Hasher().feed(values).digest()


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
