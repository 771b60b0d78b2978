"""The arguments of a call are hashed in one walk, which trusts the witnesses the same
call's values check has just checked (``walk_scope(vouched)`` in ``identify.key``).

Each instance of a project class in the arguments asked for its class's digest in a walk
of its own, and each such walk checked the witness of the walk that had digested the
class: a list of 50 networkx graphs as an argument cost 107 ms a hit (50 checks of a
2 ms witness), and a graph argument checked the same witness twice per hit. Trusting a
witness is only right when this call checked it: changes between calls must still give
new keys, the same as a fresh process computes.
"""

from __future__ import annotations

import importlib
import sys

import pytest

from checkpointing import checkpoint, keyplan

LIB = """
RATE = 1


class Item:
    BONUS = 0

    def __init__(self, n):
        self.n = n

    def value(self):
        return self.n * RATE + self.BONUS


# Read by the checkpointed function: its values check has a witness, which includes
# the witness of the walk that digested Item (reached through the registry).
REGISTRY = {f"k{i}": Item(i) for i in range(150)}


def change(step):
    global RATE
    if step == "rate":
        RATE = 2
    elif step == "class-attribute":
        Item.BONUS = 5
    elif step == "registry":
        REGISTRY["k7"] = Item(70)
"""

MAIN = """
from checkpointing import checkpoint
import lib


@checkpoint
def total(items):
    print("RAN total")
    return sum(i.value() for i in items) + lib.REGISTRY["k7"].value()


items = [lib.Item(n) for n in range(40)]
for step in ["first", "again", "rate", "class-attribute", "registry", "again"]:
    lib.change(step)
    expected = sum(i.value() for i in items) + lib.REGISTRY["k7"].value()
    print("RESULT", step, total(items), expected)
"""


def test_changes_between_calls_still_change_the_key_of_instance_arguments(project) -> None:
    project.write("lib.py", LIB)
    project.write("main.py", MAIN)
    first = project.run()
    # Each change re-runs; the call after no change does not.
    assert first.ran == ["total"] * 4, first
    for line in first.results:
        step, got, expected = line.split()
        assert got == expected, first
    # A new process computes every key afresh (no witness to trust): the same keys.
    second = project.run()
    assert second.ran == [] and second.results == first.results, second


@pytest.fixture
def lib_module(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "walklib.py").write_text(LIB)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("walklib", None)
    module = importlib.import_module("walklib")
    yield module
    sys.modules.pop("walklib", None)


def _checks_in_a_hit(func, argument) -> int:
    func(argument)  # a miss, then the hit measured
    calls = []
    original = keyplan._Witness.holds

    def holds(self, *vouched):
        calls.append(self)
        return original(self, *vouched)

    keyplan._Witness.holds = holds
    try:
        func(argument)
    finally:
        keyplan._Witness.holds = original
    return len(calls)


def test_a_hit_checks_the_same_witnesses_however_many_instances_it_is_given(
    lib_module,
) -> None:
    def total(items):
        return sum(i if type(i) is int else i.value() for i in items) + len(lib_module.REGISTRY)

    total = checkpoint(total)
    few = _checks_in_a_hit(total, [lib_module.Item(n) for n in range(3)])
    many = _checks_in_a_hit(total, [lib_module.Item(n) for n in range(60)])
    # One check of the values' witness (and of those it includes), nothing per instance.
    assert few == many
    with_no_instances = _checks_in_a_hit(total, [1, 2, 3])
    assert many == with_no_instances


CYCLE = """
class Node:
    def follow(self):
        return HANDLERS[0](self)


def handle(node):  # reaches Node back through the registry: one cycle with all below
    return REGISTRY["n0"](node)


HANDLERS = [handle]
"""


def _cycle_module(n: int) -> str:
    """Node, handle and ``n`` functions of a registry, all in one cycle."""
    functions = "".join(
        f"\n\ndef n{i}(node):\n    return handle(node) + Node.follow(node) if {i} else 0\n"
        for i in range(n)
    )
    registry = "\nREGISTRY = {" + ", ".join(f'"n{i}": n{i}' for i in range(n)) + "}\n"
    return CYCLE + functions + registry


def _nodes_in_a_hit(tmp_path, monkeypatch, n: int) -> int:
    folder = tmp_path / f"cycle{n}"
    folder.mkdir()
    monkeypatch.chdir(folder)
    (folder / f"cyclelib{n}.py").write_text(_cycle_module(n))
    monkeypatch.syspath_prepend(str(folder))
    module = importlib.import_module(f"cyclelib{n}")

    runs = sys.argument_walk_runs = []  # type: ignore[attr-defined]

    def size(node):
        sys.argument_walk_runs.append(1)  # not a value of the key, as a closure's is
        return len(module.REGISTRY)

    size = checkpoint(size)
    node = module.Node()
    size(node)
    size(node)  # the arguments' walk now takes Node's cycle from the earlier one
    made = []
    original = keyplan._Node.__init__

    def init(self, *args, **kwargs):
        made.append(1)
        original(self, *args, **kwargs)

    keyplan._Node.__init__ = init
    try:
        size(node)
    finally:
        keyplan._Node.__init__ = original
        sys.modules.pop(f"cyclelib{n}", None)
        del sys.argument_walk_runs  # type: ignore[attr-defined]
    assert len(runs) == 1, "a key made with the cycle taken differs from the first one"
    return len(made)


def test_a_cycle_taken_from_an_earlier_walk_costs_the_same_however_large(
    tmp_path, monkeypatch
) -> None:
    """The class of an argument in a cycle of 200 definitions: a hit makes the nodes it
    meets, not one per member of the cycle."""
    assert _nodes_in_a_hit(tmp_path, monkeypatch, 10) == _nodes_in_a_hit(tmp_path, monkeypatch, 200)
