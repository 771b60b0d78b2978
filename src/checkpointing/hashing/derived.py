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

import sys
import types

TYPE_CHECKING = False
if TYPE_CHECKING:
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


def cached_property_type() -> Any:
    """:class:`functools.cached_property`, or ``()`` (an ``isinstance`` that is always
    false) while functools is not imported: then no such property exists yet, and
    ``import checkpointing`` does not load functools (issue 12, target 5)."""
    functools = sys.modules.get("functools")
    return () if functools is None else functools.cached_property


def _functions_of(member: Any) -> Iterator[types.FunctionType]:
    if isinstance(member, (classmethod, staticmethod)):
        member = member.__func__
    if isinstance(member, property):
        for part in (member.fget, member.fset, member.fdel):
            if isinstance(part, types.FunctionType):
                yield part
        return
    if isinstance(member, cached_property_type()):
        member = member.func
    if isinstance(member, types.FunctionType):
        yield member


class _Ops:
    """Opcode numbers this module looks for, on the running Python."""

    def __init__(self) -> None:
        import opcode
        import sys

        m = opcode.opmap
        self.extended = m["EXTENDED_ARG"]
        self.cache = m.get("CACHE", -1)
        self.load_attr = m["LOAD_ATTR"]
        self.load_method = m.get("LOAD_METHOD", -1)
        self.store_attr = m["STORE_ATTR"]
        self.load_const = m["LOAD_CONST"]
        self.is_op = m.get("IS_OP", -1)
        self.swap = {m[n] for n in ("SWAP", "ROT_TWO") if n in m}
        self.none_jumps = {op for n, op in m.items() if n.endswith(("IF_NONE", "IF_NOT_NONE"))}
        self.inplace = {op for n, op in m.items() if n.startswith("INPLACE_")}  # before 3.11
        self.binary_op = m.get("BINARY_OP", -1)  # 3.11+: its argument names the operator
        self.inplace_args = set(range(13, 26))  # ``+=`` ... ``^=`` in BINARY_OP's table
        # Instructions after which a ``LOAD_CONST None`` may be one branch of a value
        # (``a or None``, ``x if c else None``): such a store is not taken for ``= None``.
        self.branching = {
            op for n, op in m.items() if "JUMP" in n or n in ("POP_TOP", "RETURN_VALUE")
        }
        self.attr_shift = 1 if sys.version_info >= (3, 12) else 0  # LOAD_ATTR's oparg


_OPS: List[_Ops] = []


def _decode(code: types.CodeType, ops: _Ops) -> List[Any]:
    """``(opcode, argument)`` of each instruction, inline caches left out (about ten
    times faster than :func:`dis.get_instructions`, which a first hit would feel)."""
    raw = code.co_code
    out = []
    extended = 0
    for i in range(0, len(raw), 2):
        op = raw[i]
        arg = raw[i + 1] | extended
        if op == ops.extended:
            extended = arg << 8
            continue
        extended = 0
        if op != ops.cache:
            out.append((op, arg))
    return out


class _Uses:
    """How the functions of a class use some attribute names (by the ids of the code
    objects that read, test, store or augment each)."""

    def __init__(self) -> None:
        self.readers: Dict[str, Set[int]] = {}
        self.tested: Dict[str, Set[int]] = {}
        self.value_stores: Dict[str, Set[int]] = {}
        self.augmented: Dict[str, Set[int]] = {}
        self.plain_stores: Set[str] = set()  # stores that are not augmented

    def scan(self, code: types.CodeType, wanted: Any) -> None:
        if not wanted.intersection(code.co_names):
            return
        if not _OPS:
            _OPS.append(_Ops())
        ops = _OPS[0]
        names, consts = code.co_names, code.co_consts
        ins = _decode(code, ops)
        here = id(code)

        def is_none(k: int) -> bool:
            op, arg = ins[k]
            return op == ops.load_const and arg < len(consts) and consts[arg] is None

        for i, (op, arg) in enumerate(ins):
            if op == ops.load_attr or op == ops.load_method:
                name = names[arg >> ops.attr_shift if op == ops.load_attr else arg]
                if name not in wanted:
                    continue
                self.readers.setdefault(name, set()).add(here)
                for j in range(i + 1, min(i + 5, len(ins))):
                    if ins[j][0] in ops.none_jumps or (ins[j][0] == ops.is_op and is_none(j - 1)):
                        self.tested.setdefault(name, set()).add(here)
                        break
            elif op == ops.store_attr:
                name = names[arg]
                if name not in wanted:
                    continue
                if i >= 2 and is_none(i - 2) and (i < 3 or ins[i - 3][0] not in ops.branching):
                    self.plain_stores.add(name)  # ``obj._x = None``
                    continue
                self.value_stores.setdefault(name, set()).add(here)
                before = ins[i - 2] if i >= 2 else (None, None)
                if (
                    i >= 2
                    and ins[i - 1][0] in ops.swap
                    and (
                        before[0] in ops.inplace
                        or (before[0] == ops.binary_op and before[1] in ops.inplace_args)
                    )
                ):
                    self.augmented.setdefault(name, set()).add(here)
                else:
                    self.plain_stores.add(name)


_USES: Dict[Any, _Uses] = {}


def _uses(cls: type, mro: bool, wanted: frozenset) -> _Uses:
    key = (cls, mro, wanted)
    uses = _USES.get(key)
    if uses is None:
        uses = _Uses()
        for code in _codes(cls, mro):
            uses.scan(code, wanted)
        if len(_USES) > 4096:
            _USES.clear()
        _USES[key] = uses
    return uses


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_names(cls: type) -> frozenset:
    """Private attribute names the functions of ``cls`` and its bases store to."""
    found = set()
    for code in _codes(cls, True):
        found.update(n for n in code.co_names if _private(n))
    return frozenset(found)


_MEMO: Dict[type, frozenset] = {}


def memo_attributes(cls: type) -> frozenset:
    """Instance attributes ``cls`` fills lazily as a cache of its own state (see the
    module's rules): left out of its instances' digests."""
    found = _MEMO.get(cls)
    if found is not None:
        return found
    try:
        uses = _uses(cls, True, _private_names(cls))
    except Exception:  # a class whose functions cannot be read: nothing is derived
        uses = _Uses()
    memo = set()
    for name, storing in uses.value_stores.items():
        tested = uses.tested.get(name, set())
        if tested and storing <= tested and uses.readers.get(name, set()) <= tested:
            memo.add(name)
    found = _MEMO[cls] = frozenset(memo)
    return found


def counter_attributes(cls: type) -> frozenset:
    """Private class attributes of ``cls`` that only its own code augments (``cls.__count
    += 1``): counters of what happened in this process, not configuration."""
    candidates = frozenset(
        name for name, value in list(vars(cls).items()) if _private(name) and type(value) is int
    )
    if not candidates:
        return candidates
    try:
        uses = _uses(cls, False, candidates)
    except Exception:
        return frozenset()
    found = set()
    for name, augmenting in uses.augmented.items():
        if name in uses.plain_stores:
            continue
        if uses.readers.get(name, set()) <= augmenting:
            found.add(name)
    return frozenset(found)
