"""Stable digests of Python values (xxh3-128), the same in every process.

This module owns the encoding of values into bytes for cache keys: every value gets a
type tag and length-framed contents, so that digests are unambiguous and never depend
on ``hash()`` (randomised per process for strings) or on the order of set iteration.
Other modules plug in via :func:`register_digester` and :func:`register_class_digester`;
numpy and pandas objects are handled only if loaded (never imported here).
"""

from __future__ import annotations

import copyreg
import enum
import functools
import io
import struct
import sys
import threading
import types
from collections import defaultdict
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple, Union

import xxhash

from .errors import HashFailedError

if TYPE_CHECKING:  # annotations only: these modules load when a value of theirs is seen
    import datetime
    import decimal
    import fractions
    import pathlib
    import uuid

__all__ = [
    "DIGEST_SIZE",
    "FORMAT_VERSION",
    "Hasher",
    "UnhashableValue",
    "digest_value",
    "hexdigest_value",
    "register_class_digester",
    "register_digester",
]

#: Size in bytes of a digest.
DIGEST_SIZE = 16
#: Version of the encoding. Bump it whenever a value would get another digest.
FORMAT_VERSION = 1

Digester = Callable[[Any], bytes]
ClassDigester = Callable[[type], Optional[bytes]]
Encoder = Callable[["Hasher", Any], None]


class UnhashableValue(HashFailedError):
    """A value (or a part of it) has no stable digest.

    ``path`` locates the offending part inside the value given to the hasher (for
    example ``"[2]['a'].x"``; ``""`` for the value itself) and ``type_name`` is the
    qualified name of its type.
    """

    def __init__(self, type_name: str, path: str = "", reason: str = "") -> None:
        self.type_name = type_name
        self.path = path
        self.reason = reason
        super().__init__(self._message())

    def _message(self) -> str:
        where = f"at {self.path}" if self.path else "(the value itself)"
        why = f": {self.reason}" if self.reason else ""
        return (
            f"cannot hash a value of type {self.type_name} {where}{why}. Register a "
            f"digester with checkpointing.hashing.register_digester({self.type_name}, fn), "
            f"or leave the argument out of the key (checkpoint(ignore=[...]))"
        )

    def _prepend(self, part: str) -> None:
        self.path = part + self.path
        self.args = (self._message(),)

    def __reduce__(self) -> Any:
        return (type(self), (self.type_name, self.path, self.reason))


def _type_name(t: type) -> str:
    module = getattr(t, "__module__", None) or "?"
    qualname = getattr(t, "__qualname__", None) or getattr(t, "__name__", "?")
    return qualname if module == "builtins" else f"{module}.{qualname}"


def _unhashable(obj: Any, reason: str = "") -> UnhashableValue:
    return UnhashableValue(_type_name(type(obj)), "", reason)


# -- Low-level framing ----------------------------------------------------------------

_TL = struct.Struct("<cQ").pack  # tag + unsigned length/count
_TQ = struct.Struct("<cq").pack  # tag + signed 64-bit integer
_TD = struct.Struct("<cd").pack  # tag + float
_TDD = struct.Struct("<cdd").pack  # tag + complex
_q = struct.Struct("<q").pack
_NAN = float("nan")
_StructError = struct.error
_FLUSH_AT = 1 << 20
_BIG = 1 << 63
_xxh3_128_digest = xxhash.xxh3_128_digest
# Every digest starts with the format version, so that bumping it changes all keys.
_PREFIX = b"checkpointing.hashing/%d|" % FORMAT_VERSION


def _put_str(buf: bytearray, tag: bytes, s: str) -> None:
    try:
        e = s.encode()
    except UnicodeEncodeError:
        e = s.encode("utf-8", "surrogatepass")
    buf += _TL(tag, len(e))
    buf += e


# -- Registries -------------------------------------------------------------------------

_LOCK = threading.Lock()
_USER_TYPES: Dict[type, Digester] = {}  # registered types, later wins
_PREDICATES: List[Tuple[Callable[[Any], bool], Digester]] = []
_CLASS_DIGESTERS: List[ClassDigester] = []


def register_digester(type_or_predicate: Union[type, Callable[[Any], bool]], fn: Digester) -> None:
    """Give values a digest computed by ``fn(value) -> bytes``.

    ``type_or_predicate`` is a type (matching instances of it and its subclasses; the
    nearest class in the MRO wins, and among equal ones the latest registration) or
    a predicate ``pred(value) -> bool`` consulted, latest first, for values whose
    type matched no registered type nor a builtin container or scalar type.
    """
    with _LOCK:
        if isinstance(type_or_predicate, type):
            _USER_TYPES[type_or_predicate] = fn
        elif callable(type_or_predicate):
            _PREDICATES.append((type_or_predicate, fn))
        else:
            raise TypeError(
                "register_digester expects a type or a predicate, "
                f"not {type(type_or_predicate).__name__}"
            )
        _reset_dispatch()


def register_class_digester(fn: ClassDigester) -> None:
    """Register ``fn(cls) -> bytes | None`` giving a class a digest (of its code).

    When it returns bytes, instances of the class (and the class itself, as a value)
    are identified by these bytes instead of the class's module and qualified name.
    Later registrations are asked first.
    """
    with _LOCK:
        _CLASS_DIGESTERS.append(fn)


# -- The hasher ---------------------------------------------------------------------------


class Hasher:
    """Incremental xxh3-128 digest of a sequence of values.

    Every ``feed*`` call appends a typed, length-framed encoding, so that feeding
    ``"ab", "c"`` differs from feeding ``"a", "bc"``. ``feed_bytes(b)`` and
    ``feed_str(s)`` encode like ``feed(bytes(b))`` and ``feed(s)``.
    """

    __slots__ = ("_buf", "_state", "_active")

    def __init__(self) -> None:
        self._buf = bytearray(_PREFIX)
        self._state: Any = None
        # id of each container being encoded -> its depth, to encode cycles
        self._active: Dict[int, int] = {}

    def feed(self, obj: Any) -> "Hasher":
        """Append the encoding of ``obj``; raise :class:`UnhashableValue` if impossible."""
        try:
            enc = _DISPATCH.get(type(obj))
            if enc is None:
                enc = _resolve(type(obj))
            enc(self, obj)
        except RecursionError:
            raise UnhashableValue(
                _type_name(type(obj)),
                "",
                "it is nested too deeply (or refers to itself "
                "through objects rebuilt on every access)",
            ) from None
        if len(self._buf) > _FLUSH_AT:
            self._flush()
        return self

    def feed_bytes(self, b: Union[bytes, bytearray, memoryview]) -> "Hasher":
        """Append bytes (any C-contiguous buffer), framed with their length."""
        if type(b) is not bytes:
            b = memoryview(b).cast("B")
        self._buf += _TL(b"b", len(b))
        if len(b) > 4096:
            self._write_large(b)
        else:
            self._buf += b
        return self

    def feed_str(self, s: str) -> "Hasher":
        """Append a string, framed with its length."""
        _put_str(self._buf, b"s", s)
        return self

    def digest(self) -> bytes:
        """The 16-byte digest of everything fed so far."""
        if self._state is None:
            return xxhash.xxh3_128_digest(self._buf)
        self._flush()
        return self._state.digest()

    def hexdigest(self) -> str:
        """The digest as 32 hexadecimal characters."""
        if self._state is None:
            return xxhash.xxh3_128_hexdigest(self._buf)
        self._flush()
        return self._state.hexdigest()

    # internals
    def _flush(self) -> None:
        if self._state is None:
            self._state = xxhash.xxh3_128()
        self._state.update(self._buf)
        del self._buf[:]  # in place: encoders hold references to the buffer

    def _write_large(self, data: Any) -> None:
        """Hash a large C-contiguous buffer without copying it."""
        self._flush()
        self._state.update(data)

    def _sub(self) -> "Hasher":
        sub = Hasher.__new__(Hasher)
        sub._buf = bytearray(_PREFIX)
        sub._state = None
        sub._active = self._active
        return sub


def digest_value(obj: Any) -> bytes:
    """The 16-byte digest of ``obj``; raise :class:`UnhashableValue` if it has none."""
    h = Hasher()
    h.feed(obj)
    return h.digest()


def hexdigest_value(obj: Any) -> str:
    """The digest of ``obj`` as 32 hexadecimal characters."""
    h = Hasher()
    h.feed(obj)
    return h.hexdigest()


def _feed(h: Hasher, obj: Any) -> None:
    enc = _DISPATCH.get(type(obj))
    if enc is None:
        enc = _resolve(type(obj))
    enc(h, obj)


def _feed_at(h: Hasher, obj: Any, part: str) -> None:
    """Encode ``obj``; on failure, prefix the error's path with ``part``."""
    try:
        enc = _DISPATCH.get(type(obj))
        if enc is None:
            enc = _resolve(type(obj))
        enc(h, obj)
    except UnhashableValue as exc:
        exc._prepend(part)
        raise


# -- Scalars ----------------------------------------------------------------------------


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


def _class_ident(h: Hasher, cls: type) -> None:
    """Identify a class: by the class digester if it answers, else by its name."""
    buf = h._buf
    for fn in reversed(_CLASS_DIGESTERS):
        try:
            d = fn(cls)
        except HashFailedError:
            raise
        except Exception as exc:
            raise UnhashableValue(
                _type_name(cls), "", f"the class digester failed ({exc!r})"
            ) from exc
        if d is not None:
            buf += _TL(b"Y", len(d))
            buf += d
            return
    _put_str(buf, b"y", f"{getattr(cls, '__module__', None)}:{cls.__qualname__}")


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
    another digest once a property has been read.
    """
    names = _derived_cache.get(cls)
    if names is None:
        found = {
            name
            for c in cls.__mro__
            for name, member in vars(c).items()
            if isinstance(member, functools.cached_property)
        }
        names = _derived_cache[cls] = frozenset(found)
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


def _attr_state(h: Hasher, state: Dict[Any, Any]) -> None:
    """Encode attributes sorted by name; a failure's path is ``.name``."""
    buf = h._buf
    try:
        items = sorted(state.items())
    except TypeError:
        items = sorted(state.items(), key=lambda kv: repr(kv[0]))
    buf += _TL(b"a", len(items))
    name = None
    try:
        for name, value in items:
            if type(name) is str:
                _put_str(buf, b"s", name)
            else:
                _feed(h, name)
            _feed(h, value)
    except UnhashableValue as exc:
        exc._prepend(f".{name}" if type(name) is str else f".__dict__[{name!r}]")
        raise


def _enter(h: Hasher, obj: Any) -> bool:
    """Mark ``obj`` as being encoded; False (and a back-reference) if it already is."""
    oid = id(obj)
    active = h._active
    if oid in active:
        h._buf += _TL(b"@", active[oid])
        return False
    active[oid] = len(active)
    return True


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

    return encode


def _enc_defaultdict(h: Hasher, obj: defaultdict) -> None:
    h._buf += b"/"
    _feed_at(h, obj.default_factory, ".default_factory")
    _enc_builtin_subclass(_enc_dict)(h, obj)


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
    """Default for functions: name + bytecode + defaults + closure values."""
    if not _enter(h, fn):
        return
    try:
        _put_str(h._buf, b"P", f"{fn.__module__}:{fn.__qualname__}")
        _enc_code(h, fn.__code__)
        _feed_at(h, fn.__defaults__, ".__defaults__")
        _feed_at(h, fn.__kwdefaults__, ".__kwdefaults__")
        cells = fn.__closure__ or ()
        h._buf += _TL(b"t", len(cells))
        for name, cell in zip(fn.__code__.co_freevars, cells):
            try:
                value = cell.cell_contents
            except ValueError:  # empty cell
                h._buf += b"?"
                continue
            _feed_at(h, value, f".<closure {name}>")
    finally:
        del h._active[id(fn)]


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
    _put_str(h._buf, b"u", obj.__name__)


def _enc_mappingproxy(h: Hasher, obj: types.MappingProxyType) -> None:
    # A read-only view (a class namespace, a singledispatch registry): its contents.
    h._buf += b"M"
    _enc_dict(h, dict(obj))


def _enc_partial(h: Hasher, obj: functools.partial) -> None:
    h._buf += b"j"
    _class_ident(h, type(obj))
    _feed_at(h, obj.func, ".func")
    _feed_at(h, obj.args, ".args")
    _attr_state(h, obj.keywords)


def _enc_cell(h: Hasher, obj: Any) -> None:
    try:
        value = obj.cell_contents
    except ValueError:
        h._buf += b"?"
        return
    h._buf += b"C"
    _feed_at(h, value, ".cell_contents")


# -- Standard library values --------------------------------------------------------------


def _enc_tzinfo(h: Hasher, tz: datetime.tzinfo) -> None:
    h._buf += b"z"
    _class_ident(h, type(tz))
    key = getattr(tz, "key", None) or getattr(tz, "zone", None)
    _put_str(h._buf, b"s", key if isinstance(key, str) else str(tz))


def _enc_datetime(h: Hasher, obj: Any) -> None:  # datetime and time
    buf = h._buf
    buf += b"D" if isinstance(obj, sys.modules["datetime"].datetime) else b"H"
    _put_str(buf, b"s", obj.replace(tzinfo=None).isoformat())
    buf += b"1" if obj.fold else b"0"
    if obj.tzinfo is None:
        buf += b"N"
    else:
        _feed_at(h, obj.tzinfo, ".tzinfo")


def _enc_date(h: Hasher, obj: datetime.date) -> None:
    _put_str(h._buf, b"J", obj.isoformat())


def _enc_timedelta(h: Hasher, obj: datetime.timedelta) -> None:
    h._buf += struct.pack("<cqqq", b"Q", obj.days, obj.seconds, obj.microseconds)


def _enc_decimal(h: Hasher, obj: decimal.Decimal) -> None:
    _put_str(h._buf, b"L", str(obj))


def _enc_fraction(h: Hasher, obj: fractions.Fraction) -> None:
    h._buf += b"q"
    _enc_int(h, obj.numerator)
    _enc_int(h, obj.denominator)


def _enc_uuid(h: Hasher, obj: uuid.UUID) -> None:
    h._buf += b"V" + obj.bytes


def _enc_purepath(h: Hasher, obj: pathlib.PurePath) -> None:
    # pathlib's classes moved to pathlib._local in 3.13: identify them by name only
    _put_str(h._buf, b"h", type(obj).__name__)
    _put_str(h._buf, b"s", str(obj))


# -- numpy and pandas (only when already imported) ---------------------------------------


def _dtype_key(dt: Any) -> str:
    if dt.fields is None and dt.subdtype is None:
        return dt.str
    return repr(dt.descr)


def _enc_ndarray(h: Hasher, arr: Any) -> None:
    np = sys.modules["numpy"]
    if type(arr) is not np.ndarray:
        # subclasses (masked arrays, matrices): class + data + attributes
        if not _enter(h, arr):
            return
        try:
            h._buf += b"<"
            _class_ident(h, type(arr))
            _enc_ndarray(h, arr.view(np.ndarray))
            _attr_state(h, dict(getattr(arr, "__dict__", None) or ()))
        finally:
            del h._active[id(arr)]
        return
    buf = h._buf
    dt = arr.dtype
    _put_str(buf, b"A", _dtype_key(dt))
    buf += _TL(b"t", arr.ndim)
    for dim in arr.shape:
        buf += _q(dim)
    if dt.hasobject:
        flat = arr.ravel(order="C")
        if dt.fields is not None:
            flat = flat.tolist()
        buf += _TL(b"l", len(flat))
        for i, x in enumerate(flat):
            try:
                _feed(h, x)
            except UnhashableValue as exc:
                index = np.unravel_index(i, arr.shape) if arr.ndim else ()
                exc._prepend("[" + ", ".join(str(int(j)) for j in index) + "]")
                raise
        return
    n = arr.nbytes
    buf += _TL(b"b", n)
    if n == 0:
        return
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    data = arr.reshape(-1).view(np.uint8)
    if n <= 4096:
        buf += memoryview(data)
    else:
        h._write_large(data)


def _enc_numpy_scalar(h: Hasher, obj: Any) -> None:
    dt = obj.dtype
    if dt.hasobject:
        _feed(h, obj.item())
        return
    _put_str(h._buf, b"a", _dtype_key(dt))
    data = obj.tobytes()
    h._buf += _TL(b"b", len(data))
    h._buf += data


def _enc_numpy_dtype(h: Hasher, obj: Any) -> None:
    _put_str(h._buf, b"k", _dtype_key(obj))


def _pd_values(h: Hasher, values: Any) -> None:
    """Encode the values of a pandas column/index: a numpy or an extension array."""
    np = sys.modules["numpy"]
    pd = sys.modules["pandas"]
    if isinstance(values, np.ndarray):
        _enc_ndarray(h, values)
        return
    dtype = values.dtype
    if isinstance(dtype, np.dtype):
        _enc_ndarray(h, np.asarray(values))
        return
    _put_str(h._buf, b"E", str(dtype))
    if isinstance(dtype, pd.CategoricalDtype):
        _enc_index(h, values.categories)
        h._buf += b"T" if values.ordered else b"F"
        _enc_ndarray(h, np.asarray(values.codes))
    elif isinstance(dtype, pd.DatetimeTZDtype):
        _enc_ndarray(h, np.asarray(values.asi8))
    else:
        _enc_ndarray(h, values.to_numpy(dtype=object))


def _pd_container_values(h: Hasher, obj: Any) -> None:
    np = sys.modules["numpy"]
    if isinstance(obj.dtype, np.dtype):
        _enc_ndarray(h, obj.to_numpy(copy=False))
    else:
        _pd_values(h, obj.array)


def _enc_index(h: Hasher, idx: Any) -> None:
    pd = sys.modules["pandas"]
    buf = h._buf
    names = tuple(idx.names)
    if isinstance(idx, pd.MultiIndex):
        buf += _TL(b"<", idx.nlevels)
        _feed_at(h, names, ".names")
        for i in range(idx.nlevels):
            _pd_container_values(h, idx.get_level_values(i))
    else:
        buf += b">"
        _feed_at(h, names, ".names")
        _pd_container_values(h, idx)


def _enc_series(h: Hasher, s: Any) -> None:
    h._buf += b"^"
    _feed_at(h, s.name, ".name")
    _enc_index(h, s.index)
    try:
        _pd_container_values(h, s)
    except UnhashableValue as exc:
        exc._prepend(".values")
        raise


def _enc_dataframe(h: Hasher, df: Any) -> None:
    h._buf += b"&"
    _enc_index(h, df.index)
    _enc_index(h, df.columns)
    ncols = df.shape[1]
    h._buf += _TL(b"t", ncols)
    for i in range(ncols):
        try:
            _pd_container_values(h, df.iloc[:, i])
        except UnhashableValue as exc:
            exc._prepend(f"[{df.columns[i]!r}]")
            raise


def _enc_pd_array(h: Hasher, arr: Any) -> None:
    h._buf += b"_"
    _pd_values(h, arr)


def _enc_pd_timestamp(h: Hasher, ts: Any) -> None:
    h._buf += b"("
    _put_str(h._buf, b"s", ts.tz_localize(None).isoformat() if ts.tz else ts.isoformat())
    _feed_at(h, ts.tzinfo, ".tzinfo")


def _enc_pd_timedelta(h: Hasher, td: Any) -> None:
    h._buf += b")"
    _enc_numpy_scalar(h, td.asm8)


def _enc_pd_nat(h: Hasher, obj: Any) -> None:
    h._buf += b"*"


def _resolve_numpy(t: type) -> Optional[Encoder]:
    np = sys.modules.get("numpy")
    if np is None:
        return None
    if issubclass(t, np.ndarray):
        return _enc_ndarray
    if issubclass(t, np.generic):
        return _enc_numpy_scalar
    if issubclass(t, np.dtype):
        return _enc_numpy_dtype
    return None


def _resolve_pandas(t: type) -> Optional[Encoder]:
    pd = sys.modules.get("pandas")
    if pd is None or not (getattr(t, "__module__", "") or "").startswith("pandas"):
        return None
    try:
        if issubclass(t, pd.DataFrame):
            return _enc_dataframe
        if issubclass(t, pd.Series):
            return _enc_series
        if issubclass(t, pd.Index):
            return _enc_index
        if issubclass(t, pd.api.extensions.ExtensionArray):
            return _enc_pd_array
        if t is type(pd.NaT):
            return _enc_pd_nat
        if issubclass(t, pd.Timestamp):
            return _enc_pd_timestamp
        if issubclass(t, pd.Timedelta):
            return _enc_pd_timedelta
    except AttributeError:  # a partially imported or unusual pandas
        return None
    return None


# -- Dispatch -------------------------------------------------------------------------------

_BUILTINS: Dict[type, Encoder] = {
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

# Matched along the MRO (subclasses too, identified by their class first).
_KNOWN: Dict[type, Encoder] = {
    functools.partial: _enc_partial,
    defaultdict: _enc_defaultdict,
}

# Standard-library types by module: a value of one of these types means its module is
# imported, so they are looked up only then (importing them all would slow down
# ``import checkpointing`` by tens of milliseconds).
_KNOWN_BY_MODULE: Dict[str, Tuple[Tuple[str, Encoder], ...]] = {
    "datetime": (
        ("datetime", _enc_datetime),
        ("time", _enc_datetime),
        ("date", _enc_date),
        ("timedelta", _enc_timedelta),
        ("tzinfo", _enc_tzinfo),
    ),
    "decimal": (("Decimal", _enc_decimal),),
    "fractions": (("Fraction", _enc_fraction),),
    "uuid": (("UUID", _enc_uuid),),
    "pathlib": (
        ("PurePath", _enc_purepath),
        ("PurePosixPath", _enc_purepath),
        ("PureWindowsPath", _enc_purepath),
        ("Path", _enc_purepath),
        ("PosixPath", _enc_purepath),
        ("WindowsPath", _enc_purepath),
    ),
}


def _known_encoder(t: type) -> Optional[Encoder]:
    """The encoder of the nearest standard-library type in ``t``'s MRO, if any."""
    for module_name, entries in _KNOWN_BY_MODULE.items():
        module = sys.modules.get(module_name)
        if module is None:
            continue
        for name, enc in entries:
            _KNOWN.setdefault(getattr(module, name), enc)
    for c in t.__mro__:
        enc = _KNOWN.get(c)
        if enc is not None:
            return enc if c is t else _enc_builtin_subclass(enc)
    return None


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
        threading.Thread,
        type(threading.Lock()),
        type(threading.RLock()),
        threading.Condition,
        threading.Event,
        threading.Semaphore,
        threading.Barrier,
        type(iter(())),
        type(iter([])),
    ]
    import weakref

    never.append(weakref.ref)
    socket = sys.modules.get("socket")
    if socket is not None:
        never.append(socket.socket)
    return tuple(never)


def _enc_never(h: Hasher, obj: Any) -> None:
    raise _unhashable(obj, _NEVER_REASON)


def _user_encoder(fn: Digester) -> Encoder:
    def encode(h: Hasher, obj: Any) -> None:
        try:
            d = fn(obj)
        except HashFailedError:
            raise
        except Exception as exc:
            raise _unhashable(obj, f"its registered digester failed ({exc!r})") from exc
        if not isinstance(d, (bytes, bytearray, memoryview)):
            raise _unhashable(
                obj, f"its registered digester returned {type(d).__name__}, not bytes"
            )
        buf = h._buf
        _put_str(buf, b"U", _type_name(type(obj)))
        buf += _TL(b"b", len(d))
        buf += d

    return encode


def _with_predicates(fallback: Encoder) -> Encoder:
    predicates = list(reversed(_PREDICATES))

    def encode(h: Hasher, obj: Any) -> None:
        for pred, fn in predicates:
            if pred(obj):
                _user_encoder(fn)(h, obj)
                return
        fallback(h, obj)

    return encode


def _has_default_reduce(t: type) -> bool:
    getstate = getattr(t, "__getstate__", None)
    default_getstate = getattr(object, "__getstate__", None)
    return (
        t.__reduce_ex__ is object.__reduce_ex__
        and t.__reduce__ is object.__reduce__
        and (getstate is None or getstate is default_getstate)
        and all(c.__flags__ & (1 << 9) for c in t.__mro__[:-1])
    )  # heap types


def _resolve_uncached(t: type) -> Encoder:
    # 1. registered types, nearest in the MRO
    for c in t.__mro__:
        fn = _USER_TYPES.get(c)
        if fn is not None:
            return _user_encoder(fn)
    # 2. exact builtin types (predicates do not apply to them)
    enc = _BUILTINS.get(t)
    if enc is not None:
        return enc
    fallback = _resolve_fallback(t)
    return _with_predicates(fallback) if _PREDICATES else fallback


def _resolve_fallback(t: type) -> Encoder:
    if issubclass(t, enum.Enum):
        return _enc_enum
    if issubclass(t, type):
        return _enc_type
    enc = _resolve_pandas(t) or _resolve_numpy(t)
    if enc is not None:
        return enc
    enc = _known_encoder(t)
    if enc is not None:
        return enc
    if issubclass(t, _never_types()):
        return _enc_never
    for base in _BUILTIN_BASES:
        if issubclass(t, base):
            return _enc_builtin_subclass(_BUILTINS[base])
    if _has_default_reduce(t) and t not in copyreg.dispatch_table:
        return _enc_plain_object
    return _enc_reduce


_DISPATCH: Dict[type, Encoder] = {}


def _reset_dispatch() -> None:
    _DISPATCH.clear()
    for t, enc in _BUILTINS.items():
        if not any(c in _USER_TYPES for c in t.__mro__):
            _DISPATCH[t] = enc


def _resolve(t: type) -> Encoder:
    enc = _resolve_uncached(t)
    _DISPATCH[t] = enc
    return enc


_reset_dispatch()
