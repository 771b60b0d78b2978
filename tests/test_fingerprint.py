"""The fingerprint of a call (what its key is made of, part by part).

A miss builds it from parts kept per plan and values of globals (the digests of the
reached definitions and globals, and their JSON) and the digests of its arguments. Its
stored text must stay what the JSON encoder writes for its dict (entries and history
lines written before are read and compared with it), and its parts must follow every
change of the globals, the code, the arguments and ``accept`` within a process.
"""

from __future__ import annotations

import importlib
import json
import sys
import threading

import pytest

from checkpointing import hashing

LIB = """
from checkpointing import checkpoint

RATE = 2
TABLE = [1, 2]


class Point:
    def __init__(self, x):
        self.x = x

    def norm(self):
        return abs(self.x)


def helper(x):
    return x * RATE + sum(TABLE)


@checkpoint
def plain(a, b=3, *rest, \u00e9t\u00e9=1, **named):
    return helper(a) + b


@checkpoint
def objects(p, q):
    return p.norm() + len(q)


@checkpoint(track_versions=True)
def versioned(a):
    return helper(a)
"""


@pytest.fixture
def lib(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fplib.py").write_text(LIB, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("fplib", None)
    module = importlib.import_module("fplib")
    yield module
    sys.modules.pop("fplib", None)


def _fingerprint(wrapper, *args, **kwargs):
    identifier = wrapper.checkpoint.identifier
    return identifier.fingerprint(wrapper.__wrapped__, args, kwargs)


def _expected(wrapper, args, kwargs, argument_values=None, argument_code=None):
    """The fingerprint as the parts' own functions give it, computed here afresh."""
    identifier = wrapper.checkpoint.identifier
    func = wrapper.__wrapped__
    binder = identifier.binder_for(func)
    values = binder.bind(args, kwargs)
    plan, _ = identifier._current(func, identifier.analysis_directory)
    arguments = {}
    for name, value in zip(binder.names, values):
        try:
            arguments[name] = hashing.hexdigest_value(value)
        except hashing.UnhashableValue:
            arguments[name] = "unhashable:" + type(value).__qualname__
    out = {
        "nodes": plan.node_digests(),
        "globals": plan.slot_digests(),
        "arguments": arguments,
        "static": identifier.effective_digest(func, plan.static_digest).hex(),
        "argument_values": arguments if argument_values is None else argument_values,
        "argument_code": {} if argument_code is None else argument_code,
    }
    if identifier.track_versions:
        out["versions"] = plan.versions()
    return out


def _check_text(fingerprint) -> None:
    """The stored text is the encoder's for the dict, byte for byte, and reads back."""
    assert fingerprint.json == json.dumps(dict(fingerprint), separators=(",", ":"), default=str)
    assert json.loads(fingerprint.json) == fingerprint


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((1,), {}),
        ((1, 2), {}),
        ((1, 2, 3, "x"), {}),
        (("tab\there", b"\x00"), {"\u00e9t\u00e9": 2.5, "k": None}),
        ((1,), {"z": threading.Lock()}),  # a value with no digest: "unhashable:lock"
    ],
)
def test_a_fingerprint_of_plain_arguments_is_its_parts_and_the_encoders_text(
    lib, args, kwargs
) -> None:
    fingerprint = _fingerprint(lib.plain, *args, **kwargs)
    assert fingerprint == _expected(lib.plain, args, kwargs)
    _check_text(fingerprint)
    assert set(fingerprint["globals"]) == {"fplib:RATE", "fplib:TABLE"}


def test_a_fingerprint_of_instances_names_their_code_and_is_the_encoders_text(lib) -> None:
    fingerprint = _fingerprint(lib.objects, lib.Point(-3), [lib.Point(1)])
    assert "fplib:Point.norm" in fingerprint["argument_code"]
    assert fingerprint["argument_values"] != fingerprint["arguments"]  # classes by name
    assert fingerprint == _expected(
        lib.objects,
        (lib.Point(-3), [lib.Point(1)]),
        {},
        fingerprint["argument_values"],
        fingerprint["argument_code"],
    )
    _check_text(fingerprint)


def test_a_fingerprint_with_versions_is_the_encoders_text(lib) -> None:
    fingerprint = _fingerprint(lib.versioned, 4)
    assert "versions" in fingerprint
    assert fingerprint == _expected(lib.versioned, (4,), {})
    _check_text(fingerprint)


def test_the_fingerprint_follows_globals_changed_or_mutated_between_misses(lib) -> None:
    first = _fingerprint(lib.plain, 1)
    lib.RATE = 5
    second = _fingerprint(lib.plain, 1)
    assert second["globals"]["fplib:RATE"] == hashing.hexdigest_value(5)
    assert second["globals"]["fplib:RATE"] != first["globals"]["fplib:RATE"]
    lib.TABLE.append(3)  # the same list, mutated
    third = _fingerprint(lib.plain, 1)
    assert third["globals"]["fplib:TABLE"] == hashing.hexdigest_value([1, 2, 3])
    assert third["globals"]["fplib:RATE"] == second["globals"]["fplib:RATE"]
    for fingerprint in (first, second, third):
        _check_text(fingerprint)
    assert third == _expected(lib.plain, (1,), {})
    # The first fingerprint, kept by its entry, still says what it said.
    assert first["globals"]["fplib:RATE"] == hashing.hexdigest_value(2)
    assert json.loads(first.json)["globals"]["fplib:TABLE"] == hashing.hexdigest_value([1, 2])


def test_the_fingerprint_follows_an_accept_of_the_code(lib) -> None:
    identifier = lib.plain.checkpoint.identifier
    before = _fingerprint(lib.plain, 1)
    assert identifier.accept(lib.plain.__wrapped__, "ab" * 16) == before["static"]
    after = _fingerprint(lib.plain, 1)
    assert after["static"] == "ab" * 16
    _check_text(after)


def test_the_fingerprint_follows_track_versions_set_after_decoration(lib) -> None:
    identifier = lib.plain.checkpoint.identifier
    assert "versions" not in _fingerprint(lib.plain, 1)
    identifier.track_versions = True
    fingerprint = _fingerprint(lib.plain, 1)
    assert fingerprint == _expected(lib.plain, (1,), {})
    assert "versions" in fingerprint
    _check_text(fingerprint)


def test_an_identifier_pickles_after_a_fingerprint_without_its_kept_parts(lib) -> None:
    """cloudpickle copies a ``__main__`` function's wrapper, its identifier with it, into
    workers (tests/test_parallel.py): the kept parts hold key plans, which do not pickle."""
    import pickle

    import cloudpickle

    identifier = lib.plain.checkpoint.identifier
    before = _fingerprint(lib.plain, 1)
    copy = pickle.loads(cloudpickle.dumps(identifier))
    assert copy._fixed == {}
    assert copy.fingerprint(lib.plain.__wrapped__, (1,), {}) == before
