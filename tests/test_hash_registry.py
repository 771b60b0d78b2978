"""The registration mechanism of value digests (checkpointing.hashing.core): one
``register_digester`` for users and the package's own adapters, lazy per-library
registration, framing of registered digests, and the digest of functions and modules
not changing once keyplan is loaded."""

from __future__ import annotations

import decimal
import os
import re
import subprocess
import sys
import textwrap
from typing import Any, Iterator, List

import pytest

import checkpointing
from checkpointing import hashing
from checkpointing.hashing import (
    TAGS,
    Hasher,
    UnhashableValue,
    digest_value,
    register_digester,
    register_lazy,
)


@pytest.fixture
def clean_registry() -> Iterator[None]:
    saved = hashing.core._registry_state()
    yield
    hashing.core._restore_registry(saved)


def resolve_a_type() -> None:
    """Digest a value whose type is resolved afresh (the dispatch cache emptied)."""
    hashing._reset_dispatch()
    digest_value(decimal.Decimal("1.5"))


def run_python(code: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "5"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


class Celsius:
    def __init__(self, degrees: float) -> None:
        self.degrees = degrees
        self.cache: Any = object()  # not content: a fresh object in every instance


class Kelvin(Celsius):
    pass


def test_the_public_names() -> None:
    for name in ("register_digester", "register_class_digester", "register_lazy"):
        assert name in checkpointing.__all__
        assert getattr(checkpointing, name) is getattr(hashing, name)


def test_the_names_of_the_former_module_are_still_there() -> None:
    """``checkpointing.hashing`` was one module: code (keyplan, depgraph, tests, users)
    imports its names, public and private, from it."""
    names = """DIGEST_SIZE FORMAT_VERSION Digester ClassDigester Encoder UnhashableValue
    _type_name _unhashable _TL _TQ _TD _TDD _q _NAN _FLUSH_AT _BIG _xxh3_128_digest _PREFIX
    _put_str _LOCK _USER_TYPES _PREDICATES _CLASS_DIGESTERS register_digester
    register_class_digester Hasher digest_value hexdigest_value _feed _feed_at _enc_none
    _enc_bool _enc_int _enc_bigint _enc_float _enc_complex _enc_str _enc_bytes
    _enc_bytearray _enc_memoryview _enc_ellipsis _enc_notimplemented _items _enc_tuple
    _enc_list _enc_dict _index_of _unordered _REPR_OK _enc_set _enc_frozenset _enc_range
    _enc_slice _class_ident _enc_type _enc_enum _slot_cache _slot_names _derived_cache
    _derived_names _without_derived _attr_state _enter _enc_plain_object _callable_name
    _enc_reduce _enc_builtin_subclass _enc_defaultdict _enc_code _enc_function
    _enc_builtin_function _enc_method _enc_descriptor _enc_method_wrapper
    _enc_wrapped_callable _enc_property _enc_module _enc_mappingproxy _enc_partial _enc_cell
    _enc_tzinfo _enc_datetime _enc_date _enc_timedelta _enc_decimal _enc_fraction _enc_uuid
    _enc_purepath _dtype_key _enc_ndarray _enc_numpy_scalar _enc_numpy_dtype _pd_values
    _pd_container_values _enc_index _enc_series _enc_dataframe _enc_pd_array
    _enc_pd_timestamp _enc_pd_timedelta _enc_pd_nat _BUILTINS _KNOWN _KNOWN_BY_MODULE
    _known_encoder _BUILTIN_BASES _NEVER_REASON _never_types _enc_never _user_encoder
    _with_predicates _has_default_reduce _resolve_uncached _resolve_fallback _DISPATCH
    _reset_dispatch _resolve""".split()
    assert [n for n in names if not hasattr(hashing, n)] == []


def test_tags_have_one_meaning_each() -> None:
    """The table names every tag the encoders write; a byte named twice is one of the
    documented pairs whose contexts cannot be confused."""
    by_tag: dict = {}
    for name, tag in TAGS.items():
        assert isinstance(tag, bytes) and len(tag) == 1, name
        by_tag.setdefault(tag, []).append(name)
    twice = {tag: sorted(names) for tag, names in by_tag.items() if len(names) > 1}
    assert twice == {
        b"U": ["function", "registered"],  # a function by name is a registered digest
        b"M": ["mappingproxy", "method"],
        b"<": ["pandas_multiindex", "subclass"],
        b"a": ["attributes", "numpy_scalar"],  # attributes only after a class
    }
    # every one-byte tag literal in the encoders is in the table
    here = os.path.dirname(hashing.__file__)
    written = set()
    for module in os.listdir(here):
        if module.endswith(".py"):
            source = open(os.path.join(here, module), encoding="utf-8").read()
            written |= set(re.findall(r'(?:_TL|_TQ|_TD|_TDD|_put_str)\([^,]*?b"(.)"', source))
            written |= set(re.findall(r'_buf \+= b"(.)"', source))
            written |= set(re.findall(r'buf \+= b"(.)"', source))
    known = {t.decode() for t in TAGS.values()} | {"0", "1"}  # datetime's fold flag
    assert written - known == set()


def test_a_registered_type_and_its_subclasses(clean_registry: None) -> None:
    register_digester(Celsius, lambda c: repr(c.degrees).encode())
    assert digest_value(Celsius(1.5)) == digest_value(Celsius(1.5))
    assert digest_value(Celsius(1.5)) != digest_value(Celsius(2.0))
    # the type name frames the bytes: a subclass giving the same bytes differs
    assert digest_value(Kelvin(1.5)) != digest_value(Celsius(1.5))
    assert digest_value(Kelvin(1.5)) == digest_value(Kelvin(1.5))


def test_a_feeding_digester_is_framed(clean_registry: None) -> None:
    def feed(c: Celsius, h: Hasher) -> None:
        h.feed(c.degrees)

    register_digester(Celsius, feed, feeds=True, name="example.Temperature")
    assert digest_value(Celsius(1.5)) == digest_value(Celsius(1.5))
    assert digest_value(Celsius(1.5)) != digest_value(Celsius(2.5))
    # not the digest of its parts, nor confused by where a list of them ends
    assert digest_value(Celsius(1.5)) != digest_value(1.5)
    assert digest_value((Celsius(1.5), 2.0)) != digest_value((1.5, 2.0))
    # the name, not the class: a subclass gives the same digest
    assert digest_value(Kelvin(1.5)) == digest_value(Celsius(1.5))


def test_a_failing_digester_names_the_value(clean_registry: None) -> None:
    def feed(c: Celsius, h: Hasher) -> None:
        raise RuntimeError("no thermometer")

    register_digester(Celsius, feed, feeds=True)
    with pytest.raises(UnhashableValue, match="registered digester failed.*no thermometer") as info:
        digest_value({"t": Celsius(1.0)})
    assert info.value.path == "['t']"


def test_a_predicate_of_types_is_asked_once_per_type(clean_registry: None) -> None:
    asked: List[type] = []

    def is_temperature(t: type) -> bool:
        asked.append(t)
        return issubclass(t, Celsius)

    register_digester(is_temperature, lambda c: b"t", per_type=True)
    values = [Celsius(1.0), Celsius(2.0), Kelvin(3.0), Celsius(4.0)]
    digest_value(values)
    assert asked.count(Celsius) == 1 and asked.count(Kelvin) == 1
    assert digest_value(Celsius(1.0)) == digest_value(Celsius(9.0))  # b"t" for all


def test_lazy_registration_waits_for_the_library(clean_registry: None) -> None:
    ran: List[str] = []
    name = "checkpointing_test_fake_library"
    register_lazy(name, lambda: ran.append("ran"))
    resolve_a_type()
    assert ran == []
    sys.modules[name] = type(sys)(name)
    try:
        resolve_a_type()
        assert ran == ["ran"]
        resolve_a_type()
        assert ran == ["ran"]  # once
    finally:
        del sys.modules[name]


def test_a_lazy_registration_that_fails_is_tried_again(clean_registry: None) -> None:
    tries: List[int] = []
    name = "checkpointing_test_half_imported"

    def register() -> None:
        tries.append(1)
        if len(tries) == 1:
            raise AttributeError("module is partially initialised")

    register_lazy(name, register)
    sys.modules[name] = type(sys)(name)
    try:
        resolve_a_type()
        resolve_a_type()
        resolve_a_type()
    finally:
        del sys.modules[name]
    assert len(tries) == 2


def test_your_predicate_beats_an_adapter_that_registers_later(clean_registry: None) -> None:
    """An adapter registered lazily (after yours, once its library is imported) yields to
    your predicate and your type."""
    name = "checkpointing_test_fake_geo"

    def adapter() -> None:
        register_digester(lambda t: issubclass(t, Celsius), lambda c: b"adapter", per_type=True)
        register_digester(Kelvin, lambda c: b"adapter")

    register_digester(lambda t: issubclass(t, Celsius), lambda c: b"mine", per_type=True)
    register_digester(Kelvin, lambda c: b"mine too")
    register_lazy(name, adapter)
    sys.modules[name] = type(sys)(name)
    try:
        resolve_a_type()
    finally:
        del sys.modules[name]
    assert name not in hashing.core._LAZY  # the adapter ran
    h = Hasher()
    hashing.core._user_encoder(lambda c: b"mine")(h, Celsius(1.0))
    assert digest_value(Celsius(1.0)) == h.digest()
    h = Hasher()
    hashing.core._user_encoder(lambda c: b"mine too")(h, Kelvin(1.0))
    assert digest_value(Kelvin(1.0)) == h.digest()


def test_your_digester_beats_the_adapter_registered_after_it(clean_registry: None) -> None:
    """The library's adapter runs before a registration for one of its types, so that the
    user's, made after, wins whatever the order of first use."""
    out = run_python("""
        import numpy as np
        from checkpointing.hashing import digest_value, register_digester, core
        assert "numpy" in core._LAZY  # nothing digested yet: the adapter is pending
        register_digester(np.ndarray, lambda a: b"mine")
        assert "numpy" not in core._LAZY
        print(digest_value(np.arange(3)) == digest_value(np.arange(5)))
    """)
    assert out.strip() == "True"


@pytest.mark.e2e
def test_no_library_is_imported_to_digest(tmp_path: Any) -> None:
    out = run_python("""
        import sys
        import checkpointing
        from checkpointing.hashing import digest_value
        digest_value([1, "a", {"b": (None, 2.5)}, {1, 2}, object(), range(3)])
        libs = ["numpy", "pandas", "pyarrow", "polars", "torch", "xarray", "scipy",
                "pydantic", "attr", "attrs"]
        print([m for m in libs if m in sys.modules])
        adapters = [m for m in sys.modules if m.startswith("checkpointing.hashing.")]
        print(sorted(adapters))
    """)
    loaded, adapters = out.splitlines()
    assert loaded == "[]"
    # only the modules of Python's own types (and of what classes derive themselves): the
    # numpy and pandas adapters, whose encoders the package re-exports, load when one of
    # those names is asked for (issue 12, target 5)
    assert adapters == str(
        sorted("checkpointing.hashing." + m for m in ("builtins", "core", "derived", "stdlib"))
    )


@pytest.mark.e2e
def test_functions_and_modules_digest_alike_before_and_after_keyplan() -> None:
    """A function or module outside the project has the same digest whether or not
    keyplan (which digests the project's by their code) is loaded."""
    out = run_python("""
        import functools, json, os, os.path, sys
        from checkpointing.hashing import hexdigest_value
        values = [os.path.join, os, functools.partial(os.path.join, "a"), [json.dumps]]
        before = [hexdigest_value(v) for v in values]
        assert "checkpointing.keyplan" not in sys.modules
        import checkpointing.keyplan
        after = [hexdigest_value(v) for v in values]
        print(before == after, len(set(before)))
    """)
    assert out.strip() == "True 4"
