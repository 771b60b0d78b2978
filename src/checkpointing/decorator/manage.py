"""The controls of a checkpointed function: its options beyond keys, and its methods.

This module owns what docs/managing.md describes from the decorator's side: the
validation of ``expires_after``, ``valid``, ``mmap_mode``, ``compress`` and
``max_size``; the checks a hit makes for the first two; the short summary of a call's
arguments stored with each entry; and the methods a decorated function carries
(``clear``, ``delete``, ``cached``, ``entries``, ``accept``). Where results live and
how they are evicted, mapped or compressed is :mod:`checkpointing.store`'s business
(``evict``, ``mapped``, ``compress``); this module only calls it.
"""

from __future__ import annotations

import _functools  # functools' partial, without functools (issue 12, target 5)
import time

from .._lazylog import LazyLogger
from ..config import defaults, parse_age, parse_size
from ..errors import CheckpointNotExist, ConfigurationError
from ..identify import AutoFuncCallIdentifier, qualified_name
from ..store import PickleFileCache

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Tuple

    from ..explanation import Explanation
    from ..store.evict import UsageLog
    from . import DecoratorCheckpoint

__all__ = [
    "annotate",
    "attach",
    "compress_result",
    "enforce_limit",
    "history",
    "invalid",
    "summarize_call",
    "usage_log",
    "validate_options",
]

logger = LazyLogger("checkpointing.decorator")  # logging: imported when it could emit

_MMAP_MODES = ("r", "c")
_SUMMARY_LENGTH = 200


def validate_options(
    cache: Any,
    expires_after: Any,
    valid: Any,
    mmap_mode: Any,
    compress: Any,
    max_size: Any,
) -> Tuple[Optional[float], Any, Optional[str], Optional[str], Optional[int]]:
    """The options checked and normalised (seconds, callable, mode, codec, bytes), or a
    ConfigurationError naming the option and the fix."""
    given = [
        name
        for name, value in (
            ("expires_after", expires_after),
            ("valid", valid),
            ("mmap_mode", mmap_mode),
            ("compress", compress),
            ("max_size", max_size),
        )
        if value is not None
    ]
    if given and not isinstance(cache, PickleFileCache):
        raise ConfigurationError(
            f"{', '.join(given)}= needs the default PickleFileCache (it reads an entry's "
            f"metadata and file), and {type(cache).__name__} is not one"
        )
    seconds = None if expires_after is None else parse_age(expires_after, "expires_after")
    if valid is not None and not callable(valid):
        raise ConfigurationError(
            f"valid={valid!r} is not callable; pass a function that takes the entry's "
            f"metadata (a dict) and returns True to serve it, e.g. "
            f"valid=lambda entry: entry['run_seconds'] > 1"
        )
    if mmap_mode is not None and mmap_mode not in _MMAP_MODES:
        raise ConfigurationError(
            f"mmap_mode={mmap_mode!r} is not accepted; use 'r' (read-only arrays) or 'c' "
            f"(copy-on-write: writable, changes stay in memory); the entry itself is never "
            f"written through"
        )
    codec = None
    if compress is not None:
        from ..store.compress import validate_codec  # compress= only (issue 12, target 5)

        codec = validate_codec(compress)
    if codec is not None and mmap_mode is not None:
        raise ConfigurationError(
            f"mmap_mode={mmap_mode!r} and compress={compress!r} exclude each other: a "
            f"compressed result cannot be mapped from the file; choose one"
        )
    limit = None if max_size is None else parse_size(max_size, "max_size")
    return seconds, valid, mmap_mode, codec, limit


def usage_log(cache: Any) -> Optional[UsageLog]:
    """The record of last use and hits of ``cache``'s entries (None: not kept)."""
    if isinstance(cache, PickleFileCache):
        from ..store.evict import usage_log_for  # at decoration, not at import (issue 12)

        log = usage_log_for(cache)
        log.namer = qualified_name
        return log
    return None


# -- what a hit checks ---------------------------------------------------------------


def entry_metadata(decorator: "DecoratorCheckpoint", key: str) -> Dict[str, Any]:
    """What ``valid=`` receives: the entry's metadata, without the store's internals.

    Raises CheckpointNotExist."""
    header = decorator.cache.read_metadata(key)
    return {
        "key": key,
        "function": header.get("function"),
        "created": header.get("created"),
        "run_seconds": header.get("run_seconds"),
        "size": header.get("size"),
        "arguments": header.get("arguments"),
    }


def invalid(decorator: "DecoratorCheckpoint", key: str) -> Optional[str]:
    """Why the entry of ``key`` must not be served (expired, or ``valid`` said no), or
    None (also when there is no entry: the read that follows says it is a miss)."""
    try:
        entry = entry_metadata(decorator, key)
    except CheckpointNotExist:
        return None
    if decorator.expires_after is not None:
        created = entry.get("created")
        age = time.time() - created if isinstance(created, (int, float)) else None
        if age is None or age > decorator.expires_after:
            shown = "unknown" if age is None else _duration(age)
            limit = _duration(decorator.expires_after)
            return f"its entry expired (age {shown}, expires_after={limit})"
    if decorator.valid is not None and not decorator.valid(entry):
        return "valid(entry) returned False for its entry"
    return None


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.1f}s"


# -- what a save stores ----------------------------------------------------------------

_SHORT_REPR = frozenset([int, float, str, bool, type(None)])


_REPR: Any = None  # a reprlib.Repr, made at the first miss that needs it


def _short_repr(value: Any) -> str:
    global _REPR
    if _REPR is None:
        import reprlib  # here: misses only, and reprlib loads collections (issue 12, target 5)

        _REPR = reprlib.Repr()
        _REPR.maxstring = 40
        _REPR.maxother = 40
        _REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxdict = 6
        _REPR.maxlevel = 2
    return _REPR.repr(value)


def summarize_value(value: Any) -> str:
    """A short, recognisable form of an argument: ``10``, ``'data.csv'``,
    ``<DataFrame 10000x4>``, ``<ndarray 3x3 float64>``, ``[1, 2, 3, ...]``."""
    if type(value) in _SHORT_REPR:
        text = repr(value)
        if len(text) <= 40:  # what _short_repr would say, without its dispatch (each miss)
            return text
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and all(isinstance(n, int) for n in shape):
        dims = "x".join(str(n) for n in shape) or "scalar"
        dtype = getattr(value, "dtype", None)
        extra = f" {dtype}" if dtype is not None and type(value).__name__ != "DataFrame" else ""
        return f"<{type(value).__name__} {dims}{extra}>"
    if isinstance(value, (bool, int, float, complex, str, bytes, type(None))):
        return _short_repr(value)
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        return _short_repr(value)
    text = _short_repr(value)
    if " at 0x" in text or text.startswith("<"):
        return f"<{type(value).__name__}>"
    return text


def summarize_call(
    func: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any], identifier: Any
) -> Optional[str]:
    """``fit(data=<DataFrame 10000x4>, epochs=10)``: which call an entry is for (at most
    200 characters; parameters left out of the key are left out here too)."""
    try:
        binder_for = getattr(identifier, "binder_for", None)
        if binder_for is not None:  # the key's own binding, memoised per function
            binder = binder_for(func)
            pairs: Any = zip(binder.names, binder.bind(args, kwargs))
        else:
            import inspect  # not at import (issue 12: a light import)

            bound = inspect.signature(func).bind(*args, **kwargs)
            bound.apply_defaults()
            ignored = set(getattr(identifier, "ignore", ()))
            pairs = [(n, v) for n, v in bound.arguments.items() if n not in ignored]
        parts = [f"{name}={summarize_value(value)}" for name, value in pairs]
    except Exception as exc:  # a summary is a service, never a reason to fail
        logger.debug("no argument summary for %s: %s", qualified_name(func), exc)
        return None
    text = f"{getattr(func, '__name__', '?')}({', '.join(parts)})"
    if len(text) > _SUMMARY_LENGTH:
        text = text[: _SUMMARY_LENGTH - 4] + "...)"
    return text


def compress_result(decorator: "DecoratorCheckpoint", result: Any, metadata: Dict[str, Any]) -> Any:
    """What to store for ``result`` under ``compress=``: a :class:`Compressed` holding
    its pickle when that is at least ``defaults["cache.compress_threshold"]``, else the
    result itself."""
    from ..store.compress import Compressed, compress_pickle

    stored = compress_pickle(
        result,
        decorator.compress,
        decorator.cache.pickle_protocol,
        defaults["cache.compress_threshold"],
    )
    if type(stored) is Compressed:
        metadata["compressed"] = {
            "codec": stored.codec,
            "pickle_size": stored.size,
            "stored_size": len(stored.data),
        }
    return stored


def enforce_limit(decorator: "DecoratorCheckpoint", key: str) -> None:
    """After a save: evict least recently used entries until the cache fits its size
    limit (the decorator's ``max_size``, else ``defaults["cache.max_size"]``), never
    the entry of ``key``. Eviction failing never fails the call."""
    limit = decorator.max_size
    if limit is None:
        limit = defaults["cache.max_size"]
    if limit is None or not isinstance(decorator.cache, PickleFileCache):
        return
    try:
        from ..store.evict import enforce_size_limit

        enforce_size_limit(decorator.cache, limit, keep=key)
    except Exception as exc:
        logger.warning(
            "could not keep %s within %s bytes: %s: %s",
            decorator.cache.directory,
            limit,
            type(exc).__name__,
            exc,
        )


# -- the methods of a decorated function -----------------------------------------------


def attach(decorator: "DecoratorCheckpoint", func: Callable[..., Any], wrapper: Any) -> None:
    """Give ``wrapper`` its controls: clear, delete, cached, entries, accept."""
    for name, method in (
        ("clear", clear),
        ("delete", delete),
        ("cached", cached),
        ("entries", entries),
        ("accept", accept),
    ):
        bound = _functools.partial(method, decorator, func)
        bound.__doc__ = method.__doc__
        bound.__wrapped__ = method  # type: ignore[attr-defined]
        setattr(wrapper, name, bound)


def _entries_of(decorator: "DecoratorCheckpoint", func: Callable[..., Any]) -> List[Any]:
    cache = decorator.cache
    if not isinstance(cache, PickleFileCache):
        raise TypeError(
            f"{type(cache).__name__} cannot list its entries; entries() and clear() need "
            f"the default PickleFileCache"
        )
    name = qualified_name(func)
    return [e for e in cache.iter_entries() if e.metadata.get("function") == name]


def clear(decorator: "DecoratorCheckpoint", func: Callable[..., Any]) -> int:
    """Delete every entry of this function (not those of other functions in the same
    cache); return how many."""
    return sum(decorator.cache.delete(e.key) for e in _entries_of(decorator, func))


def delete(
    decorator: "DecoratorCheckpoint", func: Callable[..., Any], *args: Any, **kwargs: Any
) -> bool:
    """Delete the entry of the call ``f(*args, **kwargs)``; False if it had none."""
    return bool(decorator.cache.delete(decorator._key(func, *args, **kwargs)))


def cached(
    decorator: "DecoratorCheckpoint", func: Callable[..., Any], *args: Any, **kwargs: Any
) -> bool:
    """Would ``f(*args, **kwargs)`` be answered from the cache now (an entry exists, is
    not expired or refused by ``valid=``, and what it read is unchanged)? Nothing runs,
    nothing is loaded."""
    key = decorator._key(func, *args, **kwargs)
    if not isinstance(decorator.cache, PickleFileCache):
        return decorator.cache.exists(key)
    try:
        header = decorator.cache.read_metadata(key)
    except CheckpointNotExist:
        return False
    if decorator._validity and invalid(decorator, key) is not None:
        return False
    checks = header.get("checks")
    return not (checks or decorator.inputs) or decorator._stale(checks) is None


def entries(decorator: "DecoratorCheckpoint", func: Callable[..., Any]) -> List[Dict[str, Any]]:
    """What is stored for this function, oldest first: one dict per entry with ``key``,
    ``arguments`` (a summary of the call), ``size`` (bytes), ``created``,
    ``last_used`` (Unix times) and ``hits``, from the library's own records."""
    found = _entries_of(decorator, func)
    from ..store.evict import usage_log_for

    usage = usage_log_for(decorator.cache).read()
    out = []
    for e in found:
        record = usage.get(e.key)
        created = e.metadata.get("created")
        out.append(
            {
                "key": e.key,
                "arguments": e.metadata.get("arguments"),
                "size": e.size,
                "created": created,
                "last_used": max(record.last_used if record else 0.0, created or 0.0) or None,
                "hits": record.hits if record else 0,
            }
        )
    return sorted(out, key=lambda d: d["created"] or 0)


def accept(decorator: "DecoratorCheckpoint", func: Callable[..., Any]) -> Dict[str, Any]:
    """Mark the current code of this function (and of what it reaches) as equivalent to
    the code its most recent entry was computed with, so that its entries are served
    again. Returns what was done: ``{"function", "accepted", "code", "as"}``.

    Raises:
        ConfigurationError: the function has ``version=``, or no entry to accept.
    """
    identifier = decorator.identifier
    name = qualified_name(func)
    if not isinstance(identifier, AutoFuncCallIdentifier):
        raise ConfigurationError(f"accept() needs the default identifier; {name} has another")
    if identifier.version is not None:
        raise ConfigurationError(
            f"{name} has version={identifier.version!r}: its code is not tracked, so there "
            f"is nothing to accept; its entries are served until the version changes"
        )
    for record in reversed(history(decorator, func)):
        static = record.get("static")
        if not isinstance(static, str):
            continue
        try:
            decorator.cache.read_metadata(record.get("key"))
        except (CheckpointNotExist, ValueError, TypeError):
            continue
        now = identifier.accept(func, static)
        if now is None:
            logger.info("accept: %s: its latest entry was computed with the current code", name)
        else:
            logger.info("accept: %s: code %s accepted as equivalent to %s", name, now, static)
        return {"function": name, "accepted": now is not None, "code": now, "as": static}
    raise ConfigurationError(
        f"{name} has no stored entry to accept the current code for: run it once, or it "
        f"was stored by a version of checkpointing that did not record its code digest"
    )


def history(decorator: "DecoratorCheckpoint", func: Callable[..., Any]) -> List[Dict[str, Any]]:
    """The recorded entries of ``func``, oldest first; for a module that is also run
    as a script (``python main.py``), those recorded under ``__main__`` too."""
    name = qualified_name(func)
    records = list(decorator.cache.history(name))
    module, _, qualname = name.partition(":")
    if module != "__main__" and "." not in module:
        # The same definitions, named as the script named them: renamed to compare.
        records += [
            _renamed(record, "__main__:", f"{module}:")
            for record in decorator.cache.history(f"__main__:{qualname}")
        ]
    return sorted(records, key=lambda r: r.get("created") or 0)


def _versioned_changes(
    version: str,
    func: Callable[..., Any],
    decorator: "DecoratorCheckpoint",
    explanation: "Explanation",
    fingerprint: Dict[str, Any],
) -> None:
    """A miss of a ``version=`` function: the version or the arguments changed since
    the nearest earlier entry (whose fingerprints hold no code to compare)."""
    from ..explanation import Change, diff

    earlier = [r for r in history(decorator, func) if isinstance(r.get("version"), str)]
    if not earlier:
        return
    nearest = min(reversed(earlier), key=lambda r: len(diff(fingerprint, r)))
    changes = diff(fingerprint, nearest)
    if nearest["version"] != version:
        changes.insert(0, Change("version", f"version {nearest['version']!r} -> {version!r}"))
    explanation.changes = changes
    explanation.nearest_key = nearest.get("key")
    explanation.has_history = True


def _renamed(record: Dict[str, Any], old: str, new: str) -> Dict[str, Any]:
    out = dict(record)
    for part in ("nodes", "globals", "argument_code"):
        names = record.get(part)
        if isinstance(names, dict):
            out[part] = {
                (new + k[len(old) :] if k.startswith(old) else k): v for k, v in names.items()
            }
    return out


def annotate(
    decorator: "DecoratorCheckpoint",
    func: Callable[..., Any],
    explanation: "Explanation",
    fingerprint: Optional[Dict[str, Any]] = None,
) -> None:
    """Add to ``explanation`` what ``version=`` and ``accept`` change about the answer."""
    identifier = decorator.identifier
    if not isinstance(identifier, AutoFuncCallIdentifier):
        return
    if identifier.version is not None:
        explanation.notes.append(
            f"its code is not tracked: version={identifier.version!r} stands for it"
        )
        if not explanation.hit and fingerprint is not None:
            _versioned_changes(identifier.version, func, decorator, explanation, fingerprint)
        return
    from ..keyplan import cached as cached_plan

    plan = cached_plan(func)
    if plan is None:
        return
    record = identifier.acceptance(plan.static_digest.hex())
    if record is None:
        return
    when = record.get("at")
    shown = (
        time.strftime("%Y-%m-%d %H:%M", time.localtime(when))
        if isinstance(when, (int, float))
        else "?"
    )
    explanation.notes.append(
        f"its current code was accepted as equivalent to that of its earlier entries "
        f"({shown}, checkpointing accept): code changes since then do not re-run it"
    )
    explanation.changes = [
        c for c in explanation.changes if c.kind not in ("code", "reached", "unreached")
    ]
