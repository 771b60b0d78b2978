"""Encoders of Python's builtin types: scalars, containers, classes, objects, functions.

Filled into the exact-type table ``_BUILTINS`` of :mod:`.core`, plus the fallbacks that
decide for any other type (enums, classes, live resources, subclasses of builtins, plain
objects and, last, what ``__reduce_ex__`` gives).

Functions and modules are identified here by name only. :mod:`checkpointing.keyplan`
registers the digesters that identify the project's functions and modules by their code
and source; for anything outside the project they give the very bytes these encoders
give, so that a digest does not change when keyplan is loaded.

(Near 700 lines: Python's builtin types, one short encoder each, plus the rules for
objects; split further they would only import each other.)
"""

from __future__ import annotations

import _thread  # threading's locks, without threading (issue 12, target 5)
import copyreg
import io
import sys
import types

from .core import (
    _BIG,
    _BUILTINS,
    _DISPATCH,
    _NAN,
    _PREFIX,
    _TD,
    _TDD,
    _TL,
    _TQ,
    Hasher,
    UnhashableValue,
    _attr_state,
    _class_ident,
    _enter,
    _feed,
    _feed_at,
    _put_str,
    _q,
    _resolve,
    _StructError,
    _unhashable,
    _xxh3_128_digest,
)
from .derived import cached_property_type, memo_attributes

# -- Scalars ----------------------------------------------------------------------------


TYPE_CHECKING = False
if TYPE_CHECKING:
    import enum
    from typing import Any, Dict, List, Optional, Tuple

    from .core import Encoder


def _enc_none(h: Hasher, obj: Any) -> None:
    h._buf += b"N"


def _enc_bool(h: Hasher, obj: bool) -> None:
    h._buf += b"T" if obj else b"F"


def _enc_int(h: Hasher, obj: int) -> None:
    try:
        h._buf += _TQ(b"i", obj)
    except _StructError:
        _enc_bigint(h._buf, obj)


def _enc_bigint(buf: bytearray, obj: int) -> None:
    data = int(obj).to_bytes((obj.bit_length() + 8) // 8, "little", signed=True)
    buf += _TL(b"I", len(data))
    buf += data


def _enc_float(h: Hasher, obj: float) -> None:
    h._buf += _TD(b"f", obj if obj == obj else _NAN)


def _enc_complex(h: Hasher, obj: complex) -> None:
    re, im = obj.real, obj.imag
    h._buf += _TDD(b"c", re if re == re else _NAN, im if im == im else _NAN)


def _enc_str(h: Hasher, obj: str) -> None:
    _put_str(h._buf, b"s", obj)


def _enc_bytes(h: Hasher, obj: bytes) -> None:
    buf = h._buf
    buf += _TL(b"b", len(obj))
    buf += obj


def _enc_bytearray(h: Hasher, obj: bytearray) -> None:
    buf = h._buf
    buf += _TL(b"B", len(obj))
    buf += obj


def _enc_memoryview(h: Hasher, obj: memoryview) -> None:
    buf = h._buf
    buf += b"m"
    _put_str(buf, b"s", obj.format)
    buf += _TL(b"t", obj.ndim)
    for dim in obj.shape or ():
        buf += _q(dim)
    data = obj.tobytes()
    buf += _TL(b"b", len(data))
    buf += data


def _enc_ellipsis(h: Hasher, obj: Any) -> None:
    h._buf += b"."


def _enc_notimplemented(h: Hasher, obj: Any) -> None:
    h._buf += b"!"


# -- Containers -------------------------------------------------------------------------


def _items(h: Hasher, obj: Any, buf: bytearray) -> None:
    """Encode the items of a sequence, with a fast path for ints and strings."""
    x = None
    try:
        for x in obj:
            t = type(x)
            if t is int:
                try:
                    buf += _TQ(b"i", x)
                except _StructError:
                    _enc_bigint(buf, x)
            elif t is str:
                try:
                    e = x.encode()
                except UnicodeEncodeError:
                    e = x.encode("utf-8", "surrogatepass")
                buf += _TL(b"s", len(e))
                buf += e
            else:
                enc = _DISPATCH.get(t)
                if enc is None:
                    enc = _resolve(t)
                enc(h, x)
    except UnhashableValue as exc:
        exc._prepend(f"[{_index_of(obj, x)}]")
        raise


def _enc_tuple(h: Hasher, obj: tuple) -> None:
    buf = h._buf
    buf += _TL(b"t", len(obj))
    _items(h, obj, buf)


def _enc_list(h: Hasher, obj: list) -> None:
    buf = h._buf
    active = h._active
    oid = id(obj)
    if oid in active:
        buf += _TL(b"@", active[oid])
        return
    active[oid] = len(active)
    try:
        buf += _TL(b"l", len(obj))
        _items(h, obj, buf)
    finally:
        del active[oid]


def _enc_dict(h: Hasher, obj: dict) -> None:
    # Order-sensitive: iteration order can change what a function computes.
    buf = h._buf
    active = h._active
    oid = id(obj)
    if oid in active:
        buf += _TL(b"@", active[oid])
        return
    active[oid] = len(active)
    k = None
    at_value = False
    try:
        buf += _TL(b"d", len(obj))
        for k, v in obj.items():
            at_value = False
            if type(k) is str:
                try:
                    e = k.encode()
                except UnicodeEncodeError:
                    e = k.encode("utf-8", "surrogatepass")
                buf += _TL(b"s", len(e))
                buf += e
            else:
                _feed(h, k)
            at_value = True
            t = type(v)
            if t is int:
                try:
                    buf += _TQ(b"i", v)
                except _StructError:
                    _enc_bigint(buf, v)
            else:
                enc = _DISPATCH.get(t)
                if enc is None:
                    enc = _resolve(t)
                enc(h, v)
    except UnhashableValue as exc:
        exc._prepend(f"[{k!r}]" if at_value else f".keys()[{_index_of(obj, k)}]")
        raise
    finally:
        del active[oid]


def _index_of(obj: Any, item: Any) -> Any:
    return next((i for i, y in enumerate(obj) if y is item), "?")


def _unordered(h: Hasher, obj: Any, tag: bytes) -> None:
    """Encode a set: the sorted digests of its elements (order-insensitive)."""
    buf = h._buf
    active = h._active
    oid = id(obj)
    if oid in active:
        buf += _TL(b"@", active[oid])
        return
    active[oid] = len(active)
    try:
        digests = []
        for x in obj:
            t = type(x)
            if t is str:  # fast path, same bytes as a sub-hasher would digest
                try:
                    e = x.encode()
                except UnicodeEncodeError:
                    e = x.encode("utf-8", "surrogatepass")
                digests.append(_xxh3_128_digest(_PREFIX + _TL(b"s", len(e)) + e))
                continue
            if t is int and -_BIG < x < _BIG:
                digests.append(_xxh3_128_digest(_PREFIX + _TQ(b"i", x)))
                continue
            sub = h._sub()
            try:
                _feed(sub, x)
            except UnhashableValue as exc:
                exc._prepend(f"{{{x!r}}}" if type(x) in _REPR_OK else "{...}")
                raise
            digests.append(sub.digest())
        digests.sort()
        buf += _TL(tag, len(digests))
        buf += b"".join(digests)
    finally:
        del active[oid]


_REPR_OK = {int, str, bytes, float, bool, type(None)}


def _enc_set(h: Hasher, obj: set) -> None:
    _unordered(h, obj, b"S")


def _enc_frozenset(h: Hasher, obj: frozenset) -> None:
    _unordered(h, obj, b"Z")


def _enc_range(h: Hasher, obj: range) -> None:
    buf = h._buf
    buf += b"r"
    for v in (obj.start, obj.stop, obj.step):
        _enc_int(h, v)


def _enc_slice(h: Hasher, obj: slice) -> None:
    h._buf += b"x"
    _feed_at(h, obj.start, ".start")
    _feed_at(h, obj.stop, ".stop")
    _feed_at(h, obj.step, ".step")


# -- Classes, enums, objects ----------------------------------------------------------


def _enc_type(h: Hasher, obj: type) -> None:
    _class_ident(h, obj)


def _enc_enum(h: Hasher, obj: enum.Enum) -> None:
    buf = h._buf
    buf += b"e"
    _class_ident(h, type(obj))
    name = obj._name_
    if name is None:
        _feed_at(h, obj._value_, "._value_")
    else:
        _put_str(buf, b"s", name)


_slot_cache: Dict[type, Tuple[str, ...]] = {}


def _slot_names(cls: type) -> Tuple[str, ...]:
    names = _slot_cache.get(cls)
    if names is None:
        found = []
        for c in cls.__mro__:
            slots = c.__dict__.get("__slots__", ())
            if isinstance(slots, str):
                slots = (slots,)
            for name in slots:
                if name in ("__dict__", "__weakref__"):
                    continue
                if name.startswith("__") and not name.endswith("__"):
                    name = f"_{c.__name__.lstrip('_')}{name}"
                found.append(name)
        names = _slot_cache[cls] = tuple(dict.fromkeys(found))
    return names


_derived_cache: Dict[type, frozenset] = {}


def _derived_names(cls: type) -> frozenset:
    """Names under which instances of ``cls`` cache values the class derives itself.

    A :class:`functools.cached_property` stores its value in the instance ``__dict__``
    under its own name on first use (networkx's ``Graph.nodes``, ``adj``, ``edges``):
    that entry is not the object's state, and digesting it would give the same object
    another digest once a property has been read. The same holds for a cached property
    written by hand (``if self._sig is None: self._sig = ...``, see
    :mod:`checkpointing.hashing.derived`).
    """
    names = _derived_cache.get(cls)
    if names is None:
        cached_property = cached_property_type()
        found = {
            name
            for c in cls.__mro__
            for name, member in vars(c).items()
            if isinstance(member, cached_property)
        }
        names = _derived_cache[cls] = frozenset(found) | memo_attributes(cls)
    return names


def _without_derived(state: Dict[Any, Any], cls: type) -> Dict[Any, Any]:
    """``state`` (an instance's ``__dict__``) without the values ``cls`` derives and
    caches; a class that defines ``__getstate__`` says itself what its state is."""
    derived = _derived_names(cls)
    if not derived or not derived.intersection(state):
        return state
    getstate = getattr(cls, "__getstate__", None)
    if getstate is not None and getstate is not getattr(object, "__getstate__", None):
        return state
    return {k: v for k, v in state.items() if k not in derived}


def _enc_plain_object(h: Hasher, obj: Any) -> None:
    """An instance of a Python class with default pickling: class + attributes."""
    if not _enter(h, obj):
        return
    try:
        cls = type(obj)
        h._buf += b"O"
        _class_ident(h, cls)
        state = _without_derived(dict(getattr(obj, "__dict__", None) or ()), cls)
        for name in _slot_names(cls):
            try:
                state[name] = getattr(obj, name)
            except AttributeError:
                pass
        _attr_state(h, state)
    finally:
        del h._active[id(obj)]


def _callable_name(h: Hasher, fn: Any) -> None:
    """Identify a callable found in a reduce tuple by its name (or class digest)."""
    if isinstance(fn, type):
        _class_ident(h, fn)
        return
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    if qualname is None:
        _feed_at(h, fn, "")
        return
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, type):
        _class_ident(h, owner)
    _put_str(h._buf, b"g", f"{module}:{qualname}")


def _enc_reduce(h: Hasher, obj: Any) -> None:
    """Any other object: the components of ``obj.__reduce_ex__(4)``, recursively."""
    if not _enter(h, obj):
        return
    try:
        try:
            reducer = copyreg.dispatch_table.get(type(obj))
            rv = reducer(obj) if reducer is not None else obj.__reduce_ex__(4)
        except Exception as exc:
            raise _unhashable(obj, f"it cannot be pickled ({exc})") from None
        buf = h._buf
        if isinstance(rv, str):
            buf += b"G"
            _class_ident(h, type(obj))
            _put_str(buf, b"s", rv)
            return
        if not isinstance(rv, tuple) or not 2 <= len(rv) <= 6:
            raise _unhashable(obj, "its __reduce_ex__ returned an unexpected value")
        func, args = rv[0], rv[1]
        state = rv[2] if len(rv) > 2 else None
        listitems = rv[3] if len(rv) > 3 else None
        dictitems = rv[4] if len(rv) > 4 else None
        buf += b"R"
        _class_ident(h, type(obj))
        _callable_name(h, func)
        _feed_at(h, args, ".__reduce_ex__(4)[1]")
        if len(rv) == 2 and _DISPATCH.get(type(None)) is _enc_none:
            # No state, list items or dict items (a lookup by name: networkx's 749
            # dispatchers): the three Nones as _feed_at would encode them.
            buf += b"NNN"
            return
        if type(state) is dict:
            _attr_state(h, _without_derived(state, type(obj)))
        elif (
            type(state) is tuple
            and len(state) == 2
            and (state[0] is None or type(state[0]) is dict)
            and type(state[1]) is dict
        ):
            _attr_state(
                h, {**_without_derived(state[0] or {}, type(obj)), **state[1]}
            )  # (__dict__, slots)
        else:
            _feed_at(h, state, ".__reduce_ex__(4)[2]")
        _feed_at(h, None if listitems is None else list(listitems), "")
        _feed_at(h, None if dictitems is None else list(dictitems), "")
    finally:
        del h._active[id(obj)]


def _enc_builtin_subclass(base_encoder: Encoder) -> Encoder:
    """Instances of subclasses of builtins (namedtuples...): class + base value + attrs."""

    def encode(h: Hasher, obj: Any) -> None:
        if id(obj) in h._active:  # a cycle back to ``obj``: a back-reference
            _enter(h, obj)
            return
        h._buf += b"<"
        _class_ident(h, type(obj))
        # Not marked active while the base encoder runs: the dict and list encoders
        # mark it themselves (and would find it active and write a back-reference
        # instead of the contents: a defaultdict hashed as if empty).
        base_encoder(h, obj)
        if not _enter(h, obj):
            return
        try:
            extra = getattr(obj, "__dict__", None)
            if extra:
                extra = _without_derived(extra, type(obj))
            if extra:
                _attr_state(h, extra)
            else:
                h._buf += b"-"
        finally:
            del h._active[id(obj)]

    # Read by keyplan's witness: an instance of a tuple subclass without a ``__dict__``
    # (a namedtuple) digests as its class and its items, neither of which changes
    # in place but for the class (``__class__`` can be assigned).
    encode.base_encoder = base_encoder  # type: ignore[attr-defined]
    return encode


# -- Functions, code, modules ------------------------------------------------------------


def _enc_code(h: Hasher, code: types.CodeType) -> None:
    buf = h._buf
    buf += b"K"
    co_code = code.co_code
    buf += _TL(b"b", len(co_code))
    buf += co_code
    _feed(
        h,
        (
            code.co_argcount,
            code.co_posonlyargcount,
            code.co_kwonlyargcount,
            code.co_flags,
            code.co_names,
            code.co_varnames,
            code.co_freevars,
            code.co_cellvars,
        ),
    )
    buf += _TL(b"t", len(code.co_consts))
    for const in code.co_consts:
        _feed(h, const)


def _enc_function(h: Hasher, fn: types.FunctionType) -> None:
    """A function by its qualified name: the bytes :mod:`checkpointing.keyplan` gives a
    function outside the project (so that loading keyplan changes no such digest).

    Code belongs to keyplan, which registers the digester of functions: it digests a
    project function by its code and what it reads, which this layer cannot know.
    """
    module = getattr(fn, "__module__", None) or "?"
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or "?"
    d = f"function:{module}:{name}".encode("utf-8", "surrogatepass")
    buf = h._buf
    _put_str(buf, b"U", "function")
    buf += _TL(b"b", len(d))
    buf += d


def _is_global_generator(owner: Any) -> bool:
    """Is ``owner`` the hidden generator behind ``random.choice``, ``random.random``...
    or numpy's ``np.random.rand``...? Its state is seeded afresh in every process and
    moves at every draw, like the clock: a function calling ``random.choice`` depends
    on that function, not on the state, which is not part of the key (seed the
    generator and pass the seed as an argument where results must be reproducible)."""
    for module, name in (("random", "_inst"), ("numpy.random.mtrand", "_rand")):
        loaded = sys.modules.get(module)
        if loaded is not None and getattr(loaded, name, None) is owner:
            return True
    return False


def _enc_builtin_function(h: Hasher, fn: Any) -> None:
    owner = getattr(fn, "__self__", None)
    _put_str(h._buf, b"p", f"{getattr(fn, '__module__', None)}:{fn.__qualname__}")
    if owner is None or isinstance(owner, types.ModuleType) or _is_global_generator(owner):
        h._buf += b"-"
    else:
        _feed_at(h, owner, ".__self__")


def _enc_method(h: Hasher, m: types.MethodType) -> None:
    if _is_global_generator(m.__self__):
        _put_str(h._buf, b"p", f"{m.__func__.__module__}:{m.__func__.__qualname__}")
        h._buf += b"-"
        return
    h._buf += b"M"
    _feed_at(h, m.__func__, ".__func__")
    _feed_at(h, m.__self__, ".__self__")


def _enc_descriptor(h: Hasher, d: Any) -> None:
    h._buf += b"~"
    _class_ident(h, d.__objclass__)
    _put_str(h._buf, b"s", d.__name__)


def _enc_method_wrapper(h: Hasher, m: Any) -> None:
    h._buf += b"w"
    _put_str(h._buf, b"s", m.__name__)
    _feed_at(h, m.__self__, ".__self__")


def _enc_wrapped_callable(h: Hasher, obj: Any) -> None:  # staticmethod, classmethod
    h._buf += b"W"
    _class_ident(h, type(obj))
    _feed_at(h, obj.__func__, ".__func__")


def _enc_property(h: Hasher, obj: property) -> None:
    h._buf += b"%"
    _feed(h, (obj.fget, obj.fset, obj.fdel))


def _enc_module(h: Hasher, obj: types.ModuleType) -> None:
    """A module by its name, as :mod:`checkpointing.keyplan` gives a module outside the
    project (keyplan digests a project module by its source)."""
    d = b"module:" + obj.__name__.encode("utf-8", "surrogatepass")
    buf = h._buf
    _put_str(buf, b"U", "module")
    buf += _TL(b"b", len(d))
    buf += d


def _enc_mappingproxy(h: Hasher, obj: types.MappingProxyType) -> None:
    # A read-only view (a class namespace, a singledispatch registry): its contents.
    h._buf += b"M"
    _enc_dict(h, dict(obj))


def _enc_cell(h: Hasher, obj: Any) -> None:
    try:
        value = obj.cell_contents
    except ValueError:
        h._buf += b"?"
        return
    h._buf += b"C"
    _feed_at(h, value, ".cell_contents")


# -- The table of exact builtin types ----------------------------------------------------

_BUILTINS.update(
    {
        type(None): _enc_none,
        bool: _enc_bool,
        int: _enc_int,
        float: _enc_float,
        complex: _enc_complex,
        str: _enc_str,
        bytes: _enc_bytes,
        bytearray: _enc_bytearray,
        memoryview: _enc_memoryview,
        type(...): _enc_ellipsis,
        type(NotImplemented): _enc_notimplemented,
        tuple: _enc_tuple,
        list: _enc_list,
        dict: _enc_dict,
        set: _enc_set,
        frozenset: _enc_frozenset,
        range: _enc_range,
        slice: _enc_slice,
        type: _enc_type,
        types.FunctionType: _enc_function,
        types.BuiltinFunctionType: _enc_builtin_function,
        types.MethodType: _enc_method,
        types.ModuleType: _enc_module,
        types.CodeType: _enc_code,
        types.CellType: _enc_cell,
        types.MethodDescriptorType: _enc_descriptor,
        types.WrapperDescriptorType: _enc_descriptor,
        types.ClassMethodDescriptorType: _enc_descriptor,
        types.GetSetDescriptorType: _enc_descriptor,
        types.MemberDescriptorType: _enc_descriptor,
        types.MethodWrapperType: _enc_method_wrapper,
        staticmethod: _enc_wrapped_callable,
        classmethod: _enc_wrapped_callable,
        property: _enc_property,
        types.MappingProxyType: _enc_mappingproxy,
    }
)


_BUILTIN_BASES = (
    bool,
    int,
    float,
    complex,
    str,
    bytes,
    bytearray,
    tuple,
    list,
    dict,
    set,
    frozenset,
)

_NEVER_REASON = "it is a live resource (file, lock, thread, generator...) with no value"


def _never_types() -> Tuple[type, ...]:
    never: List[type] = [
        io.IOBase,
        types.GeneratorType,
        types.CoroutineType,
        types.AsyncGeneratorType,
        types.FrameType,
        types.TracebackType,
        type(_thread.allocate_lock()),
        type(_thread.RLock()),
        type(iter(())),
        type(iter([])),
    ]
    threading = sys.modules.get("threading")  # its classes exist once it is imported
    if threading is not None:
        never += [
            threading.Thread,
            threading.Condition,
            threading.Event,
            threading.Semaphore,
            threading.Barrier,
        ]
    import weakref

    never.append(weakref.ref)
    socket = sys.modules.get("socket")
    if socket is not None:
        never.append(socket.socket)
    return tuple(never)


def _enc_never(h: Hasher, obj: Any) -> None:
    raise _unhashable(obj, _NEVER_REASON)


def _has_default_reduce(t: type) -> bool:
    getstate = getattr(t, "__getstate__", None)
    default_getstate = getattr(object, "__getstate__", None)
    return (
        t.__reduce_ex__ is object.__reduce_ex__
        and t.__reduce__ is object.__reduce__
        and (getstate is None or getstate is default_getstate)
        and all(c.__flags__ & (1 << 9) for c in t.__mro__[:-1])
    )  # heap types


def _resolve_special(t: type) -> Optional[Encoder]:
    """Enums and classes, asked before the standard library's types."""
    enum = sys.modules.get("enum")  # no Enum can exist before enum is imported
    if enum is not None and issubclass(t, enum.Enum):
        return _enc_enum
    if issubclass(t, type):
        return _enc_type
    return None


def _resolve_generic(t: type) -> Encoder:
    """The last fallback: live resources, subclasses of builtins, objects."""
    if issubclass(t, _never_types()):
        return _enc_never
    for base in _BUILTIN_BASES:
        if issubclass(t, base):
            return _enc_builtin_subclass(_BUILTINS[base])
    if _has_default_reduce(t) and t not in copyreg.dispatch_table:
        return _enc_plain_object
    return _enc_reduce
