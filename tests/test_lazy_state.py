"""State a library fills on first use must not change keys: found on networkx by the
real-world suite (benchmarks/realworld/), where a second call of the same function in
the same process re-ran.

- a hand-written cached property (``if self._sig is None: self._sig = ...``) and a
  private counter (``cls.__count += 1``) are derived, not state
  (:mod:`checkpointing.hashing.derived`), with rules that never take real state for them;
- a self-compiling wrapper (networkx's ``argmap``) keeps the text it compiled; that text
  is not keyed;
- an external name reached through a module is one name whether or not the library has
  loaded the submodule yet;
- a walk that takes a member of a cycle from an earlier walk takes its whole component.
"""

from __future__ import annotations

import inspect

import pytest

from checkpointing.hashing import digest_value
from checkpointing.hashing.derived import counter_attributes, memo_attributes

# -- Which attributes are derived (unit) -------------------------------------------------


class Dispatcher:
    """networkx's ``_dispatchable``, reduced to its caches."""

    def __init__(self, func):
        self.orig_func = func
        self._sig = None
        self._cached_doc = None

    @property
    def __signature__(self):
        if self._sig is None:
            self._sig = inspect.signature(self.orig_func)
        return self._sig

    @property
    def __doc__(self):
        if (rv := self._cached_doc) is not None:
            return rv
        rv = self._cached_doc = f"{self.orig_func.__name__}: dispatched"
        return rv

    @__doc__.setter
    def __doc__(self, value):
        self._cached_doc = None


class LazyModel:
    """Weights start as None and are filled on first use, then read by ``predict``:
    real state, though the first assignment looks like a cache's."""

    def __init__(self):
        self._weights = None

    def _ensure(self):
        if self._weights is None:
            self._weights = [1.0, 2.0]

    def predict(self, x):
        self._ensure()
        return sum(w * x for w in self._weights)


class FilledThenUpdated:
    def __init__(self):
        self._cache = None

    def get(self):
        if self._cache is None:
            self._cache = {}
        return self._cache

    def reset(self, value):
        self._cache = value  # set to real data by another method


class PublicLazy:
    def __init__(self):
        self.sig = None

    def signature(self):
        if self.sig is None:
            self.sig = "computed"
        return self.sig


class OrTernary:
    def __init__(self, a):
        self._x = a or None  # the store is reached from two places: a value, not None

    def get(self):
        if self._x is None:
            self._x = 0
        return self._x


class Counted:
    __count = 0
    _total = 0
    _rate = 1

    @classmethod
    def _next(cls):
        cls.__count += 1
        return cls.__count

    def add(self, x):
        type(self)._total += x

    def total(self):
        return type(self)._total  # read elsewhere: configuration, not a counter

    @classmethod
    def set_rate(cls, rate):
        cls._rate = rate


def test_hand_written_cached_properties_are_derived() -> None:
    assert memo_attributes(Dispatcher) == {"_sig", "_cached_doc"}


def test_real_state_is_never_taken_for_a_cache() -> None:
    assert memo_attributes(LazyModel) == frozenset()  # read by predict (through _ensure)
    assert memo_attributes(FilledThenUpdated) == frozenset()
    assert memo_attributes(PublicLazy) == frozenset()  # public: others may read it
    assert memo_attributes(OrTernary) == frozenset()


def test_private_counters_are_derived_and_configuration_is_not() -> None:
    assert counter_attributes(Counted) == {"_Counted__count"}


def test_a_filled_cache_leaves_the_digest_unchanged_and_state_still_counts() -> None:
    def helper(x, y=2):
        return x + y

    obj = Dispatcher(helper)
    before = digest_value(obj)
    assert str(obj.__signature__) == "(x, y=2)" and obj._sig is not None
    assert obj.__doc__ == "helper: dispatched" and obj._cached_doc is not None
    assert digest_value(obj) == before

    model = LazyModel()
    before = digest_value(model)
    model.predict(1.0)
    assert digest_value(model) != before


# -- networkx's pattern, as a program run twice --------------------------------------------

# ``argmap`` and ``Dispatch`` keep networkx's mechanics: the wrapper compiles its real
# code from a string at its first call, swaps its ``__code__`` for it, keeps the text in
# ``_code`` and counts compilations in a private class counter; the dispatcher fills
# ``_sig`` on its first call.
LIB = """
import inspect


class argmap:
    __count = 0

    def __init__(self, mapper):
        self._mapper = mapper

    @classmethod
    def _count(cls):
        cls.__count += 1
        return cls.__count

    def __call__(self, f):
        def func(*args, __wrapper=None, **kwargs):
            return argmap._lazy_compile(__wrapper)(*args, **kwargs)

        func.__wrapped__ = f
        func.__kwdefaults__["_argmap__wrapper"] = func
        func.__argmap__ = self
        return func

    @staticmethod
    def _lazy_compile(func):
        real = func.__argmap__.compile(func.__wrapped__)
        func.__code__ = real.__code__
        func.__globals__.update(real.__globals__)
        func.__dict__.update(real.__dict__)
        return func

    def compile(self, f):
        name = f"argmap_{f.__name__}_{self._count()}"
        inner = f"{f.__name__}_{self._count()}"
        code = (
            f"def {name}(x, *args, **kwargs):\\n"
            f"    return {inner}(mapper(x), *args, **kwargs)\\n"
        )
        scope = {inner: f, "mapper": self._mapper}
        found = {}
        exec(compile(code, f"{self.__class__} compilation {self._count()}", "exec"), scope, found)
        real = found[name]
        real._code = code
        return real


class Dispatch:
    def __init__(self, func):
        self.orig_func = func
        self.__wrapped__ = func
        self.__name__ = self.name = func.__name__
        self._sig = None
        REGISTRY[self.name] = self

    @property
    def __signature__(self):
        if self._sig is None:
            self._sig = inspect.signature(self.orig_func)
        return self._sig

    def __call__(self, *args, **kwargs):
        self.__signature__.bind(*args, **kwargs)
        return self.orig_func(*args, **kwargs)


REGISTRY = {}


def double(x):
    return 2 * x


@argmap(double)
@Dispatch
def scale(x, y=1):
    return x + y
"""

MAIN = """
from checkpointing import checkpoint
import lib

@checkpoint
def f(x):
    print("RAN f")
    return lib.scale(x)

@checkpoint
def g(x):
    print("RAN g")
    return lib.scale(x) + 100

print("RESULT", f(1))
print("RESULT", f(1))  # the wrapper compiled itself and the dispatcher filled _sig
print("RESULT", g(1))
print("RESULT", g(1))
"""


def test_state_filled_on_first_use_does_not_rerun(project) -> None:
    project.write("lib.py", LIB)
    project.write("main.py", MAIN)
    first = project.run()
    assert first.ran == ["f", "g"], first
    assert first.results == ["3", "3", "103", "103"]
    second = project.run()
    assert second.ran == [] and second.results == first.results, second
    # What generated the code and what it wraps are still in the key.
    project.write("lib.py", LIB.replace("return 2 * x", "return 3 * x"))
    third = project.run()
    assert third.ran == ["f", "g"] and third.results == ["4", "4", "104", "104"], third
    project.write("lib.py", LIB.replace("return 2 * x", "return 3 * x").replace("x + y", "x - y"))
    fourth = project.run()
    assert fourth.ran == ["f", "g"] and fourth.results == ["2", "2", "102", "102"], fourth


# -- An external name is one name, loaded or not -----------------------------------------

# ``concurrent.futures`` loads ``ThreadPoolExecutor`` from its submodule on first access
# (a module ``__getattr__``, as numpy does for ``numpy.random``).
LAZY_SUBMODULE = """
import sys
import concurrent.futures as cf
from checkpointing import checkpoint

print("LOADED", "concurrent.futures.thread" in sys.modules)
if "touch" in sys.argv:
    cf.ThreadPoolExecutor

@checkpoint
def f(x):
    print("RAN f")
    return cf.ThreadPoolExecutor.__name__ + str(x)

print("RESULT", f(1))
"""


def test_a_library_submodule_loaded_later_does_not_change_the_key(project) -> None:
    project.write("main.py", LAZY_SUBMODULE)
    first = project.run()
    assert "LOADED False" in first.stdout, "the submodule must not be loaded yet"
    assert first.ran == ["f"] and first.results == ["ThreadPoolExecutor1"]
    # A comment makes the program be analysed again, now with the submodule loaded.
    project.write("main.py", LAZY_SUBMODULE.replace("@checkpoint", "# cosmetic\n@checkpoint"))
    second = project.run("main.py", "touch")
    assert second.ran == [] and second.results == first.results, second


# -- Digests of a cycle taken from an earlier walk ---------------------------------------

# ``a`` and ``b`` reach each other (``b`` through the registry); ``c`` calls ``a``.
CYCLE_LIB = """
def a(x):
    return b(x - 1) if x > 0 else 0

def b(x):
    return REG["a"](x) + 1

def c(x):
    return a(x) * 2

REG = {"a": a}
HANDLERS = [b]
OTHER = [c]
"""

CYCLE_MAIN = """
import sys
from checkpointing import checkpoint
import lib

@checkpoint
def first(x):
    print("RAN first")
    return len(lib.HANDLERS) + x

@checkpoint
def second(x):
    print("RAN second")
    return len(lib.HANDLERS) + len(lib.OTHER) + x

if "both" in sys.argv:
    print("RESULT", first(1))
print("RESULT", second(1))
"""


@pytest.mark.parametrize("reads", ["both", "successor"])
def test_a_component_is_taken_whole_from_an_earlier_walk(project, reads: str) -> None:
    """``second`` digests ``b`` (taken from ``first``'s walk) and then ``c``, which
    reaches ``a``, a member of ``b``'s cycle: ``a`` must get the digest it has with its
    whole component, as in a process where ``first`` never ran. ``successor``: ``second``
    reads only ``c``, and meets the cycle as what ``c`` calls."""
    main = CYCLE_MAIN
    if reads == "successor":
        main = main.replace("len(lib.HANDLERS) + len(lib.OTHER) + x", "1 + len(lib.OTHER) + x")
    project.write("lib.py", CYCLE_LIB)
    project.write("main.py", main)
    both = project.run("main.py", "both")
    assert both.ran == ["first", "second"] and both.results == ["2", "3"], both
    alone = project.run()
    assert alone.ran == [] and alone.results == ["3"], alone
    project.write("lib.py", CYCLE_LIB.replace("return a(x) * 2", "return a(x) * 3"))
    edited = project.run("main.py", "both")
    assert edited.ran == ["second"], edited


# A module of the project that imports a library under an alias: the name reached
# through it is the library's, so pointing the alias at another library re-runs.
ALIAS_HELPERS = """
import json as backend
"""

ALIAS_MAIN = """
from checkpointing import checkpoint
import helpers

@checkpoint
def f(x):
    print("RAN f")
    return helpers.backend.dumps(x)[:1]

print("RESULT", f([1]))
"""


def test_a_library_reached_through_a_project_module_is_named_by_the_library(project) -> None:
    project.write("helpers.py", ALIAS_HELPERS)
    project.write("main.py", ALIAS_MAIN)
    first = project.run()
    assert first.ran == ["f"] and first.results == ["["]
    assert project.run().ran == []
    project.write("helpers.py", "import pickle as backend\n")
    second = project.run()
    assert second.ran == ["f"] and second.results == ["b'\\x80'"], second
