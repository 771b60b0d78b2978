"""From one call of a function to the key of its cache entry.

This module owns the 1.0 extension API for identifying a call: the
:class:`FuncCallContext` handed to identifiers, the abstract
:class:`FuncCallIdentifierBase`, and :class:`AutoFuncCallIdentifier`, the default,
which folds together

* the static digest of the function's dependency graph (canonical code of the
  function and of everything it reaches; computed once per process by
  :mod:`checkpointing.depgraph`),
* the current values of the module globals and closure cells that graph reads, and
* the bound arguments, by position in the signature (so renaming a parameter keeps
  the key, and ``f(1, b=2)`` and ``f(1, 2)`` are one call).

Storage is left to :mod:`checkpointing.store`; the policy on errors to
:mod:`checkpointing.decorator`.

Why one module of about 670 lines: the identifier's four steps (prepare, key,
fingerprint, explain) share the binding of arguments and the plan of the function;
the by-name digests for explanations and ``version=`` are the parts that could leave.
"""

from __future__ import annotations

import _thread  # threading's locks, without threading (issue 12, target 5)
import os
import sys
import time
from abc import ABC, abstractmethod
from types import FrameType

from . import hashing
from .errors import CheckpointWarning, ConfigurationError, HashFailedError
from .report import warn
from .store import PickleFileCache
from .store.format import EncodedJSON, _compact_json, _json_str

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import (
        Any,
        Callable,
        Dict,
        Iterable,
        List,
        Mapping,
        Optional,
        Sequence,
        Tuple,
    )

__all__ = [
    "AutoFuncCallIdentifier",
    "ArgumentBinder",
    "FuncCallContext",
    "FuncCallIdentifierBase",
    "KEY_FORMAT",
    "qualified_name",
]

# Bump when the composition of keys changes, so old entries stop matching.
KEY_FORMAT = 1
# The interpreter's AST and bytecode semantics belong in the key (pytest's cache tag).
_RUNTIME_TAG = f"{sys.implementation.cache_tag}".encode()


def _keeps_analyses(cache: Any) -> bool:
    """Is ``cache`` a store that keeps analyses beside its entries (local or remote)?"""
    if isinstance(cache, PickleFileCache):
        return True
    remote = sys.modules.get("checkpointing.store.remote")  # loaded by any RemoteStore
    return remote is not None and isinstance(cache, remote.RemoteStore)


def qualified_name(func: Callable[..., Any]) -> str:
    """The one spelling of a definition's name used everywhere: ``pkg.mod:Class.method``
    (see :func:`checkpointing.analysis.resolve.qualname_of`)."""
    from .analysis.resolve import qualname_of

    return qualname_of(func)


class FuncCallContext:
    """Everything known about one call of a checkpointed function.

    Identifiers receive it and turn it into a key. Attributes are computed on first
    access, so an identifier pays only for what it reads.

    Args:
        func: the function called.
        args: the positional arguments of the call.
        kwargs: the keyword arguments of the call.
        def_frame: the frame that defined ``func`` (as in 1.0); its local variables
            are copied now and :meth:`get_nonlocal_variable` looks there first. The
            decorator passes none: the closure of ``func`` serves instead.
    """

    __slots__ = ("func", "args", "kwargs", "_arguments", "_locals")

    def __init__(
        self,
        func: Callable[..., Any],
        args: Tuple[Any, ...],
        kwargs: Mapping[str, Any],
        def_frame: Optional[FrameType] = None,
    ) -> None:
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self._arguments: Optional[Dict[str, Any]] = None
        self._locals: Optional[Dict[str, Any]] = (
            None if def_frame is None else dict(def_frame.f_locals)
        )

    def get_nonlocal_variable(self, varname: str) -> Any:
        """The value of ``varname`` as the function sees it from outside its body, or
        None if it has none (1.0's contract: None for "not found").

        Looked up in the locals of ``def_frame`` (if one was given), then in the
        function's closure (its current value), then in its module's globals.
        """
        if self._locals is not None and varname in self._locals:
            return self._locals[varname]
        if hasattr(self.func, "__wrapped__"):
            import inspect  # not at import (a few ms): only wrapped functions need it

            func = inspect.unwrap(self.func)
        else:
            func = self.func
        func = getattr(func, "__func__", func)  # a bound method: its function
        code = getattr(func, "__code__", None)
        closure = getattr(func, "__closure__", None)
        if code is not None and closure and varname in code.co_freevars:
            try:
                return closure[code.co_freevars.index(varname)].cell_contents
            except ValueError:  # the cell is empty: the name is not bound yet
                return None
        namespace = getattr(func, "__globals__", None)
        if namespace is not None and varname in namespace:
            return namespace[varname]
        return None

    @property
    def name(self) -> str:
        """The function's ``__name__``."""
        return self.func.__name__

    @property
    def qualified_name(self) -> str:
        """The function's ``__qualname__``, e.g. ``Model.fit``."""
        return self.func.__qualname__

    @property
    def module(self) -> str:
        """The module that defines the function, e.g. ``pkg.train`` or ``__main__``."""
        return self.func.__module__

    @property
    def full_name(self) -> str:
        """Module and qualified name joined by a dot, as in checkpointing 1.0."""
        return f"{self.module}.{self.qualified_name}"

    @property
    def arguments(self) -> Dict[str, Any]:
        """Parameter name -> value of this call, defaults applied."""
        if self._arguments is None:
            import inspect

            bound = inspect.signature(self.func).bind(*self.args, **self.kwargs)
            bound.apply_defaults()
            self._arguments = dict(bound.arguments)
        return self._arguments

    @property
    def code(self) -> str:
        """The source text of the function as it was loaded (not as it is on disk now)."""
        from .depgraph import source_of

        return source_of(self.func)


class FuncCallIdentifierBase(ABC):
    """Turns a :class:`FuncCallContext` into a cache key (the 1.0 extension point).

    Any change of the context that could change the function's return value must
    change the returned key.

    Implement ``identify`` (the 1.0 interface). The decorator calls only the methods
    below, whose defaults rest on it, so every identifier goes the same way:

    * ``prepare(func, cache)`` once, when ``func`` is decorated (default: nothing);
    * ``key(func, args, kwargs)`` at every call (default: ``identify`` of a
      :class:`FuncCallContext`; an identifier that can do without the context
      overrides it: a subclass that overrides ``identify`` alone keeps it the key);
    * ``fingerprint(func, args, kwargs)`` at a miss: what the key is made of, part by
      part, stored with the entry to explain a later miss (default: None, nothing).
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "identify" in cls.__dict__ and "key" not in cls.__dict__:
            # identify() defines the key of such a class, even below one whose key()
            # does not go through identify() (AutoFuncCallIdentifier's).
            cls.key = FuncCallIdentifierBase.key  # type: ignore[method-assign]

    def prepare(self, func: Callable[..., Any], cache: Any = None) -> None:
        """Set up for ``func``, just decorated to be cached in ``cache`` (a
        :class:`~checkpointing.store.CacheBase`), so that its first call does less."""
        return None

    def key(
        self, func: Callable[..., Any], args: Tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> Any:
        """The key of ``func(*args, **kwargs)``: by default ``identify`` of its context."""
        return self.identify(FuncCallContext(func, args, kwargs))

    def fingerprint(
        self, func: Callable[..., Any], args: Tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> Optional[Dict[str, Any]]:
        """What the key of this call is made of, part by part (JSON-able), or None."""
        return None

    @abstractmethod
    def identify(self, context: FuncCallContext) -> Any:
        """Return the key of this call (1.0's ``ContextId``).

        Any value the cache accepts, as in 1.0: the default :class:`PickleFileCache`
        needs a non-empty str (it names files after it); :class:`InMemoryLRUCache` and
        caches of your own may take any hashable value, a tuple for instance.
        """


class ArgumentBinder:
    """Binds call arguments to parameter positions, fast in the common cases.

    Returns the values in signature order, without names: a parameter renamed keeps
    the key. ``*args`` become one tuple, ``**kwargs`` one dict (in the order given:
    a function may iterate it). Ignored parameters are left out.
    """

    __slots__ = ("_signature", "_names", "_simple", "_defaults_tail", "_keep", "_nparams", "exact")

    def __init__(self, func: Callable[..., Any], ignore: Iterable[str] = ()) -> None:
        import inspect  # at decoration, not at import

        self._signature = inspect.signature(func)
        params = list(self._signature.parameters.values())
        self._names = tuple(p.name for p in params)
        ignore = tuple(ignore)
        unknown = [name for name in ignore if name not in self._names]
        if unknown:
            msg = (
                f"ignore={list(ignore)!r} names {unknown!r}, which "
                f"{'is not a parameter' if len(unknown) == 1 else 'are not parameters'} of "
                f"{qualified_name(func)}{self._signature}; list parameter names only"
            )
            raise ConfigurationError(msg)
        self._keep = (
            None
            if not ignore
            else tuple(i for i, name in enumerate(self._names) if name not in ignore)
        )
        self._nparams = len(params)
        self._simple = all(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
        tail = []
        for p in reversed(params):
            if p.default is p.empty:
                break
            tail.append(p.default)
        self._defaults_tail = tuple(reversed(tail)) if self._simple else ()
        # A call with this many positional arguments and no keywords binds to ``args``
        # itself (-1: none does); the key's fast path.
        self.exact = self._nparams if self._simple and self._keep is None else -1

    def bind(self, args: Tuple[Any, ...], kwargs: Mapping[str, Any]) -> Tuple[Any, ...]:
        """Values of all parameters in signature order (defaults applied)."""
        if self._simple and not kwargs:
            missing = self._nparams - len(args)
            if missing == 0:
                values = args
            elif 0 < missing <= len(self._defaults_tail):
                values = args + self._defaults_tail[len(self._defaults_tail) - missing :]
            else:
                values = self._slow(args, kwargs)
        else:
            values = self._slow(args, kwargs)
        if self._keep is not None:
            values = tuple(values[i] for i in self._keep)
        return values

    def _slow(self, args: Tuple[Any, ...], kwargs: Mapping[str, Any]) -> Tuple[Any, ...]:
        bound = self._signature.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = bound.arguments
        return tuple(arguments[name] for name in self._names)

    @property
    def names(self) -> Tuple[str, ...]:
        """Names of the parameters whose values :meth:`bind` returns."""
        if self._keep is None:
            return self._names
        return tuple(self._names[i] for i in self._keep)


class AutoFuncCallIdentifier(FuncCallIdentifierBase):
    """The default identifier: code of everything reached, values read, arguments.

    Args:
        ignore: parameter names whose values are left out of the key (e.g. a
            ``verbose`` flag or a logger).
        depends_on: extra objects folded into every key of the function, for what
            the analyzer cannot see (a file read through a computed name, a module
            reached by ``importlib``...). Functions and classes here are followed
            like any reached definition; other values are hashed at each call.
        version: a str that replaces the tracking of the function's code (and of
            what it reaches): its entries are kept across any edit until the string
            changes. The arguments are still part of the key.
        algorithm: accepted for compatibility with checkpointing 1.0 and ignored
            (keys always use xxh3-128).
        pickle_protocol: likewise accepted and ignored.
    """

    def __init__(
        self,
        algorithm: Optional[str] = None,
        pickle_protocol: Optional[int] = None,
        *,
        ignore: Sequence[str] = (),
        depends_on: Sequence[Any] = (),
        track_versions: Optional[bool] = None,
        version: Optional[str] = None,
    ) -> None:
        if algorithm is not None or pickle_protocol is not None:
            warn(
                "AutoFuncCallIdentifier(algorithm=..., pickle_protocol=...) have no "
                "effect since checkpointing 2.0: keys use xxh3-128",
                DeprecationWarning,
            )
        if isinstance(ignore, str):
            ignore = [ignore]
        if not isinstance(depends_on, (list, tuple)):
            raise ConfigurationError(
                f"depends_on={depends_on!r} is not a list; pass a list of objects, "
                f"e.g. depends_on=[helper, CONFIG]"
            )
        if version is not None and (not isinstance(version, str) or not version):
            raise ConfigurationError(
                f"version={version!r} is not accepted; give a non-empty str, e.g. "
                f"version='2', and change it when the function's results change"
            )
        self.ignore = tuple(ignore)
        self.depends_on = tuple(depends_on)
        # Set: the function's code is not tracked; this string stands for it.
        self.version: Optional[str] = version
        if track_versions is None:
            from .config import defaults

            track_versions = defaults["analysis.track_versions"]
        self.track_versions = bool(track_versions)
        # Where analyses are kept between processes (set by the decorator to
        # ``<cache directory>/analysis``); None keeps them in memory only.
        self.analysis_directory: Optional[str] = None
        self._binders: Dict[Any, ArgumentBinder] = {}
        # func -> (static digest of its plan, the digest its keys use): they differ
        # after ``accept`` marked the current code as equivalent to an earlier one.
        self._accepted: Dict[Any, Tuple[bytes, bytes]] = {}
        self._aliases = False  # may an acceptance apply? (see prepare and accept)
        # func -> (static digest, values digest, a hasher fed the key's fixed part with
        # them, the memo of keys by plain arguments): the key of a call copies the hasher
        # while both digests are the very objects it was made with (bytes: same object,
        # same content).
        self._prefixes: Dict[Any, Tuple[bytes, bytes, hashing.Hasher, Dict[Any, str]]] = {}
        # func -> what its fingerprints share while its plan and values stay the same.
        self._fixed: Dict[Any, _FixedParts] = {}
        # The key plans (keyplan.current): imported here, when an identifier is made
        # (at decoration), not at ``import checkpointing``. Never the analyzer.
        from .keyplan import current, walk_scope

        self._current = current
        self._walk_scope = walk_scope

    def __getstate__(self) -> Dict[str, Any]:
        """The identifier without its memo of fingerprint parts, which holds key plans
        (they travel apart, see ``DecoratorCheckpoint.__getstate__``): cloudpickle and
        dill copy a ``__main__`` function's wrapper, and this with it, into workers."""
        state = dict(self.__dict__)
        state["_fixed"] = {}
        return state

    def binder_for(self, func: Callable[..., Any]) -> ArgumentBinder:
        """The memoised :class:`ArgumentBinder` of ``func``."""
        binder = self._binders.get(func)
        if binder is None:
            binder = self._binders[func] = ArgumentBinder(func, self.ignore)
            if self.depends_on:
                from .keyplan import acknowledge_blind_spots

                acknowledge_blind_spots(func)
        return binder

    def prepare(self, func: Callable[..., Any], cache: Any = None) -> None:
        """Set up for ``func`` when it is decorated, so its first call does less: bind
        its signature. With the default store, keep the analyses beside its entries
        (``<directory>/analysis``) unless ``analysis_directory`` was set."""
        if self.analysis_directory is None and _keeps_analyses(cache):
            self.analysis_directory = os.path.join(cache.directory, "analysis")
        if not self._aliases and self.analysis_directory is not None:
            # One stat at decoration: without acceptances, a key skips their lookup.
            self._aliases = os.path.isdir(os.path.join(self.analysis_directory, "accepted"))
        self.binder_for(func)

    def fingerprint(
        self, func: Callable[..., Any], args: Tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> Dict[str, Any]:
        """What the key of this call is made of, part by part: the digest of each
        reached definition, global and argument. Stored with each entry, so that a
        later miss can say which part changed."""
        binder = self.binder_for(func)
        values = binder.bind(args, kwargs)
        if self.version is not None:
            return {
                "version": self.version,
                "arguments": _fingerprint_arguments(binder, values),
            }
        plan, values_digest = self._current(func, self.analysis_directory)
        fixed = self._fixed_parts(func, plan, values_digest)
        plain = all(type(value) in _PLAIN for value in values)
        if plain:  # no class inside: no walk, and no code apart from the values
            arguments = _fingerprint_arguments(binder, values)
        else:
            with self._walk_scope(plan.vouched):  # one walk for all the arguments (see key)
                arguments = _fingerprint_arguments(binder, values)
        out: Dict[str, Any] = {
            "nodes": fixed.nodes,
            "globals": fixed.globals,
            "arguments": arguments,
            "static": fixed.static,
        }
        arguments_json = _arguments_json(arguments)
        text = fixed.head + arguments_json + fixed.middle
        # The code of the arguments' classes is in the key through the argument digests;
        # kept apart too, so that a miss names the method that changed.
        if plain:
            out["argument_values"] = arguments
            out["argument_code"] = {}
            text += arguments_json + ',"argument_code":{}'
        else:
            _register_by_name()
            with _classes_by_name():
                out["argument_values"] = argument_values = _fingerprint_arguments(binder, values)
            out["argument_code"] = code = argument_code(values)
            text += _arguments_json(argument_values) + ',"argument_code":' + _compact_json(code)
        if fixed.versions is not None:
            out["versions"] = fixed.versions
            text += fixed.versions_json
        return EncodedJSON(out, text + "}")

    def _fixed_parts(self, func: Callable[..., Any], plan: Any, values_digest: Any) -> _FixedParts:
        """The parts of the fingerprints of ``func`` that change with its code or the
        values of its globals, not with its arguments: digested and encoded once per
        plan and values digest (the very objects, as the key's prefix), not per miss."""
        static = self.effective_digest(func, plan.static_digest)
        fixed = self._fixed.get(func)
        if (
            fixed is None
            or fixed.plan is not plan
            or fixed.values_digest is not values_digest
            or fixed.static_digest is not static
            or (fixed.versions is not None) != self.track_versions  # a public attribute
            or values_digest is None
        ):
            versions = plan.versions() if self.track_versions else None
            fixed = self._fixed[func] = _FixedParts(plan, values_digest, static, versions)
        return fixed

    def identify(self, context: FuncCallContext) -> str:
        """Key of the call described by ``context`` (32 hex characters)."""
        # Not self.key: that of a subclass overriding identify() alone calls identify().
        return AutoFuncCallIdentifier.key(self, context.func, context.args, context.kwargs)

    def key(
        self, func: Callable[..., Any], args: Tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> str:
        """Key of ``func(*args, **kwargs)`` without building a context (the hot path).

        A warm hit spent half its time here, so its common case is written out: the
        memoised plan checked in place (what :func:`keyplan.current` does first), the
        key of ints and short strs seen before taken from a memo, and other ints and
        strs encoded in one call (:meth:`hashing.Hasher.hexdigest_plain`)."""
        binder = self._binders.get(func)
        if binder is not None and not kwargs and len(args) == binder.exact:
            values = args  # what bind() returns then, without the call
        else:
            if binder is None:
                binder = self.binder_for(func)
            values = binder.bind(args, kwargs)
        if self.version is not None:
            return self._versioned_key(func, values)
        plan = _plan_of(func)
        values_digest = plan.values_digest() if plan is not None else None
        if values_digest is None:  # no plan yet, or a stale one: make it
            plan, values_digest = self._current(func, self.analysis_directory)
        static = plan.static_digest
        if self._aliases:
            accepted = self._accepted.get(func)
            if accepted is None or accepted[0] is not static:
                self.effective_digest(func, static)
                accepted = self._accepted[func]
            static = accepted[1]
        prefix = self._prefixes.get(func)
        if prefix is None or prefix[0] is not static or prefix[1] is not values_digest:
            hasher = hashing.Hasher()
            hasher.feed_bytes(_RUNTIME_TAG)
            hasher.feed(KEY_FORMAT)
            hasher.feed_bytes(static)
            hasher.feed_bytes(values_digest)
            prefix = self._prefixes[func] = (static, values_digest, hasher, {})
        hasher = prefix[2]
        memo = None
        if self.track_versions or self.depends_on:
            hasher = hasher.copy()
            if self.track_versions:
                hasher.feed(sorted(plan.versions().items()))
            for extra in self.depends_on:
                hasher.feed(extra)
        elif len(values) <= _MEMO_ARGUMENTS:
            # The key of the same ints and short strs again, from a memo that lives as
            # long as this prefix (these plan and values digests): a dict lookup instead
            # of encoding and hashing (most of a key). Exact types only: no
            # __hash__ or __eq__ of the caller's runs, and 1, True and 1.0 stay apart.
            for value in values:
                t = type(value)
                if t is not int and (t is not str or len(value) > _MEMO_STR):
                    break
            else:
                memo = prefix[3]
                if _dispatch_of(tuple) is _TUPLE_ENCODER:  # (no digester of yours for tuples)
                    digest = memo.get(values)
                    if digest is not None:
                        return digest
        digest = hasher.hexdigest_plain(values)
        if digest is not None:
            if memo is not None:
                if len(memo) >= _MEMO_KEYS:
                    memo.clear()
                memo[values] = digest
            return digest
        try:
            for value in values:
                if type(value) not in _PLAIN:
                    # One walk for all the arguments (a list of a thousand instances of
                    # a project class digests the class once), trusting the witnesses
                    # that the values check above has just checked.
                    with self._walk_scope(plan.vouched):
                        return hasher.hexdigest_with(values)
            return hasher.hexdigest_with(values)
        except HashFailedError as exc:
            raise _name_argument(exc, func, self.binder_for(func), values) from None

    def _versioned_key(self, func: Callable[..., Any], values: Tuple[Any, ...]) -> str:
        """The key under ``version=``: the function's name and version, no code."""
        hasher = hashing.Hasher()
        hasher.feed_bytes(_RUNTIME_TAG)
        hasher.feed(KEY_FORMAT)
        hasher.feed("version")
        hasher.feed(_versioned_name(func))
        hasher.feed(self.version)
        for extra in self.depends_on:
            hasher.feed(extra)
        try:
            hasher.feed(values)
        except HashFailedError as exc:
            raise _name_argument(exc, func, self.binder_for(func), values) from None
        return hasher.hexdigest()

    # -- accept: the current code stands for an earlier one ------------------------
    # An acceptance is a file named after the static digest of the accepted code,
    # ``<cache>/analysis/accepted/<digest>.json``, holding the digest it stands for:
    # independent of the name the function is known by (``__main__:f`` when run as a
    # script, ``main:f`` when ``checkpointing accept main:f`` imports it).
    def effective_digest(self, func: Callable[..., Any], static: bytes) -> bytes:
        """The static digest the keys of ``func`` use for a plan whose own is
        ``static``: the earlier one it was accepted as equivalent to, if any (read
        once per process and plan)."""
        memo = self._accepted.get(func)
        if memo is not None and memo[0] is static:
            return memo[1]
        if not self._aliases:
            return static
        record = self.acceptance(static.hex())
        effective = static
        if record is not None:
            try:
                effective = bytes.fromhex(record["to"])
            except ValueError:
                pass
        self._accepted[func] = (static, effective)
        return effective

    def acceptance(self, static: str) -> Optional[Dict[str, Any]]:
        """``{"to": digest, "at": time, "function": name}`` if the code with static
        digest ``static`` (hex) was accepted as equivalent to another, else None."""
        path = self._acceptance_path(static)
        if path is None:
            return None
        import json  # here, not at import (see tests/test_light_import.py)

        from .store import read_trusted_file

        try:
            data = json.loads(read_trusted_file(path))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            warn(
                f"ignoring {path}: {exc}; remove it and run checkpointing accept again",
                CheckpointWarning,
                once=("acceptance", path),
            )
            return None
        if not isinstance(data, dict) or not isinstance(data.get("to"), str):
            return None
        return data

    def accept(self, func: Callable[..., Any], to_static: str) -> Optional[str]:
        """Mark the current code of ``func`` as equivalent to the code whose static
        digest (hex) is ``to_static``; the current digest (hex), or None if it is
        that one already."""
        plan, _ = self._current(func, self.analysis_directory)
        now = plan.static_digest.hex()
        path = self._acceptance_path(now)
        if path is None:
            raise ConfigurationError(
                f"cannot accept {qualified_name(func)}: its cache keeps no analyses "
                f"(use the default PickleFileCache)"
            )
        self._accepted.pop(func, None)
        if now == to_static:
            return None
        import json

        from .store import write_private_file

        data = {"function": qualified_name(func), "to": to_static, "at": time.time()}
        write_private_file(path, [json.dumps(data, sort_keys=True).encode()])
        self._aliases = True
        return now

    def _acceptance_path(self, static: str) -> Optional[str]:
        if self.analysis_directory is None or not static.isalnum():
            return None
        return os.path.join(self.analysis_directory, "accepted", static + ".json")


def _versioned_name(func: Callable[..., Any]) -> str:
    """The name a ``version=`` key is made of: the qualified name, with a script's
    ``__main__`` spelled as its file's module name, so that ``python main.py`` and
    ``import main`` (``checkpointing why main:f``) find the same entries."""
    name = qualified_name(func)
    if name.startswith("__main__:"):
        import inspect

        filename = getattr(getattr(inspect.unwrap(func), "__code__", None), "co_filename", "")
        stem = os.path.splitext(os.path.basename(filename))[0]
        if stem.isidentifier():
            name = f"{stem}:{name.partition(':')[2]}"
    return name


# The memo of keys by arguments (see key): calls of at most this many arguments, each an
# int or a str of at most this many characters, and this many keys per function.
_MEMO_ARGUMENTS = 16
_MEMO_STR = 256
_MEMO_KEYS = 256
_dispatch_of = hashing.core._DISPATCH.get
_TUPLE_ENCODER = hashing.core._BUILTINS[tuple]


def _plan_of(func: Any) -> Any:
    """The memoised plan of ``func`` or None (:func:`keyplan.cached` without its
    frame): replaces itself by the dict's ``get`` at the first key, when keyplan is
    loaded anyway (not at ``import checkpointing``)."""
    global _plan_of
    from .keyplan import _PLANS

    _plan_of = _PLANS.get
    return _PLANS.get(func)


# Values that hold no class and no other value: digested the same by code or by name.
_PLAIN = frozenset([int, float, complex, str, bytes, bool, type(None)])


def argument_classes(values: Iterable[Any]) -> List[type]:
    """The classes of the user's project among ``values`` and the items of the lists,
    tuples, sets and dict values among them, in order of appearance."""
    from .analysis.resolve import is_project_object

    seen: Dict[type, None] = {}

    def visit(value: Any, depth: int) -> None:
        cls = type(value)
        if cls in (list, tuple, set, frozenset) and depth < 2:
            for item in list(value)[:100]:
                visit(item, depth + 1)
        elif cls is dict and depth < 2:
            for item in list(value.values())[:100]:
                visit(item, depth + 1)
        for klass in cls.__mro__:
            if klass not in seen and klass is not object and is_project_object(klass):
                seen[klass] = None

    for value in values:
        visit(value, 0)
    return list(seen)


def argument_code(values: Iterable[Any]) -> Dict[str, List[Any]]:
    """Digest, file and line of the code the arguments' classes bring into the key:
    each project class (by its key plan: the class and what it reaches) and each
    method defined in its body, by qualified name."""
    from .depgraph import member_digests
    from .keyplan import plan_for

    out: Dict[str, List[Any]] = {}
    for cls in argument_classes(values):
        out.update(plan_for(cls).node_digests())
        out.update(member_digests(cls))
    return out


_BY_NAME = _thread._local()


class _classes_by_name:  # named as the function it was: with _classes_by_name()
    """Within the block, in this thread, classes are digested by name, not code (in a
    walk of their own: such digests are never reused for keys). A class rather than a
    contextlib generator: contextlib is not imported at import (issue 12, target 5)."""

    def __enter__(self) -> None:
        from .keyplan import isolated_walk

        _BY_NAME.on = True
        try:
            self._walk = isolated_walk()
            self._walk.__enter__()
        except BaseException:
            _BY_NAME.on = False
            raise

    def __exit__(self, *exc_info: Any) -> Optional[bool]:
        try:
            return self._walk.__exit__(*exc_info)
        finally:
            _BY_NAME.on = False


def _class_by_name(cls: type) -> Optional[bytes]:
    if getattr(_BY_NAME, "on", False):
        return f"{cls.__module__}:{cls.__qualname__}".encode()
    return None


_registered = False


class _FixedParts:
    """What the fingerprints of a function share while its plan, the values of its
    globals and its effective static digest stay the same objects: the digests of its
    reached definitions and globals, and their JSON around the arguments' (``head``
    before them, ``middle`` after them up to ``"argument_values":``)."""

    __slots__ = (
        "plan",
        "values_digest",
        "static_digest",
        "nodes",
        "globals",
        "static",
        "versions",
        "versions_json",
        "head",
        "middle",
    )

    def __init__(
        self,
        plan: Any,
        values_digest: Optional[bytes],
        static_digest: bytes,
        versions: Optional[Dict[str, str]],
    ) -> None:
        # Held, not only compared: an object kept alive cannot pass its id to another.
        self.plan = plan
        self.values_digest = values_digest
        self.static_digest = static_digest
        self.nodes = plan.node_digests()
        self.globals = plan.slot_digests()
        self.static = static_digest.hex()
        self.versions = versions
        self.versions_json = "" if versions is None else ',"versions":' + _compact_json(versions)
        self.head = (
            '{"nodes":'
            + _compact_json(self.nodes)
            + ',"globals":'
            + _compact_json(self.globals)
            + ',"arguments":'
        )
        self.middle = ',"static":"' + self.static + '","argument_values":'


def _register_by_name() -> None:
    """Put :func:`_class_by_name` before the code digester of :mod:`keyplan` (the
    digester registered last is asked first), once keyplan is loaded."""
    global _registered
    if not _registered:
        _registered = True
        from .keyplan import register_own_class_digester

        register_own_class_digester(_class_by_name)


def _fingerprint_arguments(binder: ArgumentBinder, values: Tuple[Any, ...]) -> Dict[str, str]:
    out = {}
    for name, value in zip(binder.names, values):
        try:
            out[name] = hashing.hexdigest_value(value)
        except HashFailedError:
            out[name] = "unhashable:" + type(value).__qualname__
    return out


def _arguments_json(digests: Dict[str, str]) -> str:
    """``_compact_json(digests)`` for a dict of str by str (parameter names, hex digests),
    without the encoder in the common case: nothing in them needs escaping."""
    parts = []
    for name, digest in digests.items():
        parts.append(f"{_json_str(name)}:{_json_str(digest)}")
    return "{" + ",".join(parts) + "}"


def _name_argument(
    exc: HashFailedError, func: Callable[..., Any], binder: ArgumentBinder, values: Tuple[Any, ...]
) -> HashFailedError:
    """Rephrase a hashing failure so that it names the argument at fault."""
    culprit = None
    for name, value in zip(binder.names, values):
        try:
            hashing.digest_value(value)
        except HashFailedError as own:
            culprit = (name, type(value), own)
            break
    if culprit is None:
        return exc
    name, typ, own = culprit
    if isinstance(own, hashing.UnhashableValue):
        # Its own message ends with generic advice; the specific one is said once, here.
        where = f" at {name}{own.path}" if own.path else ""
        inner = f"a {own.type_name}{where}" + (f": {own.reason}" if own.reason else "")
        register = (
            f", or register a digester with checkpointing.hashing.register_digester("
            f"{own.type_name}, fn)"
        )
    else:
        inner, register = str(own), ""
    msg = (
        f"cannot hash argument {name!r} of {qualified_name(func)} "
        f"({typ.__module__}.{typ.__qualname__}): {inner}; pass "
        f"checkpoint(ignore=[{name!r}]) to leave it out of the key{register}"
    )
    return HashFailedError(msg)
