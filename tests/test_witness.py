"""The witness that lets a hit skip digesting what a function reads again: every kind
of change to a container it vouches for must make it fail, including a value replaced
by an equal one that digests differently (``1`` by ``1.0``, ``1`` by ``True``)."""

from __future__ import annotations

import copyreg
import enum
import re
import threading
import typing
from collections import defaultdict, namedtuple
from typing import Any, Callable, List

import pytest

from checkpointing import keyplan


class Plain:
    def __init__(self) -> None:
        self.rate = 1
        self.names = {"a", "b"}
        self.table = {"k": [1, 2]}


class Other(Plain):
    pass


Spec = namedtuple("Spec", "name rows")
OtherSpec = namedtuple("OtherSpec", "name rows")


class Tagged(tuple):
    """A tuple subclass whose instances have a ``__dict__``."""


class Slotted:
    """An object with ``__slots__`` (as a ``dataclass(slots=True)`` makes)."""

    __slots__ = ("x", "items", "late")

    def __init__(self) -> None:
        self.x = 1
        self.items = [2]  # ``late`` stays unset


class OtherSlotted(Slotted):
    __slots__ = ()


def _lookup(name: Any) -> Any:
    return REGISTRY[name]


class ByName:
    """Pickled as a lookup by name (networkx's dispatchers): its digest is its class
    and that name, whatever else it holds."""

    def __init__(self, name: Any) -> None:
        self.name = name
        self.graphs = {"G": 0}
        self.broken = False

    def __reduce__(self) -> Any:
        if self.broken:
            raise TypeError("cannot pickle a broken ByName")
        return _lookup, (self.name,)


class OtherByName(ByName):
    pass


REGISTRY = {"a": ByName("a"), 1: ByName(1)}


class Mode(enum.Enum):
    FAST = 1
    SLOW = 2


def _state() -> List[Any]:
    tagged = Tagged((1, 2))
    tagged.note = "x"
    return [
        {"x": 1, "y": "s"},
        [1, 2, 3],
        Plain(),
        {"tags": {"p", "q"}},
        Spec("a", [1, 2]),
        tagged,
        # Markdown's: compiled patterns (fixed), a name pickled as a global (checked by
        # that name)
        {"rx": re.compile("a+"), "hint": typing.ClassVar, "code": helper.__code__},
        # enum members and a bare sentinel by their class; a set of ints with its
        # items' types; a frozenset of scalars not at all (it cannot change)
        {"mode": Mode.FAST, "ids": {1, 2}, "ops": frozenset({1, "a"}), "missing": object()},
        defaultdict(list, {"a": [1], "b": [2]}),  # checked as a dict, and its factory
        Slotted(),  # its class and what each slot holds, unset ones included
        {"lock": threading.Lock()},  # digested as its type: nothing to check in it
        {"by_name": ByName("a"), "by_int": ByName(1)},  # checked by the lookup they pickle as
    ]


def _witness(values: List[Any]) -> keyplan._Witness:
    containers: List[Any] = []
    assert keyplan._snapshot(values, containers, set())
    witness = keyplan._Witness([], [], containers, [])
    # checked by class and attributes (a digester another test left registered would
    # make it be digested again instead); the namedtuple by its class and items, not
    # digested again at each check; the tuple with a ``__dict__`` digested again
    assert witness._holders == [values[2]], containers
    by_name = [values[11]["by_name"], values[11]["by_int"]]
    owners = [values[2], values[4], Mode.FAST, values[7]["missing"], values[9], *by_name]
    assert sorted(map(id, witness._owners)) == sorted(map(id, owners)), containers
    assert witness._typed_sets == [values[7]["ids"]], containers
    assert witness._factories_of == [values[8]], containers
    assert witness._slotted == [values[9]] * 3, containers
    assert sorted(map(id, witness._named)) == sorted(map(id, by_name)), containers
    others = sorted(id(entry[1]) for entry in witness._others)
    assert others == sorted(map(id, [values[5], typing.ClassVar])), containers
    return witness


def _replace_dict_value(v: List[Any]) -> None:
    v[0]["x"] = 2


def _equal_float(v: List[Any]) -> None:
    v[0]["x"] = 1.0


def _equal_bool(v: List[Any]) -> None:
    v[0]["x"] = True


def _add_key(v: List[Any]) -> None:
    v[0]["z"] = None


def _reorder(v: List[Any]) -> None:
    v[0]["x"] = v[0].pop("x")


def _list_item(v: List[Any]) -> None:
    v[1][0] = 1.0


def _list_grows(v: List[Any]) -> None:
    v[1].append(4)


def _attribute(v: List[Any]) -> None:
    v[2].rate = 2


def _nested(v: List[Any]) -> None:
    v[2].table["k"].append(3)


def _new_dict(v: List[Any]) -> None:
    v[2].__dict__ = dict(vars(v[2]))


def _new_class(v: List[Any]) -> None:
    v[2].__class__ = Other


def _namedtuple_class(v: List[Any]) -> None:
    v[4].__class__ = OtherSpec


def _namedtuple_item(v: List[Any]) -> None:
    v[4].rows.append(3)


def _tuple_attribute(v: List[Any]) -> None:
    v[5].note = "y"


def _pattern_replaced(v: List[Any]) -> None:
    v[6]["rx"] = re.compile("a+", re.IGNORECASE)


def _enum_replaced(v: List[Any]) -> None:
    v[7]["mode"] = Mode.SLOW


def _int_set_grows(v: List[Any]) -> None:
    v[7]["ids"].add(3)


def _int_set_equal_bool(v: List[Any]) -> None:
    v[7]["ids"].discard(1)
    v[7]["ids"].add(True)  # {True, 2} == {1, 2}, but True digests as a bool


def _sentinel_replaced(v: List[Any]) -> None:
    v[7]["missing"] = object()


def _defaultdict_item(v: List[Any]) -> None:
    v[8]["a"].append(3)


def _defaultdict_key(v: List[Any]) -> None:
    v[8]["c"]  # the factory makes the key


def _defaultdict_factory(v: List[Any]) -> None:
    v[8].default_factory = set


def _slot_rebound(v: List[Any]) -> None:
    v[9].x = 2


def _slot_item(v: List[Any]) -> None:
    v[9].items.append(3)


def _slot_set(v: List[Any]) -> None:
    v[9].late = None


def _slot_deleted(v: List[Any]) -> None:
    del v[9].x


def _slotted_class(v: List[Any]) -> None:
    v[9].__class__ = OtherSlotted


def _lock_replaced(v: List[Any]) -> None:
    v[10]["lock"] = threading.RLock()


def _set_item(v: List[Any]) -> None:
    v[2].names.add("c")


def _nested_set(v: List[Any]) -> None:
    v[3]["tags"].discard("p")


def _by_name_renamed(v: List[Any]) -> None:
    v[11]["by_name"].name = "b"


def _by_name_equal_bool(v: List[Any]) -> None:
    v[11]["by_int"].name = True  # == 1, digested differently


def _by_name_class(v: List[Any]) -> None:
    v[11]["by_name"].__class__ = OtherByName


def _by_name_cannot_pickle(v: List[Any]) -> None:
    v[11]["by_name"].broken = True


CHANGES: List[Callable[[List[Any]], None]] = [
    _replace_dict_value,
    _equal_float,
    _equal_bool,
    _add_key,
    _reorder,
    _list_item,
    _list_grows,
    _attribute,
    _nested,
    _new_dict,
    _new_class,
    _namedtuple_class,
    _namedtuple_item,
    _tuple_attribute,
    _pattern_replaced,
    _enum_replaced,
    _int_set_grows,
    _int_set_equal_bool,
    _sentinel_replaced,
    _defaultdict_item,
    _defaultdict_key,
    _defaultdict_factory,
    _slot_rebound,
    _slot_item,
    _slot_set,
    _slot_deleted,
    _slotted_class,
    _lock_replaced,
    _set_item,
    _nested_set,
    _by_name_renamed,
    _by_name_equal_bool,
    _by_name_class,
    _by_name_cannot_pickle,
]


def test_an_unchanged_state_holds() -> None:
    values = _state()
    witness = _witness(values)
    assert witness.holds() and witness.holds()


@pytest.mark.parametrize("change", CHANGES, ids=[c.__name__.strip("_") for c in CHANGES])
def test_every_change_fails_the_witness(change: Callable[[List[Any]], None]) -> None:
    values = _state()
    witness = _witness(values)
    change(values)
    assert not witness.holds()


def test_an_object_pickled_by_name_holds_while_its_lookup_does() -> None:
    """What else it holds is not in its digest, so not in the witness either."""
    values = _state()
    obj = values[11]["by_name"]
    before = keyplan.probe_digest(values[11])
    witness = _witness(values)
    obj.graphs["H"] = 1
    obj.extra = [1]
    assert keyplan.probe_digest(values[11]) == before
    assert witness.holds()


def test_a_reducer_registered_for_the_class_fails_the_witness() -> None:
    values = _state()
    witness = _witness(values)
    copyreg.dispatch_table[ByName] = lambda obj: (_lookup, ("z",))
    try:
        assert not witness.holds()
    finally:
        del copyreg.dispatch_table[ByName]
    assert witness.holds()


# -- The places read (module globals, attributes, defaults) -------------------------------


def helper(x, scale=2, *, shift=1):
    return x * scale + shift


def _places() -> tuple:
    namespace = {"K": 1, "table": {"a": 1}}
    obj = Plain()
    slot = keyplan.Slot("helper.__defaults__", defaults_of=helper)
    getters = [
        keyplan._guard_getter(namespace, "K"),
        keyplan._guard_getter(namespace, "table"),
        keyplan._guard_getter(vars(obj), "rate"),
        slot.read,
    ]
    return namespace, obj, getters


def test_unchanged_places_hold_and_each_rebinding_fails() -> None:
    saved = helper.__defaults__, helper.__kwdefaults__
    try:
        for change in range(5):
            namespace, obj, getters = _places()
            witness = keyplan._Witness(getters, [get() for get in getters], [], [])
            assert len(witness._namespaces) == 3 and len(witness._functions) == 1
            assert witness.holds()
            if change == 0:
                namespace["K"] = 1.0  # equal, but digests differently
            elif change == 1:
                del namespace["table"]
            elif change == 2:
                obj.rate = True
            elif change == 3:
                helper.__defaults__ = (3,)
            else:
                helper.__kwdefaults__ = {"shift": 1}  # equal, another object
            assert not witness.holds(), change
            helper.__defaults__, helper.__kwdefaults__ = saved
    finally:
        helper.__defaults__, helper.__kwdefaults__ = saved


@pytest.fixture
def checks(monkeypatch) -> List[Any]:
    """Each witness checked (``holds`` called, parts included), in order."""
    checked: List[Any] = []
    holds = keyplan._Witness.holds

    def counted(self: Any, *vouched: Any) -> bool:
        checked.append(self)
        return holds(self, *vouched)

    monkeypatch.setattr(keyplan._Witness, "holds", counted)
    return checked


TABLE = [1, 2]


def reads_table() -> List[int]:
    return TABLE


def test_a_call_after_a_change_checks_the_witness_once(checks: List[Any]) -> None:
    """A global list appended to between calls: the plan reads the same object, its
    witness fails, and the values are digested again; the witness (a pass over what the
    function reads, a millisecond for a registry of 700 functions) is checked once per
    call, not once by the shortcut and again by the general path."""
    from checkpointing.identify import AutoFuncCallIdentifier

    identifier = AutoFuncCallIdentifier()
    first = identifier.key(reads_table, (), {})
    checks.clear()
    try:
        assert identifier.key(reads_table, (), {}) == first and len(checks) == 1  # a hit
        TABLE.append(3)
        checks.clear()
        assert identifier.key(reads_table, (), {}) != first
        assert len(checks) == 1
    finally:
        del TABLE[2:]


class Shape:
    """An argument whose class calls a function of the registry that the function
    reads (networkx's Graph and its dispatchers)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def size(self) -> int:
        return _base(self.n)


class Kind:
    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.weight = 1


def _base(n: int) -> int:
    return n + 1


def _double(shape: Shape) -> int:
    return 2 * shape.size()


KINDS = {f"k{i}": Kind(_double if i % 2 else _base) for i in range(120)}


def uses_kinds(shape: Shape) -> int:
    return KINDS["k1"].fn(shape)


def test_a_registry_reached_by_values_and_argument_is_checked_once_a_hit(
    checks: List[Any],
) -> None:
    """The function's values and its argument's class both reach the registry: a hit
    checks the registry's witness once (0.9 ms each for networkx's); a change to it
    is still seen through either."""
    from checkpointing.identify import AutoFuncCallIdentifier

    identifier = AutoFuncCallIdentifier()
    shape = Shape(3)
    first = identifier.key(uses_kinds, (shape,), {})
    assert identifier.key(uses_kinds, (shape,), {}) == first
    checks.clear()
    try:
        assert identifier.key(uses_kinds, (shape,), {}) == first
        registry = [w for w in checks if any(e is KINDS for e in w._sized)]
        assert len(registry) == 1, [len(w._items) for w in checks]
        KINDS["k7"].weight = 2
        assert identifier.key(uses_kinds, (shape,), {}) != first
    finally:
        KINDS["k7"].weight = 1
    assert identifier.key(uses_kinds, (shape,), {}) == first
