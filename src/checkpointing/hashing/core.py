"""The framing, the :class:`Hasher`, the registries and the dispatch of value digests.

Every value is encoded as a one-byte tag (the table :data:`TAGS`) followed by its
length-framed contents, so that digests are unambiguous and never depend on ``hash()``
(randomised per process for strings) or on the order of set iteration. Which encoder a
value gets is decided once per type (:func:`_resolve`, cached in ``_DISPATCH``):

1. a type registered with :func:`register_digester`, nearest in the type's MRO;
2. an exact builtin type (``_BUILTINS``, filled by :mod:`.builtins`);
3. a registered predicate of types (``per_type=True``), latest first;
4. the fallbacks (``_FALLBACKS``: enums, classes, the standard library, live resources,
   subclasses of builtins, plain objects, and ``__reduce_ex__``), wrapped by the
   registered predicates of values, latest first.

Libraries are handled by adapters registered through the same :func:`register_digester`,
each lazily (:func:`register_lazy`, after dask's ``normalize_token.register_lazy``): the
registration runs at the first value resolved once its library is in ``sys.modules``, so
this package never imports a library a program does not use.

(Over 600 lines: the framing, the hasher, the registries and the dispatch share private
state that the encoders of every other module of the package write to; the table of tags
is a third of it.)
"""

from __future__ import annotations

import _struct as struct  # what struct.py re-exports, without loading it (issue 12)
import _thread  # threading's locks, without threading (issue 12, target 5)
import sys

import xxhash

from ..errors import HashFailedError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

__all__ = [
    "DIGEST_SIZE",
    "FORMAT_VERSION",
    "TAGS",
    "Hasher",
    "UnhashableValue",
    "digest_value",
    "hexdigest_value",
    "register_class_digester",
    "register_digester",
    "register_lazy",
]

#: Size in bytes of a digest.
DIGEST_SIZE = 16
#: Version of the encoding. Bump it whenever a value would get another digest.
FORMAT_VERSION = 1

if TYPE_CHECKING:
    Digester = Callable[[Any], bytes]
    ClassDigester = Callable[[type], Optional[bytes]]
    Feeder = Callable[[Any, "Hasher"], None]
    Encoder = Callable[["Hasher", Any], None]


def __getattr__(name: str) -> Any:
    """The type aliases above, made at first use: ``import checkpointing`` does not
    import typing (issue 12, target 5)."""
    if name not in ("Digester", "ClassDigester", "Feeder", "Encoder"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import typing

    call, anything = typing.Callable, typing.Any
    globals().update(
        Digester=call[[anything], bytes],
        ClassDigester=call[[type], typing.Optional[bytes]],
        Feeder=call[[anything, Hasher], None],
        Encoder=call[[Hasher, anything], None],
    )
    return globals()[name]


#: The one-byte tags of the format, by name: what each one starts. A tag is read in
#: the context of the tag before it (``<`` opens a subclass of a builtin, an array
#: subclass or a MultiIndex; ``T``/``F`` are also a categorical's ``ordered`` flag), so
#: one byte may serve twice where the contexts cannot be confused. Tests check that the
#: table has no tag twice under two names in the same context.
TAGS: Dict[str, bytes] = {
    # scalars
    "none": b"N",
    "true": b"T",
    "false": b"F",
    "int64": b"i",
    "bigint": b"I",
    "float": b"f",
    "complex": b"c",
    "str": b"s",
    "bytes": b"b",
    "bytearray": b"B",
    "memoryview": b"m",
    "ellipsis": b".",
    "notimplemented": b"!",
    # containers
    "tuple": b"t",
    "list": b"l",
    "dict": b"d",
    "set": b"S",
    "frozenset": b"Z",
    "range": b"r",
    "slice": b"x",
    "backref": b"@",  # a container met again inside itself: its depth
    # classes and objects
    "class_by_name": b"y",
    "class_by_digest": b"Y",
    "enum": b"e",
    "attributes": b"a",  # only where an object's attributes follow its class
    "object": b"O",
    "reduce": b"R",
    "reduce_to_name": b"G",
    "callable_name": b"g",
    "subclass": b"<",  # of a builtin: class, base value, then attributes or "-"
    "no_attributes": b"-",
    "defaultdict": b"/",
    # functions, code, modules
    "code": b"K",
    "function": b"U",  # by name, as a registered digester writes it (see builtins)
    "builtin_function": b"p",
    "method": b"M",
    "descriptor": b"~",
    "method_wrapper": b"w",
    "wrapped_callable": b"W",  # staticmethod, classmethod
    "property": b"%",
    "mappingproxy": b"M",  # then a dict: never confused with a method (then a function)
    "partial": b"j",
    "cell": b"C",
    "empty_cell": b"?",
    # standard library
    "tzinfo": b"z",
    "datetime": b"D",
    "time": b"H",
    "date": b"J",
    "timedelta": b"Q",
    "decimal": b"L",
    "fraction": b"q",
    "uuid": b"V",
    "path": b"h",
    # registered digesters
    "registered": b"U",  # type name, then the digester's bytes
    "registered_feed": b"X",  # name, then what the digester fed, then "end"
    "end": b";",
    # a large container a function reads, as its digest in the walk of definitions
    # and values (keyplan): only among the values of a key plan's slots
    "walk_value": b"v",
    # numpy and pandas (their own framing, older than register_digester's)
    "ndarray": b"A",
    "numpy_scalar": b"a",
    "numpy_dtype": b"k",
    "pandas_extension": b"E",
    "pandas_index": b">",
    "pandas_multiindex": b"<",
    "pandas_series": b"^",
    "pandas_frame": b"&",
    "pandas_array": b"_",
    "pandas_timestamp": b"(",
    "pandas_timedelta": b")",
    "pandas_nat": b"*",
}


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
            f"digester with checkpointing.register_digester({self.type_name}, fn), "
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
_LARGE = 4096  # buffers above this size are hashed in place, not copied into the frame
_BIG = 1 << 63
_xxh3_128_digest = xxhash.xxh3_128_digest
_xxh3_128_hexdigest = xxhash.xxh3_128_hexdigest
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

_LOCK = _thread.RLock()
_USER_TYPES: Dict[type, Any] = {}  # registered types -> the function given; later wins
# (predicate, function given, per_type), in registration order
_PREDICATES: List[Tuple[Callable[[Any], bool], Any, bool]] = []
_CLASS_DIGESTERS: List[ClassDigester] = []
# function given -> its encoder, for digesters that feed the hasher or have a name
_ENCODER_OF: Dict[Any, Encoder] = {}
# module name -> registration to run once the module is in sys.modules
_LAZY: Dict[str, Callable[[], None]] = {}
_RUNNING_LAZY = [0]  # > 0 while a lazy registration runs (under _LOCK)


def register_digester(
    type_or_predicate: Union[type, Callable[[Any], bool]],
    fn: Union[Digester, Feeder],
    *,
    feeds: bool = False,
    name: Optional[str] = None,
    per_type: bool = False,
) -> None:
    """Give values a digest computed by ``fn``.

    ``type_or_predicate`` is a type (matching instances of it and its subclasses; the
    nearest class in the MRO wins, and among equal ones the latest registration) or a
    predicate consulted, latest first, for types that matched no registered type nor an
    exact builtin type: ``pred(value) -> bool`` asked for each value, or with
    ``per_type=True``, ``pred(cls) -> bool`` asked once per type (its answer is kept,
    and the predicate costs nothing per value).

    By default ``fn(value) -> bytes`` returns the bytes that identify the value. With
    ``feeds=True``, ``fn(value, hasher)`` feeds the value's parts into ``hasher``
    (:meth:`Hasher.feed`, :meth:`Hasher.feed_bytes`, :meth:`Hasher.feed_buffers`,
    :meth:`Hasher.feed_str`) and returns nothing: large buffers are then hashed where
    they lie, never copied, and parts may be any value that has a digest itself.

    ``name`` (default: the value's qualified type name) is written before what ``fn``
    gives, so that two types giving the same bytes differ; give one that does not move
    when the library reorganises its modules (``"polars.DataFrame"``). ``name=""``
    writes none: only for a feeding digester whose every value starts with a tag of its
    own (:data:`TAGS`): the numpy and pandas adapters, whose digests predate this
    function.

    Yours win over the adapters the package registers lazily (:func:`register_lazy`),
    whatever the order: a type you registered keeps your digester, and your predicates
    are asked before theirs.
    """
    if not callable(fn):
        raise TypeError(f"register_digester expects a callable digester, not {type(fn).__name__}")
    if isinstance(type_or_predicate, type):
        _run_lazy_for(type_or_predicate)
    elif not callable(type_or_predicate):
        raise TypeError(
            "register_digester expects a type or a predicate, "
            f"not {type(type_or_predicate).__name__}"
        )
    with _LOCK:
        if feeds:
            _ENCODER_OF[fn] = _feeder_encoder(fn, name)
        elif name is not None:
            _ENCODER_OF[fn] = _user_encoder(fn, name)
        adapter = _RUNNING_LAZY[0] > 0
        if isinstance(type_or_predicate, type):
            if not (adapter and type_or_predicate in _USER_TYPES):
                _USER_TYPES[type_or_predicate] = fn
        elif adapter:  # asked after every predicate registered outside an adapter
            _PREDICATES.insert(0, (type_or_predicate, fn, per_type))
        else:
            _PREDICATES.append((type_or_predicate, fn, per_type))
        _reset_dispatch()


def register_class_digester(fn: ClassDigester) -> None:
    """Register ``fn(cls) -> bytes | None`` giving a class a digest (of its code).

    When it returns bytes, instances of the class (and the class itself, as a value)
    are identified by these bytes instead of the class's module and qualified name.
    Later registrations are asked first.
    """
    with _LOCK:
        _CLASS_DIGESTERS.append(fn)


def register_lazy(module: str, register: Callable[[], None]) -> None:
    """Run ``register()`` once ``module`` is imported, before the next value is digested.

    ``register`` imports the library and calls :func:`register_digester` for its types
    (dask's ``normalize_token.register_lazy`` is the model). It runs at the first type
    resolved while ``module`` is in ``sys.modules`` (a value of the library's types
    means the library is imported), or when a digester is registered for one of the
    library's types. What ``register`` registers yields to what was registered outside
    a lazy registration, before or after it. If ``register`` raises (a library imported
    halfway), it is tried again at the next type. Registering twice for one module
    replaces the pending registration.
    """
    with _LOCK:
        _LAZY[module] = register


def _run_lazy() -> None:
    """Run the pending registrations of the libraries now imported."""
    if not _LAZY:
        return
    modules = sys.modules
    for module in [m for m in _LAZY if m in modules]:
        _run_one(module)


def _run_lazy_for(cls: type) -> None:
    """Run the pending registration of the library that defines ``cls``, if any."""
    for c in cls.__mro__:
        module = getattr(c, "__module__", None) or ""
        for pending in list(_LAZY):
            if module == pending or module.startswith(pending + "."):
                _run_one(pending)


def _run_one(module: str) -> None:
    with _LOCK:
        register = _LAZY.pop(module, None)
        if register is None:
            return
        # What a lazy registration registers yields to what was registered outside one,
        # whenever that was: a type already registered keeps its digester, and its
        # predicates are asked after the others.
        _RUNNING_LAZY[0] += 1
        try:
            register()
        except Exception:
            _LAZY.setdefault(module, register)
        finally:
            _RUNNING_LAZY[0] -= 1


def _registry_state() -> Tuple[Any, ...]:
    """Everything registered, to restore with :func:`_restore_registry` (tests)."""
    with _LOCK:
        return (
            dict(_USER_TYPES),
            list(_PREDICATES),
            list(_CLASS_DIGESTERS),
            dict(_ENCODER_OF),
            dict(_LAZY),
        )


def _restore_registry(state: Tuple[Any, ...]) -> None:
    with _LOCK:
        _USER_TYPES.clear()
        _USER_TYPES.update(state[0])
        _PREDICATES[:] = state[1]
        _CLASS_DIGESTERS[:] = state[2]
        _ENCODER_OF.clear()
        _ENCODER_OF.update(state[3])
        _LAZY.clear()
        _LAZY.update(state[4])
        _reset_dispatch()


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
            raise _too_deep(obj) from None
        if len(self._buf) > _FLUSH_AT:
            self._flush()
        return self

    def feed_bytes(self, b: Union[bytes, bytearray, memoryview]) -> "Hasher":
        """Append bytes (any C-contiguous buffer), framed with their length.

        A buffer of more than 4 KiB is hashed where it lies, without a copy."""
        if type(b) is not bytes:
            b = memoryview(b).cast("B")
        self._buf += _TL(b"b", len(b))
        if len(b) > _LARGE:
            self._write_large(b)
        else:
            self._buf += b
        return self

    def feed_buffers(self, buffers: Iterable[Any]) -> "Hasher":
        """Append the concatenation of C-contiguous buffers, framed once with its length.

        The digest is that of ``feed_bytes(b"".join(buffers))``, made without joining
        (nor copying the large ones): a column split into chunks digests as the same
        column in one chunk.
        """
        views = [b if type(b) is bytes else memoryview(b).cast("B") for b in buffers]
        self._buf += _TL(b"b", sum(map(len, views)))
        for view in views:
            if len(view) > _LARGE:
                self._write_large(view)
            else:
                self._buf += view
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

    def hexdigest_with(self, obj: Any) -> str:
        """The :meth:`hexdigest` of a copy of this hasher fed ``obj``; this one is left
        as it is. A prefix common to many digests (a key's fixed part) is encoded once;
        this is ``copy().feed(obj).hexdigest()`` in one step, for a cache hit's key."""
        if self._state is not None:
            return self.copy().feed(obj).hexdigest()
        h = Hasher.__new__(Hasher)
        h._buf = bytearray(self._buf)
        h._state = None
        h._active = {}
        try:
            enc = _DISPATCH.get(type(obj))
            if enc is None:
                enc = _resolve(type(obj))
            enc(h, obj)
        except RecursionError:
            raise _too_deep(obj) from None
        if h._state is None:
            return xxhash.xxh3_128_hexdigest(h._buf)
        h._flush()
        return h._state.hexdigest()

    def hexdigest_plain(self, values: Tuple[Any, ...]) -> Optional[str]:
        """:meth:`hexdigest_with` of a tuple of ints (64-bit) and strs, made in one
        frame instead of four (the common arguments of a cache hit); None for any other
        tuple (another type, a big int, a lone surrogate, a digester of your own for
        tuples) or a prefix already flushed: then call :meth:`hexdigest_with`.

        The bytes are those the tuple's encoder and ``_items`` write for these types
        (tests/test_hashing.py compares the two)."""
        if self._state is not None or _DISPATCH.get(tuple) is not _BUILTINS.get(tuple):
            return None
        buf = self._buf + _TL(b"t", len(values))
        for x in values:
            t = type(x)
            if t is int:
                try:
                    buf += _TQ(b"i", x)
                except _StructError:
                    return None
            elif t is str:
                try:
                    e = x.encode()
                except UnicodeEncodeError:
                    return None
                buf += _TL(b"s", len(e))
                buf += e
            else:
                return None
        return _xxh3_128_hexdigest(buf)

    def copy(self) -> "Hasher":
        """An independent hasher that has been fed what this one has (like
        :meth:`hashlib.hash.copy`): a common prefix is encoded once and copied."""
        new = Hasher.__new__(Hasher)
        new._buf = bytearray(self._buf)
        new._state = None if self._state is None else self._state.copy()
        new._active = {}
        return new

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


def _too_deep(obj: Any) -> UnhashableValue:
    return UnhashableValue(
        _type_name(type(obj)),
        "",
        "it is nested too deeply (or refers to itself through objects rebuilt on every access)",
    )


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


def _enter(h: Hasher, obj: Any) -> bool:
    """Mark ``obj`` as being encoded; False (and a back-reference) if it already is."""
    oid = id(obj)
    active = h._active
    if oid in active:
        h._buf += _TL(b"@", active[oid])
        return False
    active[oid] = len(active)
    return True


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


# -- Registered digesters --------------------------------------------------------------


def _user_encoder(fn: Digester, name: Optional[str] = None) -> Encoder:
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
        _put_str(buf, b"U", _type_name(type(obj)) if name is None else name)
        buf += _TL(b"b", len(d))
        buf += d

    return encode


def _feeder_encoder(fn: Feeder, name: Optional[str]) -> Encoder:
    def encode(h: Hasher, obj: Any) -> None:
        if name != "":
            _put_str(h._buf, b"X", _type_name(type(obj)) if name is None else name)
        try:
            fn(obj, h)
        except HashFailedError:
            raise
        except Exception as exc:
            raise _unhashable(obj, f"its registered digester failed ({exc!r})") from exc
        if name != "":
            h._buf += b";"

    return encode


def _encoder_of(fn: Any) -> Encoder:
    enc = _ENCODER_OF.get(fn)
    return enc if enc is not None else _user_encoder(fn)


def _with_predicates(predicates: List[Any], fallback: Encoder) -> Encoder:
    def encode(h: Hasher, obj: Any) -> None:
        for pred, fn, _ in predicates:
            if pred(obj):
                _encoder_of(fn)(h, obj)
                return
        fallback(h, obj)

    return encode


# -- Dispatch -------------------------------------------------------------------------------

# Exact builtin types -> encoder (filled by .builtins).
_BUILTINS: Dict[type, Encoder] = {}
# Resolvers asked in turn for a type nothing else matched (set by the package).
_FALLBACKS: List[Callable[[type], Optional[Encoder]]] = []
_DISPATCH: Dict[type, Encoder] = {}


def _resolve_uncached(t: type) -> Encoder:
    _run_lazy()
    # 1. registered types, nearest in the MRO
    for c in t.__mro__:
        fn = _USER_TYPES.get(c)
        if fn is not None:
            return _encoder_of(fn)
    # 2. exact builtin types (predicates do not apply to them)
    enc = _BUILTINS.get(t)
    if enc is not None:
        return enc
    # 3. predicates of types, latest first, then the fallbacks; predicates of values
    #    (latest first) are asked before either, value by value
    per_value = []
    for entry in reversed(_PREDICATES):
        pred, fn, per_type = entry
        if not per_type:
            per_value.append(entry)
        elif enc is None:
            try:
                matched = pred(t)
            except Exception:
                matched = False
            if matched:
                enc = _encoder_of(fn)
    if enc is None:
        enc = _resolve_fallback(t)
    return _with_predicates(per_value, enc) if per_value else enc


def _resolve_fallback(t: type) -> Encoder:
    for resolver in _FALLBACKS:
        enc = resolver(t)
        if enc is not None:
            return enc
    raise AssertionError(f"no encoder for {t!r}")  # the last fallback answers always


def _reset_dispatch() -> None:
    _DISPATCH.clear()
    for t, enc in _BUILTINS.items():
        if not any(c in _USER_TYPES for c in t.__mro__):
            _DISPATCH[t] = enc


def _resolve(t: type) -> Encoder:
    enc = _resolve_uncached(t)
    _DISPATCH[t] = enc
    return enc
