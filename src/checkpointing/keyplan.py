"""Key plans: what the key of a function's calls is made of, kept in memory and on disk.

This module owns the run-time half of dependency tracking, the part on the path of
every call. A :class:`KeyPlan` holds

* ``static_digest``: the digest of the canonical code of everything the function
  reaches (computed by :mod:`checkpointing.depgraph`);
* slots: the module globals and closure cells that code reads, whose current values
  are hashed at every call;
* guards: the names through which code was found (``helper`` in a module dict still
  is the function analysed). A failed guard, or a module re-recorded by the import
  hook (a reload), makes the plan be built again.

Plans are memoised per function, and also written to ``<cache>/analysis/`` keyed by
the function's identity; a plan read back from there is used only if the source
files it covers have the same digests now, so a fresh process whose code did not
change skips the analysis (no parsing, no ``ast``, no networkx) entirely.

It also registers how functions, classes and modules are digested as values
(:mod:`checkpointing.hashing` is a leaf and does not know about code): a definition
found inside a value (a registry of functions that read the registry) is digested by
a walk over the graph of definitions and values, once per call, strongly connected
components as units (see "Functions, classes and modules as values" below), and a
later call reuses those digests while a witness shows nothing they read changed.

Why one module of about 2,000 lines: a plan, the walk that digests definitions found
in values, and the witness that lets a hit skip that walk share the private state of
one key computation (memoised plans, the walk of the current scope, the digests an
earlier walk offers), and each is on the path of every call. The parts that could
leave without that state are the plans on disk and in module files (``_load``, ``_save``,
``read_plan_file``) and the plans shipped to worker processes (``export``,
``receive``, ``_adopt``): a ``keyplan/`` package with those two modules is the next
step, kept for a session in which no one else edits the call path.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import copyreg
import functools
import gc
import inspect
import itertools
import json
import marshal
import operator
import os
import re
import sys
import threading
import types
import warnings
import weakref
from collections.abc import Iterator as _Iterator  # typing's, without typing (issue 12)

import xxhash

from . import hashing, report
from ._lazylog import LazyLogger
from .analysis.resolve import (
    UNBOUND,
    is_pickled_copy,
    is_project_object,
    qualname_of,
    unwrap,
    unwrap_chain,
    value_attributes,
    wrapper_attributes,
)
from .config import defaults
from .errors import PENDING_WARNINGS, BlindSpotWarning
from .hashing.builtins import _items
from .hashing.core import _TL, _too_deep
from .source import INDEX, display_path
from .store import read_trusted_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

__all__ = ["KeyPlan", "NamesSnapshot", "Slot", "acknowledge_blind_spots", "plan_for"]

# Lazy: ``logging`` is imported only when a record could be emitted (see _lazylog), not
# by the first key of every process (issue 12, target 5).
logger = LazyLogger("checkpointing")

# Bump when the analysis or the layout of stored plans changes.
ANALYSIS_FORMAT = 7
_RUNTIME = sys.implementation.cache_tag or sys.version


class Slot:
    """A value read at every call: a module global, a closure cell, or the default
    values of a reached helper."""

    __slots__ = (
        "qualname",
        "namespace",
        "name",
        "cell",
        "defaults_of",
        "spec",
        "_defaults",
        "owner",
    )

    def __init__(
        self,
        qualname: str,
        namespace: Optional[Dict[str, Any]] = None,
        name: Optional[str] = None,
        cell: Any = None,
        defaults_of: Any = None,
        spec: Any = None,
        owner: Any = None,
    ) -> None:
        self.qualname = qualname
        # ``owner``: the class or function whose attribute this is (its ``__dict__`` is
        # ``namespace``: a class's is a new proxy object at each ``vars(cls)``).
        self.owner = owner
        self.namespace = namespace
        self.name = name
        self.cell = cell
        self.defaults_of = defaults_of
        self.spec = spec  # how to find it again in another process (None: cannot)
        self._defaults: Tuple[Any, Any] = (None, None)

    def reader(self) -> Callable[[], Any]:
        """A function of no arguments returning the current value, as cheap as can be
        (one is called per slot on every call of a checkpointed function)."""
        if self.cell is None and self.defaults_of is None:
            return functools.partial(self.namespace.get, self.name, UNBOUND)  # type: ignore
        return self.read

    @property
    def key(self) -> Tuple[Any, ...]:
        """Identifies where the value is read, the same in every plan that reads it."""
        if self.cell is not None:
            return ("cell", id(self.cell))
        if self.defaults_of is not None:
            return ("defaults", id(self.defaults_of))
        if self.owner is not None:
            return ("attribute", id(self.owner), self.name)
        return (id(self.namespace), self.name)

    def read(self) -> Any:
        if self.cell is not None:
            return cell_value(self.cell)
        if self.defaults_of is not None:
            # The same pair while the defaults are the same objects: a hit then finds
            # every object it reads identical to the last call's.
            owner, last = self.defaults_of, self._defaults
            if last[0] is not owner.__defaults__ or last[1] is not owner.__kwdefaults__:
                last = self._defaults = (owner.__defaults__, owner.__kwdefaults__)
            return last
        return self.namespace.get(self.name, UNBOUND)  # type: ignore[union-attr]


class KeyPlan:
    """What the key of a function's calls is made of; see the module docs.

    ``nodes`` (the reached definitions, for display) is empty for a plan read from
    disk; ``summary`` then lists them as plain data.
    """

    __slots__ = (
        "root",
        "nodes",
        "slots",
        "static_digest",
        "files",
        "summary",
        "spec",
        "not_stored",
        "from_disk",
        "external_modules",
        "_versions",
        "_guards",
        "_generation",
        "_slot_readers",
        "_last",
        "_n_guards",
        "_expected",
        "_getters",
        "_code_owners",
        "_code_expected",
        "_records_generation",
        "_keys",
        "children",
        "vouched",
    )

    def __init__(
        self,
        root: Any,
        nodes: List[Any],
        slots: List[Slot],
        guards: Sequence[Tuple[Any, Any, Any]],
        static_digest: bytes,
        *,
        files: Optional[Dict[str, str]] = None,
        summary: Optional[List[Dict[str, Any]]] = None,
        spec: Optional[Dict[str, Any]] = None,
        from_disk: bool = False,
        external_modules: Sequence[str] = (),
        children: Sequence[Any] = (),
    ) -> None:
        self.root = root
        # Of a local plan (see depgraph.build_plan): the definitions its code refers
        # to, not part of ``static_digest``; the walk digests them.
        self.children = tuple(children)
        self.nodes = nodes
        self.slots = slots
        self.static_digest = static_digest
        self.files = files or {}
        self.summary = summary or []
        self.spec = spec
        self.not_stored: Optional[str] = None  # why ``spec`` is None, if it is
        self.from_disk = from_disk
        self.external_modules = tuple(external_modules)
        self._versions: Optional[Dict[str, str]] = None
        self._guards = tuple(guards)
        # Code guards (function, "__code__", code) are not read on each call (reading
        # ``__code__`` is an audited event): only after a ``__code__`` assignment moved
        # ``INDEX.generation`` (see _revalidate).
        code_guards = [g for g in self._guards if isinstance(g[0], types.FunctionType)]
        self._code_owners = tuple(owner for owner, _, _ in code_guards)
        self._code_expected = tuple(code for _, _, code in code_guards)
        guards = [g for g in self._guards if not isinstance(g[0], types.FunctionType)]
        self._generation = INDEX.generation
        self._records_generation = INDEX.records_generation
        self._slot_readers = tuple(s.reader() for s in slots)
        self._n_guards = len(guards)
        self._expected = [expected for _, _, expected in guards]
        self._getters = (
            tuple(_guard_getter(namespace, name) for namespace, name, _ in guards)
            + self._slot_readers
        )
        # Where each getter reads, so that walks read a place shared by plans once.
        self._keys = tuple(
            (
                "guard",
                id(namespace) if namespace is not None else None,
                id(name) if namespace is None else name,
            )
            for namespace, name, _ in guards
        ) + tuple(s.key for s in slots)
        # Objects read at the last call, their digest, the witness that their contents
        # are unchanged (None: all are immutable), and each getter paired with the
        # object it read (what a hit compares).
        self._last: Optional[
            Tuple[List[Any], bytes, Optional[_Witness], Tuple[Tuple[Any, Any], ...]]
        ] = None
        # The witnesses the latest values_digest checked or made (that witness and
        # those it includes): the hashing of the same call's arguments need not check
        # them again (see walk_scope).
        self.vouched: Tuple[_Witness, ...] = ()

    def valid(self) -> bool:
        """Still describes the code: no module reloaded, no analysed name rebound."""
        return self.values_digest() is not None

    def values_digest(self) -> Optional[bytes]:
        """The digest of the slot values now, or None if the plan went stale.

        This is the per-call cost of tracking: each guard and slot is read by its
        C-level getter. When every object read is the very one read at the previous
        call and the witness of their contents holds (mutable containers unchanged,
        definitions inside them reading what they read), the previous digest is
        returned. Otherwise the guards are compared with what the analysis saw and the
        slot values are hashed.
        """
        if self._generation != INDEX.generation and not self._revalidate():
            return None
        last = self._last
        if last is not None:
            # The common case, a loop over (getter, object read last time) pairs: no
            # list of what is read now, no map or comprehension to make (a third of
            # the cost of this method with a few getters).
            for get, seen in last[3]:
                if get() is not seen:
                    break
            else:
                if last[2] is None or last[2].holds():
                    return last[1]
                last = None  # the same objects, other contents: digested again below
        now = [get() for get in self._getters]
        # Identity, not ``==``: 1 == 1.0 and 0.0 == -0.0, but their digests differ.
        if (
            last is not None
            and (all(map(operator.is_, now, last[0])) or _same_objects(now, last[0]))
            and (last[2] is None or last[2].holds())
        ):
            return last[1]
        n = self._n_guards
        if now[:n] != self._expected:
            return None
        values = now[n:]
        if all(type(v) in _IMMUTABLE for v in values):
            digest = self._digest(values)
            self._last = (now, digest, None, tuple(zip(self._getters, now)))
            self.vouched = ()
            return digest
        with walk_scope():
            digest = self._digest(values)
            witness = _values_witness(values)
        self._last = (
            (now, digest, witness, tuple(zip(self._getters, now))) if witness is not None else None
        )
        self.vouched = witness.vouched() if witness is not None else ()
        return digest

    def _revalidate(self) -> bool:
        """After ``generation`` moved: still valid if no file was recorded again and
        every function analysed runs the code it ran then (a ``__code__`` assigned
        elsewhere moved it)."""
        generation = INDEX.generation
        if INDEX.records_generation != self._records_generation:
            return False
        if tuple(map(getattr, self._code_owners, _CODE)) != self._code_expected:
            return False  # a function runs other code now (%autoreload, a patch)
        self._generation = generation
        return True

    def read_now(self) -> Optional[List[Any]]:
        """What the guards and then the slots hold now, or None if the plan went stale."""
        if self._generation != INDEX.generation and not self._revalidate():
            return None
        now = [get() for get in self._getters]
        if now[: self._n_guards] != self._expected:
            return None
        return now

    def versions(self) -> Dict[str, str]:
        """Name -> version of each installed third-party distribution the code reaches
        (computed once; for ``track_versions``)."""
        if self._versions is None:
            self._versions = _distribution_versions(self.external_modules)
        return self._versions

    def slot_digests(self) -> Dict[str, str]:
        """Digest of each global and closure value now, by qualified name (to explain
        a miss; not on the hot path)."""
        out: Dict[str, str] = {}
        if not self.slots:
            return out
        with walk_scope():  # definitions in several values are digested once
            for slot, value in zip(self.slots, self.read_values()):
                try:
                    out[slot.qualname] = hashing.hexdigest_value(value)
                except hashing.UnhashableValue:
                    out[slot.qualname] = "unhashable:" + type(value).__qualname__
        return out

    def node_digests(self) -> Dict[str, List[Any]]:
        """Digest, file and line of each reached definition, by qualified name."""
        return {n["qualname"]: [n["digest"], n["file"], n["line"]] for n in self.summary}

    def read_values(self) -> List[Any]:
        """Current values of the globals and closure cells the code reads."""
        return [read() for read in self._slot_readers]

    def _digest(self, values: List[Any]) -> bytes:
        """The digest of slot values.

        A value with no stable digest (a lock, a socket in a global) is identified by
        its type instead, with a warning (once) that its changes are not tracked: a
        function must stay cacheable because some global it touches is a connection.
        """
        if not values:
            return b""
        with walk_scope():
            return self._digest_in_walk(values)

    def _digest_in_walk(self, values: List[Any]) -> bytes:
        try:
            if any(type(v) in _SHARED_TYPES and len(v) >= _SHARED_MIN for v in values):
                return _feed_values(hashing.Hasher(), values, self).digest()
            return hashing.Hasher().feed(values).digest()
        except hashing.UnhashableValue:
            pass  # find which one, below
        values = list(values)
        for index, value in enumerate(values):
            try:
                hashing.digest_value(value)
            except hashing.UnhashableValue as exc:
                _warn_unhashable(self.slots[index].qualname, self.root, exc)
                values[index] = ("unhashable", type(value).__module__, type(value).__qualname__)
        return b"unhashable:" + hashing.digest_value(values)


# -- Large values read by several functions ---------------------------------------------
#
# networkx's registry of 750 dispatchers is read by the function and by each dispatcher.
# A large container the function reads itself is digested as a value of the walk (its
# label, definitions inside as placeholders, and their digests, see "Functions, classes
# and modules as values"), not encoded in full beside it: the walk labels it anyway when
# a definition it reaches reads it too, so it is encoded once per key computation, and
# the functions inside it once. Its digest is offered to later walks like a definition's
# (_Walk.value_digest): the next function reading it takes it while its witness holds.

_SHARED_TYPES = (dict, list)
_SHARED_MIN = 100  # items; below that, encoding is cheaper than a node of the walk


def _feed_values(
    h: hashing.Hasher, values: List[Any], plan: Optional["KeyPlan"] = None
) -> hashing.Hasher:
    """Encode slot values as a list, each large container as its digest in the current
    walk (see above); ``plan``: whose slots they are (where each is read, and who
    reads it in a warning), else each value is its own place."""
    walk = getattr(_STATE, "walk", None)
    if walk is _OPEN:
        _STATE.walk = walk = _Walk(vouched=getattr(_STATE, "vouched", ()))
    if not isinstance(walk, _Walk):
        raise RuntimeError("_feed_values needs an open walk_scope")
    buf = h._buf
    active = h._active
    active[id(values)] = len(active)
    keys = plan._keys[plan._n_guards :] if plan is not None else None
    try:
        buf += _TL(b"l", len(values))
        for index, value in enumerate(values):
            if type(value) in _SHARED_TYPES and len(value) >= _SHARED_MIN:
                where = keys[index] if keys is not None else ("value", id(value))
                digest = walk.value_digest(value, (plan, index), where)
                buf += _TL(b"v", len(digest))
                buf += digest
            else:
                _items(h, (value,), buf)
    except RecursionError:
        raise _too_deep(values) from None
    finally:
        del active[id(values)]
    return h


class NamesSnapshot:
    """What a global naming plugins held when the analysis was made (a guard).

    Compares equal to a value holding the same names, so that a plan's guard check
    (``now != expected``) sees a global rebound *or* mutated in place (a list of
    plugin names appended to). ``data`` is plain JSON, for stored plans.
    """

    __slots__ = ("data",)

    def __init__(self, value: Any) -> None:
        self.data = _names_data(value)

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, NamesSnapshot):
            return self.data == other.data
        return self.data == _names_data(other)

    def __ne__(self, other: Any) -> bool:
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]


def _names_data(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return [
            [k, v] if isinstance(k, str) and isinstance(v, str) else repr((k, v))
            for k, v in value.items()
        ]
    if isinstance(value, (list, tuple)):
        return [v if isinstance(v, str) else repr(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(v if isinstance(v, str) else repr(v) for v in value)
    return repr(type(value))


def _same_objects(now: Sequence[Any], before: Sequence[Any]) -> bool:
    """Do ``now`` and ``before`` hold the same objects? Tuples made afresh at each read
    (the defaults of a helper) count as the same if their items are, and snapshots
    of plugin names (a fresh one at each read) if they hold the same names."""
    return len(now) == len(before) and all(
        a is b
        or (type(a) is tuple and type(b) is tuple and _same_objects(a, b))
        or (type(a) is NamesSnapshot and a == b)
        for a, b in zip(now, before)
    )


def _warn_unhashable(qualname: str, root: Any, exc: Exception) -> None:
    """Once per value: its changes are not tracked (it is keyed by its type)."""
    warn_once(
        ("slot", qualname),
        (
            f"the value of {qualname}, read by {qualname_of(root)}, cannot be hashed "
            f"({exc}); changes to it will not re-run the function. Pass it as an argument "
            f"or list what matters in checkpoint(depends_on=[...])"
        ),
    )


def cell_value(cell: Any) -> Any:
    """What a closure cell holds; UNBOUND while it is empty."""
    try:
        return cell.cell_contents
    except ValueError:
        return UNBOUND


_CODE = itertools.repeat("__code__")  # map(getattr, functions, _CODE): their code


def _guard_getter(namespace: Any, name: Any) -> Callable[[], Any]:
    if namespace is not None:
        return functools.partial(namespace.get, name, UNBOUND)
    return functools.partial(cell_value, name)  # ``name`` is a closure cell


# Values whose digest cannot change while the same object is bound.
_IMMUTABLE = frozenset({int, float, str, bytes, bool, type(None), complex, type(UNBOUND)})

_PLANS: Dict[Any, KeyPlan] = {}
_LOCAL_PLANS: Dict[Any, KeyPlan] = {}
_LOCK = threading.RLock()
_WARNED: set = set()
# Roots whose decorator names extra dependencies: their blind spots were looked at.
_ACKNOWLEDGED: Dict[Any, bool] = {}
# Where plans of definitions reached only as values (classes of arguments) are kept.
_default_directory: Optional[str] = None


def acknowledge_blind_spots(func: Any) -> None:
    """Do not warn about ``func``'s blind spots: ``depends_on`` covers them."""
    _ACKNOWLEDGED[unwrap(func)] = True


def is_acknowledged(func: Any) -> bool:
    return bool(_ACKNOWLEDGED.get(func))


PENDING = PENDING_WARNINGS  # see errors.py


def announce(root: str, message: str, filename: Optional[str], lineno: Optional[int]) -> None:
    """The one static warning of a function's analysis: now, or (where the run-time
    safety net may watch the call that follows) at the end of that call."""
    if ("blind-spots", root) in _WARNED:
        return
    safety_net = defaults["runtime.safety_net"] and (
        getattr(sys, "monitoring", None) is not None or defaults["runtime.profile_safety_net"]
    )
    if safety_net:
        PENDING[root] = (message, filename, lineno)
    else:
        warn_once(("blind-spots", root), message, filename, lineno)


def blind_spots_of(plan: Optional[KeyPlan]) -> List[str]:
    """``file:line what`` for each blind spot of a plan (built here, or read back)."""
    if plan is None:
        return []

    if plan.nodes:
        return [
            f"{display_path(n.filename or '?')}:{line} {what}"
            for n in plan.nodes
            for line, what in n.blind_spots
        ]
    return [
        f"{display_path(item[0] or '?')}:{item[1]} {item[2]}"
        for item in (plan.spec or {}).get("blind_spots", ())
    ]


def flush_warnings(root: Optional[str] = None, found: str = "") -> None:
    """Emit held-back warnings (``found``: what the safety net saw ``root`` run)."""
    if root is not None and found:
        held = PENDING.pop(root, None)
        if held is not None:
            message, filename, lineno = held
            warn_once(("blind-spots", root), f"{message}. {found}", filename, lineno)
    for name in list(PENDING):
        held = PENDING.pop(name, None)
        if held is not None:
            warn_once(("blind-spots", name), *held)


def warn_once(
    key: Any, message: str, filename: Optional[str] = None, lineno: Optional[int] = None
) -> None:
    """Issue a :class:`BlindSpotWarning` once per ``key`` (unless warnings are off)."""
    if key in _WARNED or not defaults["analysis.warn_blind_spots"] or getattr(_QUIET, "on", False):
        return
    _WARNED.add(key)
    if filename:
        # Reported at the user's line, where an editor or a warnings filter finds it.
        warnings.warn_explicit(message, BlindSpotWarning, filename, lineno or 0)
    else:
        report.warn(message, BlindSpotWarning)


def current(func: Any, directory: Optional[str] = None) -> Tuple[KeyPlan, bytes]:
    """The valid plan of ``func`` and the digest of the values it reads now: the
    per-call work of tracking, done once (the memoised plan is checked by reading
    its guards and slots; only a stale one goes through :func:`plan_for`)."""
    plan = _PLANS.get(func)
    digest = plan.values_digest() if plan is not None else None
    if digest is None:
        with _GCPaused(_PROMOTE_AFTER_PLANS):
            plan = plan_for(func, directory)
            digest = plan.values_digest()
            assert digest is not None, "a plan just built is valid"
            if _PENDING:
                flush_analysis()
    return plan, digest


class _GCPaused:
    """Cyclic garbage collection paused while plans are built, read back or walked.

    That work allocates hundreds of thousands of objects that live on (the plans), which
    triggers full collections, each of which traverses the whole heap: with a 300-module
    project loaded, half of a first call's time (networkx: 1.1 s -> 0.5 s). Reference
    counting still frees everything acyclic; cycles wait for the next collection.

    Where the paused work left many new objects (a first analysis, or plans read back:
    hundreds of thousands; the first key of a new process on networkx: 30,000), they
    are moved to the oldest generation as the pause ends (``gc.freeze()`` then
    ``gc.unfreeze()``, which relinks the lists): else the first young collection after
    it traverses them all (0.1 s after a first analysis of networkx, 3 to 4 ms after a
    new process's first key), to promote them there anyway. Garbage cycles among them
    are collected with the next full collection. Not done while the program keeps
    objects frozen itself (a server that froze its heap before forking): its frozen
    objects stay as they are.

    ``promote_after``: how many new objects the pause must leave to be promoted. A
    plan built or read back is kept for the life of the process, so its objects are
    promoted from a single young collection's worth (a new process's first tabulate
    hit on 3.13 otherwise paid a 2.6 ms collection of what the imports left young).
    The walks of hits promote only from many more, as the promotion also takes the
    program's own young objects out of young collections: done at every hit, their
    garbage cycles would wait for a full collection that hits no longer lead to."""

    __slots__ = ("paused", "promote_after")

    def __init__(self, promote_after: int = 5_000) -> None:
        self.promote_after = promote_after

    def __enter__(self) -> None:
        self.paused = gc.isenabled()
        if self.paused:
            gc.disable()

    def __exit__(self, *exc: Any) -> None:
        if self.paused:
            if gc.get_count()[0] > self.promote_after and not gc.get_freeze_count():
                gc.freeze()
                gc.unfreeze()
            gc.enable()


# Objects left by building or reading plans beyond which they are promoted, not
# traversed (see above): one young collection's worth (its default threshold).
_PROMOTE_AFTER_PLANS = 700


def cached(func: Any) -> Optional[KeyPlan]:
    """The memoised plan of ``func``, if any (for callers that must not analyse)."""
    return _PLANS.get(func)


def plan_for(func: Any, directory: Optional[str] = None) -> KeyPlan:
    """The key plan of a function or class: memoised, else read from ``directory``
    (``<cache>/analysis``), else built (and written there)."""
    return _plan_for(func, directory, _PLANS, False)


def local_plan_for(func: Any, directory: Optional[str] = None) -> KeyPlan:
    """The local plan of a definition (its own code, the values it reads, and the
    definitions it refers to as ``children``): how the walk digests a definition found
    inside a value, so that the work is linear in what a registry reaches."""
    return _plan_for(func, directory, _LOCAL_PLANS, True)


def _plan_for(
    func: Any, directory: Optional[str], memo: Dict[Any, KeyPlan], local: bool
) -> KeyPlan:
    plan = memo.get(func)
    if plan is not None and plan.valid():
        return plan
    global _default_directory
    if directory is None:
        directory = _default_directory
    elif _default_directory is None:
        _default_directory = directory
    with _LOCK:
        plan = memo.get(func)
        if plan is not None and plan.valid():
            return plan
        if plan is not None:
            _refresh_swapped_code(plan)
        shipped = None if local else _SHIPPED.pop(func, None)
        adopted = _adopt(func, shipped) if shipped is not None else _adopt_by_name(func, local)
        if adopted is not None:
            memo[func] = adopted
            return adopted
        # A wrapper layer describes as the function it wraps: its plan is not stored.
        stored = directory and not (local and unwrap(func) is not func)
        path = _plan_path(func, directory, local) if stored else None
        module = _module_path(func, directory) if path and local else None  # type: ignore[arg-type]
        plan = _load(func, path, module) if path and plan is None else None
        if plan is None:
            from .depgraph import build_plan

            plan = build_plan(func, local=local)
            if module and plan.spec is not None:
                _defer(plan, path, module)  # type: ignore[arg-type]
            elif path and plan.spec is not None:
                _save(plan, path)
            elif path:
                _note_not_stored(plan, path)
        memo[func] = plan
    return plan


def _refresh_swapped_code(plan: KeyPlan) -> None:
    """A function of ``plan`` runs other code now (``%autoreload``, a patch): make sure
    the source of that code's file is what is on disk, as the new code came from it."""
    for owner, _name, expected in plan._guards:
        if isinstance(owner, types.FunctionType):
            code = owner.__code__
            if code != expected:
                INDEX.refresh(code.co_filename)


# -- Shipped to worker processes -------------------------------------------------------

# Plans that came with a function pickled by value (cloudpickle, dill), by function.
_SHIPPED: "weakref.WeakKeyDictionary[Any, Dict[str, Any]]" = weakref.WeakKeyDictionary()


def _main_modules() -> List[str]:
    """The names under which this process's ``__main__`` module is known."""
    main = sys.modules.get("__main__")
    names = {"__main__"}
    spec = getattr(main, "__spec__", None)
    if getattr(spec, "name", None):
        names.add(spec.name)
    return sorted(names)


def export(func: Any, directory: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """The plan of ``func`` as plain data for a worker process (None: not portable).

    A worker that receives ``func`` by value (a ``__main__`` function or notebook cell,
    pickled by cloudpickle or dill) has neither its source nor the parent's
    ``__main__``; with this data it computes the key the parent computes: the same
    static digest, and slot values read where the worker's copy of the code reads
    them (see :func:`_adopt`).
    """
    plan, _ = current(func, directory)
    if plan.spec is None:
        return None
    data = dict(plan.spec)
    # A plan received from a parent travels on (dask's scheduler unpickles and pickles
    # tasks again) and still names the parent's __main__.
    data["main_modules"] = sorted(set(data.get("main_modules", ())) | set(_main_modules()))
    return data


def receive(func: Any, data: Dict[str, Any]) -> None:
    """Remember the plan shipped with ``func``; used at its first call (:func:`plan_for`)."""
    _SHIPPED[func] = data


# Warnings are not issued in this thread (analyses made only to be shipped).
_QUIET = threading.local()
# Plans of __main__ definitions shipped, by qualified name within __main__.
_SHIPPED_NAMED: Dict[str, List[Dict[str, Any]]] = {}
# Exported plans of __main__ definitions: id -> (definition, its plan, data).
_EXPORTED: Dict[int, Tuple[Any, List["KeyPlan"], List[Dict[str, Any]]]] = {}


def export_definitions(func: Any) -> List[Dict[str, Any]]:
    """Plans of the other functions and classes of ``func``'s ``__main__`` (script or
    notebook), each with the digest of its bytecode.

    A worker that receives such a definition by value (a class of an argument, a
    function passed as a value) finds its plan here by name, and uses it if its copy
    has the same bytecode. Analysed without warnings (they are the parent's to give
    when the definition is used) and without keeping the plan.
    """
    from .depgraph import build_plan, bytecode_digest

    if is_pickled_copy(func):
        # Received from a parent and passed on (dask's scheduler pickles tasks again):
        # the copy's globals hold only what it names itself; pass on what came.
        with _LOCK:
            return [data for versions in _SHIPPED_NAMED.values() for data in versions]
    namespace = getattr(func, "__globals__", None) or {}
    out = []
    for value in list(namespace.values()):
        try:
            original = unwrap(value)
            if (
                original is func
                or not isinstance(original, (types.FunctionType, type))
                or getattr(original, "__module__", None) != "__main__"
                or not is_project_object(original)
            ):
                continue
        except Exception:  # a strange object in a notebook's namespace: not ours
            continue
        known = _EXPORTED.get(id(original))
        # Valid while no module was reloaded and no name it was found by was rebound
        # (a helper redefined in a notebook cell).
        if known is not None and known[0] is original and all(p.valid() for p in known[1]):
            data = known[2]
        else:
            data = []
            _QUIET.on = True
            try:
                # Digested as values by their local plans; explained (the class of an
                # argument, in ``why``) by their whole plans.
                plans = [_LOCAL_PLANS.get(original), _PLANS.get(original)]
                for index, plan in enumerate(plans):
                    if plan is None or not plan.valid():
                        plan = plans[index] = build_plan(original, local=index == 0)
                    if plan.spec is not None:
                        data.append(
                            dict(
                                plan.spec,
                                main_modules=_main_modules(),
                                bytecode=bytecode_digest(original),
                            )
                        )
                _EXPORTED[id(original)] = (original, plans, data)
            except Exception as exc:  # not shipped: the worker will not share its keys
                logger.debug(
                    "not shipping the analysis of %s: %s: %s",
                    qualname_of(original),
                    type(exc).__name__,
                    exc,
                )
            finally:
                _QUIET.on = False
        out.extend(data)
    return out


def receive_definitions(shipped: Sequence[Dict[str, Any]]) -> None:
    """Remember plans of a parent's ``__main__`` definitions (see :func:`export_definitions`)."""
    with _LOCK:
        for data in shipped:
            name = data["root"][1].partition(":")[2]
            versions = _SHIPPED_NAMED.setdefault(name, [])
            if data not in versions:
                versions.append(data)


def _shipped_version(obj: Any, local: bool) -> Optional[Dict[str, Any]]:
    """The plan (``local`` or whole) shipped for the definition ``obj`` has been copied
    from: same name, same bytecode (the most recent such)."""
    versions = _SHIPPED_NAMED.get(getattr(obj, "__qualname__", ""))
    if not versions:
        return None
    from .depgraph import bytecode_digest

    digest = bytecode_digest(obj)
    return next(
        (
            data
            for data in reversed(versions)
            if data.get("bytecode") == digest and ("children" in data) == local
        ),
        None,
    )


def _adopt_by_name(obj: Any, local: bool) -> Optional[KeyPlan]:
    """The shipped plan of a copy of a parent's ``__main__`` definition (a class or
    function that came by value, with arguments), if any."""
    if getattr(obj, "__module__", None) != "__main__" or not is_pickled_copy(obj):
        return None
    data = _shipped_version(obj, local)
    return _adopt(obj, data) if data is not None else None


class _Locator:
    """How a stored plan's names are found again in this process: modules by their
    name in ``sys.modules``, definitions by their description. A worker that received
    its parent's plan finds the parent's ``__main__`` another way (see :func:`_adopt`)."""

    skip_files: Any = frozenset()  # files whose digest need not be checked

    def namespace(self, module: str, name: Optional[str] = None) -> Optional[Dict[str, Any]]:
        loaded = sys.modules.get(module)
        return vars(loaded) if loaded is not None else None

    def same(self, obj: Any, expected: Any) -> bool:
        return describe(obj) == expected


_HERE = _Locator()


class _ParentLocator(_Locator):
    """Finds the names of a plan received from a parent process (see :func:`_adopt`)."""

    def __init__(self, data: Dict[str, Any], root_globals: Dict[str, Any]) -> None:
        self.data = data
        self.main_modules = set(data.get("main_modules", ()))
        self.skip_files = {
            node["file"]
            for node in data["nodes"]
            if node["qualname"].partition(":")[0] in self.main_modules
        }
        self.root_globals = root_globals
        # cloudpickle rebuilds one globals dict for the functions of a module pickled
        # together; dill (recurse=True) one per function, holding the names it uses.
        self.main_dicts = [root_globals]

    def namespace(self, module: str, name: Optional[str] = None) -> Optional[Dict[str, Any]]:
        if module in self.main_modules:
            return next((d for d in self.main_dicts if name in d), self.root_globals)
        return super().namespace(module, name)

    def same(self, obj: Any, expected: Any) -> bool:
        now = describe(obj)
        if now is None or expected is None or len(now) != len(expected):
            return now == expected
        module, _, name = expected[1].partition(":")
        if module in self.main_modules:
            # Known here by another module name, and cloudpickle renames the file of
            # code it copies to "<dynamic-code>": the kind, name and line must match.
            if [now[0], now[1].partition(":")[2], *now[3:]] != [expected[0], name, *expected[3:]]:
                return False
        elif now != expected:
            return False
        if module not in self.main_modules and (
            len(expected) < 3 or expected[2] not in self.data["files"]
        ):
            return True  # external code: identified by its name
        original = unwrap(obj)
        home = getattr(original, "__globals__", None)
        if home is None:
            return True
        if module in self.main_modules:
            if home is not self.root_globals and not is_pickled_copy(original):
                return False
            if all(home is not d for d in self.main_dicts):
                self.main_dicts.append(home)
            return True
        return home is self.namespace(module)


def _adopt(func: Any, data: Dict[str, Any]) -> Optional[KeyPlan]:
    """The parent's plan for ``func`` as received by a worker, or None if the code the
    worker would run is not the code the parent analysed.

    Names of the parent's ``__main__`` (``main_modules``) are read in the globals of
    the worker's ``func`` (cloudpickle rebuilds one dict for all functions of a module
    pickled together; dill refers to the worker's ``__main__``), every other module's
    in the worker's own import of it, whose source must have the digest the parent saw.
    Each function found through a guard must read the namespace its names are read
    from here: else the worker analyses ``func`` itself. The plan is never written to
    the worker's analysis directory (it describes code by the parent's names), and its
    blind spots were reported in the parent.
    """
    root_globals = getattr(func, "__globals__", None)
    if isinstance(func, type):  # the globals its methods read
        root_globals = next(
            (m.__globals__ for m in list(vars(func).values()) if isinstance(m, types.FunctionType)),
            None,
        )
    if root_globals is None:
        return None
    plan = _rebuild(func, data, _ParentLocator(data, root_globals))
    if plan is None:
        logger.debug(
            "shipped plan of %s not used: the code here is not what the parent analysed",
            qualname_of(func),
        )
    return plan


# -- On disk ------------------------------------------------------------------------


def describe(obj: Any) -> Optional[List[Any]]:
    """How to recognise a definition in another process (None: not a definition)."""
    original = unwrap(obj)
    if isinstance(original, types.FunctionType):
        code = original.__code__
        return ["function", qualname_of(original), code.co_filename, code.co_firstlineno]
    if isinstance(original, type):
        return ["class", qualname_of(original)]
    if isinstance(original, (types.BuiltinFunctionType, types.ModuleType)):
        return ["external", qualname_of(original)]
    return None


#: Suffix of a file of stored analysis (one function's plan).
PLAN_SUFFIX = ".plan"
# How the body of a plan file is encoded (see read_plan_file), and marshal's version 4:
# that of Python 3.4 to 3.13, pinned so that any of them reads the plans another wrote
# (``checkpointing graph`` run by another interpreter lists them all).
_MARSHAL = b"marshal"
_MARSHAL_VERSION = 4


def _plan_path(func: Any, directory: str, local: bool = False) -> Optional[str]:
    identity = describe(func)
    if identity is None:
        return None
    extra = (["local"] if local else []) + (_copy_marks(func) if identity[0] == "class" else [])
    return os.path.join(directory, _analysis_name([identity], extra) + PLAN_SUFFIX)


def _analysis_name(what: List[Any], extra: Sequence[Any] = ()) -> str:
    """The name of a file of stored analysis: a digest of ``what`` it holds and of all
    that makes an analysis of it differ (the analysis format, the hashing format, the
    runtime, the project roots).

    ``what`` and ``extra`` are lists of str, int and None (descriptions), whose
    ``repr`` is exact and the same in every process; not ``json.dumps``, whose first
    call in a process costs a new process's first hit 25 µs (issue 12, target 5)."""
    roots = defaults["analysis.project_roots"]
    parts = [ANALYSIS_FORMAT, hashing.FORMAT_VERSION, _RUNTIME, *what]
    parts.append([os.fspath(r) for r in roots] if roots else None)
    parts += extra
    return xxhash.xxh3_128_hexdigest(repr(parts).encode("utf-8", "surrogatepass"))


def _copy_marks(cls: Any) -> List[Any]:
    """What tells a class apart from the other classes that describe alike, where its
    module does not bind it at its qualified name: ``dataclass(slots=True)`` returns a
    new class, and networkx makes several at run time from one ``class`` statement,
    each with attributes of its own. Their plans differ; stored at one path, each would
    replace the other's in every process."""
    cls = unwrap(cls)
    obj = sys.modules.get(getattr(cls, "__module__", None) or "")
    for part in getattr(cls, "__qualname__", "").split("."):
        obj = getattr(obj, part, None) if obj is not None else None
    if obj is cls:
        return []
    return ["copy", sorted(map(str, vars(cls))), [describe(b) for b in cls.__bases__]]


def _load(func: Any, path: str, module: Optional[str] = None) -> Optional[KeyPlan]:
    """The plan stored at ``path`` (a local plan: under its file's name in the file of
    its module, ``module``) if it still holds; None if there is none or it is stale."""
    try:
        if module is None:
            data = read_plan_file(path)
        else:
            data = _module_entries(module).pop(os.path.basename(path), None)
            if data is None:
                return None
        plan = _rebuild(func, data)
    except FileNotFoundError:
        return None
    except Exception as exc:  # a damaged or foreign file: analyse again, replace it
        logger.debug("stored analysis %s not used: %s: %s", path, type(exc).__name__, exc)
        return None
    if plan is None:
        logger.debug("stored analysis %s is stale", path)
    return plan


def read_plan_file(path: str) -> Dict[str, Any]:
    """The stored analysis at ``path`` once it passed its checks: a regular file (never
    a FIFO or a link), ours and writable only by us (a plan decides what a key covers,
    so a planted one could make results stale), its checksum and its place (first
    line: xxh3-128 of the body that follows, the file's own name, so a plan moved onto
    another function's file is told apart, and the body's encoding). Raises OSError or
    ValueError.

    The body is ``marshal`` data (first line ending ``marshal``): plain lists, dicts,
    str, int, float, bool and None, read in one C call, without the Python layers of
    ``json.loads`` (a new process's first hit reads one; issue 12, target 5). It is
    only unmarshalled once the checks passed: marshal trusts its input as pickle does,
    and only the user could have written the file. Files of earlier versions (first
    line of two fields) are JSON, read so for ``checkpointing verify``."""
    text = read_trusted_file(path)
    first, _, body = text.partition(b"\n")
    digest, _, place = first.partition(b" ")
    name, _, encoding = place.partition(b" ")
    if xxhash.xxh3_128_hexdigest(body).encode() != digest:
        raise ValueError("checksum mismatch (corrupted or not an analysis file)")
    if name.decode("utf-8", "replace") != os.path.basename(path):
        raise ValueError("misplaced: it is the analysis stored for another function")
    if encoding == _MARSHAL:
        try:
            data = marshal.loads(body)
        except (EOFError, ValueError, TypeError) as exc:
            raise ValueError(f"not an analysis file: {exc}") from None
    elif not encoding:
        data = json.loads(body)
    else:
        raise ValueError(f"unknown encoding {encoding!r} (written by a newer version?)")
    if not isinstance(data, dict):
        raise ValueError("not an analysis file")
    return data


def _rebuild(func: Any, data: Dict[str, Any], locate: _Locator = _HERE) -> Optional[KeyPlan]:
    """The plan ``data`` describes, found again in this process (``locate``), or None if
    anything it names is not what the analysis saw (a source file's digest, a guard's
    definition, a closure cell, a slot's place)."""
    if data.get("format") != ANALYSIS_FORMAT:
        return None
    # The root's description, once (a plan's code guards name it again): in this
    # process's own names only (a parent's plan compares otherwise, see _adopt).
    root = data.get("root")
    here = type(locate) is _Locator
    if not (describe(func) == root if here else locate.same(func, root)):
        return None
    for filename, digest in data["files"].items():
        if filename in locate.skip_files:
            continue
        record = INDEX.by_filename(filename)
        if record is None or record.digest.hex() != digest:
            return None
    guards = []
    # The definitions the guards found, by their description (the first of equals).
    found: Dict[Any, Any] = {}
    # Indexed at the first code guard that needs it: most name the root or a function
    # a global guard found (_code_owner), and a first hit in a new process pays for
    # every call (issue 12, target 5).
    functions: Optional[_Functions] = None
    # Whether the root or a definition found is a class: its methods are candidates too,
    # which only _Functions orders as it must.
    classes = isinstance(func, type)
    for spec in data["guards"]:
        kind, where, name, expected = spec
        if kind == "global":
            namespace = locate.namespace(where, name)
            if namespace is None:
                return None
            current = namespace.get(name, UNBOUND)
            if not locate.same(current, expected):
                return None
            guards.append((namespace, name, current))
        elif kind == "names":  # a global naming plugins: the same names as analysed
            namespace = locate.namespace(where, name)
            if namespace is None:
                return None
            snapshot = NamesSnapshot(namespace.get(name, UNBOUND))
            if snapshot.data != expected:
                return None
            guards.append((namespace, name, snapshot))
            continue
        elif kind == "code":  # the code object of an analysed function (see depgraph)
            owner = None
            if here and not classes and expected[0] == "function":
                owner = _code_owner(func, root, found, expected)
            if owner is None:
                if functions is None:
                    functions = _Functions(func, found)
                owner = (
                    _find_definition(func, found, expected, locate, functions)
                    if expected[0] == "wrapper"
                    else _find_function(func, found, expected, locate, functions)
                )
            if owner is None:
                return None
            guards.append((owner, "__code__", owner.__code__))
            continue
        else:  # a closure cell of the root, or of a definition an earlier guard found
            cell = _root_cell(func if where is None else found.get(_described(where)), name)
            if cell is None:
                return None
            current = cell_value(cell)
            if not locate.same(current, expected):  # an empty cell describes as None
                return None
            guards.append((None, cell, current))
        found.setdefault(_described(expected), current)
        classes = classes or isinstance(current, type)
    slots = []
    owners: Dict[Any, Any] = {}
    for qualname, spec in data["slots"]:
        kind = spec[0]
        if kind == "global":
            namespace = locate.namespace(spec[1], spec[2])
            if namespace is None:
                return None
            if is_project_object(unwrap(namespace.get(spec[2]))):
                # A name the analysis read as a value (unbound in the process that made
                # it, a worker say) now names code, which an analysis would follow.
                return None
            slots.append(Slot(qualname, namespace, spec[2], spec=spec))
        elif kind == "cell":
            owner = func if len(spec) < 3 else found.get(_described(spec[2]))
            cell = _root_cell(owner, spec[1])
            if cell is None:
                return None
            slots.append(Slot(qualname, cell=cell, spec=spec))
        elif kind == "attribute" or kind == "attributes":
            # On a definition found through a guard, or the root; "attributes": several
            # of one owner in a row, as a module's file stores them (_compact_slots).
            where = (_described(spec[1]), spec[2])
            owner = owners.get(where, UNBOUND)
            if owner is UNBOUND:  # a wrapper carries a dozen: found once
                owner = owners[where] = _attribute_owner(func, found, spec[1], spec[2], locate)
            namespace = getattr(owner, "__dict__", None)
            if namespace is None:
                return None
            if kind == "attribute":
                slots.append(Slot(qualname, namespace, spec[3], spec=spec, owner=owner))
                continue
            for name in spec[3]:
                one = ["attribute", spec[1], spec[2], name]
                slots.append(Slot(f"{qualname}.{name}", namespace, name, spec=one, owner=owner))
        else:  # defaults of a helper found through a guard (or of a wrapper layer)
            owner = (
                _find_definition(func, found, spec[1], locate, functions)  # type: ignore[arg-type]
                if spec[1][0] == "wrapper"  # (found from ``found``: no _Functions needed)
                else found.get(_described(spec[1]))
            )
            if owner is None and locate.same(func, spec[1]):
                owner = func  # the root of a local plan
            if owner is None:
                return None
            owner = owner if spec[1][0] == "wrapper" else unwrap(owner)
            slots.append(Slot(qualname, defaults_of=owner, spec=spec))
    for identity, names in data.get("attributes", ()):
        # A class that gained or lost value attributes (``Cls.NEW = 1`` in a module the
        # plan does not cover) needs new slots: analyse again.
        owner = _attribute_owner(func, found, identity, -1, locate)
        if not isinstance(owner, type) or value_attributes(owner) != names:
            return None
    children = []
    for expected in data.get("children", ()):
        if functions is None:
            functions = _Functions(func, found)
        child = _find_definition(func, found, expected, locate, functions)
        if child is None:
            return None
        children.append(child)
    # What the analysis could not see was said when it was made; ``graph`` and ``why``
    # show it again (issue 9: not once more in every process that reuses the analysis).
    return KeyPlan(
        unwrap(func),
        [],
        slots,
        guards,
        bytes.fromhex(data["static_digest"]),
        files=data["files"],
        summary=data["nodes"],
        spec=data,
        from_disk=True,
        external_modules=data.get("externals", ()),
        children=children,
    )


def _code_owner(func: Any, root: Any, found: Dict[Any, Any], expected: Any) -> Any:
    """The function a code guard of a stored plan names, where no class is among the
    root and the definitions found (whose methods would be candidates too): the root
    itself, or the function a global or cell guard found under that description; None
    to search as :class:`_Functions` does. What :class:`_Functions` would answer then,
    without indexing (the root first, then each found definition by its description)."""
    if expected == root:
        return unwrap(func)
    candidate = found.get(_described(expected))
    if candidate is None:
        return None
    candidate = unwrap(candidate)
    return candidate if isinstance(candidate, types.FunctionType) else None


class _Functions:
    """The functions that the code guards of a stored plan may name, by description:
    the root, the definitions found by earlier guards and the methods of those that
    are classes, indexed as the guards find them (one ``describe`` per candidate, not
    one per candidate and guard: a plan of a large project has hundreds of each)."""

    def __init__(self, root: Any, found: Dict[Any, Any]) -> None:
        self.found = found
        self.by: Dict[Any, Any] = {}
        self.count = 0
        self._add(root)

    def _add(self, obj: Any) -> None:
        if _DESCRIBED[0] != INDEX.generation:  # a module reloaded or a __code__ assigned
            _DESCRIBED[:] = [INDEX.generation, {}, {}]
        entry = _entry(obj, _DESCRIBED[1])
        if entry[2] is not None:
            self.by.setdefault(entry[2], entry[1])
        if isinstance(obj, type):
            # The first function of each description among its members, in their order:
            # indexed once per class and reused while it holds the same member objects
            # (networkx's Graph is found by dozens of the plans a new process reads).
            members = tuple(vars(obj).values())
            indexed = _DESCRIBED[2].get(id(obj))
            if (
                indexed is None
                or indexed[0] is not obj
                or len(indexed[1]) != len(members)
                or not all(map(operator.is_, indexed[1], members))
            ):
                known, first = _DESCRIBED[1], {}
                for candidate in members:
                    if type(candidate) not in _DATA:  # a class's constants, docstring, slots
                        entry = _entry(candidate, known)
                        if entry[2] is not None:
                            first.setdefault(entry[2], entry[1])
                indexed = _DESCRIBED[2][id(obj)] = (obj, members, first)
            # Earlier candidates keep their place: the first of equal descriptions wins.
            self.by = {**indexed[2], **self.by}

    def get(self, expected: Any) -> Any:
        if self.count < len(self.found):
            for obj in itertools.islice(self.found.values(), self.count, None):
                self._add(obj)
            self.count = len(self.found)
        return self.by.get(_described(expected))


def _entry(candidate: Any, known: Dict[int, Any]) -> Tuple[Any, Any, Any]:
    """``(candidate, the function it unwraps to, its description)``, described once."""
    entry = known.get(id(candidate))
    if entry is None or entry[0] is not candidate:
        original = unwrap(candidate)
        identity = None
        if isinstance(original, types.FunctionType):  # describe(), as a key
            code = original.__code__
            identity = ("function", qualname_of(original), code.co_filename, code.co_firstlineno)
        entry = known[id(candidate)] = (candidate, original, identity)
    return entry


# Built-in types none of whose instances is or wraps a function.
_DATA = frozenset({str, int, float, bool, bytes, type(None), tuple, list, dict, set, frozenset})

# [INDEX.generation, {id(object): (object, the function it unwraps to, its description)},
# {id(class): (class, its members, {description: first function so described})}]: the
# methods of a class (networkx's dispatcher, its Graph) are described once, not once per
# stored plan that finds functions through them.
_DESCRIBED: List[Any] = [None, {}, {}]


def _find_function(
    root: Any,
    found: Dict[Any, Any],
    expected: Any,
    locate: _Locator = _HERE,
    functions: Optional[_Functions] = None,
) -> Any:
    """The function described by ``expected`` now: the root, one found through a
    guard, a method of a class found so, or reached by its qualified name. A function
    whose code was swapped describes differently (another first line): None."""
    if functions is not None and type(locate) is _Locator:  # descriptions compare equal
        obj = functions.get(expected)
        if obj is not None:
            return obj
        return _function_by_name(expected, locate)
    candidates = [root, *found.values()]
    for obj in (root, *found.values()):
        if isinstance(obj, type):
            candidates.extend(vars(obj).values())
    for obj in candidates:
        obj = unwrap(obj)
        if isinstance(obj, types.FunctionType) and locate.same(obj, expected):
            return obj
    return _function_by_name(expected, locate)


def _find_definition(
    root: Any, found: Dict[Any, Any], expected: Any, locate: _Locator, functions: _Functions
) -> Any:
    """The function or class (unwrapped) that a local plan's child description names,
    or the wrapper layer ``["wrapper", description, hops]`` names."""
    if expected and expected[0] == "wrapper":
        bound = found.get(_described(expected[1]))
        chain = unwrap_chain(bound) if bound is not None else []
        hops = expected[2]
        layer = chain[hops] if hops < len(chain) - 1 else None
        return layer if isinstance(layer, types.FunctionType) else None
    obj = found.get(_described(expected))
    if obj is not None:
        obj = unwrap(obj)
        return obj if locate.same(obj, expected) else None
    if expected and expected[0] == "function":
        obj = _find_function(root, found, expected, locate, functions)
        if obj is not None:
            return obj
        # A wrapper's code (``helper = logged(_helper)``): down a found object's chain.
        for value in (root, *found.values()):
            for layer in unwrap_chain(value):
                if isinstance(layer, types.FunctionType) and locate.same(layer, expected):
                    return layer
        return None
    if expected and expected[0] == "class":
        module, _, path = expected[1].partition(":")
        first, _, rest = path.partition(".")
        namespace = locate.namespace(module, first)
        obj = namespace.get(first) if namespace is not None else None
        for part in rest.split(".") if rest else ():
            obj = getattr(obj, part, None) if obj is not None else None
        return obj if isinstance(obj, type) and locate.same(obj, expected) else None
    return None


def _function_by_name(expected: Any, locate: _Locator) -> Any:
    """The function that ``expected`` describes, reached by its qualified name."""
    module, _, path = expected[1].partition(":")
    first, _, rest = path.partition(".")
    namespace = locate.namespace(module, first)
    obj: Any = namespace.get(first) if namespace is not None else None
    for part in rest.split(".") if rest else ():
        obj = getattr(obj, part, None) if obj is not None else None
    obj = unwrap(obj) if obj is not None else None
    return obj if isinstance(obj, types.FunctionType) and locate.same(obj, expected) else None


def _attribute_owner(
    func: Any, found: Dict[Any, Any], identity: Any, hops: int, locate: _Locator = _HERE
) -> Any:
    """The object whose attributes an ``attribute`` slot reads: among the guarded
    definitions (by description) or the root, the one ``describe`` names, ``hops``
    steps down its ``__wrapped__`` chain (-1: the original). A class root first: a copy
    of a class (see :func:`_copy_marks`) describes as the class its guards find."""
    if identity[0] == "class" and locate.same(func, identity):
        obj = func
    else:
        obj = found.get(_described(identity), UNBOUND)
        if obj is UNBOUND:
            if not locate.same(func, identity):
                return None
            obj = func
    if hops < 0:
        return unwrap(obj)
    chain = unwrap_chain(obj)
    return chain[hops] if hops < len(chain) else None


def _distribution_versions(modules: Sequence[str]) -> Dict[str, str]:
    import importlib.metadata as metadata

    stdlib = getattr(sys, "stdlib_module_names", ())
    try:
        owners = metadata.packages_distributions()  # Python 3.10+
    except AttributeError:
        owners = {}
    out: Dict[str, str] = {}
    for module in sorted(set(modules)):
        if module in stdlib or module in sys.builtin_module_names or module == "builtins":
            continue
        for name in owners.get(module, [module]):
            try:
                out[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                continue
    return out


def _described(description: Any) -> Any:
    """A stored description of a definition (a flat list) as a dictionary key."""
    return tuple(description) if isinstance(description, list) else description


def _root_cell(func: Any, name: str) -> Any:
    """The closure cell ``name`` of ``func`` (unwrapped), or None."""
    func = unwrap(func)
    code = getattr(func, "__code__", None)
    if code is None or name not in code.co_freevars or not func.__closure__:
        return None
    return func.__closure__[code.co_freevars.index(name)]


#: Suffix of the note left in the analysis directory for a function whose analysis
#: cannot be stored (read by ``checkpointing verify``).
NOT_STORED_SUFFIX = ".not-stored"


def analyses_not_stored(directory: str) -> List[Dict[str, str]]:
    """The functions whose analysis could not be stored in ``directory``
    (``<cache>/analysis``), each ``{"function", "reason"}``, as the last process
    that analysed them noted."""
    out = []
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith(NOT_STORED_SUFFIX))
    except OSError:
        return []
    for name in names:
        try:
            from .store import read_trusted_file

            note = json.loads(read_trusted_file(os.path.join(directory, name), 1 << 16))
            out.append({"function": str(note["function"]), "reason": str(note["reason"])})
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out


def _note_path(func: Any, path: str) -> str:
    """The note about ``func`` beside its analysis ``path``: named after the function,
    not its place in the file, so that a later analysis finds it."""
    name = xxhash.xxh3_64_hexdigest(json.dumps([_RUNTIME, qualname_of(func)]).encode())
    return os.path.join(os.path.dirname(path), name + NOT_STORED_SUFFIX)


def _note_not_stored(plan: KeyPlan, path: str) -> None:
    """Say why the analysis of ``plan.root`` is not stored: each new process will
    analyse it again before its first call (a DEBUG log, and a note on disk)."""
    reason = plan.not_stored or "unknown"
    name = qualname_of(plan.root)
    logger.debug(
        "the analysis of %s is not stored, so each new process analyses it again: %s", name, reason
    )
    note = _note_path(plan.root, path)
    try:
        from .store import write_private_file

        write_private_file(note, [json.dumps({"function": name, "reason": reason}).encode()])
    except OSError as exc:
        logger.debug("could not write %s: %s", note, exc)


# -- Local plans, one file per module ---------------------------------------------------
#
# A function that reads a registry reaches hundreds of definitions, each analysed alone
# (a local plan). They are stored by module: one file per module holds the local plans
# of the definitions it defines (``<digest>.module``, keyed like a plan file by the
# analysis format, the runtime and the project roots), each under the name its own
# plan file would have. A new process reads a module's file once, when the first of its
# definitions is needed, and each plan in it passes the checks of a plan read alone
# (the digests of the files it covers, its guards). The plans a process builds are
# written at the end of the key computation that built them (or at exit), a module's
# file at once, merged with the plans already there that still match their sources:
# an edit re-analyses the definitions of the edited module only, and a first analysis
# of networkx writes some 250 files, not 1,200. Two processes writing one module's file
# at once can lose each other's new plans (the later rename wins): a plan lost so is
# analysed again by the next process, never misread.

_MODULE_SUFFIX = ".module"
# The plans read from a module's file and not used yet, by the file's path.
_MODULE_ENTRIES: Dict[str, Dict[str, Any]] = {}
# The plans built in this process and not written yet: module file -> plan file name ->
# (plan data, the path of the note saying an earlier process could not store it).
_PENDING: Dict[str, Dict[str, Tuple[Dict[str, Any], str]]] = {}


def _module_path(func: Any, directory: str) -> str:
    module = qualname_of(unwrap(func)).partition(":")[0]
    return os.path.join(directory, _analysis_name(["module", module]) + _MODULE_SUFFIX)


def _read_module_file(path: str) -> Dict[str, Any]:
    """The plans stored in a module's file (empty if none, damaged or of another format)."""
    try:
        data = read_plan_file(path)
        plans = data.get("plans") if data.get("format") == ANALYSIS_FORMAT else None
    except FileNotFoundError:
        return {}
    except Exception as exc:  # damaged or foreign: its plans are analysed again
        logger.debug("stored analysis %s not used: %s: %s", path, type(exc).__name__, exc)
        return {}
    return plans if isinstance(plans, dict) else {}


def _module_entries(path: str) -> Dict[str, Any]:
    entries = _MODULE_ENTRIES.get(path)
    if entries is None:
        entries = _MODULE_ENTRIES[path] = _read_module_file(path)
    return entries


def _defer(plan: KeyPlan, path: str, module: str) -> None:
    """Keep the local plan ``plan`` (its own file would be ``path``) to be written with
    the rest of its module's by :func:`flush_analysis`."""
    _PENDING.setdefault(module, {})[os.path.basename(path)] = (
        _compact_slots(plan.spec),  # type: ignore[arg-type]
        _note_path(plan.root, path),
    )


def _compact_slots(data: Dict[str, Any]) -> Dict[str, Any]:
    """``data`` with the attribute slots of one owner that follow each other stored as
    one ``["attributes", owner, hops, [names]]`` under the owner's qualified name (the
    dozen attributes of each of networkx's dispatchers: 80% of a module's file, and of
    the time to read it back), in the same order; :func:`_rebuild` reads both forms."""
    out: List[Any] = []
    for qualname, spec in data["slots"]:
        if spec[0] == "attribute" and qualname.endswith("." + spec[3]):
            prefix = qualname[: -len(spec[3]) - 1]
            last = out[-1] if out else None
            if (
                last is not None
                and last[1][0] == "attributes"
                and last[0] == prefix
                and last[1][1:3] == spec[1:3]
            ):
                last[1][3].append(spec[3])
                continue
            out.append([prefix, ["attributes", spec[1], spec[2], [spec[3]]]])
        else:
            out.append([qualname, spec])
    return dict(data, slots=out)


def _matches_sources(data: Any) -> bool:
    """Do the files a stored plan covers have the digests it recorded, now?"""
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        return False
    for filename, digest in files.items():
        record = INDEX.by_filename(filename)
        if record is None or record.digest.hex() != digest:
            return False
    return True


def flush_analysis() -> None:
    """Write the local plans built since the last flush: each module's file once, with
    the plans already in it that still match their sources (a failure to write costs
    an analysis in a later process, nothing else)."""
    with _LOCK:
        pending = dict(_PENDING)
        _PENDING.clear()
        for path, entries in pending.items():
            try:
                plans = {
                    name: data
                    for name, data in _read_module_file(path).items()
                    if name not in entries and _matches_sources(data)
                }
                plans.update((name, data) for name, (data, _note) in entries.items())
                if not _write_plan_file(path, {"format": ANALYSIS_FORMAT, "plans": plans}):
                    continue
            except Exception as exc:  # never the caller's problem (nor noise at exit)
                logger.debug("could not store %s: %s: %s", path, type(exc).__name__, exc)
                continue
            for _data, note in entries.values():
                try:  # an earlier process could not store it
                    os.remove(note)
                except OSError:
                    pass


atexit.register(flush_analysis)  # plans built outside a key computation (graph, why)
if hasattr(os, "register_at_fork"):
    # A forked child would write its parent's pending plans a second time.
    os.register_at_fork(after_in_child=_PENDING.clear)


def _write_plan_file(path: str, data: Dict[str, Any]) -> bool:
    """Write ``data`` where :func:`read_plan_file` reads it back (checksum, own name,
    encoding). ``data`` goes through JSON first: what is stored is exactly what JSON
    would keep (lists for tuples, str keys), which the code reading plans compares
    with, and a value JSON cannot hold raises here as it always did."""
    from .store import write_private_file

    body = marshal.dumps(json.loads(json.dumps(data)), _MARSHAL_VERSION)
    try:
        write_private_file(
            path,
            [
                xxhash.xxh3_128_hexdigest(body).encode(),
                b" ",
                os.path.basename(path).encode(),
                b" ",
                _MARSHAL,
                b"\n",
                body,
            ],
        )
    except OSError as exc:  # the analysis is only an optimisation
        logger.debug("could not store %s: %s", path, exc)
        return False
    return True


def _save(plan: KeyPlan, path: str) -> None:
    if not _write_plan_file(path, plan.spec):  # type: ignore[arg-type]
        return
    try:  # an earlier process could not store it
        os.remove(_note_path(plan.root, path))
    except OSError:
        pass


def stored_analysis(
    directory: str, function: str, filename: Optional[str] = None
) -> Optional[Dict[str, Any]]:
    """The analysis of ``function`` (``pkg.mod:func``) stored in ``directory``
    (``<cache>/analysis``), found without importing its module (``checkpointing graph``
    and ``why`` answer from it): ``{"path", "data", "changed"}``, ``changed`` being the
    files it covers whose source on disk no longer has the digest it recorded (edited
    or removed). Of several (the function moved, another interpreter analysed it), one
    whose files all match, else the most recently written; given ``filename``, only
    those of a function defined in that file (scripts all name theirs ``__main__:``).
    None if there is none."""
    try:
        names = os.listdir(directory)
    except OSError:
        return None
    best: Optional[Tuple[bool, float]] = None
    found: Optional[Dict[str, Any]] = None
    for name in names:
        if not name.endswith(PLAN_SUFFIX):
            continue
        path = os.path.join(directory, name)
        try:
            data = read_plan_file(path)
            written = os.stat(path).st_mtime
        except (OSError, ValueError):
            continue
        root = data.get("root")
        if (
            data.get("format") != ANALYSIS_FORMAT
            or "children" in data  # a local plan (one definition, not a key's root)
            or not isinstance(root, list)
            or len(root) < 2
            or root[1] != function
            or not isinstance(data.get("files"), dict)
        ):
            continue
        if filename is not None and not _same_file(root[2] if len(root) > 2 else None, filename):
            continue
        changed = [f for f, d in data["files"].items() if source_digest(f) != d]
        rank = (not changed, written)
        if best is None or rank > best:
            best, found = rank, {"path": path, "data": data, "changed": changed}
    return found


def _same_file(a: Any, b: str) -> bool:
    try:
        return isinstance(a, str) and os.path.samefile(a, b)
    except OSError:
        return False


def source_digest(filename: str) -> Optional[str]:
    """The digest the source index gives the file on disk now (hex; None if unreadable):
    xxh3-128 of its text decoded as Python decodes a module (encoding, newlines)."""
    import importlib.util

    try:
        with open(filename, "rb") as handle:
            text = importlib.util.decode_source(handle.read())
    except (OSError, SyntaxError, UnicodeDecodeError, LookupError):
        return None
    return xxhash.xxh3_128_hexdigest(text.encode("utf-8", "surrogatepass"))


# -- Functions, classes and modules as values -------------------------------------------
#
# A project function or class found inside a value (a registry dict, a dispatch table,
# the class of an argument) is digested by its code and by the values *it* reads, which
# may hold further definitions, and so on: a graph whose nodes are definitions and the
# global values they read, with cycles wherever a registry holds functions that read
# the registry. One :class:`_Walk` digests that graph once per key computation:
#
# 1. discovery: each definition and each global value (by identity) gets a *label*,
#    its own digest with every definition inside it replaced by a placeholder, and the
#    ordered list of the definitions (or, for a definition, the values) it refers to;
# 2. the strongly connected components of that graph (Tarjan), leaves first: a node in
#    no cycle digests as its label plus its successors' digests (a Merkle tree); a
#    component digests as a unit, by colour refinement: every member starts with its
#    label and the digests of its successors outside the component, then is refined
#    with the colours of its successors inside, until the partition into colours is
#    stable. A member's digest is the sorted colours of the whole component plus its
#    own colour. Nothing depends on which member the walk started at, on names or on
#    ids, so the digest is the same in every process and any entry point; and a change
#    anywhere in a component changes the digest of every member.
#
# Each label is computed once per walk: the cost is linear in the definitions and
# values reached (refinement takes a few rounds over the component's edges).

_STATE = threading.local()
_WALK_SERIAL = itertools.count()
_OPEN = object()  # a scope is open; its walk is made on first use
_PLACEHOLDER = b"<definition>"
_DIGEST = xxhash.xxh3_128_digest


class _Node:
    __slots__ = (
        "obj",
        "is_definition",
        "label",
        "succ",
        "digest",
        "reader",
        "plan",
        "read",
        "cyclic",
        "component",
    )

    def __init__(self, obj: Any, is_definition: bool, reader: Any = None) -> None:
        self.obj = obj
        self.is_definition = is_definition
        self.label: Optional[bytes] = None
        self.succ: List[int] = []
        self.digest: Optional[bytes] = None
        self.reader = reader  # (plan, slot index) that first read a value, for warnings
        self.plan: Optional[KeyPlan] = None  # of a definition: its plan and what it read
        self.read: List[Any] = []
        # Digested as a member of a cycle: its digest is that of the whole component
        # (offered to later walks with the rest of it, see _reusable_digest), whose
        # members (node indices) are these.
        self.cyclic = False
        self.component: Tuple[int, ...] = ()


# Types whose equal values (of the same type) always encode alike and hold no definition.
_SCALAR_LABELS = frozenset({int, str, bytes, bool, type(None)})


class _Walk:
    """Digests of the definitions and values reached within one key computation."""

    __slots__ = (
        "nodes",
        "definitions",
        "values",
        "collecting",
        "reused",
        "_witness",
        "shared",
        "answered",
        "serial",
        "scalars",
        "functions",
        "vouched",
        "taken",
        "originals",
    )

    def __init__(self, shared: bool = True, vouched: Tuple[Any, ...] = ()) -> None:
        # False: digests made under other rules (classes by name, for explanations):
        # neither taken from earlier walks nor offered to later ones.
        self.shared = shared
        self.nodes: List[_Node] = []
        self.definitions: Dict[int, int] = {}  # id(definition) -> node
        self.values: Dict[Any, int] = {}  # where a value is read (Slot.key) -> node
        # While a label is hashed: the definitions met, in order (else None).
        self.collecting: Optional[List[Any]] = None
        # Digests of earlier walks found still valid here: id(entry) -> entry or None.
        self.reused: Dict[int, Optional[_Reusable]] = {}
        self._witness: Any = _UNSET
        # id(object asked about) -> (object, digest): a class met once per instance in
        # a registry of 750 is answered without unwrapping and classifying it again.
        self.answered: Dict[int, Tuple[Any, bytes]] = {}
        self.serial = next(_WALK_SERIAL)
        # Labels of the scalars read (most values a registry's functions read are
        # flags, names and None), by (type, value): equal scalars of one type encode alike.
        self.scalars: Dict[Tuple[type, Any], bytes] = {}
        # id(function) -> (function, whether it was met in a label, its encoding, the
        # definitions that recorded as found).
        self.functions: Dict[int, Tuple[Any, int, bytes, List[Any]]] = {}
        # Witnesses checked by this key computation before the walk began (those of
        # the values read, when the walk hashes the arguments): holding, not checked
        # again.
        self.vouched = vouched
        # The members of cycles taken whole from earlier walks (see _reusable_digest),
        # each as (id(definition) -> (definition, digest), where -> (value, digest)):
        # a node is made for a member when the walk meets it, not for all of them at once
        # (networkx's Graph is one of 1,600 members: 1.5 ms a hit with a Graph argument).
        self.taken: List[Tuple[Dict[int, Tuple[Any, bytes]], Dict[Any, Tuple[Any, bytes]]]] = []
        # id(object met while collecting) -> (object, the project definition it unwraps
        # to, or None): the class of each of a registry's 749 dispatchers is classified
        # once per walk, not once per label that meets it.
        self.originals: Dict[int, Tuple[Any, Any]] = {}

    def digest_of(self, original: Any) -> bytes:
        return self._digest_at(self._definition(original))

    def _digest_at(self, index: int) -> bytes:
        """The digest of node ``index``, discovering and folding what it reaches first
        if it has none yet (made here, or taken from an earlier walk)."""
        node = self.nodes[index]
        if node.digest is None:
            with _GCPaused():
                self._discover(index)
                self._fold(index)
        return node.digest  # type: ignore[return-value]

    def value_digest(self, value: Any, reader: Any, where: Any) -> bytes:
        """The digest of a value read at ``where`` (a function's slot): its label and
        the digests of the definitions in it, as if a definition read it; taken from
        an earlier walk while that walk's witness holds (see _reusable_value)."""
        index = self.values.get(where)
        if index is None:
            # A member of a cycle is taken with its component, and _value makes its
            # node from there as it does for any member taken whole.
            digest = self._reusable_value(value, where)
            index = self._value(value, reader, where)
            if digest is not None and self.nodes[index].digest is None:
                self.nodes[index].digest = digest  # not in a cycle: taken alone
        return self._digest_at(index)

    def _reusable_value(self, value: Any, where: Any) -> Optional[bytes]:
        """The digest an earlier walk gave the large value at ``where``, if it is the
        same object and nothing that walk read changed; a member of a cycle only
        together with the rest of its component (as in _reusable_digest)."""
        if not self.shared:
            return None
        return self._take(_REUSABLE_VALUES.get(where), where, value, None)

    def _holds(self, entry: "_Reusable") -> bool:
        """Does ``entry``'s witness hold? (Checked once per walk.)"""
        known = self.reused.get(id(entry), _UNSET)
        if known is _UNSET:
            witness = entry.witness
            vouched = self.vouched
            held = any(w is witness for w in vouched) or witness.holds(vouched)
            known = self.reused[id(entry)] = entry if held else None
        return known is not None

    def _definition(self, original: Any) -> int:
        index = self.definitions.get(id(original))
        if index is None:
            index = self.definitions[id(original)] = len(self.nodes)
            node = _Node(original, True)
            self.nodes.append(node)
            for definitions, _ in self.taken:
                member = definitions.get(id(original))
                if member is not None and member[0] is original:
                    node.digest, node.cyclic = member[1], True
                    return index
            node.digest = self._reusable_digest(original)
        return index

    def _reusable_digest(self, original: Any) -> Optional[bytes]:
        """The digest an earlier walk found for ``original``, if nothing it read changed.

        A member of a cycle digests as part of its whole component: no component may
        be digested with some members taken from an earlier walk and the others made
        here (that gives digests no fresh process gives). So a member's earlier digest
        is taken together with the earlier digests of every other member of its
        component, definitions and values, and only while this walk has met none of
        them (wherever it meets the first: where it starts, the class of an argument,
        or as a successor); if it has, the component is digested again here."""
        if not self.shared:
            return None
        return self._take(_REUSABLE.get(id(original)), id(original), original, original)

    def _take(
        self, entry: Optional["_Reusable"], key: Any, obj: Any, start: Any
    ) -> Optional[bytes]:
        """The digest ``entry`` holds under ``key`` if it is ``obj``'s and the entry's
        witness holds; a member of a cycle only with its whole component, of which this
        walk must have met nothing yet but ``start`` (the definition asked about, whose
        node it has just made; None for a value, asked before its node is made)."""
        if entry is None:
            return None
        held, digest, cyclic, component = entry.digests[key]
        if held is not obj or not self._holds(entry):
            return None
        if cyclic:
            members = entry.members(component)
            if self._meets(members, start):
                return None
            self.taken.append(members)
        return digest

    def _meets(
        self,
        members: Tuple[Dict[int, Tuple[Any, bytes]], Dict[Any, Tuple[Any, bytes]]],
        original: Any,
    ) -> bool:
        """Has this walk met a member of the cycle ``members`` other than ``original``
        (as a node, or in a cycle taken earlier)?"""
        definitions, values = members
        skip = id(original)
        if any(i in definitions for i in self.definitions if i != skip):
            return True
        if any(where in values for where in self.values):
            return True
        return any(
            not (taken[0].keys().isdisjoint(definitions) and taken[1].keys().isdisjoint(values))
            for taken in self.taken
        )

    def finish(self) -> Optional["_Witness"]:
        """What must stay as it is for this walk's digests to stay valid (None: cannot
        be told cheaply); the digests are offered to later walks when it can."""
        if self._witness is not _UNSET:
            return self._witness
        reads: Dict[Any, Tuple[Any, Any]] = {}  # each place read once, however many plans
        containers: List[Any] = []
        seen: set = set()
        witness: Optional[_Witness] = None
        for node in self.nodes:
            if node.plan is not None:
                for key, get, obj in zip(node.plan._keys, node.plan._getters, node.read):
                    if key not in reads:
                        reads[key] = (get, obj)
            elif not node.is_definition and node.label is not None:
                if not _snapshot(node.obj, containers, seen):
                    break
        else:
            witness = _Witness(
                [get for get, _ in reads.values()],
                [obj for _, obj in reads.values()],
                containers,
                [e for e in self.reused.values() if e is not None],
            )
            components = self._components()
            nodes = self.nodes
            digests = {
                id(node.obj): (node.obj, node.digest, node.cyclic, components.get(index))
                for index, node in enumerate(self.nodes)
                if node.plan is not None and node.digest is not None
            }
            values = {
                where: (
                    nodes[index].obj,
                    nodes[index].digest,
                    nodes[index].cyclic,
                    components.get(index),
                )
                for where, index in self.values.items()
                if type(nodes[index].obj) in _SHARED_TYPES
                and nodes[index].label is not None  # digested by this walk
                and nodes[index].digest is not None
                and len(nodes[index].obj) >= _SHARED_MIN
            }
            if (digests or values) and self.shared:
                # One entry for both, so that a later walk checks its witness once.
                entry = _Reusable(witness, {**digests, **values}, self.serial)
                for key in digests:
                    _REUSABLE[key] = entry
                for where in values:
                    _REUSABLE_VALUES[where] = entry
        self._witness = witness
        return witness

    def _components(self) -> Dict[int, List[Tuple[Any, Any, Any, bytes]]]:
        """Node index -> its component as ``(where, definition, object, digest)`` of
        each member (``where`` of a value, ``definition`` of a definition), for the
        members of cycles digested in this walk."""
        out: Dict[int, List[Tuple[Any, Any, Any, bytes]]] = {}
        if not any(node.component for node in self.nodes):
            return out
        where_of = {index: where for where, index in self.values.items()}
        nodes = self.nodes
        for index, node in enumerate(nodes):
            if node.component and index not in out:
                members = [
                    (
                        where_of.get(m),
                        nodes[m].obj if nodes[m].is_definition else None,
                        nodes[m].obj,
                        nodes[m].digest,
                    )
                    for m in node.component
                ]
                for m in node.component:
                    out[m] = members  # type: ignore[assignment]
        return out

    def _value(self, value: Any, reader: Any, where: Any) -> int:
        index = self.values.get(where)
        if index is None:
            index = self.values[where] = len(self.nodes)
            for _, values in self.taken:
                member = values.get(where)
                if member is not None:  # a member of a cycle taken whole (_reusable_digest)
                    node = _Node(member[0], False)
                    node.digest, node.cyclic = member[1], True
                    self.nodes.append(node)
                    return index
            self.nodes.append(_Node(value, False, reader))
        return index

    def _discover(self, start: int) -> None:
        """Label every node reachable from ``start`` (iteratively: registries are deep)."""
        todo = [start]
        seen = {start}
        nodes = self.nodes
        while todo:
            node = nodes[todo.pop()]
            if node.digest is not None:
                continue
            if node.label is not None:  # labelled by an earlier call that failed later
                todo.extend(i for i in node.succ if i not in seen)
                seen.update(node.succ)
                continue
            if node.is_definition:
                plan, read = _plan_and_read(node.obj)
                node.plan, node.read = plan, read
                values = read[plan._n_guards :]
                node.label = (
                    hashing.Hasher()
                    .feed_bytes(b"definition")
                    .feed_bytes(plan.static_digest)
                    .feed((len(plan.children), len(values)))
                    .digest()
                )
                keys = plan._keys[plan._n_guards :]
                node.succ = [self._definition(child) for child in plan.children] + [
                    self._value(value, (plan, i), keys[i]) for i, value in enumerate(values)
                ]
            elif type(node.obj) in _SCALAR_LABELS:
                key = (type(node.obj), node.obj)
                label = self.scalars.get(key)
                if label is None:
                    label = self.scalars[key] = self._label(node)[0]
                node.label, node.succ = label, []
            else:
                node.label, found = self._label(node)
                node.succ = [self._definition(obj) for obj in found]
            todo.extend(i for i in node.succ if i not in seen)
            seen.update(node.succ)

    def _label(self, node: _Node) -> Tuple[bytes, List[Any]]:
        """A value's digest with the definitions in it left as placeholders."""
        found: List[Any] = []
        self.collecting = found
        try:
            return hashing.digest_value(node.obj), found
        except hashing.UnhashableValue as exc:
            plan, index = node.reader
            if plan is not None:
                _warn_unhashable(plan.slots[index].qualname, plan.root, exc)
            value = node.obj
            return hashing.digest_value(
                ("unhashable", type(value).__module__, type(value).__qualname__)
            ), []
        finally:
            self.collecting = None

    def _fold(self, start: int) -> None:
        """Digest the components reachable from ``start``, leaves first (Tarjan)."""
        nodes = self.nodes
        order: Dict[int, int] = {}
        low: Dict[int, int] = {}
        stack: List[int] = []
        on_stack: set = set()
        work = [(start, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                order[v] = low[v] = len(order)
                stack.append(v)
                on_stack.add(v)
            succ = nodes[v].succ
            recurse = False
            while i < len(succ):
                w = succ[i]
                i += 1
                if nodes[w].digest is not None:
                    continue  # digested earlier in this walk
                if w not in order:
                    work.append((v, i))
                    work.append((w, 0))
                    recurse = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], order[w])
            if recurse:
                continue
            if low[v] == order[v]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == v:
                        break
                self._digest_component(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])

    def _digest_component(self, component: List[int]) -> None:
        nodes = self.nodes
        if len(component) == 1 and component[0] not in nodes[component[0]].succ:
            node = nodes[component[0]]
            node.digest = _DIGEST(
                b"".join([b"node", node.label] + [nodes[w].digest for w in node.succ])
            )  # type: ignore
            return
        members = set(component)
        colour = {}
        for v in component:
            node = nodes[v]
            parts = [b"member", node.label]  # type: ignore[list-item]
            for w in node.succ:
                parts.append(b"*" if w in members else b"=" + nodes[w].digest)  # type: ignore
            colour[v] = _DIGEST(b"".join(parts))
        classes = len(set(colour.values()))
        while True:
            colour = {
                v: _DIGEST(
                    b"".join([colour[v]] + [colour[w] for w in nodes[v].succ if w in members])
                )
                for v in component
            }
            count = len(set(colour.values()))
            if count == classes:
                break
            classes = count
        whole = _DIGEST(b"".join([b"component"] + sorted(colour.values())))
        members = tuple(component)
        for v in component:
            nodes[v].digest = _DIGEST(whole + colour[v])
            nodes[v].cyclic = True
            nodes[v].component = members


def probe_digest(value: Any) -> bytes:
    """Digest ``value`` with the definitions inside it as placeholders: for the analysis,
    which asks whether a value can be hashed while plans are still being built (a full
    digest would build them again from within, and remember half-built results)."""
    return _probe(value)[0]


def _probe(value: Any) -> Tuple[bytes, List[Any]]:
    """``value``'s digest with definitions as placeholders, and those definitions."""
    saved = getattr(_STATE, "walk", None)
    walk = _Walk(shared=False)
    found: List[Any] = []
    walk.collecting = found
    _STATE.walk = walk
    try:
        return hashing.digest_value(value), found
    finally:
        _STATE.walk = saved


def _values_witness(values: List[Any]) -> Optional[_Witness]:
    """A witness for slot values just digested in the current walk scope. Containers the
    walk's own witness checks (a registry read both by the root and by the definitions
    in it) are not recorded twice."""
    walk = getattr(_STATE, "walk", None)
    parts: List[Any] = []
    seen: set = set()
    if isinstance(walk, _Walk):
        witness = walk.finish()
        if witness is None:
            return None
        parts.append(_Reusable(witness, {}))
        seen = set(witness.ids)
    containers: List[Any] = []
    if not _snapshot(values, containers, seen):
        return None
    return _Witness([], [], containers, parts)


def _plan_and_read(original: Any) -> Tuple[KeyPlan, List[Any]]:
    """A definition's valid local plan and what its guards and slots hold now."""
    plan = _LOCAL_PLANS.get(original)
    values = plan.read_now() if plan is not None else None
    if values is None:
        # Building a plan may hash values of its own: not as part of this walk.
        walk, _STATE.walk = getattr(_STATE, "walk", None), None
        try:
            plan = local_plan_for(original)
        finally:
            _STATE.walk = walk
        values = plan.read_now()
        assert values is not None, "a plan just built is valid"
    return plan, values


class _Witness:
    """Proof, cheap to check, that digests computed earlier still hold: the objects
    that definitions' guards and slots read (by identity) are the same, and so are
    the contents of the mutable containers (dicts, lists, plain objects) in the values.
    A hit of a function reading a registry of 700 functions checks this instead of
    digesting the registry again; a registry gaining an entry fails it.

    The containers are checked in a few passes that run in C, not one Python loop per
    container: the lengths of all dicts, lists and instance dictionaries at once, then
    one identity comparison over the chained live views of their keys and values
    against what they held (networkx's 750 dispatchers are 15,000 attributes).
    """

    __slots__ = (
        "generation",
        "getters",
        "expected",
        "parts",
        "_namespaces",
        "_names",
        "_bound",
        "_functions",
        "_defaults",
        "_kwdefaults",
        "_getters",
        "_got",
        "_sized",
        "_lengths",
        "_views",
        "_items",
        "_owners",
        "_holders",
        "_classes",
        "_dicts",
        "_sets",
        "_frozen",
        "_typed_sets",
        "_factories_of",
        "_factories",
        "_slotted",
        "_slot_names",
        "_slot_held",
        "_named",
        "_named_classes",
        "_named_calls",
        "_named_args",
        "_named_types",
        "_pairs",
        "_tuples",
        "_others",
        "ids",
    )

    def __init__(
        self, getters: List[Any], expected: List[Any], containers: List[Any], parts: List[Any]
    ) -> None:
        self.generation = _generation()
        self.getters = tuple(getters)
        self.expected = expected
        self.parts = parts  # witnesses of earlier walks whose digests were reused
        self._split_getters()
        sized: List[Any] = []  # dicts and lists, whose length and contents are checked
        views: List[Any] = []  # live views of their contents, in order
        items: List[Any] = []  # what those views held
        owners: List[Any] = []  # instances whose class is checked (and namedtuples)...
        classes: List[Any] = []
        holders: List[Any] = []  # ...those hashed by their attributes...
        dicts: List[Any] = []  # ...and the ``__dict__`` each had
        sets: List[Any] = []
        frozen: List[Any] = []
        typed_sets: List[Any] = []  # sets of ints, whose items' types are checked too
        factories_of: List[Any] = []  # defaultdicts...
        factories: List[Any] = []  # ...and their default_factory
        slotted: List[Any] = []  # objects with slots, once per slot...
        slot_names: List[Any] = []  # ...the slot's name...
        slot_held: List[Any] = []  # ...and what it held (_NO_SLOT: unset)
        named: List[Any] = []  # objects pickled as a lookup by name...
        named_calls: List[Any] = []  # ...the callable...
        named_args: List[Any] = []  # ...its arguments...
        named_types: List[Any] = []  # ...and their types, all in a row
        others: List[Any] = []  # checked one by one (reduced objects, digested again)
        for entry in containers:
            kind, obj = entry[0], entry[1]
            if kind == 0:  # dict: same keys and values, same order
                sized.append(obj)
                views.append(obj.keys())
                views.append(obj.values())
                items.extend(entry[2])
                items.extend(entry[3])
            elif kind == 1:  # list
                sized.append(obj)
                views.append(obj)
                items.extend(entry[2])
            elif kind == 2:  # an instance hashed by its class and attributes
                attributes = entry[3]
                owners.append(obj)
                classes.append(entry[2])
                holders.append(obj)
                dicts.append(attributes)
                sized.append(attributes)
                views.append(attributes.keys())
                views.append(attributes.values())
                items.extend(entry[4])
                items.extend(entry[5])
            elif kind == 4:  # a set of strings
                sets.append(obj)
                frozen.append(entry[2])
            elif kind == 6:  # a namedtuple or an enum member: its class
                owners.append(obj)
                classes.append(entry[2])
            elif kind == 7:  # a set of ints
                sets.append(obj)
                frozen.append(entry[2])
                typed_sets.append(obj)
            elif kind == 8:  # a defaultdict's factory
                factories_of.append(obj)
                factories.append(entry[2])
            elif kind == 9:  # an object with slots: its class and what each slot holds
                owners.append(obj)
                classes.append(entry[2])
                slotted.extend([obj] * len(entry[3]))
                slot_names.extend(entry[3])
                slot_held.extend(entry[4])
            elif kind == 10:  # pickled as a lookup by name: its class and the lookup
                owners.append(obj)
                classes.append(entry[2])
                named.append(obj)
                named_calls.append(entry[3][0])
                named_args.append(entry[3][1])
                named_types.extend(map(type, entry[3][1]))
            else:
                others.append(entry)
        self._sized = sized
        # The lengths they had when snapshotted (in the order ``sized`` lists them).
        self._lengths = [
            len(e[4]) if e[0] == 2 else len(e[2]) for e in containers if e[0] in (0, 1, 2)
        ]
        self._views = views
        self._items = items
        self._owners = owners
        self._classes = classes
        self._holders = holders
        self._dicts = dicts
        self._sets = sets
        self._frozen = frozen
        self._typed_sets = typed_sets
        self._factories_of = factories_of
        self._factories = factories
        self._slotted = slotted
        self._slot_names = slot_names
        self._slot_held = slot_held
        self._named = named
        self._named_classes = tuple({type(obj) for obj in named})
        self._named_calls = named_calls
        self._named_args = named_args
        self._named_types = named_types
        self._pairs = [2] * len(named)
        self._tuples = [tuple] * len(named)
        self._others = others
        # What this witness and those it includes check: a later snapshot need not
        # record these containers again.
        ids = {id(e[1]) for e in containers}
        for part in parts:
            ids.update(part.witness.ids)
        self.ids = ids

    def vouched(self) -> Tuple["_Witness", ...]:
        """This witness and every witness it includes: those a check of it checks."""
        out = [self]
        for part in self.parts:
            out.extend(part.witness.vouched())
        return tuple(out)

    def _split_getters(self) -> None:
        """Sort the places read into those checked in C passes (a name in a module's
        or an object's dict, the defaults of a function) and the rest."""
        namespaces: List[Any] = []
        names: List[Any] = []
        bound: List[Any] = []
        functions: List[Any] = []
        defaults: List[Any] = []
        kwdefaults: List[Any] = []
        rest: List[Any] = []
        got: List[Any] = []
        for get, value in zip(self.getters, self.expected):
            if (
                type(get) is functools.partial
                and len(get.args) == 2
                and get.args[1] is UNBOUND
                and not get.keywords
                and type(getattr(get.func, "__self__", None)) is dict
                and getattr(get.func, "__name__", None) == "get"
            ):
                namespaces.append(get.func.__self__)
                names.append(get.args[0])
                bound.append(value)
            elif (
                type(get) is types.MethodType
                and get.__func__ is Slot.read
                and get.__self__.defaults_of is not None
                and type(value) is tuple
                and len(value) == 2
            ):
                functions.append(get.__self__.defaults_of)
                defaults.append(value[0])
                kwdefaults.append(value[1])
            else:
                rest.append(get)
                got.append(value)
        self._namespaces, self._names, self._bound = namespaces, names, bound
        self._functions, self._defaults, self._kwdefaults = functions, defaults, kwdefaults
        self._getters, self._got = rest, got

    def _same_places(self) -> bool:
        is_ = operator.is_
        if not all(
            map(is_, map(dict.get, self._namespaces, self._names, _UNBOUNDS()), self._bound)
        ):
            return False
        if not all(map(is_, map(_DEFAULTS_OF, self._functions), self._defaults)) or not all(
            map(is_, map(_KWDEFAULTS_OF, self._functions), self._kwdefaults)
        ):
            return False
        return all(map(is_, [get() for get in self._getters], self._got))

    def _same_lookups(self) -> bool:
        """Do the objects pickled as a lookup by name still pickle as the same lookup?
        In C passes over all of them: networkx's 750 dispatchers in 0.1 ms."""
        named = self._named
        try:
            if any(map(_PICKLERS_OF.__contains__, self._named_classes)):
                now = list(map(_reduce, named))
            else:
                now = list(map(_REDUCE_EX_4, named))
            if list(map(len, now)) != self._pairs or not all(
                map(operator.is_, map(_FIRST, now), self._named_calls)
            ):
                return False
            args = list(map(_SECOND, now))
            return (
                list(map(type, args)) == self._tuples
                and args == self._named_args
                and list(map(type, itertools.chain.from_iterable(args))) == self._named_types
            )
        except Exception:  # its own pickling failed: digested again, which says why
            return False

    def holds(self, vouched: Tuple["_Witness", ...] = ()) -> bool:
        """Does what this witness vouches for still hold? ``vouched``: witnesses
        checked earlier in the same key computation, not checked again."""
        if self.generation != _generation():
            return False
        if self.getters and not self._same_places():
            # Objects made afresh at each read (a tuple of defaults, a snapshot of
            # plugin names) are the same if what they hold is.
            now = [get() for get in self.getters]
            if not (
                all(map(operator.is_, now, self.expected)) or _same_objects(now, self.expected)
            ):
                return False
        is_ = operator.is_
        try:
            if (
                not all(map(is_, map(type, self._owners), self._classes))
                or not all(map(is_, map(_DICT_OF, self._holders), self._dicts))
                or list(map(len, self._sized)) != self._lengths
                or not all(map(is_, itertools.chain.from_iterable(self._views), self._items))
                or not all(map(operator.eq, self._sets, self._frozen))
                or not all(set(map(type, s)) <= _INT for s in self._typed_sets)
                or not all(map(is_, map(_FACTORY_OF, self._factories_of), self._factories))
                or not all(
                    map(
                        is_,
                        map(getattr, self._slotted, self._slot_names, _NO_SLOTS()),
                        self._slot_held,
                    )
                )
            ):
                return False
        except RuntimeError:  # changed by another thread while it was read
            return False
        if self._named and not self._same_lookups():
            return False
        for entry in self._others:
            kind, obj = entry[0], entry[1]
            if kind == 3:  # an instance hashed by what it reduces to
                if type(obj) is not entry[2] or not _same_shape(_reduce(obj), entry[3]):
                    return False
            else:  # anything else: digested again (definitions by identity)
                try:
                    digest, found = _probe(obj)
                except hashing.UnhashableValue:
                    return False
                if (
                    digest != entry[2]
                    or len(found) != len(entry[3])
                    or not all(map(is_, found, entry[3]))
                ):
                    return False
        # A part this key computation has already checked (the walk of a registry
        # that both the function's values and its argument's class reach) is not
        # checked again: 0.9 ms a hit for networkx with a Graph argument.
        for part in self.parts:
            witness = part.witness
            if not (any(w is witness for w in vouched) or witness.holds(vouched)):
                return False
        return True


_DICT_OF = operator.attrgetter("__dict__")
_REDUCE_EX_4 = operator.methodcaller("__reduce_ex__", 4)
_FIRST = operator.itemgetter(0)
_SECOND = operator.itemgetter(1)
_PICKLERS_OF = copyreg.dispatch_table
_FACTORY_OF = operator.attrgetter("default_factory")
_DEFAULTS_OF = operator.attrgetter("__defaults__")
_KWDEFAULTS_OF = operator.attrgetter("__kwdefaults__")


def _UNBOUNDS() -> Iterator[Any]:
    return itertools.repeat(UNBOUND)


_NO_SLOT: Any = object()  # what an unset slot holds, for the witness


def _NO_SLOTS() -> Iterator[Any]:
    return itertools.repeat(_NO_SLOT)


def _generation() -> Tuple[int, int, int, int]:
    """Changes when a module is reloaded or a digester is registered (either may
    change digests without changing any object read). Not when one of this package's
    class digesters is (they answer only within an isolated walk): the first miss
    that names the classes of its arguments registers one, which made every witness of
    the process fail once."""
    return (
        INDEX.generation,
        len(hashing._USER_TYPES),
        len(hashing._PREDICATES),
        len(hashing._CLASS_DIGESTERS) - len(_OWN_CLASS_DIGESTERS),
    )


class _Reusable:
    """Digests of one walk's definitions, valid while its witness holds."""

    __slots__ = ("witness", "digests", "serial", "_members")

    def __init__(
        self, witness: _Witness, digests: Dict[int, Tuple[Any, bytes]], serial: int = -1
    ) -> None:
        self.witness = witness
        self.digests = digests
        self.serial = serial  # of the walk that made it
        self._members: Dict[int, Any] = {}

    def members(
        self, component: List[Tuple[Any, Any, Any, bytes]]
    ) -> Tuple[Dict[int, Tuple[Any, bytes]], Dict[Any, Tuple[Any, bytes]]]:
        """The members of a cycle of this walk's, indexed once for every later walk
        that takes it: ``(id(definition) -> (definition, digest), where -> (value,
        digest))``."""
        found = self._members.get(id(component))
        if found is None or found[0] is not component:
            definitions = {id(d): (d, digest) for _, d, _, digest in component if d is not None}
            values = {w: (v, digest) for w, d, v, digest in component if d is None}
            found = self._members[id(component)] = (component, (definitions, values))
        return found[1]


_UNSET: Any = object()
# id(definition) -> the latest walk that digested it (holds the definition alive).
_REUSABLE: Dict[int, _Reusable] = {}
# Where a large value is read (a slot's key) -> the latest walk that digested it there.
_REUSABLE_VALUES: Dict[Any, _Reusable] = {}
_SNAPSHOT_LIMIT = 100_000  # elements; beyond it values are digested again at each call
_SCALARS = _IMMUTABLE | {types.ModuleType, type(Ellipsis)}


def _reduce(obj: Any) -> Any:
    """What :mod:`checkpointing.hashing` digests an object with its own pickling by."""
    reducer = copyreg.dispatch_table.get(type(obj))
    try:
        return reducer(obj) if reducer is not None else obj.__reduce_ex__(4)
    except Exception:
        return None


# Types whose equal values of the same type have equal digests (not float: 0.0, -0.0).
_EXACT = frozenset({int, str, bytes, bool})


def _same_shape(now: Any, before: Any) -> bool:
    """Same objects, in containers made afresh (a reduce tuple, its state dict)."""
    if now is before:
        return True
    t = type(now)
    if t is not type(before):
        return False
    if t in _EXACT:
        return now == before
    if t is tuple or t is list:
        return len(now) == len(before) and all(map(_same_shape, now, before))
    if t is dict:
        return (
            len(now) == len(before)
            and all(map(operator.is_, now, before))
            and all(map(_same_shape, now.values(), before.values()))
        )
    if t is set or t is frozenset:
        return now == before and _strings_only(now)
    return False


def _strings_only(items: Any) -> bool:
    """Only str (or only bytes): equal items have equal digests (unlike 1 and 1.0)."""
    if not items:
        return True
    kinds = set(map(type, items))
    return kinds == _STR or kinds == _BYTES


_STR = {str}
_BYTES = {bytes}
_INT = {int}


# Encoders of values that cannot change in place (paths, dates, decimals, ranges...).
_IMMUTABLE_ENCODERS = frozenset(
    filter(
        None,
        (
            getattr(hashing, name, None)
            for name in (
                "_enc_purepath",
                "_enc_datetime",
                "_enc_date",
                "_enc_timedelta",
                "_enc_decimal",
                "_enc_fraction",
                "_enc_uuid",
                "_enc_range",
                "_enc_tzinfo",
                "_enc_code",  # a code object (a ForwardRef's): its constants are fixed too
            )
        ),
    )
)


_SIGNATURE = inspect.Signature
_DEFAULTDICT = collections.defaultdict
_ENC_DEFAULTDICT = getattr(hashing, "_enc_defaultdict", None)
_PATTERN = type(re.compile(""))


_BY_NAME_ARGS = frozenset({int, str, bytes, bool, type(None)})


def _by_name(reduced: Any) -> bool:
    """Is ``reduced`` (what an object pickles as) a callable and a few arguments whose
    equal values digest alike, with no state: a lookup by name?"""
    return (
        type(reduced) is tuple
        and len(reduced) == 2
        and callable(reduced[0])
        and type(reduced[1]) is tuple
        and len(reduced[1]) <= 8
        and all(type(arg) in _BY_NAME_ARGS for arg in reduced[1])
    )


def _reduces_as_pattern() -> bool:
    """Does a compiled pattern still pickle the standard way (as its pattern and flags,
    both immutable)?"""
    return copyreg.dispatch_table.get(_PATTERN) is getattr(re, "_pickle", None)


def _snapshot(value: Any, containers: List[Any], seen: set) -> bool:
    """Record in ``containers`` what must stay the same for ``value``'s digest to stay
    the same. False for values whose digest cannot be vouched for this way (arrays,
    objects with their own pickling, sets...): those are digested at every call.

    Definitions inside (project functions and classes) are not followed: a walk
    digests them, and its witness checks what they read.
    """
    if type(value) in _SCALARS:
        return True
    if hashing._USER_TYPES.get(types.FunctionType) is not _function_digester or any(
        d is not _definition_digest and d not in _OWN_CLASS_DIGESTERS
        for d in hashing._CLASS_DIGESTERS
    ):
        return False  # someone else decides how functions or classes digest
    builtins = hashing._BUILTINS
    scalars = _SCALARS  # filtered before stacking: most attributes and keys are str or None
    # The containers met most (networkx's dispatchers: 1,600 dicts and 2,300 sets of
    # names) take a shorter path when digested the built-in way.
    plain = {
        c
        for c in (dict, list, set)
        if (hashing._DISPATCH.get(c) or hashing._resolve(c)) is builtins[c]
    }
    by_attributes: Dict[type, bool] = {}  # instances checked by their ``__dict__``
    stack = [value]
    budget = _SNAPSHOT_LIMIT
    while stack:
        value = stack.pop()
        t = type(value)
        if t in plain:
            if id(value) in seen:
                continue
            seen.add(id(value))
            if t is dict:
                keys, values = tuple(value), tuple(value.values())
                containers.append((0, value, keys, values))
                stack.extend([k for k in keys if type(k) not in scalars])
            elif t is set:
                budget -= 1
                if _strings_only(value):
                    containers.append((4, value, frozenset(value)))
                elif set(map(type, value)) == _INT:
                    # Equal but not of one type (1, True, 1.0) digest differently: its
                    # items' types are checked too.
                    containers.append((7, value, frozenset(value)))
                else:
                    return False
                continue
            else:
                values = tuple(value)
                containers.append((1, value, values))
            budget -= 1 + len(values)
            if budget < 0:
                return False
            stack.extend([v for v in values if type(v) not in scalars])
            continue
        if t in scalars or t is types.FunctionType or isinstance(value, type):
            continue
        if id(value) in seen:
            continue
        budget -= 1
        if budget < 0:
            return False
        encoder = hashing._DISPATCH.get(t) or hashing._resolve(t)
        if t is tuple and encoder is builtins[tuple]:
            stack.extend(value)
            continue
        seen.add(id(value))
        if (
            getattr(encoder, "base_encoder", None) is builtins[tuple]
            and getattr(value, "__dict__", None) is None
        ):
            # A namedtuple (tabulate's 36 ``TableFormat``): its items cannot change,
            # its class can. Digested again at each check, it cost a hit 1.3 ms.
            containers.append((6, value, t))
            budget -= len(value)
            stack.extend([v for v in value if type(v) not in scalars])
            continue
        if t not in by_attributes:
            by_attributes[t] = (
                encoder is hashing._enc_plain_object
                or (encoder is hashing._enc_reduce and is_project_object(t))
            ) and not hashing._slot_names(t)
        if encoder in _IMMUTABLE_ENCODERS:
            continue
        if encoder is hashing._enc_never:
            # A lock, an open file, a generator: a value holding one digests as its
            # type, whatever it holds; a module's ``_LOCK = threading.Lock()`` made the
            # snapshot fail, and every hit digested every value the function reads.
            continue
        if t is _PATTERN and encoder is hashing._enc_reduce and _reduces_as_pattern():
            continue  # a compiled regular expression: its pattern and flags are fixed
        elif t is types.BuiltinFunctionType and encoder is builtins[t]:
            owner = value.__self__  # a bound builtin method is hashed with its owner
            if (
                owner is not None
                and type(owner) is not types.ModuleType
                and not hashing._is_global_generator(owner)
            ):
                stack.append(owner)
            continue
        elif t is types.MethodType and encoder is builtins[t]:
            if not hashing._is_global_generator(value.__self__):
                stack.extend((value.__func__, value.__self__))
            continue
        elif encoder is hashing._enc_partial and t is functools.partial:
            stack.extend((value.func, value.args, value.keywords))
            continue
        elif encoder is hashing._enc_wrapped_callable and t in (staticmethod, classmethod):
            stack.append(value.__func__)
            continue
        elif t is _DEFAULTDICT and encoder is _ENC_DEFAULTDICT:
            # A registry filled by decorators (``defaultdict(list)``): its items as a
            # dict's, and its factory by identity (its class cannot be reassigned).
            keys, values = tuple(value), tuple(value.values())
            containers.append((0, value, keys, values))
            containers.append((8, value, value.default_factory))
            budget -= len(values)
            stack.extend([k for k in keys if type(k) not in scalars])
            stack.extend([v for v in values if type(v) not in scalars])
            stack.append(value.default_factory)
            continue
        elif t is frozenset and encoder is builtins[t]:
            if not (_strings_only(value) or set(map(type, value)) <= _IMMUTABLE):
                return False
            continue
        elif encoder is hashing._enc_enum and type(getattr(value, "_name_", None)) is str:
            # An enum member digests as its class and its name (user enums, regex
            # flags): checked by its class, not digested again at every check.
            containers.append((6, value, t))
            continue
        elif by_attributes[t] and type(getattr(value, "__dict__", None)) is dict:
            if encoder is hashing._enc_reduce:
                reduced = _reduce(value)
                if _by_name(reduced):
                    # Pickled as a lookup by name (networkx's 750 dispatchers reduce
                    # to ``_restore_dispatch, (name,)``): that is its whole digest
                    # beside its class, so that is what is checked, not the 22
                    # attributes and 3 sets of names each holds (34,000 objects, 12
                    # ms of a new process's first hit).
                    containers.append((10, value, t, reduced))
                    continue
            # A project class's own pickling is its code (digested with the class and
            # checked by the walk) applied to its attributes: checked by its
            # attributes. (Not an instance of a class with ``__slots__ = ()``: no
            # ``__dict__``.)
            attributes = value.__dict__
            keys, values = tuple(attributes), tuple(attributes.values())
            containers.append((2, value, t, attributes, keys, values))
        elif encoder is hashing._enc_plain_object and hashing._slot_names(t):
            # An object with ``__slots__`` (a ``dataclass(slots=True)``): its class, the
            # object in each slot (unset ones included) and its ``__dict__`` if it has one.
            names = hashing._slot_names(t)
            held = tuple([getattr(value, name, _NO_SLOT) for name in names])
            containers.append((9, value, t, names, held))
            budget -= len(held)
            stack.extend([v for v in held if type(v) not in scalars and v is not _NO_SLOT])
            attributes = getattr(value, "__dict__", None)
            if attributes is not None:
                if type(attributes) is not dict:
                    return False
                keys, values = tuple(attributes), tuple(attributes.values())
                containers.append((2, value, t, attributes, keys, values))
            else:
                continue
        elif by_attributes[t] and getattr(value, "__dict__", None) is None:
            # No attributes at all (a sentinel: ``MISSING = object()``): its class.
            containers.append((6, value, t))
            continue
        elif t is _SIGNATURE:
            # Immutable but for what its parameters hold (a cached ``__signature__``:
            # networkx's dispatchers keep one).
            for parameter in value.parameters.values():
                stack.extend((parameter.default, parameter.annotation))
            stack.append(value.return_annotation)
            continue
        elif encoder is hashing._enc_reduce:
            # Hashed by what it pickles as: checked by reducing it again (networkx's
            # ``_dispatchable`` reduces to its name).
            reduced = _reduce(value)
            if type(reduced) is str:
                # Pickled by reference to a global (``typing.ClassVar``, Markdown's
                # annotations): digested as its class and that name.
                containers.append((3, value, t, reduced))
                continue
            if type(reduced) is not tuple or any(isinstance(part, _Iterator) for part in reduced):
                return False  # iterators of items: not to be consumed twice
            containers.append((3, value, t, reduced))
            values = reduced
        else:
            # No cheaper proof (a defaultdict, an object with slots...): its digest is
            # made again by the witness, with the definitions inside it compared by
            # identity (their own reads are in the walk's witness).
            try:
                digest, found = _probe(value)
            except hashing.UnhashableValue:
                return False
            containers.append((5, value, digest, tuple(found)))
            continue
        budget -= len(values)
        stack.extend([v for v in values if type(v) not in scalars])
    return budget >= 0


class walk_scope:
    """Within this scope, definitions met in values are digested once (one walk).

    Key computation opens one around the values it reads and one around the arguments,
    so that a list of a thousand instances of a project class digests the class once.
    ``vouched``: witnesses the same key computation has just checked (``KeyPlan.vouched``),
    taken as holding by the walk instead of checked again. Scopes nest; only the
    outermost one ends the walk.
    """

    __slots__ = ("_outer", "_vouched")

    def __init__(self, vouched: Tuple[Any, ...] = ()) -> None:
        self._vouched = vouched

    def __enter__(self) -> "walk_scope":
        self._outer = getattr(_STATE, "walk", None)
        if self._outer is None:
            _STATE.walk = _OPEN
            _STATE.vouched = self._vouched
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._outer is None:
            walk = _STATE.walk
            _STATE.walk = None
            _STATE.vouched = ()
            if walk is not _OPEN and exc[0] is None:
                with _GCPaused():  # a first walk snapshots what it read: see _GCPaused
                    walk.finish()


@contextlib.contextmanager
def isolated_walk() -> Iterator[None]:
    """Digests within the block are made by a walk of their own, shared with no other:
    for digests made under other rules (classes by name, to explain a miss)."""
    saved = getattr(_STATE, "walk", None)
    _STATE.walk = _Walk(shared=False)
    try:
        yield
    finally:
        _STATE.walk = saved


# Class digesters of this package (asked before _definition_digest, and returning None
# outside of an isolated walk): a witness may still vouch for digests with them.
_OWN_CLASS_DIGESTERS: set = set()


def register_own_class_digester(fn: Any) -> None:
    """Register a class digester of this package's (see :func:`isolated_walk`)."""
    _OWN_CLASS_DIGESTERS.add(fn)
    hashing.register_class_digester(fn)


def _definition_digest(obj: Any, layer: bool = False) -> Optional[bytes]:
    """Digest of a project function or class: its code and the values it reads, and
    so on through whatever definitions those values hold (see above). ``layer``: of
    the wrapper function ``obj`` itself, not of the function it wraps."""
    walk = getattr(_STATE, "walk", None)
    if walk is not None and walk is not _OPEN and not layer:
        if walk.collecting is None:
            known = walk.answered.get(id(obj))
            if known is not None and known[0] is obj:
                return known[1]
        else:
            seen = walk.originals.get(id(obj))
            if seen is None or seen[0] is not obj:
                original = unwrap(obj)
                seen = walk.originals[id(obj)] = (
                    obj,
                    original if is_project_object(original) else None,
                )
            if seen[1] is None:
                return None
            walk.collecting.append(seen[1])
            return _PLACEHOLDER
    original = obj if layer else unwrap(obj)
    if not is_project_object(original):
        return None
    if walk is None:
        with walk_scope():
            return _definition_digest(original, layer)
    if walk is _OPEN:
        _STATE.walk = walk = _Walk(vouched=getattr(_STATE, "vouched", ()))
    if walk.collecting is not None:
        walk.collecting.append(original)
        return _PLACEHOLDER
    digest = walk.digest_of(original)
    if not layer:
        walk.answered[id(obj)] = (obj, digest)
    return digest


def _function_digester(func: Any) -> bytes:
    walk = getattr(_STATE, "walk", None)
    if not isinstance(walk, _Walk):
        return _function_encoding(func)
    # Within a walk, a function's encoding and what it records (the definitions it
    # names in a label) depend on the function and what its wrappers carry alone,
    # neither of which changes during the walk: a function held in several values (a
    # dispatcher in a registry and in its module's globals) is encoded once per walk,
    # and its record replayed where it is met again.
    events = walk.collecting
    mode = events is not None
    known = walk.functions.get(id(func))
    if known is not None and known[0] is func and known[1] == mode:
        if events is not None:
            events.extend(known[3])
        return known[2]
    start = len(events) if events is not None else 0
    out = _function_encoding(func)
    walk.functions[id(func)] = (func, mode, out, events[start:] if events is not None else [])
    return out


def _function_encoding(func: Any) -> bytes:
    digest = _definition_digest(func)
    if digest is None:
        return b"function:" + qualname_of(func).encode()
    return b"project-function:" + digest + _wrapper_digest(func) + _layers_digest(func)


# id(function) -> (function, its hidden wrapper layers): asked at every digest of it.
_HIDDEN: Dict[int, Tuple[Any, List[Any]]] = {}


def hidden_layers(bound: Any) -> List[types.FunctionType]:
    """The wrapper layers around a project function found in a value that its source
    does not show: applied by a call (``REGISTRY["f"] = logged(f)``), not by decorator
    lines (whose code the function's own analysis follows). Outermost first.

    One decorator line may make several layers (networkx's ``_dispatchable`` wraps an
    ``argmap`` wrapper), so layers are not matched to lines one by one: a function
    with decorator lines is taken as wrapped by them alone. ``logged(f)`` applied by a
    call to a function that also has decorator lines is not seen (docs/tracking.md).
    """
    chain = unwrap_chain(bound)
    if len(chain) < 2 or not isinstance(chain[-1], types.FunctionType):
        return []
    code = chain[-1].__code__
    record = INDEX.by_filename(code.co_filename)
    lines = getattr(record, "lines", None)
    if not lines or len(lines) < code.co_firstlineno:
        return []
    if lines[code.co_firstlineno - 1].lstrip().startswith("@"):
        return []  # its first line is a decorator's (the source is not parsed: a hit)
    return [
        layer
        for layer in chain[:-1]
        if isinstance(layer, types.FunctionType) and is_project_object(layer)
    ]


def _layers_digest(func: Any) -> bytes:
    """The wrapper layers around a project function that its source does not show
    (``register(logged(f))`` at module level): their own code and what they read."""
    if getattr(func, "__wrapped__", None) is None:
        return b""
    known = _HIDDEN.get(id(func))
    if known is None or known[0] is not func:
        known = _HIDDEN[id(func)] = (func, hidden_layers(func))
    parts = [_definition_digest(layer, layer=True) for layer in known[1]]
    return b"+layers:" + b"".join(p for p in parts if p is not None) if parts else b""


def _wrapper_digest(func: Any) -> bytes:
    """What the wrappers around a project function carry (a ``singledispatch``
    registry, a decorator's attributes): a function held in a value counts with them."""
    chain = unwrap_chain(func)
    if len(chain) == 1:
        return b""
    hasher = hashing.Hasher()
    for layer in chain[:-1]:
        hasher.feed([(name, vars(layer)[name]) for name in wrapper_attributes(layer)])
    return b"+wrapped:" + hasher.digest()


def _module_digester(module: types.ModuleType) -> bytes:
    """A project module (named in ``depends_on``) by its source as loaded; others by name."""
    if is_project_object(module):
        record = INDEX.by_module(module.__name__)
        if record is not None:
            return b"project-module:" + record.digest
    return b"module:" + module.__name__.encode()


hashing.register_digester(types.FunctionType, _function_digester)
hashing.register_digester(types.ModuleType, _module_digester)
hashing.register_class_digester(_definition_digest)
hashing.register_digester(type(UNBOUND), lambda value: b"<unbound>")
