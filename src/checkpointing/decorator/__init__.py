"""The ``checkpoint`` decorator: look up, run, store, and what to do when caching fails.

This module owns the call path of a checkpointed function and the ``on_error``
policy. Keys come from an identifier (:mod:`checkpointing.identify`), storage from a
cache (:mod:`checkpointing.store`). The policy, in one place:

* the user's function raises: the exception propagates, nothing is cached;
* a key cannot be computed (an argument cannot be hashed, an analysis fault) or the
  cache cannot be read: ``"warn"`` warns and runs the function without the cache,
  ``"ignore"`` does so silently, ``"raise"`` raises;
* the result cannot be stored: the result is returned all the same (with a warning
  under ``"warn"``); ``"raise"`` raises :class:`CheckpointFailedError`, which carries
  the result in ``.result``;
* an entry that cannot be read is a miss (the store warns and the entry is replaced).

A custom identifier's key may be any value but None when the cache takes it (1.0's
contract); :class:`PickleFileCache` takes non-empty strings only, and another key is a
failure of "computing the key" under the policy above, with a message saying what to
return instead. The submodules ``base`` and ``default`` are 1.0's import paths of
:class:`DecoratorCheckpoint` and :func:`checkpoint`.

Why one module of more than 600 lines: the call path is read top to bottom as one
unit (the wrappers, then each step with its policy, then the miss: recording and
saving), and ``rerun``, ``key``, ``explain`` and :func:`checkpoint` reuse its steps.
The run-time recording glue (``_start_recording`` to ``_checks``, the side-effect and
safety-net warnings) is the part to move out (``decorator/recording.py``) when the
module grows again.
"""

from __future__ import annotations

import _functools  # functools' partial, without functools (issue 12, target 5)
import builtins
import os
import sys
import time
import types

from .._lazylog import DEBUG, INFO, LazyLogger
from ..config import defaults, validate_inputs, validate_on_error
from ..errors import (
    COMPRESSED_LOADED,
    CheckpointFailedError,
    CheckpointFailedWarning,
    CheckpointNotExist,
    ConfigurationError,
    ExpensiveOverheadWarning,
    HashFailedError,
    HashFailedWarning,
    SideEffectWarning,
)
from ..errors import PENDING_WARNINGS as PENDING
from ..identify import AutoFuncCallIdentifier, FuncCallIdentifierBase, qualified_name
from ..report import warn
from ..store import CacheBase, PickleFileCache
from ..store.format import EncodedJSON
from . import manage as _manage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import (
        Any,
        Callable,
        Dict,
        List,
        Optional,
        Sequence,
        Tuple,
        TypeVar,
        Union,
        overload,
    )

    F = TypeVar("F", bound=Callable[..., Any])
else:

    def overload(func: object) -> object:
        """typing.overload at run time: the definition that follows replaces it
        (typing is not imported at run time: issue 12, target 5)."""
        return func


# store.compress.Compressed once that module is loaded (compress=, or an entry stored
# compressed unpickled here: it tells _compressed_loaded), else None: a hit compares
# its value's type with it at no extra cost, and the import does not load the codecs.
_Compressed: Any = None
# store.evict.TOUCH_INTERVAL (tests/test_light_import.py checks they agree), written out:
# evict loads with the usage log, at decoration, not at import (issue 12, target 5).
_TOUCH_INTERVAL = 3600.0
_monotonic = time.monotonic
_modules = sys.modules

if TYPE_CHECKING:
    from .. import runtime
    from ..explanation import Explanation

__all__ = ["DecoratorCheckpoint", "checkpoint"]

logger = LazyLogger(__name__)


class _Sentinel:
    """A unique marker that pickles by reference, so that it is still itself in a
    worker process that received a copy of a wrapper (see ``_sync_wrapper``)."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return f"<checkpointing.decorator.{self._name}>"

    def __reduce__(self) -> str:
        return self._name


# A cached result may be None, so "no result yet" needs its own value.
_MISSING = _Sentinel("_MISSING")
# An entry exists but what it depends on at run time changed (an input file...).
_STALE = _Sentinel("_STALE")
# What a run read could not be recorded: its result is returned, not stored.
_UNCHECKED = _Sentinel("_UNCHECKED")
# Warn about overhead only when caching is slower than the call by this much (1.0 did).
_OVERHEAD_TOLERANCE_S = 0.1


class DecoratorCheckpoint:
    """A decorator that caches a function's results with an identifier and a cache.

    This is the 1.0 extension API: combine any :class:`FuncCallIdentifierBase` with any
    :class:`CacheBase`::

        @DecoratorCheckpoint(MyIdentifier(), MyCache(), on_error="raise")
        def f(x): ...

    Args:
        identifier: computes the key of each call.
        cache: stores and retrieves results by key.
        on_error: ``"warn"``, ``"raise"`` or ``"ignore"``: what to do when caching
            (not the function) fails; ``None`` reads ``defaults["checkpoint.on_error"]``.
        inputs: paths or glob patterns of files the function reads (see
            :func:`checkpoint`); needs a cache that keeps run-time checks
            (:class:`PickleFileCache`).
        compute_once: when several callers miss one key together, one computes and
            the others wait for its entry (see :func:`checkpoint`); ``None`` reads
            ``defaults["checkpoint.compute_once"]``. Caches without locks ignore it.
        expires_after: see :func:`checkpoint` (needs a :class:`PickleFileCache`).
        valid: see :func:`checkpoint` (needs a :class:`PickleFileCache`).
        mmap_mode: see :func:`checkpoint` (needs a :class:`PickleFileCache`).
        compress: see :func:`checkpoint` (needs a :class:`PickleFileCache`).
        max_size: see :func:`checkpoint` (needs a :class:`PickleFileCache`).
    """

    def __init__(
        self,
        identifier: FuncCallIdentifierBase,
        cache: CacheBase,
        on_error: Optional[str] = None,
        *,
        track_files: Optional[bool] = None,
        allow_side_effects: bool = False,
        inputs: Sequence[Any] = (),
        compute_once: Optional[bool] = None,
        expires_after: Any = None,
        valid: Optional[Callable[[Dict[str, Any]], Any]] = None,
        mmap_mode: Optional[str] = None,
        compress: Optional[str] = None,
        max_size: Any = None,
    ) -> None:
        if not isinstance(identifier, FuncCallIdentifierBase):
            raise ConfigurationError(
                f"identifier={identifier!r} is not a FuncCallIdentifierBase; subclass "
                f"checkpointing.FuncCallIdentifierBase and implement identify(context)"
            )
        if not isinstance(cache, CacheBase):
            raise ConfigurationError(
                f"cache={cache!r} is not a CacheBase; subclass checkpointing.CacheBase "
                f"and implement save(context_id, result) and retrieve(context_id)"
            )
        self.identifier = identifier
        self.cache = cache
        self.on_error = validate_on_error(
            defaults["checkpoint.on_error"] if on_error is None else on_error
        )
        self.track_files = _validate_flag(
            "track_files", defaults["runtime.track_files"] if track_files is None else track_files
        )
        self.allow_side_effects = _validate_flag("allow_side_effects", allow_side_effects)
        self.compute_once = _validate_flag(
            "compute_once",
            defaults["checkpoint.compute_once"] if compute_once is None else compute_once,
        )
        self.inputs: Tuple[str, ...] = validate_inputs(inputs)
        if self.inputs and not cache.stores_checks:
            raise ConfigurationError(
                f"inputs={list(self.inputs)!r} needs a cache that stores run-time checks "
                f"with each entry, and {type(cache).__name__} does not; use the default "
                f"PickleFileCache, or fold the files' content into the key yourself"
            )
        self._functions: List[Callable[..., Any]] = []  # decorated, for __getstate__
        self._names: Dict[Any, str] = {}  # function -> qualified_name (a miss asks twice)
        self._blinds: Dict[Any, Tuple[Any, bool, bool]] = {}  # function -> see _blind
        self.expires_after, self.valid, self.mmap_mode, self.compress, self.max_size = (
            _manage.validate_options(cache, expires_after, valid, mmap_mode, compress, max_size)
        )
        self._validity = expires_after is not None or valid is not None
        self._usage = _manage.usage_log(cache)  # last use and hits (None: not kept)
        self._used = None if self._usage is None else self._usage.state
        # How a hit reads an entry with its checks: mapped, or the store's reader.
        self._read_entry = cache.read_entry
        if self.mmap_mode is not None:
            from ..store.mapped import retrieve_mapped

            self._read_entry = _functools.partial(retrieve_mapped, cache, mode=mmap_mode)

    def __getstate__(self) -> Dict[str, Any]:
        """Pickle with the key plans of the decorated functions.

        cloudpickle and dill copy the wrapper of a ``__main__`` function (a script, a
        notebook cell) *by value* into a worker process (joblib, dask), where its
        source and the parent's ``__main__`` are not to be had. The parent's plan
        travels with it, so that the worker computes the same key as the parent
        (see :func:`checkpointing.keyplan.export`). A wrapper pickled by reference
        (a function of an importable module) is imported in the worker and never
        comes here.
        """
        state = dict(self.__dict__)
        shipped, named = [], []
        if isinstance(self.identifier, AutoFuncCallIdentifier):
            from ..keyplan import export, export_definitions

            for func in getattr(self, "_functions", ()):
                try:
                    data = export(func, self.identifier.analysis_directory)
                    if data is not None:
                        shipped.append((func, data))
                    if func.__module__ == "__main__":
                        # Classes of arguments and functions passed as values come
                        # by value too.
                        named.extend(export_definitions(func))
                except Exception as exc:  # the worker analyses for itself instead
                    logger.debug(
                        "no plan shipped with %s: %s: %s",
                        qualified_name(func),
                        type(exc).__name__,
                        exc,
                    )
        state["_shipped_plans"] = shipped
        state["_shipped_definitions"] = named
        state.pop("_used", None)  # the receiving process's own usage log's (__setstate__)
        state.pop("_names", None)
        state.pop("_blinds", None)
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        shipped = state.pop("_shipped_plans", ())
        named = state.pop("_shipped_definitions", ())
        self.__dict__.update(state)
        self._names, self._blinds = {}, {}
        usage = state.get("_usage")
        self._used = None if usage is None else usage.state
        if shipped or named:
            from ..keyplan import receive, receive_definitions

            for func, data in shipped:
                receive(func, data)
            receive_definitions(named)

    def __call__(self, func: F) -> F:
        if isinstance(func, (staticmethod, classmethod)):
            raise TypeError(
                f"put @checkpoint below @{type(func).__name__}, not above it: "
                f"@{type(func).__name__} must be the outermost decorator"
            )
        if not callable(func):
            raise TypeError(
                f"checkpoint decorates functions, not {type(func).__name__} "
                f"objects: put @checkpoint() on a def"
            )
        import inspect  # here, not at import: decorating loads the key machinery anyway

        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            raise TypeError(
                f"cannot checkpoint generator function {qualified_name(func)}: a generator "
                f"is consumed lazily and cannot be stored; return a list instead, "
                f"or decorate a function that collects the items"
            )
        _register_project_code(func)
        self._functions.append(func)
        self.identifier.prepare(func, self.cache)
        if inspect.iscoroutinefunction(func):
            wrapper = self._async_wrapper(func)
        else:
            wrapper = self._sync_wrapper(func)
        wrapper.rerun = self._rerun(func)  # type: ignore[attr-defined]
        wrapper.key = _functools.partial(self._key, func)  # type: ignore[attr-defined]
        wrapper.checkpoint = self  # type: ignore[attr-defined]
        _manage.attach(self, func, wrapper)
        return wrapper  # type: ignore[return-value]

    # -- the call path ------------------------------------------------------------

    # The wrappers are closures over ``decorator``, ``func`` and the sentinels, with
    # globals of their own (see _detached): cloudpickle and dill copy a wrapper of a
    # ``__main__`` function by value into a worker, with copies of what it refers to.
    # The sentinels pickle by reference (they stay themselves there), and dill would
    # otherwise copy all of this module's globals along.

    def _sync_wrapper(self, func: Callable[..., Any]) -> Callable[..., Any]:
        decorator, missing, stale, settings = self, _MISSING, _STALE, defaults

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not settings["checkpoint.enabled"]:
                return func(*args, **kwargs)
            try:  # decorator._try_key, inlined: one call less on every hit
                key = decorator.identifier.key(func, args, kwargs)
                if key.__class__ is not str or not key:
                    key = decorator._check_key(key)
            except Exception as exc:
                key = decorator._key_failed(func, args, kwargs, exc)
            fingerprint = recorder = None
            if key is not None:
                value = decorator._try_retrieve(func, key)
                if value is not missing and value is not stale:
                    return value
                if decorator.compute_once:
                    return decorator._compute_once(func, args, kwargs, key, value)
                fingerprint = decorator._on_miss(func, key, args, kwargs, value is missing)
                recorder = decorator._start_recording(func, args, kwargs)
            return decorator._run_and_save(func, args, kwargs, key, fingerprint, recorder)

        return _wraps(_detached(wrapper), func)

    def _async_wrapper(self, func: Callable[..., Any]) -> Callable[..., Any]:
        decorator, missing, stale, perf_counter = self, _MISSING, _STALE, time.perf_counter
        settings = defaults

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not settings["checkpoint.enabled"]:
                return await func(*args, **kwargs)
            key = decorator._try_key(func, args, kwargs)
            fingerprint = None
            if key is not None:
                value = decorator._try_retrieve(func, key)
                if value is not missing and value is not stale:
                    return value
                fingerprint = decorator._on_miss(func, key, args, kwargs, value is missing)
            # Not recorded at run time: other tasks interleave with the awaited body.
            started = perf_counter()
            result = await func(*args, **kwargs)
            if key is not None:
                decorator._try_save(
                    func, key, result, perf_counter() - started, fingerprint, None, args, kwargs
                )
            decorator._settle()
            return result

        return _wraps(_detached(wrapper), func)

    def _rerun(self, func: Callable[..., Any]) -> Callable[..., Any]:
        import inspect

        decorator, perf_counter, settings = self, time.perf_counter, defaults
        if inspect.iscoroutinefunction(func):

            async def rerun_async(*args: Any, **kwargs: Any) -> Any:
                """Run the function, bypassing the cache, and store its result."""
                if not settings["checkpoint.enabled"]:
                    return await func(*args, **kwargs)
                key = decorator._try_key(func, args, kwargs)
                fingerprint = decorator._forced(func, key, args, kwargs)
                started = perf_counter()
                result = await func(*args, **kwargs)
                if key is not None:
                    decorator._try_save(
                        func, key, result, perf_counter() - started, fingerprint, None, args, kwargs
                    )
                return result

            return _detached(rerun_async)

        def rerun(*args: Any, **kwargs: Any) -> Any:
            """Run the function, bypassing the cache, and store its result."""
            if not settings["checkpoint.enabled"]:
                return func(*args, **kwargs)
            key = decorator._try_key(func, args, kwargs)
            fingerprint = decorator._forced(func, key, args, kwargs)
            recorder = decorator._start_recording(func, args, kwargs) if key is not None else None
            return decorator._run_and_save(func, args, kwargs, key, fingerprint, recorder)

        return _detached(rerun)

    def _compute_once(
        self,
        func: Callable[..., Any],
        args: Tuple[Any, ...],
        kwargs: Any,
        key: str,
        value: Any,
    ) -> Any:
        """A miss under the key's lock: wait while another caller computes, then read
        its entry; compute only if it is still missing (see
        :mod:`checkpointing.store.locks`)."""
        ACQUIRED, READY, TIMED_OUT, thread_gate, key_lock = _LOCKING or _locking()
        timeout = defaults["checkpoint.wait_timeout"]
        deadline = time.monotonic() + timeout
        with thread_gate(key, timeout) as waited:
            lock = state = None
            if waited is False:
                state = TIMED_OUT
            else:
                if waited:  # another thread of this process had the key: look again
                    value = self._try_retrieve(func, key, again=True)
                    if value is not _MISSING and value is not _STALE:
                        return value
                try:
                    lock = key_lock(self.cache, key)
                    if lock is not None:
                        state = lock.acquire(max(deadline - time.monotonic(), 0.0))
                except Exception as exc:  # a lock is an optimisation: compute without it
                    logger.debug("no compute-once lock for %s: %s", qualified_name(func), exc)
            try:
                if state == READY or (
                    state == ACQUIRED and (value is not _MISSING or self._may_exist(key))
                ):
                    value = self._try_retrieve(func, key, again=True)
                    if value is not _MISSING and value is not _STALE:
                        return value
                elif state == TIMED_OUT and self.on_error == "warn":
                    warn(
                        f"waited {timeout:g}s for another caller computing "
                        f"{qualified_name(func)} (key {key}); computing it here. Raise "
                        f"defaults['checkpoint.wait_timeout'] for longer computations",
                        CheckpointFailedWarning,
                    )
                fingerprint = self._on_miss(func, key, args, kwargs, value is _MISSING)
                recorder = self._start_recording(func, args, kwargs)
                return self._run_and_save(func, args, kwargs, key, fingerprint, recorder)
            finally:
                if state == ACQUIRED:
                    try:
                        lock.release()  # type: ignore[union-attr]
                    except Exception as exc:
                        logger.debug("releasing the lock of %s: %s", qualified_name(func), exc)

    def _may_exist(self, key: str) -> bool:
        """Could ``key`` have an entry now? False only when the local store has no file
        for it (one ``lstat``: cheaper than a read that fails, on most misses)."""
        cache = self.cache
        if type(cache) is not PickleFileCache:
            return True
        try:
            path = cache.path_of(key)
        except ValueError:
            return True
        if _ACCESS_NOFOLLOW:  # no exception made and caught inside, as lexists does
            return os.access(path, os.F_OK, follow_symlinks=False)
        return os.path.lexists(path)

    def _run_and_save(
        self,
        func: Callable[..., Any],
        args: Tuple[Any, ...],
        kwargs: Any,
        key: Optional[str],
        fingerprint: Optional[Dict[str, Any]],
        recorder: Optional[runtime.Recorder],
    ) -> Any:
        """Run the body (recording it, if asked) and store the result under ``key``."""
        if recorder is not None:
            recorder.note_arguments(args, kwargs)
        started = time.perf_counter()
        try:
            result = func(*args, **kwargs)
        finally:
            if recorder is not None:
                from .. import runtime  # a miss's (not at import: issue 12, target 5)

                runtime.stop(recorder)
        if key is not None:
            self._try_save(
                func,
                key,
                result,
                time.perf_counter() - started,
                fingerprint,
                recorder,
                args,
                kwargs,
            )
        if PENDING:
            _flush_warnings()
        return result

    @staticmethod
    def _settle() -> None:
        """Say what the analyses made during a call had to say (once per function)."""
        if PENDING:
            _flush_warnings()

    def _forced(
        self, func: Callable[..., Any], key: Optional[str], args: Tuple[Any, ...], kwargs: Any
    ) -> Optional[Dict[str, Any]]:
        logger.info("%s re-runs: rerun() was called", qualified_name(func))
        return None if key is None else self._fingerprint(func, args, kwargs)

    def _key(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
        """The key that ``func(*args, **kwargs)`` would be stored under."""
        return self.identifier.key(func, args, kwargs)

    # -- each step, with the on_error policy ----------------------------------------

    def _try_key(self, func: Callable[..., Any], args: Tuple[Any, ...], kwargs: Any) -> Any:
        try:
            key = self.identifier.key(func, args, kwargs)
            if key.__class__ is str and key:
                return key
            return self._check_key(key)
        except Exception as exc:
            return self._key_failed(func, args, kwargs, exc)

    def _check_key(self, key: Any) -> Any:
        """A key of a custom identifier that is not a non-empty str: any value but None
        if the cache takes it (as in 1.0), else a TypeError that says what to do."""
        name = type(self.identifier).__name__
        if key is None:
            raise TypeError(
                f"{name}.identify() returned None; it must return the key of "
                f"the call (does it lack a return statement?)"
            )
        if isinstance(key, str) and key:  # a str subclass
            return key
        if self.cache.str_keys_only:
            raise TypeError(
                f"{name}.identify() returned {key!r}, but {type(self.cache).__name__} "
                f"names files after keys and takes only a non-empty str; return a str "
                f"(e.g. hashlib.md5(repr(key).encode()).hexdigest()), or use a cache that "
                f"takes any hashable key (InMemoryLRUCache, or a CacheBase of your own)"
            )
        return key

    def _key_failed(
        self, func: Callable[..., Any], args: Tuple[Any, ...], kwargs: Any, exc: Exception
    ) -> None:
        if isinstance(exc, HashFailedError):
            if self.on_error == "raise":
                raise exc
            if self.on_error == "warn":
                warn(f"{exc}; {qualified_name(func)} runs without the cache", HashFailedWarning)
            return None
        if isinstance(exc, TypeError) and _is_binding_error(func, args, kwargs):
            return None  # the caller's mistake: calling func raises Python's own error
        self._fail(func, "computing the key", exc)
        return None

    def _try_retrieve(self, func: Callable[..., Any], key: str, again: bool = False) -> Any:
        """The value stored under ``key``, or _MISSING or _STALE (logged, unless
        ``again``: the caller looks a second time, after waiting for the key's lock)."""
        try:
            if self._validity:
                reason = _manage.invalid(self, key)
                if reason is not None:
                    if not again:
                        logger.info("%s re-runs: %s", qualified_name(func), reason)
                    return _STALE
            value, checks = self._read_entry(key)
            if checks or self.inputs:
                stale = self._stale(checks)
                if stale is not None:
                    value, checks = self._try_variants(key)
                    if value is _STALE:
                        if not again:
                            logger.info("%s re-runs: %s", qualified_name(func), stale)
                        return _STALE
                    logger.info(
                        "%s: an earlier entry matches its inputs as they are "
                        "now (%s since the latest)",
                        qualified_name(func),
                        stale,
                    )
                if checks:
                    from .. import checks as _checks  # a hit with checks (not at import)

                    _checks.propagate(checks)
        except CheckpointNotExist:
            if logger.isEnabledFor(DEBUG):
                logger.debug("miss: %s (key %s)", qualified_name(func), key)
            return _MISSING
        except Exception as exc:
            self._fail(func, "reading the cache", exc)
            return _MISSING
        # Until something imports logging, nothing configured it (see _lazylog); after,
        # the logger's memo says that DEBUG is off without a call.
        if (
            "logging" in _modules
            and logger.levels.get(DEBUG) is not False
            and logger.isEnabledFor(DEBUG)
        ):
            logger.debug("hit: %s (key %s)", qualified_name(func), key)
        if PENDING:  # an analysis made by this call had something to say
            _flush_warnings()
        used = self._used
        if used is not None:  # the usage log's state, inlined: a hit's common case
            state = used.get(key)
            if state is not None and _monotonic() - state[0] < _TOUCH_INTERVAL:
                state[1] += 1
            else:
                self._usage.hit(key, func)  # type: ignore[union-attr]
        if type(value) is _Compressed:
            try:
                value = value.load()
            except Exception as exc:
                self._fail(func, "decompressing the entry", exc)
                return _MISSING
        return value

    def _stale(self, checks: Optional[Dict[str, Any]]) -> Optional[str]:
        """None if an entry with these run-time checks may be served, else why not."""
        if self.inputs:
            declared = {pattern for pattern, _ in (checks or {}).get("declared", ())}
            if not declared.issuperset(self.inputs):
                return "its inputs= patterns were not checked when it was stored"
        if not checks:
            return None
        # A hit with checks: the checks alone, not the recorder (not at import: issue 12)
        from .. import checks as _checks

        return _checks.verify(checks)

    def _try_variants(self, key: str) -> Tuple[Any, Any]:
        """(value, checks) of an earlier entry of ``key`` whose checks hold now (the
        inputs were reverted), made the key's entry again; else (_STALE, None)."""
        for path, checks in self.cache.variants(key):
            if self._stale(checks) is None:
                self.cache.promote_variant(key, path)
                value, stored = self.cache.read_entry(key)
                if stored == checks:  # not replaced by another process meanwhile
                    return value, checks
                return _STALE, None
        return _STALE, None

    # -- explaining misses -------------------------------------------------------------

    def _fingerprint(
        self, func: Callable[..., Any], args: Tuple[Any, ...], kwargs: Any
    ) -> Optional[Dict[str, Any]]:
        try:
            return self.identifier.fingerprint(func, args, kwargs)
        except Exception as exc:  # explaining is a service, never a reason to fail
            logger.debug(
                "no fingerprint for %s: %s: %s", qualified_name(func), type(exc).__name__, exc
            )
            return None

    def _on_miss(
        self,
        func: Callable[..., Any],
        key: str,
        args: Tuple[Any, ...],
        kwargs: Any,
        explain: bool = True,
    ) -> Optional[Dict[str, Any]]:
        """Compute the call's fingerprint (stored with the entry) and log why it runs
        (unless ``explain`` is False: an entry failed its checks, already logged)."""
        fingerprint = self._fingerprint(func, args, kwargs)
        if explain and logger.isEnabledFor(INFO):
            try:
                name = qualified_name(func)
                history = self.cache.history(name)
                if history:  # a first call is not news: it stays at DEBUG ("miss")
                    from ..explanation import explanation_for

                    logger.info("%s", explanation_for(name, key, False, fingerprint, history))
            except Exception as exc:
                logger.debug("could not explain the miss of %s: %s", qualified_name(func), exc)
        return fingerprint

    def explain(self, func: Callable[..., Any], args: Tuple[Any, ...], kwargs: Any) -> Explanation:
        """Would ``func(*args, **kwargs)`` hit, and if not, why (see :func:`explain`)."""
        from ..analysis.resolve import unwrap
        from ..explanation import explanation_for

        key = self._key(func, *args, **kwargs)
        name = qualified_name(func)
        fingerprint = self._fingerprint(func, args, kwargs)
        explanation = explanation_for(
            name, key, self.cache.exists(key), fingerprint, _manage.history(self, func)
        )
        from ..keyplan import blind_spots_of, cached

        explanation.blind_spots = blind_spots_of(cached(unwrap(func)))
        _manage.annotate(self, func, explanation, fingerprint)
        return explanation

    def _start_recording(
        self, func: Callable[..., Any], args: Tuple[Any, ...] = (), kwargs: Any = None
    ) -> Optional[runtime.Recorder]:
        """Watch a miss (see :mod:`checkpointing.runtime`), if this cache can verify it."""
        if not self.cache.stores_checks:
            return None
        from .. import runtime  # a miss's (not at import: issue 12, target 5)

        blind = self._blind(func)
        safety_net = (
            defaults["runtime.safety_net"]
            and self._safety_net_wanted()
            and runtime.monitoring_available(blind)
        )
        track_env = defaults["runtime.track_env"]
        if not (self.track_files or safety_net or track_env or not self.allow_side_effects):
            return None
        known = self._static_extent(func, args, kwargs) if safety_net else None
        try:
            return runtime.start(
                self._name(func),
                self.cache.directory,
                self.track_files,
                known,
                track_env,
                blind,
            )
        except Exception as exc:  # recording is a service, never a reason to fail
            logger.debug("not recording %s: %s", qualified_name(func), exc)
            return None

    def _static_extent(
        self, func: Callable[..., Any], args: Tuple[Any, ...] = (), kwargs: Any = None
    ) -> Optional[List[Tuple[str, int, int]]]:
        """(file, first line, last line) of every definition the static graph holds,
        and the graphs of the classes of the arguments (their code is in the key)."""
        from ..keyplan import cached

        plan = cached(func)
        if plan is None:
            return None
        summary = list(plan.summary)
        try:
            from ..identify import argument_classes

            for cls in argument_classes((*args, *(kwargs or {}).values())):
                cls_plan = cached(cls)
                if cls_plan is not None:
                    summary.extend(cls_plan.summary)
        except Exception as exc:  # the safety net then warns about what it finds
            logger.debug("no argument classes for %s: %s", qualified_name(func), exc)
        return [
            (n["file"], n["line"], n.get("end") or n["line"])
            for n in summary
            if n.get("file") and n.get("line")
        ]

    def _checks(self, func: Callable[..., Any], recorder: Optional[runtime.Recorder]) -> Any:
        """The run-time checks to store (None if none), or _UNCHECKED if recording
        failed."""
        from .. import runtime  # a miss's (not at import: issue 12, target 5)

        checks: Dict[str, Any] = {}
        if self.inputs:  # an entry without them is never served (see _stale)
            try:
                checks = runtime.declared_checks(
                    self.inputs, qualified_name(func), self.cache.directory
                )
            except Exception as exc:
                logger.debug("could not evaluate inputs= of %s: %s", qualified_name(func), exc)
        if recorder is None:
            return checks or None
        try:
            checks = runtime.merge(recorder.checks(), checks)
        except Exception as exc:  # an entry without its checks could be served stale
            logger.debug("no run-time checks for %s: %s", qualified_name(func), exc)
            return _UNCHECKED
        if recorder.writes and not self.allow_side_effects:
            runtime_warn_side_effects(func, list(recorder.writes))
        if checks.get("code"):
            warn_runtime_dependency(func, checks["code"])
        return checks

    def _try_save(
        self,
        func: Callable[..., Any],
        key: str,
        result: Any,
        run_seconds: float,
        fingerprint: Optional[Dict[str, Any]] = None,
        recorder: Optional[runtime.Recorder] = None,
        args: Tuple[Any, ...] = (),
        kwargs: Any = None,
    ) -> None:
        created = time.time()
        name = self._name(func)
        metadata: Dict[str, Any] = {
            "function": name,
            "created": created,
            "run_seconds": run_seconds,
            "arguments": _manage.summarize_call(func, args, kwargs or {}, self.identifier),
        }
        if fingerprint is not None:  # in the header and the history: encoded once
            if fingerprint.__class__ is not EncodedJSON:
                fingerprint = EncodedJSON(fingerprint)
            metadata["fingerprint"] = fingerprint
        checks = self._checks(func, recorder)
        if checks is _UNCHECKED:
            return  # what it read is unknown: storing it could serve a stale result later
        if checks:
            metadata["checks"] = checks
        started = time.perf_counter()
        try:
            stored = result
            if self.compress is not None:
                stored = _manage.compress_result(self, result, metadata)
            self.cache.save_entry(key, stored, metadata)
        except Exception as exc:
            msg = (
                f"could not store the result of {name} "
                f"({type(exc).__name__}: {exc}); the result is returned but not cached"
            )
            if self.on_error == "raise":
                raise CheckpointFailedError(msg, result, True) from exc
            if self.on_error == "warn":
                warn(msg, CheckpointFailedWarning)
            return
        if self._usage is not None:
            self._usage.saved(key, name)
        save_seconds = time.perf_counter() - started
        _manage.enforce_limit(self, key)
        if "logging" in _modules and logger.isEnabledFor(DEBUG):  # (as on a hit)
            logger.debug(
                "save: %s (key %s, ran %.3fs, stored in %.3fs)",
                name,
                key,
                run_seconds,
                save_seconds,
            )
        if fingerprint is not None:
            try:
                self.cache.record_history(name, fingerprint.history_entry(key, created))
            except Exception as exc:
                logger.debug("could not record the history of %s: %s", name, exc)
        if save_seconds > run_seconds + _OVERHEAD_TOLERANCE_S and self.on_error == "warn":
            warn(
                f"storing the result of {name} took {save_seconds:.2f}s, "
                f"longer than running it ({run_seconds:.2f}s); consider not checkpointing it",
                ExpensiveOverheadWarning,
            )

    def _blind(self, func: Callable[..., Any]) -> bool:
        """:func:`_has_blind_spots`, worked out once per plan of ``func`` (and whether
        ``depends_on=`` acknowledged them)."""
        if not _PLANS:
            from ..keyplan import cached, is_acknowledged

            _PLANS[:] = [cached, is_acknowledged]
        plan = _PLANS[0](func)
        if plan is None:
            return False
        acknowledged = _PLANS[1](plan.root)  # depends_on= covers them
        known = self._blinds.get(func)
        if known is None or known[0] is not plan or known[1] != acknowledged:
            blind = not acknowledged and _has_blind_spots(plan)
            known = self._blinds[func] = (plan, acknowledged, blind)
        return known[2]

    def _name(self, func: Callable[..., Any]) -> str:
        """:func:`qualified_name` of ``func``, worked out once."""
        try:
            name = self._names.get(func)
            if name is None:
                name = self._names[func] = qualified_name(func)
        except TypeError:  # an unhashable callable object
            return qualified_name(func)
        return name

    def _fail(self, func: Callable[..., Any], step: str, exc: BaseException) -> None:
        msg = (
            f"checkpointing {qualified_name(func)} failed while {step} "
            f"({type(exc).__name__}: {exc})"
        )
        if self.on_error == "raise":  # nothing runs: say so, and how to go on anyway
            raise CheckpointFailedError(
                f"{msg}; the function was not run (on_error='raise'); fix the cache "
                f"or pass on_error='warn' to run without it"
            ) from exc
        msg += "; the function runs without the cache"
        if self.on_error == "warn":
            warn(msg, CheckpointFailedWarning)

    def _safety_net_wanted(self) -> bool:
        """Record what code a miss runs? Not under ``version=``: code is not tracked."""
        return getattr(self.identifier, "version", None) is None


_ACCESS_NOFOLLOW = os.access in os.supports_follow_symlinks
_PLANS: List[Any] = []  # keyplan's cached and is_acknowledged (loaded by the first miss)
_LOCKING: List[Any] = []  # what _compute_once needs of the locks (a miss's, not at import)


def _compressed_loaded(cls: type) -> None:
    """store.compress is loaded: ``cls`` is its Compressed (see ``_Compressed``)."""
    global _Compressed
    _Compressed = cls


COMPRESSED_LOADED.append(_compressed_loaded)
if "checkpointing.store.compress" in _modules:  # loaded before this module: told no one
    _compressed_loaded(_modules["checkpointing.store.compress"].Compressed)


def _locking() -> List[Any]:
    from ..store.locks import ACQUIRED, READY, TIMED_OUT, thread_gate
    from ..store.remote import key_lock

    _LOCKING[:] = [ACQUIRED, READY, TIMED_OUT, thread_gate, key_lock]
    return _LOCKING


# functools.WRAPPER_ASSIGNMENTS of each Python this package supports.
_WRAPPER_ASSIGNMENTS = ("__module__", "__name__", "__qualname__", "__doc__", "__annotations__")
if sys.version_info >= (3, 12):
    _WRAPPER_ASSIGNMENTS += ("__type_params__",)


def _wraps(wrapper: Callable[..., Any], func: Callable[..., Any]) -> Callable[..., Any]:
    """``functools.wraps(func)(wrapper)``, without importing functools (issue 12, target 5)."""
    for name in _WRAPPER_ASSIGNMENTS:
        try:
            value = getattr(func, name)
        except AttributeError:
            continue
        setattr(wrapper, name, value)
    wrapper.__dict__.update(getattr(func, "__dict__", {}))
    wrapper.__wrapped__ = func  # type: ignore[attr-defined]
    return wrapper


def _detached(closure: Callable[..., Any]) -> Callable[..., Any]:
    """A copy of ``closure`` whose globals are its own, nearly empty dict.

    Its code reads only its closure cells. dill copies a function whose ``__module__``
    (``__main__``, set by ``functools.wraps``) does not own its globals together with
    all of them: this module's globals would travel to the worker, and fail to pickle.
    """
    copy = types.FunctionType(
        closure.__code__,
        {"__builtins__": builtins, "__name__": __name__},
        closure.__name__,
        closure.__defaults__,
        closure.__closure__,
    )
    copy.__qualname__ = closure.__qualname__
    copy.__doc__ = closure.__doc__
    return copy


def _has_blind_spots(plan: Any) -> bool:
    """Does the analysis ``plan`` (not acknowledged by ``depends_on=``) say it cannot
    see everything it reaches? Then the function's misses are watched by the run-time
    safety net on every Python (before 3.12 by the profile hook, whose cost a miss pays
    only where the analysis is blind)."""
    if plan.nodes:
        return any(node.blind_spots for node in plan.nodes)
    return bool((plan.spec or {}).get("blind_spots"))


def _validate_flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{name}={value!r} is not accepted; use True or False")
    return value


def runtime_warn_side_effects(func: Callable[..., Any], paths: List[str]) -> None:
    """Warn, once per function, that a hit will not recreate the files it wrote."""
    from ..source import display_path

    name = qualified_name(func)

    shown = ", ".join(display_path(p) for p in sorted(paths)[:5])
    more = f" and {len(paths) - 5} more" if len(paths) > 5 else ""
    warn(
        f"{name} wrote {shown}{more} while it ran; when a later call is answered from the "
        f"cache, the function does not run and these are not written again. Return the "
        f"data instead of writing it, or pass checkpoint(allow_side_effects=True) if that "
        f"is what you want",
        SideEffectWarning,
        once=("side-effects", name),
    )


def warn_runtime_dependency(func: Callable[..., Any], found: List[Any]) -> None:
    """One warning per function and process for the definitions the safety net found
    running that the static analysis did not see: joined to the static warning of an
    analysis made by this call, else naming the root cause the stored analysis
    recorded; listing them, at the line of the first cause."""
    from ..analysis.resolve import qualname_of, unwrap
    from ..keyplan import cached, flush_warnings, is_acknowledged, warn_once
    from ..source import display_path

    if is_acknowledged(func):
        return  # checkpoint(depends_on=...) was given: the user has looked at this
    name = qualified_name(func)
    root = qualname_of(unwrap(func))
    names = [entry[0] for entry in found]
    shown = ", ".join(names[:30]) + (f" and {len(names) - 30} more" if len(names) > 30 else "")
    ran = (
        f"{name} ran {len(names)} definition{'s' if len(names) != 1 else ''} that the "
        f"static analysis did not see"
    )
    after = (
        f"They are now part of the entry's dependencies, so editing them re-runs "
        f"{name}. Name them in checkpoint(depends_on=[...]) to make this explicit"
    )
    if root in PENDING:
        flush_warnings(root, f"{ran}: {shown}. {after}")
        return
    plan = cached(unwrap(func))
    spec = getattr(plan, "spec", None) or {}
    causes = [
        f"{display_path(item[0] or '?')}:{item[1]} {item[2]}"
        for item in spec.get("blind_spots", ())
    ]
    filename, line = found[0][1], found[0][2]
    if spec.get("blind_spots") and spec["blind_spots"][0][0]:
        filename, line = spec["blind_spots"][0][0], spec["blind_spots"][0][1]
    cause = (
        f" (the root cause: {'; '.join(causes)})"
        if causes
        else " (reached through a name built at run time)"
    )
    warn_once(("blind-spots", root), f"{ran}{cause}: {shown}. {after}", filename, line)


def _flush_warnings() -> None:
    from ..keyplan import flush_warnings

    flush_warnings()


def _is_binding_error(func: Callable[..., Any], args: Tuple[Any, ...], kwargs: Any) -> bool:
    import inspect

    try:
        inspect.signature(func).bind(*args, **kwargs)
    except TypeError:
        return True
    return False


def _open_store(directory: Any, pickle_protocol: Optional[int]) -> CacheBase:
    """:func:`~checkpointing.store.remote.open_store`, importing the remote store (and
    its module) only for a URL: a local folder does not need it."""
    if directory is None:
        directory = defaults["cache.filesystem.directory"]
    if isinstance(directory, str) and "://" in directory:
        from ..store.remote import open_store

        return open_store(directory, pickle_protocol)
    return PickleFileCache(directory, pickle_protocol)


def _register_project_code(func: Callable[..., Any]) -> None:
    """The module of a decorated function always counts as project code."""
    import inspect

    from ..source import INDEX

    code = getattr(inspect.unwrap(func), "__code__", None)
    if code is not None and os.path.isabs(code.co_filename):
        INDEX.add_project_path(code.co_filename)


@overload
def checkpoint(directory: F) -> F: ...


@overload
def checkpoint(  # noqa: F811 (overload is a plain function at run time)
    directory: Union[str, "os.PathLike[str]", None] = None,
    on_error: Optional[str] = None,
    cache_pickle_protocol: Optional[int] = None,
    *,
    ignore: Sequence[str] = (),
    depends_on: Sequence[Any] = (),
    track_files: Optional[bool] = None,
    allow_side_effects: bool = False,
    track_versions: Optional[bool] = None,
    inputs: Sequence[Any] = (),
    compute_once: Optional[bool] = None,
    version: Optional[str] = None,
    expires_after: Any = None,
    valid: Optional[Callable[[Dict[str, Any]], Any]] = None,
    mmap_mode: Optional[str] = None,
    compress: Optional[str] = None,
    max_size: Any = None,
) -> Callable[[F], F]: ...


def checkpoint(  # noqa: F811
    directory: Any = None,
    on_error: Optional[str] = None,
    cache_pickle_protocol: Optional[int] = None,
    *,
    ignore: Sequence[str] = (),
    depends_on: Sequence[Any] = (),
    track_files: Optional[bool] = None,
    allow_side_effects: bool = False,
    track_versions: Optional[bool] = None,
    inputs: Sequence[Any] = (),
    compute_once: Optional[bool] = None,
    version: Optional[str] = None,
    expires_after: Any = None,
    valid: Optional[Callable[[Dict[str, Any]], Any]] = None,
    mmap_mode: Optional[str] = None,
    compress: Optional[str] = None,
    max_size: Any = None,
) -> Any:
    """Cache a function's results on disk, re-running it only when they may be stale.

    Use as ``@checkpoint()`` or bare ``@checkpoint``. A call is answered from the cache
    when the arguments, the function's code, the code of every function and class of
    your project it reaches, and the module globals they read are all unchanged.

    Args:
        directory: where results are stored; default
            ``defaults["cache.filesystem.directory"]`` (``./.checkpointing``). A URL
            (``"s3://bucket/prefix"``, ``"gs://..."``, any fsspec protocol) makes a
            shared cache, served through a local tier (see docs/shared.md).
        on_error: ``"warn"`` (default), ``"raise"`` or ``"ignore"``: what to do when
            caching fails. The function's own exceptions always propagate.
        cache_pickle_protocol: pickle protocol of stored results; default
            ``defaults["cache.pickle_protocol"]`` (5).
        ignore: parameter names left out of the key (a logger, a verbosity flag).
        depends_on: extra objects folded into the key, for what the analyzer cannot
            see (code reached through ``getattr`` with a computed name, say).
        track_files: record the files a run reads, the folders it lists and the
            files and folders its arguments name, and serve a hit only while they are
            unchanged; default ``defaults["runtime.track_files"]`` (True). Environment
            variables: ``defaults["runtime.track_env"]`` (True).
        allow_side_effects: do not warn when a run writes files (a hit will not).
        track_versions: fold the versions of the third-party distributions the
            function reaches into its key; default
            ``defaults["analysis.track_versions"]`` (False).
        inputs: paths or glob patterns (``"data/*.parquet"``, ``"db.sqlite"``,
            ``"raw/**/*.h5"``) of files the function depends on, relative to the
            current folder. Evaluated again before every hit: a file that now matches
            or no longer does, or a matched file whose content changed, re-runs the
            function. For what run-time recording cannot see (files opened by C code
            under paths built inside the function).
        compute_once: when several threads, processes or machines miss the same key
            together, one computes and the others wait for its entry, then hit;
            default ``defaults["checkpoint.compute_once"]`` (True). A waiter computes
            by itself after ``defaults["checkpoint.wait_timeout"]`` seconds, with a
            warning. Not applied to coroutine functions.
        version: a non-empty str that replaces the tracking of the function's code:
            entries are kept across any edit of it (or of what it reaches) until the
            string changes. Arguments still count.
        expires_after: an entry older than this (``"7d"``, ``"12h"``, seconds, or a
            ``timedelta``) is not served; the call re-runs and replaces it.
        valid: ``valid(entry) -> bool``, called with the entry's metadata (``key``,
            ``function``, ``created``, ``run_seconds``, ``size``, ``arguments``)
            before it is served; False re-runs the call and replaces the entry.
        mmap_mode: ``"r"`` (read-only) or ``"c"`` (copy-on-write): numpy arrays of a
            hit are memory-mapped from the entry's file instead of read into memory.
        compress: ``"zstd"`` or ``"lz4"`` (the extras ``checkpointing[zstd]``,
            ``checkpointing[lz4]``): results whose pickle is at least
            ``defaults["cache.compress_threshold"]`` (1 MB) are stored compressed.
        max_size: the most bytes the cache directory keeps (``"10GB"``); default
            ``defaults["cache.max_size"]`` (no limit). See docs/managing.md.

    Returns:
        The decorated function. It also has ``rerun(*args, **kwargs)``, which runs the
        body and overwrites the entry, ``key(*args, **kwargs)``, the key a call
        would use, and the controls of docs/managing.md: ``clear()``,
        ``delete(*args, **kwargs)``, ``cached(*args, **kwargs)``, ``entries()`` and
        ``accept()``.

    Raises:
        ConfigurationError: an option is invalid (at decoration time).
        TypeError: the decorated object is a generator function.
    """
    if isinstance(directory, (staticmethod, classmethod)) or (
        callable(directory) and not isinstance(directory, (str, os.PathLike))
    ):
        return checkpoint()(directory)
    if directory is not None:
        from ..config import validate_directory

        validate_directory(directory)
    if on_error is not None:
        validate_on_error(on_error)
    if cache_pickle_protocol is not None:
        from ..config import validate_pickle_protocol

        validate_pickle_protocol(cache_pickle_protocol)
    identifier = AutoFuncCallIdentifier(
        ignore=ignore, depends_on=depends_on, track_versions=track_versions, version=version
    )
    cache = _open_store(directory, cache_pickle_protocol)
    decorator = DecoratorCheckpoint(
        identifier,
        cache,
        on_error,
        track_files=track_files,
        allow_side_effects=allow_side_effects,
        inputs=inputs,
        compute_once=compute_once,
        expires_after=expires_after,
        valid=valid,
        mmap_mode=mmap_mode,
        compress=compress,
        max_size=max_size,
    )

    def decorate(func: F) -> F:
        # An unknown name in ignore= fails now, not at the first call (in prepare()).
        return decorator(func)

    return decorate
