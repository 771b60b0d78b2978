"""Attributes a class derives itself: lazily filled caches and private counters.

Two patterns of real libraries make the same object digest differently before and after
it was used, although nothing a call computes can differ:

* a *hand-written cached property*: ``self._sig = None`` when the object is made, and
  ``if self._sig is None: self._sig = inspect.signature(...)`` in the one method that
  reads it (networkx's dispatchers fill ``_sig`` and ``_cached_doc`` so). Like a
  :class:`functools.cached_property`, the value is derived from the object's state, not
  part of it;
* a *private counter*: ``cls.__count += 1`` in the class's own code, used to name
  generated code (networkx's ``argmap``). It counts what happened in this process, which
  no other process repeats.

Both are found by reading the bytecode of the class's functions (every Python has it,
and a hit never parses source), with rules strict enough that real state is never taken
for either. For a cached property, all of:

1. the name is private (starts with ``_``) and is not a dunder name;
2. every function of the class (bases included) that reads it also tests it against
   ``None`` (``is None``, ``is not None``, a walrus ``(rv := self._x) is not None``);
3. every assignment to it stores ``None``, or is made in such a function; at least one
   stores something else.

A model whose ``weights`` start as ``None`` and are read by ``predict`` is not one (rule
2), nor is a value filled once and then updated by other methods (rule 3). For a counter:
a private attribute of the class whose every assignment in the class's code is an
augmented one (``+=``), read only by the functions that augment it.

An attribute matched by neither rule is state, as before: a rule that misses only costs
a re-run, a rule that matched real state would serve a stale result.
"""

from __future__ import annotations

import functools
import types
from typing import Any, Dict, Iterator, List, Set

__all__ = ["counter_attributes", "memo_attributes"]


def _codes(cls: type, mro: bool) -> Iterator[types.CodeType]:
    """The code of every function defined in ``cls`` (and its bases if ``mro``), nested
    functions and comprehensions included."""
    for klass in cls.__mro__ if mro else (cls,):
        if klass is object:
            continue
        for member in list(vars(klass).values()):
            for fn in _functions_of(member):
                stack = [fn.__code__]
                while stack:
                    code = stack.pop()
                    yield code
                    stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))


def _functions_of(member: Any) -> Iterator[types.FunctionType]:
    if isinstance(member, (classmethod, staticmethod)):
        member = member.__func__
    if isinstance(member, property):
        for part in (member.fget, member.fset, member.fdel):
            if isinstance(part, types.FunctionType):
                yield part
        return
    if isinstance(member, functools.cached_property):
        member = member.func
    if isinstance(member, types.FunctionType):
        yield member


def _is_none(ins: Any) -> bool:
    return ins.opname == "LOAD_CONST" and ins.argval is None


def _is_inplace(ins: Any) -> bool:
    if ins.opname.startswith("INPLACE_"):
        return True  # before 3.11
    return ins.opname == "BINARY_OP" and ins.argrepr.endswith("=") and ins.argrepr != "=="


def _tests_none(following: List[Any]) -> bool:
    """Is an attribute just loaded compared with ``None`` right away (a walrus's copy
    and store allowed in between)?"""
    for j, ins in enumerate(following):
        if ins.opname.endswith("IF_NONE") or ins.opname.endswith("IF_NOT_NONE"):
            return True
        if ins.opname == "IS_OP" and j >= 1 and _is_none(following[j - 1]):
            return True
    return False


class _Uses:
    """How the functions of a class use each attribute name (by the ids of the code
    objects that read, test, store or augment it)."""

    def __init__(self) -> None:
        self.readers: Dict[str, Set[int]] = {}
        self.tested: Dict[str, Set[int]] = {}
        self.value_stores: Dict[str, Set[int]] = {}
        self.augmented: Dict[str, Set[int]] = {}
        self.plain_stores: Set[str] = set()  # stores that are not augmented

    def scan(self, code: types.CodeType) -> None:
        import dis

        ins = list(dis.get_instructions(code))
        here = id(code)
        for i, one in enumerate(ins):
            name = one.argval
            if one.opname in ("LOAD_ATTR", "LOAD_METHOD"):
                self.readers.setdefault(name, set()).add(here)
                if _tests_none(ins[i + 1 : i + 5]):
                    self.tested.setdefault(name, set()).add(here)
            elif one.opname == "STORE_ATTR":
                if i >= 2 and _is_none(ins[i - 2]) and not ins[i - 1].is_jump_target:
                    # ``obj._x = None``; not ``obj._x = a or None``, whose store is
                    # reached from two places
                    self.plain_stores.add(name)
                    continue
                self.value_stores.setdefault(name, set()).add(here)
                if i >= 2 and ins[i - 1].opname in ("SWAP", "ROT_TWO") and _is_inplace(ins[i - 2]):
                    self.augmented.setdefault(name, set()).add(here)
                else:
                    self.plain_stores.add(name)


@functools.lru_cache(maxsize=1024)
def _uses(cls: type, mro: bool) -> _Uses:
    uses = _Uses()
    for code in _codes(cls, mro):
        uses.scan(code)
    return uses


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def memo_attributes(cls: type) -> frozenset:
    """Instance attributes ``cls`` fills lazily as a cache of its own state (see the
    module's rules): left out of its instances' digests."""
    try:
        uses = _uses(cls, True)
    except Exception:  # a class whose functions cannot be read: nothing is derived
        return frozenset()
    found = set()
    for name, storing in uses.value_stores.items():
        if not _private(name):
            continue
        tested = uses.tested.get(name, set())
        if storing <= tested and uses.readers.get(name, set()) <= tested:
            found.add(name)
    return frozenset(found)


def counter_attributes(cls: type) -> frozenset:
    """Private class attributes of ``cls`` that only its own code augments (``cls.__count
    += 1``): counters of what happened in this process, not configuration."""
    try:
        uses = _uses(cls, False)
    except Exception:
        return frozenset()
    found = set()
    for name, augmenting in uses.augmented.items():
        if not _private(name) or name in uses.plain_stores or name not in vars(cls):
            continue
        if not isinstance(vars(cls)[name], int) or isinstance(vars(cls)[name], bool):
            continue
        if uses.readers.get(name, set()) <= augmenting:
            found.add(name)
    return frozenset(found)
