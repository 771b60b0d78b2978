"""Stable, fast digests of Python values (xxh3-128), the same in every process.

This module owns how a value becomes bytes for a key. Each value is encoded with a
type tag and length framing, so ``1``, ``1.0``, ``True`` and ``"1"`` differ and
``("ab", "c")`` differs from ``("a", "bc")``. ``hash()`` and ``id()`` are never used
(string hashing is randomised per process). Decisions:

* dicts are order-sensitive: the same items inserted in another order are another
  value, because iterating a dict can change a result; sets and frozensets are
  order-insensitive (their elements' digests are sorted);
* floats are hashed by their IEEE bytes, so ``0.0`` and ``-0.0`` differ;
* numpy arrays and pandas objects are hashed from their buffers with dtype and
  shape, without copies, and only if numpy/pandas are already imported;
* other objects are hashed by class and state (``__reduce_ex__``), recursively;
  objects with no stable state (locks, files, sockets) raise :class:`UnhashableValue`
  naming where in the value they sit.

It is a leaf: how functions and classes are digested (by their canonical code) is
registered by a higher layer through :func:`register_digester` and
:func:`register_class_digester`.
"""

from __future__ import annotations

import copyreg
import datetime
import decimal
import enum
import fractions
import functools
import io
import pathlib
import struct
import sys
import types
import uuid
from typing import Any, Callable, Dict, List, Optional, Set, Tuple, Union

import xxhash

from .errors import HashFailedError

__all__ = ["DIGEST_SIZE", "FORMAT_VERSION", "Hasher", "UnhashableValue", "digest_value",
           "hexdigest_value", "register_class_digester", "register_digester"]

DIGEST_SIZE = 16
# Bump when the encoding of any value changes: old keys then stop matching.
FORMAT_VERSION = 1

_pack_len = struct.Struct("<Q").pack
_pack_double = struct.Struct("<d").pack
_NAN = _pack_double(float("nan"))


class UnhashableValue(HashFailedError):
    """A value (or a part of it) has no stable digest.

    ``path`` locates the part inside the value given (``"[2]['a'].x"``, ``""`` for the
    value itself); ``type_name`` is its type, e.g. ``"_thread.lock"``.
    """

    def __init__(self, type_name: str, path: str, reason: str) -> None:
        where = f" at {path}" if path else ""
        super().__init__(
            f"a {type_name} value{where} has no stable digest ({reason}); register one "
            f"with checkpointing.hashing.register_digester({type_name.rpartition('.')[2]}, "
            f"fn) or leave it out of the key")
        self.type_name = type_name
        self.path = path

    def __reduce__(self) -> Any:
        return (_rebuild_unhashable, (self.args[0], self.type_name, self.path))


def _rebuild_unhashable(message: str, type_name: str, path: str) -> UnhashableValue:
    exc = UnhashableValue.__new__(UnhashableValue)
    HashFailedError.__init__(exc, message)
    exc.type_name, exc.path = type_name, path
    return exc


def _type_name(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


Digester = Callable[[Any], bytes]
_by_type: Dict[type, Digester] = {}
_predicates: List[Tuple[Callable[[Any], bool], Digester]] = []
_class_digesters: List[Callable[[type], Optional[bytes]]] = []
_resolved: Dict[type, Optional[Digester]] = {}


def register_digester(kind: Union[type, Callable[[Any], bool]], fn: Digester) -> None:
    """Teach the hasher a type: ``fn(obj)`` returns bytes that identify ``obj``.

    ``kind`` is a type (matching subclasses too) or a predicate ``kind(obj) -> bool``.
    Later registrations win.
    """
    if isinstance(kind, type):
        _by_type[kind] = fn
        encoder = _registered_encoder(fn)
        for known in list(_ENCODERS):
            if issubclass(known, kind):
                _ENCODERS[known] = encoder
    else:
        _predicates.insert(0, (kind, fn))
    _resolved.clear()


def _registered_encoder(fn: Digester) -> Callable[["Hasher", Any], None]:
    def encode(h: Hasher, obj: Any) -> None:
        h._update(b"U")
        h.feed_bytes(fn(obj))
    return encode


def register_class_digester(fn: Callable[[type], Optional[bytes]]) -> None:
    """Give classes a digest of their code: ``fn(cls)`` returns bytes, or None to pass.

    Instances of a class with such a digest are hashed as (class digest, state), so
    editing a method of the class of an argument changes the key.
    """
    _class_digesters.insert(0, fn)


def _user_digester(cls: type) -> Optional[Digester]:
    try:
        return _resolved[cls]
    except KeyError:
        pass
    found = None
    for base in cls.__mro__:
        if base in _by_type:
            found = _by_type[base]
            break
    _resolved[cls] = found
    return found


def _class_digest(cls: type) -> bytes:
    for fn in _class_digesters:
        digest = fn(cls)
        if digest is not None:
            return digest
    return f"{cls.__module__}:{cls.__qualname__}".encode()


class Hasher:
    """An incremental digest of a sequence of values.

    ``feed`` encodes a value (typed and framed); ``feed_bytes``/``feed_str`` add raw
    framed data. The digest is 16 bytes of xxh3-128.
    """

    __slots__ = ("_state", "_update", "_active")

    def __init__(self) -> None:
        self._state = xxhash.xxh3_128()
        self._update = self._state.update
        self._active: Set[int] = set()

    def feed_bytes(self, data: Union[bytes, bytearray, memoryview]) -> None:
        """Add a chunk of bytes, framed by its length."""
        self._update(b"B" + _pack_len(len(data)))
        self._update(data)

    def feed_str(self, text: str) -> None:
        """Add a string, framed by its length."""
        data = text.encode("utf-8", "surrogatepass")
        self._update(b"S" + _pack_len(len(data)) + data)

    def feed(self, obj: Any) -> None:
        """Add a value. Raises :class:`UnhashableValue` for values with no digest."""
        try:
            self._feed(obj)
        except UnhashableValue:
            raise
        except RecursionError:
            raise UnhashableValue(_type_name(obj), "", "nested too deeply") from None

    def digest(self) -> bytes:
        """The 16-byte digest of everything fed so far."""
        return self._state.digest()

    def hexdigest(self) -> str:
        """The digest as 32 hexadecimal characters."""
        return self._state.hexdigest()

    # -- encoding -------------------------------------------------------------------

    def _feed(self, obj: Any) -> None:
        encoder = _ENCODERS.get(type(obj))
        if encoder is not None:
            encoder(self, obj)
            return
        self._feed_other(obj)

    def _container(self, tag: bytes, obj: Any, items: Any) -> None:
        key = id(obj)
        if key in self._active:
            self._update(b"R")  # a reference back to an enclosing container
            return
        self._active.add(key)
        try:
            self._update(tag + _pack_len(len(items)))
            for i, item in enumerate(items):
                try:
                    self._feed(item)
                except UnhashableValue as exc:
                    raise _at(exc, f"[{i}]") from None
        finally:
            self._active.discard(key)

    def _dict(self, tag: bytes, obj: Any) -> None:
        key = id(obj)
        if key in self._active:
            self._update(b"R")
            return
        self._active.add(key)
        try:
            self._update(tag + _pack_len(len(obj)))
            for k, v in obj.items():
                self._feed(k)
                try:
                    self._feed(v)
                except UnhashableValue as exc:
                    raise _at(exc, f"[{k!r}]") from None
        finally:
            self._active.discard(key)

    def _set(self, tag: bytes, obj: Any) -> None:
        digests = []
        for item in obj:
            sub = Hasher()
            sub._active = self._active
            try:
                sub._feed(item)
            except UnhashableValue as exc:
                raise _at(exc, "{...}") from None
            digests.append(sub.digest())
        digests.sort()
        self._update(tag + _pack_len(len(digests)) + b"".join(digests))

    def _feed_other(self, obj: Any) -> None:
        cls = type(obj)
        digester = _user_digester(cls)
        if digester is None:
            for predicate, fn in _predicates:
                if predicate(obj):
                    digester = fn
                    break
        if digester is not None:
            self._update(b"U")
            self.feed_bytes(digester(obj))
            return
        if isinstance(obj, type):
            self._update(b"K")
            self.feed_bytes(_class_digest(obj))
            return
        numpy = sys.modules.get("numpy")
        if numpy is not None and isinstance(obj, (numpy.ndarray, numpy.generic)):
            self._numpy(obj, numpy)
            return
        pandas = sys.modules.get("pandas")
        if pandas is not None and isinstance(obj, (pandas.DataFrame, pandas.Series,
                                                   pandas.Index)):
            self._pandas(obj, pandas)
            return
        # Subclasses of builtins: their class, then the builtin value.
        for base, encoder in _SUBCLASSABLE:
            if isinstance(obj, base):
                self._update(b"X")
                self.feed_bytes(_class_digest(cls))
                encoder(self, obj)
                if getattr(obj, "__dict__", None):
                    self._feed(obj.__dict__)
                return
        self._by_state(obj)

    def _by_state(self, obj: Any) -> None:
        cls = type(obj)
        if isinstance(obj, _NO_STATE):
            raise UnhashableValue(_type_name(obj), "", "it is tied to this process")
        key = id(obj)
        if key in self._active:
            self._update(b"R")
            return
        try:
            reduced = obj.__reduce_ex__(4)
        except Exception as exc:
            raise UnhashableValue(_type_name(obj), "",
                                  f"it cannot be reduced: {type(exc).__name__}: {exc}") \
                from None
        if isinstance(reduced, str) or not isinstance(reduced, tuple):
            # A global singleton, named.
            self._update(b"G")
            self.feed_str(f"{cls.__module__}:{reduced}")
            return
        self._active.add(key)
        try:
            self._update(b"O")
            self.feed_bytes(_class_digest(cls))
            constructor, args = reduced[0], reduced[1] if len(reduced) > 1 else ()
            state = reduced[2] if len(reduced) > 2 else None
            if constructor is copyreg.__newobj__ or constructor is _newobj_ex:
                args = args[1:]  # the class itself, hashed above
            else:
                self._update(b"C")
                self.feed_str(_callable_name(constructor))
            try:
                self._feed(args)
                self._feed(_normalise_state(state))
                if len(reduced) > 3 and reduced[3] is not None:
                    self._feed(list(reduced[3]))
                if len(reduced) > 4 and reduced[4] is not None:
                    self._feed(dict(reduced[4]))
            except UnhashableValue as exc:
                raise _at(exc, "") from None
        finally:
            self._active.discard(key)

    def _numpy(self, obj: Any, numpy: Any) -> None:
        if isinstance(obj, numpy.generic):
            self._update(b"n" + obj.dtype.str.encode() + b"|")
            self.feed_bytes(obj.tobytes() if obj.dtype.kind != "O" else b"")
            if obj.dtype.kind == "O":
                self._feed(obj.item())
            return
        self._update(b"N")
        self.feed_str(obj.dtype.str if obj.dtype.names is None else repr(obj.dtype.descr))
        self._feed(tuple(obj.shape))
        if obj.dtype.hasobject:
            self._container(b"L", obj, obj.ravel(order="C").tolist())
            return
        if not obj.flags.c_contiguous:
            obj = numpy.ascontiguousarray(obj)
        self._update(b"B" + _pack_len(obj.nbytes))
        self._update(memoryview(obj).cast("B") if obj.ndim and obj.size else obj.tobytes())

    def _pandas(self, obj: Any, pandas: Any) -> None:
        self._update(b"P" + type(obj).__name__.encode() + b"|")
        if isinstance(obj, pandas.Index):
            self.feed_str(str(obj.dtype))
            self._feed(obj.names if isinstance(obj, pandas.MultiIndex) else obj.name)
            self._pandas_values(obj, pandas)
            return
        self._pandas(obj.index, pandas)
        if isinstance(obj, pandas.Series):
            self._feed(obj.name)
            self.feed_str(str(obj.dtype))
            self._pandas_values(obj, pandas)
            return
        self._pandas(obj.columns, pandas)
        for i in range(obj.shape[1]):
            column = obj.iloc[:, i]
            self.feed_str(str(column.dtype))
            self._pandas_values(column, pandas)

    def _pandas_values(self, obj: Any, pandas: Any) -> None:
        numpy = sys.modules["numpy"]
        values = obj.to_numpy() if not isinstance(obj, pandas.MultiIndex) \
            else numpy.array(obj.tolist(), dtype=object)
        if values.dtype.kind in "Mm":  # datetimes: hash the integer ticks
            values = values.view("i8")
        try:
            self._numpy(numpy.asarray(values), numpy)
        except UnhashableValue as exc:
            raise _at(exc, ".values") from None


def _newobj_ex(cls: Any, args: Any, kwargs: Any) -> Any:  # pragma: no cover - identity only
    raise NotImplementedError


_newobj_ex = getattr(copyreg, "__newobj_ex__", _newobj_ex)  # type: ignore[assignment]


def _callable_name(fn: Any) -> str:
    module = getattr(fn, "__module__", None) or "?"
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    return f"{module}:{name}"


def _normalise_state(state: Any) -> Any:
    """Attribute dicts are hashed by sorted name: attribute order is not behaviour."""
    if isinstance(state, dict):
        return sorted(state.items(), key=lambda kv: str(kv[0]))
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
        return (_normalise_state(state[0]), _normalise_state(state[1]))
    return state


def _at(exc: UnhashableValue, step: str) -> UnhashableValue:
    new = UnhashableValue.__new__(UnhashableValue)
    path = step + exc.path if step else exc.path
    message = exc.args[0]
    old_where = f" at {exc.path}" if exc.path else ""
    head = f"a {exc.type_name} value"
    if message.startswith(head + old_where):
        message = f"{head} at {path}" + message[len(head + old_where):]
    HashFailedError.__init__(new, message)
    new.type_name, new.path = exc.type_name, path
    return new


# -- encoders of builtin types --------------------------------------------------------

def _enc_none(h: Hasher, obj: Any) -> None:
    h._update(b"0")


def _enc_bool(h: Hasher, obj: bool) -> None:
    h._update(b"T" if obj else b"F")


def _enc_int(h: Hasher, obj: int) -> None:
    if -(1 << 63) <= obj < (1 << 63):
        h._update(b"i" + obj.to_bytes(8, "little", signed=True))
    else:
        data = obj.to_bytes((obj.bit_length() + 8) // 8, "little", signed=True)
        h._update(b"I" + _pack_len(len(data)) + data)


def _enc_float(h: Hasher, obj: float) -> None:
    h._update(b"f" + (_NAN if obj != obj else _pack_double(obj)))


def _enc_complex(h: Hasher, obj: complex) -> None:
    h._update(b"c")
    _enc_float(h, obj.real)
    _enc_float(h, obj.imag)


def _enc_str(h: Hasher, obj: str) -> None:
    data = obj.encode("utf-8", "surrogatepass")
    h._update(b"s" + _pack_len(len(data)) + data)


def _enc_bytes(h: Hasher, obj: bytes) -> None:
    h._update(b"b" + _pack_len(len(obj)))
    h._update(obj)


def _enc_bytearray(h: Hasher, obj: bytearray) -> None:
    h._update(b"a" + _pack_len(len(obj)))
    h._update(obj)


def _enc_memoryview(h: Hasher, obj: memoryview) -> None:
    h._update(b"m" + obj.format.encode() + b"|")
    h._feed(tuple(obj.shape or ()))
    data = obj if obj.c_contiguous else obj.tobytes()
    h._update(_pack_len(obj.nbytes))
    h._update(data)


def _enc_tuple(h: Hasher, obj: tuple) -> None:
    h._container(b"t", obj, obj)


def _enc_list(h: Hasher, obj: list) -> None:
    h._container(b"l", obj, obj)


def _enc_dict(h: Hasher, obj: dict) -> None:
    h._dict(b"d", obj)


def _enc_set(h: Hasher, obj: set) -> None:
    h._set(b"e", obj)


def _enc_frozenset(h: Hasher, obj: frozenset) -> None:
    h._set(b"z", obj)


def _enc_range(h: Hasher, obj: range) -> None:
    h._update(b"r")
    for part in (obj.start, obj.stop, obj.step):
        _enc_int(h, part)


def _enc_slice(h: Hasher, obj: slice) -> None:
    h._update(b"x")
    h._feed((obj.start, obj.stop, obj.step))


def _enc_ellipsis(h: Hasher, obj: Any) -> None:
    h._update(b".")


def _enc_module(h: Hasher, obj: types.ModuleType) -> None:
    h._update(b"M")
    h.feed_str(obj.__name__)


def _enc_builtin_function(h: Hasher, obj: Any) -> None:
    h._update(b"Q")
    h.feed_str(_callable_name(obj) if getattr(obj, "__self__", None) is None
               or isinstance(obj.__self__, types.ModuleType)
               else f"{_type_name(obj.__self__)}.{obj.__name__}")


def _enc_function(h: Hasher, obj: types.FunctionType) -> None:
    # The default for functions no higher layer claimed: name and bytecode.
    h._update(b"q")
    h.feed_str(_callable_name(obj))
    _enc_code(h, obj.__code__)
    h._feed((obj.__defaults__, obj.__kwdefaults__))


def _enc_code(h: Hasher, code: types.CodeType) -> None:
    h.feed_bytes(code.co_code)
    h._feed((code.co_names, code.co_argcount, code.co_kwonlyargcount, code.co_flags))
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _enc_code(h, const)
        else:
            h._feed(const)


def _enc_method(h: Hasher, obj: types.MethodType) -> None:
    h._update(b"o")
    h._feed(obj.__func__)
    h._feed(obj.__self__)


def _enc_partial(h: Hasher, obj: Any) -> None:
    h._update(b"p")
    h._feed(obj.func)
    h._feed(obj.args)
    h._feed(obj.keywords)


def _enc_enum(h: Hasher, obj: enum.Enum) -> None:
    h._update(b"E")
    h.feed_bytes(_class_digest(type(obj)))
    h.feed_str(obj.name)


def _enc_repr(tag: bytes) -> Callable[[Hasher, Any], None]:
    def encode(h: Hasher, obj: Any) -> None:
        h._update(tag)
        h.feed_str(obj.isoformat() if hasattr(obj, "isoformat") else str(obj))
        tz = getattr(obj, "tzinfo", None)
        if tz is not None:
            h.feed_str(repr(tz))
    return encode


def _enc_timedelta(h: Hasher, obj: datetime.timedelta) -> None:
    h._update(b"D")
    h._feed((obj.days, obj.seconds, obj.microseconds))


def _enc_fraction(h: Hasher, obj: fractions.Fraction) -> None:
    h._update(b"/")
    h._feed((obj.numerator, obj.denominator))


def _enc_path(h: Hasher, obj: pathlib.PurePath) -> None:
    h._update(b"/P" + type(obj).__name__.encode())
    h.feed_str(str(obj))


_ENCODERS: Dict[type, Callable[[Hasher, Any], None]] = {
    type(None): _enc_none, bool: _enc_bool, int: _enc_int, float: _enc_float,
    complex: _enc_complex, str: _enc_str, bytes: _enc_bytes, bytearray: _enc_bytearray,
    memoryview: _enc_memoryview, tuple: _enc_tuple, list: _enc_list, dict: _enc_dict,
    set: _enc_set, frozenset: _enc_frozenset, range: _enc_range, slice: _enc_slice,
    type(Ellipsis): _enc_ellipsis, types.ModuleType: _enc_module,
    types.BuiltinFunctionType: _enc_builtin_function, types.MethodType: _enc_method,
    functools.partial: _enc_partial, types.CodeType: _enc_code,
    datetime.datetime: _enc_repr(b"Dt"), datetime.date: _enc_repr(b"Dd"),
    datetime.time: _enc_repr(b"Dh"), datetime.timedelta: _enc_timedelta,
    decimal.Decimal: _enc_repr(b"Dc"), fractions.Fraction: _enc_fraction,
    uuid.UUID: _enc_repr(b"Du"),
}
for _path_type in (pathlib.PurePosixPath, pathlib.PureWindowsPath, pathlib.PosixPath,
                   pathlib.WindowsPath):
    _ENCODERS[_path_type] = _enc_path

# Builtin types users subclass (str enums, OrderedDict, namedtuples...): the subclass
# is hashed as its class digest plus the builtin value.
_SUBCLASSABLE: Tuple[Tuple[type, Callable[[Hasher, Any], None]], ...] = (
    (enum.Enum, lambda h, o: h.feed_str(o.name)),
    (bool, _enc_bool), (int, _enc_int), (float, _enc_float), (str, _enc_str),
    (bytes, _enc_bytes), (tuple, _enc_tuple), (list, _enc_list), (dict, _enc_dict),
    (set, _enc_set), (frozenset, _enc_frozenset), (pathlib.PurePath, _enc_path),
    (datetime.datetime, _enc_repr(b"Dt")), (datetime.date, _enc_repr(b"Dd")),
)

# Objects whose state is a handle on this process: no digest means anything.
_NO_STATE: Tuple[type, ...] = (io.IOBase, types.GeneratorType, types.CoroutineType,
                               types.AsyncGeneratorType, types.FrameType,
                               types.TracebackType)


def _register_process_bound() -> None:
    import _thread
    import socket
    import threading

    global _NO_STATE
    _NO_STATE = _NO_STATE + (type(_thread.allocate_lock()), type(threading.RLock()),
                             threading.Thread, socket.socket, threading.Condition,
                             threading.Event, threading.Semaphore)


_register_process_bound()
_ENCODERS[types.FunctionType] = _enc_function


def digest_value(obj: Any) -> bytes:
    """The 16-byte digest of one value."""
    h = Hasher()
    h._update(b"v%d|" % FORMAT_VERSION)
    h.feed(obj)
    return h.digest()


def hexdigest_value(obj: Any) -> str:
    """The digest of one value as 32 hexadecimal characters."""
    return digest_value(obj).hex()
