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
(:mod:`checkpointing.hashing` is a leaf and does not know about code).
"""

from __future__ import annotations

import functools
import json
import logging
import operator
import os
import sys
import threading
import types
import warnings
import weakref
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import xxhash

from . import hashing
from .analysis.resolve import UNBOUND, is_pickled_copy, is_project_object, qualname_of, unwrap
from .config import defaults
from .errors import BlindSpotWarning
from .source import INDEX

__all__ = ["KeyPlan", "Slot", "acknowledge_blind_spots", "plan_for"]

logger = logging.getLogger("checkpointing")

# Bump when the analysis or the layout of stored plans changes.
ANALYSIS_FORMAT = 1
_RUNTIME = sys.implementation.cache_tag or sys.version


class Slot:
    """A value read at every call: a module global, a closure cell, or the default
    values of a reached helper."""

    __slots__ = ("qualname", "namespace", "name", "cell", "defaults_of", "spec")

    def __init__(self, qualname: str, namespace: Optional[Dict[str, Any]] = None,
                 name: Optional[str] = None, cell: Any = None, defaults_of: Any = None,
                 spec: Any = None) -> None:
        self.qualname = qualname
        self.namespace = namespace
        self.name = name
        self.cell = cell
        self.defaults_of = defaults_of
        self.spec = spec  # how to find it again in another process (None: cannot)

    def reader(self) -> Callable[[], Any]:
        """A function of no arguments returning the current value, as cheap as can be
        (one is called per slot on every call of a checkpointed function)."""
        if self.cell is None and self.defaults_of is None:
            return functools.partial(self.namespace.get, self.name, UNBOUND)  # type: ignore
        return self.read

    def read(self) -> Any:
        if self.cell is not None:
            return cell_value(self.cell)
        if self.defaults_of is not None:
            return (self.defaults_of.__defaults__, self.defaults_of.__kwdefaults__)
        return self.namespace.get(self.name, UNBOUND)  # type: ignore[union-attr]


class KeyPlan:
    """What the key of a function's calls is made of; see the module docs.

    ``nodes`` (the reached definitions, for display) is empty for a plan read from
    disk; ``summary`` then lists them as plain data.
    """

    __slots__ = ("root", "nodes", "slots", "static_digest", "files", "summary", "spec",
                 "from_disk", "external_modules", "_versions", "_guards", "_generation", "_slot_readers", "_last",
                 "_n_guards", "_expected", "_getters")

    def __init__(self, root: Any, nodes: List[Any], slots: List[Slot],
                 guards: Sequence[Tuple[Any, Any, Any]], static_digest: bytes, *,
                 files: Optional[Dict[str, str]] = None,
                 summary: Optional[List[Dict[str, Any]]] = None,
                 spec: Optional[Dict[str, Any]] = None, from_disk: bool = False,
                 external_modules: Sequence[str] = ()) -> None:
        self.root = root
        self.nodes = nodes
        self.slots = slots
        self.static_digest = static_digest
        self.files = files or {}
        self.summary = summary or []
        self.spec = spec
        self.from_disk = from_disk
        self.external_modules = tuple(external_modules)
        self._versions: Optional[Dict[str, str]] = None
        self._guards = tuple(guards)
        self._generation = INDEX.generation
        self._slot_readers = tuple(s.reader() for s in slots)
        self._n_guards = len(self._guards)
        self._expected = [expected for _, _, expected in self._guards]
        self._getters = tuple(_guard_getter(namespace, name)
                              for namespace, name, _ in self._guards) + self._slot_readers
        self._last: Optional[Tuple[List[Any], bytes]] = None  # objects read, digest

    def valid(self) -> bool:
        """Still describes the code: no module reloaded, no analysed name rebound."""
        return self.values_digest() is not None

    def values_digest(self) -> Optional[bytes]:
        """The digest of the slot values now, or None if the plan went stale.

        This is the per-call cost of tracking. Guards and slots are read by one list
        comprehension over C-level getters. When every object read is the very one
        read at the previous call (and the slot values are immutable), nothing can
        have changed and the previous digest is returned. Otherwise the guards are compared with what the analysis saw
        and the slot values are hashed.
        """
        if self._generation != INDEX.generation:
            return None
        now = [get() for get in self._getters]
        last = self._last
        # ``==`` first (C speed, identity shortcut), then identity for real: 1 == 1.0
        # and 0.0 == -0.0, but their digests differ.
        if last is not None and now == last[0] and all(map(operator.is_, now, last[0])):
            return last[1]
        n = self._n_guards
        if now[:n] != self._expected:
            return None
        values = now[n:]
        digest = self._digest(values)
        if all(type(v) in _IMMUTABLE for v in values):
            self._last = (now, digest)
        return digest

    def versions(self) -> Dict[str, str]:
        """Name -> version of each installed third-party distribution the code reaches
        (computed once; for ``track_versions``)."""
        if self._versions is None:
            self._versions = _distribution_versions(self.external_modules)
        return self._versions

    def slot_digests(self) -> Dict[str, str]:
        """Digest of each global and closure value now, by qualified name (to explain
        a miss; not on the hot path)."""
        out = {}
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
        try:
            return hashing.Hasher().feed(values).digest()
        except hashing.UnhashableValue:
            pass  # find which one, below
        values = list(values)
        for index, value in enumerate(values):
            try:
                hashing.digest_value(value)
            except hashing.UnhashableValue as exc:
                slot = self.slots[index]
                warn_once(("slot", slot.qualname), (
                    f"the value of {slot.qualname}, read by {qualname_of(self.root)}, "
                    f"cannot be hashed ({exc}); changes to it will not re-run the "
                    f"function. Pass it as an argument or list what matters in "
                    f"checkpoint(depends_on=[...])"))
                values[index] = ("unhashable", type(value).__module__,
                                 type(value).__qualname__)
        return b"unhashable:" + hashing.digest_value(values)


def cell_value(cell: Any) -> Any:
    """What a closure cell holds; UNBOUND while it is empty."""
    try:
        return cell.cell_contents
    except ValueError:
        return UNBOUND


def _guard_getter(namespace: Any, name: Any) -> Callable[[], Any]:
    if namespace is not None:
        return functools.partial(namespace.get, name, UNBOUND)
    return functools.partial(cell_value, name)  # ``name`` is a closure cell


# Values whose digest cannot change while the same object is bound.
_IMMUTABLE = frozenset({int, float, str, bytes, bool, type(None), complex,
                        type(UNBOUND)})

_PLANS: Dict[Any, KeyPlan] = {}
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


def warn_once(key: Any, message: str, filename: Optional[str] = None,
              lineno: Optional[int] = None) -> None:
    """Issue a :class:`BlindSpotWarning` once per ``key`` (unless warnings are off)."""
    if key in _WARNED or not defaults["analysis.warn_blind_spots"] \
            or getattr(_QUIET, "on", False):
        return
    _WARNED.add(key)
    if filename:
        # Reported at the user's line, where an editor or a warnings filter finds it.
        warnings.warn_explicit(message, BlindSpotWarning, filename, lineno or 0)
    else:
        warnings.warn(message, BlindSpotWarning, stacklevel=4)


def current(func: Any, directory: Optional[str] = None) -> Tuple[KeyPlan, bytes]:
    """The valid plan of ``func`` and the digest of the values it reads now: the
    per-call work of tracking, done once (the memoised plan is checked by reading
    its guards and slots; only a stale one goes through :func:`plan_for`)."""
    plan = _PLANS.get(func)
    digest = plan.values_digest() if plan is not None else None
    if digest is None:
        plan = plan_for(func, directory)
        digest = plan.values_digest()
        assert digest is not None, "a plan just built is valid"
    return plan, digest


def cached(func: Any) -> Optional[KeyPlan]:
    """The memoised plan of ``func``, if any (for callers that must not analyse)."""
    return _PLANS.get(func)


def plan_for(func: Any, directory: Optional[str] = None) -> KeyPlan:
    """The key plan of a function or class: memoised, else read from ``directory``
    (``<cache>/analysis``), else built (and written there)."""
    plan = _PLANS.get(func)
    if plan is not None and plan.valid():
        return plan
    global _default_directory
    if directory is None:
        directory = _default_directory
    elif _default_directory is None:
        _default_directory = directory
    with _LOCK:
        plan = _PLANS.get(func)
        if plan is not None and plan.valid():
            return plan
        shipped = _SHIPPED.pop(func, None)
        plan = _adopt(func, shipped) if shipped is not None else _adopt_by_name(func)
        if plan is not None:
            _PLANS[func] = plan
            return plan
        path = _plan_path(func, directory) if directory else None
        plan = _load(func, path) if path and plan is None else None
        if plan is None:
            from .depgraph import build_plan

            plan = build_plan(func)
            if path and plan.spec is not None:
                _save(plan, path)
        _PLANS[func] = plan
    return plan


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
_EXPORTED: Dict[int, Tuple[Any, "KeyPlan", Optional[Dict[str, Any]]]] = {}


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
            if original is func or not isinstance(original, (types.FunctionType, type)) \
                    or getattr(original, "__module__", None) != "__main__" \
                    or not is_project_object(original):
                continue
        except Exception:  # a strange object in a notebook's namespace: not ours
            continue
        known = _EXPORTED.get(id(original))
        # Valid while no module was reloaded and no name it was found by was rebound
        # (a helper redefined in a notebook cell).
        if known is not None and known[0] is original and known[1].valid():
            data = known[2]
        else:
            data = None
            _QUIET.on = True
            try:
                plan = _PLANS.get(original)
                if plan is None or not plan.valid():
                    plan = build_plan(original)
                if plan.spec is not None:
                    data = dict(plan.spec, main_modules=_main_modules(),
                                bytecode=bytecode_digest(original))
                _EXPORTED[id(original)] = (original, plan, data)
            except Exception as exc:  # not shipped: the worker will not share its keys
                logger.debug("not shipping the analysis of %s: %s: %s",
                             qualname_of(original), type(exc).__name__, exc)
            finally:
                _QUIET.on = False
        if data is not None:
            out.append(data)
    return out


def receive_definitions(shipped: Sequence[Dict[str, Any]]) -> None:
    """Remember plans of a parent's ``__main__`` definitions (see :func:`export_definitions`)."""
    with _LOCK:
        for data in shipped:
            name = data["root"][1].partition(":")[2]
            versions = _SHIPPED_NAMED.setdefault(name, [])
            if data not in versions:
                versions.append(data)


def _shipped_version(obj: Any) -> Optional[Dict[str, Any]]:
    """The plan shipped for the definition ``obj`` has been copied from: same name,
    same bytecode (the most recent such)."""
    versions = _SHIPPED_NAMED.get(getattr(obj, "__qualname__", ""))
    if not versions:
        return None
    from .depgraph import bytecode_digest

    digest = bytecode_digest(obj)
    return next((data for data in reversed(versions) if data.get("bytecode") == digest),
                None)


def _adopt_by_name(obj: Any) -> Optional[KeyPlan]:
    """The shipped plan of a copy of a parent's ``__main__`` definition (a class or
    function that came by value, with arguments), if any."""
    if getattr(obj, "__module__", None) != "__main__" or not is_pickled_copy(obj):
        return None
    data = _shipped_version(obj)
    return _adopt(obj, data) if data is not None else None


def _adopt(func: Any, data: Dict[str, Any]) -> Optional[KeyPlan]:
    """The parent's plan for ``func`` as received by a worker, or None if the code the
    worker would run is not the code the parent analysed.

    Names of the parent's ``__main__`` (``main_modules``) are read in the globals of
    the worker's ``func`` (cloudpickle rebuilds one dict for all functions of a module
    pickled together; dill refers to the worker's ``__main__``), every other module's
    in the worker's own import of it, whose source must have the digest the parent saw.
    Each function found through a guard must read the namespace its names are read
    from here: else the worker analyses ``func`` itself.
    """
    main_modules = set(data.get("main_modules", ()))
    main_files = {node["file"] for node in data["nodes"]
                  if node["qualname"].partition(":")[0] in main_modules}
    root_globals = getattr(func, "__globals__", None)
    if isinstance(func, type):  # the globals its methods read
        root_globals = next((m.__globals__ for m in list(vars(func).values())
                             if isinstance(m, types.FunctionType)), None)
    if data.get("format") != ANALYSIS_FORMAT or root_globals is None:
        return None

    # cloudpickle rebuilds one globals dict for the functions of a module pickled
    # together; dill (recurse=True) one per function, holding the names it uses.
    main_dicts = [root_globals]

    def namespace(module: str, name: Optional[str] = None) -> Optional[Dict[str, Any]]:
        if module in main_modules:
            return next((d for d in main_dicts if name in d), root_globals)
        loaded = sys.modules.get(module)
        return vars(loaded) if loaded is not None else None

    def same(obj: Any, expected: Any) -> bool:
        now = describe(obj)
        if now is None or expected is None or len(now) != len(expected):
            return now == expected
        module, _, name = expected[1].partition(":")
        if module in main_modules:
            # Known here by another module name, and cloudpickle renames the file of
            # code it copies to "<dynamic-code>": the kind, name and line must match.
            if [now[0], now[1].partition(":")[2], *now[3:]] != [expected[0], name,
                                                                  *expected[3:]]:
                return False
        elif now != expected:
            return False
        if module not in main_modules and expected[2] not in data["files"]:
            return True  # external code: identified by its name
        original = unwrap(obj)
        home = getattr(original, "__globals__", None)
        if home is None:
            return True
        if module in main_modules:
            if home is not root_globals and not is_pickled_copy(original):
                return False
            if all(home is not d for d in main_dicts):
                main_dicts.append(home)
            return True
        return home is namespace(module)

    for filename, digest in data["files"].items():
        if filename in main_files:
            continue  # travelled by value with the pickled function
        record = INDEX.by_filename(filename)
        if record is None or record.digest.hex() != digest:
            logger.debug("shipped plan of %s not used: %s differs here", qualname_of(func),
                         filename)
            return None
    if not same(func, data["root"]):
        return None
    guards, found = [], []
    for kind, where, name, expected in data["guards"]:
        if kind == "global":
            ns = namespace(where, name)
            if ns is None:
                return None
            current_value = ns.get(name, UNBOUND)
            guard = (ns, name, current_value)
        else:
            cell = _root_cell(func, name)
            if cell is None:
                return None
            current_value = cell_value(cell)
            guard = (None, cell, current_value)
        if not same(current_value, expected):
            logger.debug("shipped plan of %s not used: %s is another definition here",
                         qualname_of(func), name)
            return None
        guards.append(guard)
        found.append((current_value, expected))
    slots = []
    for qualname, spec in data["slots"]:
        kind = spec[0]
        if kind == "global":
            ns = namespace(spec[1], spec[2])
            if ns is None:
                return None
            slots.append(Slot(qualname, ns, spec[2], spec=spec))
        elif kind == "cell":
            cell = _root_cell(func, spec[1])
            if cell is None:
                return None
            slots.append(Slot(qualname, cell=cell, spec=spec))
        else:
            owner = next((unwrap(obj) for obj, expected in found if expected == spec[1]),
                         None)
            if owner is None:
                return None
            slots.append(Slot(qualname, defaults_of=owner, spec=spec))
    # Never written to the worker's analysis directory (plan_for returns it before
    # saving): it describes code by the parent's names. Blind spots were reported in
    # the parent.
    return KeyPlan(unwrap(func), [], slots, guards, bytes.fromhex(data["static_digest"]),
                   files=data["files"], summary=data["nodes"], spec=data, from_disk=True,
                   external_modules=data.get("externals", ()))


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


def _plan_path(func: Any, directory: str) -> Optional[str]:
    identity = describe(func)
    if identity is None:
        return None
    roots = defaults["analysis.project_roots"]
    key = xxhash.xxh3_128_hexdigest(json.dumps(
        [ANALYSIS_FORMAT, hashing.FORMAT_VERSION, _RUNTIME, identity,
         [os.fspath(r) for r in roots] if roots else None]).encode())
    return os.path.join(directory, key + ".json")


def _load(func: Any, path: str) -> Optional[KeyPlan]:
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read())
        plan = _rebuild(func, data)
    except FileNotFoundError:
        return None
    except Exception as exc:  # a damaged or foreign file: analyse again, replace it
        logger.debug("stored analysis %s not used: %s: %s", path, type(exc).__name__, exc)
        return None
    if plan is None:
        logger.debug("stored analysis %s is stale", path)
    return plan


def _rebuild(func: Any, data: Dict[str, Any]) -> Optional[KeyPlan]:
    if data.get("format") != ANALYSIS_FORMAT or data.get("root") != describe(func):
        return None
    for filename, digest in data["files"].items():
        record = INDEX.by_filename(filename)
        if record is None or record.digest.hex() != digest:
            return None
    guards = []
    found: List[Any] = []
    for spec in data["guards"]:
        kind, where, name, expected = spec
        if kind == "global":
            module = sys.modules.get(where)
            if module is None:
                return None
            namespace = vars(module)
            current = namespace.get(name, UNBOUND)
            if describe(current) != expected:
                return None
            guards.append((namespace, name, current))
        else:  # a closure cell of the root
            cell = _root_cell(func, name)
            if cell is None:
                return None
            current = cell_value(cell)
            if describe(current) != expected:  # an empty cell describes as None
                return None
            guards.append((None, cell, current))
        found.append(current)
    slots = []
    for qualname, spec in data["slots"]:
        kind = spec[0]
        if kind == "global":
            module = sys.modules.get(spec[1])
            if module is None:
                return None
            if is_project_object(unwrap(vars(module).get(spec[2]))):
                # A name the analysis read as a value (unbound in the process that made
                # it, a worker say) now names code, which an analysis would follow.
                return None
            slots.append(Slot(qualname, vars(module), spec[2], spec=spec))
        elif kind == "cell":
            cell = _root_cell(func, spec[1])
            if cell is None:
                return None
            slots.append(Slot(qualname, cell=cell, spec=spec))
        else:  # defaults of a helper found through a guard
            owner = next((unwrap(obj) for obj in found if describe(obj) == spec[1]), None)
            if owner is None:
                return None
            slots.append(Slot(qualname, defaults_of=owner, spec=spec))
    # What the analysis could not see is said again in each process that relies on it.
    for key, message, filename, lineno in data.get("warnings", ()):
        warn_once(tuple(key), message, filename, lineno)
    return KeyPlan(unwrap(func), [], slots, guards, bytes.fromhex(data["static_digest"]),
                   files=data["files"], summary=data["nodes"], spec=data, from_disk=True,
                   external_modules=data.get("externals", ()))


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


def _root_cell(func: Any, name: str) -> Any:
    code = getattr(func, "__code__", None)
    if code is None or name not in code.co_freevars or not func.__closure__:
        return None
    return func.__closure__[code.co_freevars.index(name)]


def _save(plan: KeyPlan, path: str) -> None:
    directory = os.path.dirname(path)
    temporary = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        os.makedirs(directory, exist_ok=True)
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(plan.spec, handle, separators=(",", ":"))
        os.replace(temporary, path)
    except OSError as exc:  # the analysis is only an optimisation
        logger.debug("could not store the analysis of %s: %s", qualname_of(plan.root), exc)
        try:
            os.remove(temporary)
        except OSError:
            pass


# -- Functions, classes and modules as values -------------------------------------------

_ACTIVE = threading.local()


def _definition_digest(obj: Any) -> Optional[bytes]:
    """Digest of a project function or class: its plan plus the values it reads now."""
    original = unwrap(obj)
    if not is_project_object(original):
        return None
    active = getattr(_ACTIVE, "ids", None)
    if active is None:
        active = _ACTIVE.ids = set()
    if id(original) in active:
        # A value that refers back to the definition being hashed: its code is
        # already in the digest.
        return b"<recursive>" + qualname_of(original).encode()
    active.add(id(original))
    try:
        plan, values_digest = current(original)
        hasher = hashing.Hasher()
        hasher.feed_bytes(plan.static_digest)
        hasher.feed_bytes(values_digest)
        return hasher.digest()
    finally:
        active.discard(id(original))


def _function_digester(func: Any) -> bytes:
    digest = _definition_digest(func)
    if digest is not None:
        return b"project-function:" + digest
    return b"function:" + qualname_of(func).encode()


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
