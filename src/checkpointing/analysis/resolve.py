"""From a name (or attribute chain) in a definition to the object it denotes.

This module owns the classification of what code reaches: a user function or class
(followed further), a module global or closure cell of the project (its value is
read at each call), or something external (third-party, standard library,
builtins: identified by qualified name, never traced into). It resolves against the
live objects of the running program, at the first call, when the modules are fully
bound. It knows nothing of graphs or hashing.
"""

from __future__ import annotations

import builtins
import os
import sys
import types
from collections import namedtuple

from ..hashing.derived import counter_attributes, memo_attributes
from ..source import INDEX

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, NamedTuple, Optional, Tuple

    from .canon import Ref

__all__ = [
    "Target",
    "is_project_object",
    "resolve_ref",
    "unwrap",
    "unwrap_chain",
    "value_attributes",
    "wrapper_attributes",
    "qualname_of",
    "FUNCTION",
    "CLASS",
    "GLOBAL",
    "CLOSURE",
    "EXTERNAL",
    "MODULE",
]

FUNCTION = "function"
CLASS = "class"
GLOBAL = "global"
CLOSURE = "closure"
EXTERNAL = "external"
MODULE = "module"

# A name that is not bound (yet): reading it at call time gives this, so that binding
# it later changes the key.
UNBOUND = type("Unbound", (), {"__repr__": lambda self: "<unbound>"})()


if TYPE_CHECKING:

    class _TargetFields(NamedTuple):
        kind: str
        qualname: str
        obj: Any = None
        rest: Tuple[str, ...] = ()
        namespace: Optional[Dict[str, Any]] = None
        name: Optional[str] = None
        cell: Any = None
        # External targets reached through a module (``np.random.RandomState``): the name
        # of the last module the chain passes through and the rest of the chain as written
        # (``numpy.random.RandomState``), which does not depend on which submodules a library
        # has loaded yet (numpy loads ``numpy.random`` on first use), while an alias of
        # the project (``helpers.backend`` bound to json, then to pickle) is followed to the
        # library it names.
        path: Optional[str] = None
        # The names of project modules the chain went through to reach another module
        # (``helpers.backend``): (module dict, name) pairs, guarded like the names code is
        # found by, so that ``import pickle as backend`` in place of json is seen.
        via: Tuple[Tuple[Dict[str, Any], str], ...] = ()

else:  # the same fields without importing typing at run time (issue 12, target 5)
    _TargetFields = namedtuple(
        "Target",
        "kind qualname obj rest namespace name cell path via",
        defaults=(None, (), None, None, None, None, ()),
    )


class Target(_TargetFields):
    """What a :class:`Ref` denotes.

    ``kind`` is one of the module constants. ``obj`` is the function, class or module
    for code targets, the current value for value targets. ``namespace``/``name``
    say where a GLOBAL is read at each call (a module's ``__dict__``); ``cell`` where
    a CLOSURE is read. ``rest`` holds the attributes of the chain past the object
    (``cfg.params.lr`` -> target ``cfg:params``, rest ``("lr",)``). ``qualname`` is
    the one spelling used everywhere (``pkg.mod:name``).
    """

    __slots__ = ()


def unwrap(obj: Any) -> Any:
    """Follow ``__wrapped__`` (functools.wraps, lru_cache, checkpoint) to the original."""
    try:
        # getattr with a default: no AttributeError made (and its message formatted)
        # for the common object that wraps nothing (0.1 µs instead of 0.9).
        inner = getattr(obj, "__wrapped__", _NOT_WRAPPED)
    except Exception:  # a proxy whose attribute access fails
        return obj
    if inner is _NOT_WRAPPED:
        return obj  # the common case, without the set of what was seen
    original = obj
    seen = {id(obj)}
    while True:
        if id(inner) in seen or len(seen) > 100:  # a cycle, or a mock inventing attributes
            return original
        seen.add(id(inner))
        obj = inner
        try:
            inner = getattr(obj, "__wrapped__", _NOT_WRAPPED)
        except Exception:
            return obj
        if inner is _NOT_WRAPPED:
            return obj


_NOT_WRAPPED = object()


def unwrap_chain(obj: Any) -> List[Any]:
    """``obj`` and each object reached by following ``__wrapped__``, outermost first.

    The last is what :func:`unwrap` returns; the others are wrappers whose own code
    and attributes (a dispatcher's registry) also run when ``obj`` is called.
    """
    chain = [obj]
    original = unwrap(obj)
    while chain[-1] is not original and len(chain) <= 100:
        try:
            chain.append(chain[-1].__wrapped__)
        except Exception:
            break
    return chain


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def wrapper_attributes(layer: Any) -> List[str]:
    """Names of what a wrapper carries (``registry``, ``register`` of a
    ``singledispatch`` function; attributes a decorator sets), to be read as values.
    The cache's own wrapper carries only its machinery (``rerun``, ``key``): none. Nor
    are the caches a wrapper object fills itself (networkx's dispatchers' ``_sig``)."""
    code = getattr(layer, "__code__", None)
    if code is not None and code.co_filename.startswith(_PACKAGE_DIR):
        return []
    attributes = getattr(layer, "__dict__", None) or {}
    derived = () if code is not None else memo_attributes(type(layer))
    return sorted(
        name
        for name, value in list(attributes.items())
        if not name.startswith("__") and name not in derived and not _generated_text(code, value)
    )


def _generated_text(code: Any, value: Any) -> bool:
    """Is ``value`` the source text a wrapper's running code was compiled from?

    A self-compiling decorator (networkx's ``argmap``) makes a thin wrapper whose first
    call compiles the real one from a string, swaps the wrapper's ``__code__`` for it and
    keeps the text on the wrapper (``_code``). The text is derived from what the decorator
    line and the wrapped function already put in the key, and it holds a counter of this
    process (``def argmap_f_12(...)``): keying it would give the wrapper another digest
    after its first call, and another in each process.
    """
    return (
        isinstance(value, str)
        and code is not None
        and code.co_filename.startswith("<")  # compiled from a string, not a file
        and f"def {code.co_name}(" in value
    )


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name[:2] == name[-2:] == "__"


def _is_sunder(name: str) -> bool:
    # ``_member_map_``, ``_generate_next_value_``: enum's machinery, not user data.
    return len(name) > 2 and name[0] == name[-1] == "_" and name[1] != "_"


def value_attributes(cls: type) -> List[str]:
    """Names in a class's own namespace whose *values* its readers depend on, beyond
    the class's source code.

    Data attributes (``RATE = 2`` in the body may be reassigned by ``Cls.RATE = 4``
    in any module; ``registry = {}`` is filled by ``__init_subclass__``) and functions
    or classes set from outside the body. Left out: functions, methods and classes
    defined in the body (their code is in the class's), dunder and enum-style
    ``_sunder_`` names, and descriptors made by the class machinery (``__slots__``,
    namedtuple fields), and private counters only the class's own code increments
    (``cls.__count += 1``: what happened in this process, see
    :mod:`checkpointing.hashing.derived`).
    """
    out = []
    prefix = getattr(cls, "__qualname__", "") + "."
    namespace = vars(cls)
    for name, value in list(namespace.items()):
        if _is_dunder(name) or _is_sunder(name) or name == "_abc_impl":
            continue
        inner = value
        if type(inner) is not types.FunctionType:  # (a method: the common case)
            if isinstance(inner, (classmethod, staticmethod)):
                inner = inner.__func__
            elif isinstance(inner, property):
                inner = inner.fget
        if isinstance(inner, (types.FunctionType, type)):
            if (getattr(inner, "__qualname__", None) or "").startswith(prefix):
                continue
        elif hasattr(type(value), "__get__"):
            continue
        out.append(name)
    # Private int counters are looked for (in the class's code) only where there are
    # private ints: a stored plan checks the attributes of every class it reaches.
    if any(type(namespace.get(name)) is int and name[:1] == "_" for name in out):
        counters = counter_attributes(cls)
        out = [name for name in out if name not in counters]
    return sorted(out)


def qualname_of(obj: Any) -> str:
    """``module:qualname`` of a function, class or module."""
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    module = getattr(obj, "__module__", None) or "?"
    if module in ("__main__", "__mp_main__"):  # __mp_main__: multiprocessing's spawn
        main = sys.modules.get("__main__")
        home = getattr(main, "__dict__", None)
        if getattr(obj, "__globals__", home) is not home:
            # A copy made by cloudpickle or dill in a worker: the parent's __main__.
            module = "__main__"
        else:
            # Run with ``python -m pkg.main``: call it by the name it is known by.
            spec = getattr(main, "__spec__", None)
            module = getattr(spec, "name", None) or "__main__"
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or "?"
    return f"{module}:{name}"


# cloudpickle names the file of the code it copies by value so.
PICKLED_CODE_FILENAME = "<dynamic-code>"


def is_pickled_copy(obj: Any) -> bool:
    """Was the function or class ``obj`` rebuilt by cloudpickle or dill in this process
    (a ``__main__`` or notebook definition sent to a worker by value)?

    cloudpickle 3.1.3+ names the file of such code ``<dynamic-code>``; with any version,
    a function of ``__main__`` whose globals are not this ``__main__``'s is a copy.
    """
    if isinstance(obj, type):
        return any(
            isinstance(member, types.FunctionType) and is_pickled_copy(member)
            for member in list(vars(obj).values())
        )
    code = getattr(obj, "__code__", None)
    if not isinstance(code, types.CodeType):
        return False
    if code.co_filename == PICKLED_CODE_FILENAME:
        return True
    if getattr(obj, "__module__", None) != "__main__":
        return False
    if getattr(obj, "__globals__", None) is getattr(sys.modules.get("__main__"), "__dict__", None):
        return False
    filename = code.co_filename
    if filename.startswith("<") or not os.path.exists(filename):
        # A notebook cell (IPython keeps its own namespace, not __main__'s): a copy
        # only if this process did not see the cell run (its source is not here).
        return INDEX.by_filename(filename) is None
    return True


def is_project_object(obj: Any) -> bool:
    """Is ``obj`` a function, class or module of the user's project (to be followed)?"""
    if isinstance(obj, types.ModuleType):
        return INDEX.is_project_module(obj.__name__)
    if isinstance(obj, (types.FunctionType, types.CodeType)):
        code = obj if isinstance(obj, types.CodeType) else obj.__code__
        filename = code.co_filename
        if filename == PICKLED_CODE_FILENAME and isinstance(obj, types.FunctionType):
            # A copy of the parent's code; "__main__" is the parent's script or notebook.
            module = getattr(obj, "__module__", None)
            return module == "__main__" or INDEX.is_project_module(module or "")
        if filename.startswith("<") and not filename.startswith("<ipython-input"):
            return (
                getattr(obj, "__module__", None) == "__main__"
                and INDEX.by_filename(filename) is not None
            )
        if INDEX.is_project_path(filename):
            return True
        # Notebook kernels compile cells to temporary pseudo-files.
        return (
            getattr(obj, "__module__", None) == "__main__"
            and INDEX.by_filename(filename) is not None
        )
    if isinstance(obj, type):
        module = getattr(obj, "__module__", None)
        if module is None or module == "builtins":
            return False
        if module == "__main__":
            if is_pickled_copy(obj):
                return True  # the parent's __main__, not this worker's
            # A notebook's __main__ has no file: where its methods were compiled
            # (a cell) says whose the class is.
            method = next(
                (m for m in list(vars(obj).values()) if isinstance(m, types.FunctionType)), None
            )
            if method is not None:
                return is_project_object(method)
        return INDEX.is_project_module(module)
    return False


def classify(
    value: Any,
    qualname: str,
    rest: Tuple[str, ...] = (),
    namespace: Optional[Dict[str, Any]] = None,
    name: Optional[str] = None,
    cell: Any = None,
    project_home: bool = True,
) -> Target:
    """Decide what a resolved object is: code to follow, a value to read, or external."""
    original = unwrap(value) if callable(value) else value
    if isinstance(original, types.ModuleType):
        if is_project_object(original):
            return Target(MODULE, original.__name__, original, rest)
        return Target(EXTERNAL, original.__name__, original, rest)
    if isinstance(original, (types.FunctionType, type)) and is_project_object(original):
        kind = CLASS if isinstance(original, type) else FUNCTION
        return Target(kind, qualname_of(original), original, rest, namespace, name, cell)
    if isinstance(
        original, (types.FunctionType, types.BuiltinFunctionType, type)
    ) and not is_project_object(original):
        return Target(EXTERNAL, qualname_of(original), original, rest)
    if not project_home:
        # A value living in a third-party module (``np.pi``, ``os.sep``): identified
        # by name, like the rest of that package.
        return Target(EXTERNAL, qualname, None, rest)
    if cell is not None:
        return Target(CLOSURE, qualname, value, rest, cell=cell)
    return Target(GLOBAL, qualname, value, rest, namespace, name)


def _import_origin(ref: Ref, home_module: str) -> Tuple[Any, Any]:
    """What an import inside a function binds, and the module it reads it from when
    that is a value (``from mod import VALUE``: read in ``mod`` at each call, like a
    global of ``mod``); None for a module or a submodule."""
    module = _origin_module(ref, home_module)
    attr = ref.origin.attr  # type: ignore[union-attr]
    if attr is None:
        return module, None
    try:
        return getattr(module, attr), module
    except AttributeError:
        import importlib

        return importlib.import_module(f"{module.__name__}.{attr}"), None


def _external_import(ref: Ref) -> Optional[Target]:
    """An import inside a function from a package that is not the project's, named as
    written (``from scipy.sparse import csr_array`` -> ``scipy.sparse.csr_array``), and
    nothing imported to find out.

    Importing it to resolve the name would make a first analysis import whatever any
    reached function might import on some path (networkx as project code: sympy,
    pandas, scipy, pytest, 1,186 modules and seconds), with their side effects; and
    the name would depend on where the library defines it, not on what the code says.
    Whether a package is the project's is decided on its top-level package's file,
    found without importing it, loaded or not, so that every process decides alike;
    a namespace package (no file) or one not found is resolved as before."""
    origin = ref.origin
    if origin is None or origin.level or not origin.module:
        return None  # relative: the project's own package
    module_name = origin.module
    top = module_name.partition(".")[0]
    loaded = sys.modules.get(top)
    if loaded is not None:
        filename = getattr(loaded, "__file__", None)
    else:
        import importlib.util

        try:
            spec = importlib.util.find_spec(top)  # a top-level name imports nothing
        except (ImportError, ValueError):
            return None
        filename = spec.origin if spec is not None and spec.has_location else None
    if not isinstance(filename, str) or not filename or INDEX.is_project_path(filename):
        return None
    rest = tuple(ref.chain[1:])
    written = f"{module_name}.{origin.attr}" if origin.attr else module_name
    qualname = f"{module_name}:{origin.attr}" if origin.attr else module_name
    return Target(EXTERNAL, qualname, None, rest, path=".".join((written,) + rest))


def _origin_module(ref: Ref, home_module: str) -> Any:
    """The module an import inside a function imports from."""
    origin = ref.origin
    assert origin is not None
    if origin.level:
        package = home_module if _is_package(home_module) else home_module.rpartition(".")[0]
        for _ in range(origin.level - 1):
            package = package.rpartition(".")[0]
        module_name = f"{package}.{origin.module}" if origin.module else package
    else:
        module_name = origin.module
    module = sys.modules.get(module_name)
    if module is None:
        # The function imports it when it runs; importing it now changes nothing it
        # would not change itself.
        import importlib

        module = importlib.import_module(module_name)
    return module


def _is_package(module_name: str) -> bool:
    module = sys.modules.get(module_name)
    return module is not None and hasattr(module, "__path__")


def resolve_ref(ref: Ref, func: Any) -> Target:
    """Resolve ``ref``, read in the definition ``func`` (a function or a class)."""
    chain = ref.chain
    first = chain[0]
    if isinstance(func, type):
        home = sys.modules.get(func.__module__)
        namespace = vars(home) if home is not None else {}
        home_name = func.__module__
    else:
        namespace = func.__globals__
        home_name = namespace.get("__name__", getattr(func, "__module__", "?"))
    cell = None
    freevars = () if isinstance(func, type) else func.__code__.co_freevars
    if ref.scope == "closure" or (ref.scope == "global" and first in freevars):
        code = func.__code__
        try:
            cell = func.__closure__[code.co_freevars.index(first)]
            value = cell.cell_contents
        except (ValueError, TypeError, IndexError):
            value = UNBOUND
        except NameError:  # an empty cell: assigned after the function was defined
            value = UNBOUND
        where = f"{qualname_of(func)}.<closure>.{first}"
        if cell is None:
            return Target(GLOBAL, where, UNBOUND, chain[1:], {}, first)
    elif ref.scope == "import":
        external = _external_import(ref)
        if external is not None:
            return external
        value, owner = _import_origin(ref, home_name)
        where = qualname_of(value) if not isinstance(value, types.ModuleType) else value.__name__
        namespace = None
        if owner is not None and not isinstance(value, types.ModuleType):
            namespace, first = vars(owner), ref.origin.attr  # type: ignore[union-attr]
            where = f"{owner.__name__}:{first}"
    else:
        if first in namespace:
            value = namespace[first]
        elif hasattr(builtins, first):
            return Target(EXTERNAL, f"builtins:{first}", getattr(builtins, first), chain[1:])
        else:
            value = UNBOUND
        where = f"{home_name}:{first}"

    # The last module the chain passes through, and where the rest of it starts.
    head = (value.__name__, 1) if isinstance(value, types.ModuleType) else None
    # Walk the chain through modules: ``pkg.sub.mod.f`` -> the function ``f``.
    consumed = 1
    slot_namespace, slot_name = (namespace, first) if cell is None else (None, None)
    project_home = True
    via: List[Tuple[Dict[str, Any], str]] = []
    while consumed < len(chain) and isinstance(value, types.ModuleType):
        head = (value.__name__, consumed)
        attr = chain[consumed]
        module_dict = vars(value)
        if attr not in module_dict:
            submodule = sys.modules.get(f"{value.__name__}.{attr}")
            if submodule is None:
                break
            nxt = submodule
        else:
            nxt = module_dict[attr]
            if isinstance(nxt, types.ModuleType) and is_project_object(value):
                via.append((module_dict, attr))
        project_home = is_project_object(value)
        where = f"{value.__name__}:{attr}"
        slot_namespace, slot_name = module_dict, attr
        cell = None
        value = nxt
        consumed += 1
    if isinstance(value, types.ModuleType):
        head = (value.__name__, consumed)
    rest = tuple(chain[consumed:])
    if value is UNBOUND:
        return Target(GLOBAL, where, UNBOUND, rest, slot_namespace, slot_name)
    target = classify(value, where, rest, slot_namespace, slot_name, cell, project_home)
    if head is not None and target.kind in (EXTERNAL, MODULE):
        target = target._replace(
            path=".".join((head[0],) + tuple(chain[head[1] :])), via=tuple(via)
        )
    return target
