"""Tests of checkpointing.hashing: stable, unambiguous, cross-process digests of values."""

from __future__ import annotations

import datetime
import decimal
import enum
import fractions
import functools
import http
import os
import pathlib
import pickle
import subprocess
import sys
import textwrap
import threading
import uuid
from typing import Any, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checkpointing import HashFailedError, hashing
from checkpointing.hashing import (
    DIGEST_SIZE,
    Hasher,
    UnhashableValue,
    digest_value,
    hexdigest_value,
    register_class_digester,
    register_digester,
)


@pytest.fixture
def clean_registry() -> Iterator[None]:
    """Undo registrations made by a test (the registries are process-wide)."""
    saved = hashing.core._registry_state()
    yield
    hashing.core._restore_registry(saved)


def run_python(code: str, **env: str) -> str:
    """Run ``code`` in a fresh interpreter and return its stdout."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# -- Basics -----------------------------------------------------------------------------


def test_digest_shape() -> None:
    d = digest_value((1, 2))
    assert isinstance(d, bytes) and len(d) == DIGEST_SIZE == 16
    assert hexdigest_value((1, 2)) == d.hex()
    h = Hasher()
    h.feed((1, 2))
    assert h.digest() == d and h.hexdigest() == d.hex()


@pytest.mark.parametrize(
    "values",
    [
        [1, 1.0, True, "1", b"1", bytearray(b"1"), (1,), [1], {1}, frozenset({1}), 1 + 0j],
        [0, 0.0, -0.0, False, None, "", b"", (), [], {}, set(), frozenset(), range(0)],
        [2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, -1, 2**200, -(2**200)],
        [float("inf"), float("-inf"), float("nan"), 1e-300, 5e-324],
        [..., NotImplemented, None, slice(None), slice(1, 2), range(1, 2)],
        [int, float, str, bool, type(None), object],
    ],
)
def test_distinct_values_have_distinct_digests(values: list) -> None:
    digests = [digest_value(v) for v in values]
    assert len(set(digests)) == len(values)


def test_negative_zero_differs_and_nans_are_one_value() -> None:
    assert digest_value(0.0) != digest_value(-0.0)
    assert digest_value(complex(0.0, 0.0)) != digest_value(complex(0.0, -0.0))
    other_nan = pickle.loads(pickle.dumps(float("nan")))
    assert digest_value(float("nan")) == digest_value(other_nan) == digest_value(-float("nan"))


def test_framing_is_unambiguous() -> None:
    assert digest_value(("ab", "c")) != digest_value(("a", "bc"))
    assert digest_value([[1], 2]) != digest_value([1, [2]])
    assert digest_value(((),)) != digest_value(((), ()))
    assert digest_value({"a": "b", "c": "d"}) != digest_value({"a": "bc", "": "d"})

    def fed(*chunks: Any, how: str = "feed") -> bytes:
        h = Hasher()
        for chunk in chunks:
            getattr(h, how)(chunk)
        return h.digest()

    assert fed("ab", "c") != fed("a", "bc")
    assert fed(b"ab", b"c", how="feed_bytes") != fed(b"a", b"bc", how="feed_bytes")
    assert fed("ab", "c", how="feed_str") != fed("a", "bc", how="feed_str")
    # feed_bytes/feed_str encode like feed(bytes)/feed(str)
    assert fed(b"xy", how="feed_bytes") == fed(b"xy") == fed(bytearray(b"xy"), how="feed_bytes")
    assert fed("xy", how="feed_str") == fed("xy")
    big = bytes(range(256)) * 100
    assert fed(big, how="feed_bytes") == fed(memoryview(big), how="feed_bytes") == fed(big)


def test_strings_unicode_and_lone_surrogates() -> None:
    assert digest_value("é") != digest_value("e\u0301")
    assert digest_value("\ud800") == digest_value("\ud800")
    assert digest_value("\ud800") != digest_value("\ud801")


def test_dicts_are_order_sensitive() -> None:
    assert digest_value({"a": 1, "b": 2}) != digest_value({"b": 2, "a": 1})
    assert digest_value({"a": 1, "b": 2}) == digest_value(dict([("a", 1), ("b", 2)]))
    assert digest_value({1: 2}) != digest_value({2: 1})


def test_sets_are_order_insensitive() -> None:
    words = [f"word{i}" for i in range(100)]
    assert digest_value(set(words)) == digest_value(set(reversed(words)))
    assert digest_value(frozenset(words)) == digest_value(frozenset(reversed(words)))
    assert digest_value(set(words)) != digest_value(frozenset(words))
    assert digest_value({1, "1", 1.5, (1, "a")}) == digest_value({(1, "a"), 1.5, "1", 1})


SET_PROBE = """
from checkpointing.hashing import hexdigest_value
words = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"}
print(hexdigest_value(words), hexdigest_value(frozenset(words)),
      hexdigest_value({("a", 1), ("b", 2), frozenset({"x", "y"})}),
      hexdigest_value({"k": {"v", "w"}, "s": "text"}))
"""


def test_set_digests_are_the_same_across_processes() -> None:
    outputs = {run_python(SET_PROBE, PYTHONHASHSEED=seed) for seed in ("0", "1", "12345")}
    assert len(outputs) == 1
    words = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"}
    assert outputs.pop().split()[0] == hexdigest_value(words)


def test_nested_containers() -> None:
    def make() -> Any:
        return {
            "a": [1, (2, 3.5), {"x": None}],
            "b": {frozenset({1, 2}), "s"},
            "c": ({"deep": [[[["end"]]]]},),
        }

    assert digest_value(make()) == digest_value(make())
    changed = make()
    changed["c"][0]["deep"][0][0][0][0] = "END"
    assert digest_value(changed) != digest_value(make())


def test_cycles_are_encoded_as_back_references() -> None:
    def cyclic() -> list:
        lst: list = [1]
        lst.append(lst)
        return lst

    assert digest_value(cyclic()) == digest_value(cyclic())
    assert digest_value(cyclic()) != digest_value([1, [1]])
    d: dict = {"x": 1}
    d["self"] = d
    assert digest_value(d) != digest_value({"x": 1, "self": {}})
    # the back-reference says which ancestor is meant
    a: list = [[]]
    a[0].append(a)
    b: list = [[]]
    b[0].append(b[0])
    assert digest_value(a) != digest_value(b)

    class Node:
        def __init__(self) -> None:
            self.children: list = []
            self.parent: Any = None

    root, leaf = Node(), Node()
    root.children.append(leaf)
    leaf.parent = root
    assert len(digest_value(root)) == 16


def test_shared_references_hash_like_copies() -> None:
    inner = [1, 2]
    assert digest_value([inner, inner]) == digest_value([[1, 2], [1, 2]])


def test_very_deep_nesting_raises_unhashable_not_recursion_error() -> None:
    value: Any = None
    for _ in range(100_000):
        value = [value]
    with pytest.raises(UnhashableValue):
        digest_value(value)


# -- Other standard values --------------------------------------------------------------


class Color(enum.Enum):
    RED = 1
    GREEN = 2


class Other(enum.Enum):
    RED = 1


def test_standard_library_values() -> None:
    pairs = [
        (Color.RED, Color.GREEN),
        (Color.RED, Other.RED),
        (Color.RED, 1),
        (datetime.date(2020, 1, 2), datetime.datetime(2020, 1, 2)),
        (
            datetime.datetime(2020, 1, 2),
            datetime.datetime(2020, 1, 2, tzinfo=datetime.timezone.utc),
        ),
        (datetime.time(1), datetime.time(1, 0, 0, 1)),
        (datetime.timedelta(seconds=1), datetime.timedelta(microseconds=1)),
        (decimal.Decimal("1.0"), decimal.Decimal("1.00")),
        (fractions.Fraction(1, 2), 0.5),
        (uuid.UUID(int=1), uuid.UUID(int=2)),
        (pathlib.PurePosixPath("a"), "a"),
        (pathlib.PurePosixPath("a"), pathlib.PureWindowsPath("a")),
        (functools.partial(max, 1), functools.partial(max, 2)),
        (functools.partial(max, key=len), functools.partial(min, key=len)),
    ]
    for a, b in pairs:
        assert digest_value(a) != digest_value(b), (a, b)
        assert digest_value(a) == digest_value(pickle.loads(pickle.dumps(a))), a


def test_builtin_subclasses_are_not_their_base() -> None:
    import collections

    Point = collections.namedtuple("Point", "x y")
    assert digest_value(Point(1, 2)) != digest_value((1, 2))
    assert digest_value(Point(1, 2)) == digest_value(Point(1, 2))
    assert digest_value(collections.OrderedDict(a=1)) != digest_value({"a": 1})
    assert digest_value(collections.defaultdict(list)) != digest_value(collections.defaultdict(int))


class Plain:
    def __init__(self, a: Any, b: Any) -> None:
        self.a = a
        self.b = b


class Slotted:
    __slots__ = ("x", "__y")

    def __init__(self, x: Any, y: Any) -> None:
        self.x = x
        self.__y = y


class WithState:
    def __init__(self, v: int) -> None:
        self.v = v
        self.cache = object()  # not part of the value

    def __getstate__(self) -> Any:
        return {"v": self.v}


def test_objects_are_hashed_by_class_and_state() -> None:
    assert digest_value(Plain(1, [2])) == digest_value(Plain(1, [2]))
    assert digest_value(Plain(1, [2])) != digest_value(Plain(1, [3]))
    # attribute order does not matter
    p = Plain(1, 2)
    q = Plain.__new__(Plain)
    q.b, q.a = 2, 1
    assert digest_value(p) == digest_value(q)
    assert digest_value(Slotted(1, 2)) == digest_value(Slotted(1, 2))
    assert digest_value(Slotted(1, 2)) != digest_value(Slotted(1, 3))
    assert digest_value(WithState(1)) == digest_value(WithState(1))
    assert digest_value(WithState(1)) != digest_value(WithState(2))
    assert digest_value(ValueError("x")) != digest_value(ValueError("y"))


# -- Failures ---------------------------------------------------------------------------


def test_open_file_inside_a_list_names_its_path(tmp_path: pathlib.Path) -> None:
    with open(tmp_path / "f.txt", "w") as f:
        with pytest.raises(UnhashableValue) as info:
            digest_value([1, 2, {"a": f}])
    exc = info.value
    assert exc.path == "[2]['a']"
    assert "[2]['a']" in str(exc) and "TextIOWrapper" in exc.type_name
    assert "register_digester" in str(exc)
    assert isinstance(exc, HashFailedError) and isinstance(exc, TypeError)


def test_lock_inside_an_object_names_its_path() -> None:
    with pytest.raises(UnhashableValue) as info:
        digest_value((0, Plain(1, [threading.Lock()])))
    assert info.value.path == "[1].b[0]"
    assert info.value.type_name == "_thread.lock"
    assert "[1].b[0]" in str(info.value)
    with pytest.raises(UnhashableValue) as info:
        digest_value(threading.Lock())
    assert info.value.path == ""
    with pytest.raises(UnhashableValue):
        digest_value([x for x in range(3)].__iter__())
    with pytest.raises(UnhashableValue):
        digest_value({"gen": (x for x in range(3))})


def test_unhashable_value_survives_pickling() -> None:
    with pytest.raises(UnhashableValue) as info:
        digest_value([threading.Lock()])
    copy = pickle.loads(pickle.dumps(info.value))
    assert (copy.path, copy.type_name, str(copy)) == ("[0]", "_thread.lock", str(info.value))


# -- Registration -----------------------------------------------------------------------


class Connection:
    def __init__(self, url: str) -> None:
        self.url = url
        self.lock = threading.Lock()


class PooledConnection(Connection):
    pass


def test_register_digester_by_type(clean_registry: None) -> None:
    with pytest.raises(UnhashableValue):
        digest_value(Connection("db://a"))
    register_digester(Connection, lambda c: c.url.encode())
    assert digest_value(Connection("db://a")) == digest_value(Connection("db://a"))
    assert digest_value(Connection("db://a")) != digest_value(Connection("db://b"))
    # subclasses match through the MRO; the later registration wins
    assert digest_value([PooledConnection("db://a")]) != digest_value([Connection("db://a")])
    before = digest_value(PooledConnection("db://a"))
    register_digester(Connection, lambda c: b"all the same")
    assert digest_value(PooledConnection("db://a")) != before
    assert digest_value(Connection("db://a")) == digest_value(Connection("db://b"))


def test_register_digester_by_predicate(clean_registry: None) -> None:
    class Tagged:
        def __init__(self, tag: str) -> None:
            self.tag = tag
            self.lock = threading.Lock()

    register_digester(lambda v: hasattr(v, "tag"), lambda v: v.tag.encode())
    assert digest_value(Tagged("a")) == digest_value(Tagged("a"))
    assert digest_value(Tagged("a")) != digest_value(Tagged("b"))
    # predicates do not replace the encoding of builtin values
    assert digest_value(1) == digest_value(1) and digest_value("tag") != digest_value(b"tag")


def test_failing_digester_raises_unhashable(clean_registry: None) -> None:
    register_digester(Connection, lambda c: 1 / 0)
    with pytest.raises(UnhashableValue, match="digester failed"):
        digest_value([Connection("x")])
    register_digester(Connection, lambda c: "not bytes")
    with pytest.raises(UnhashableValue, match="not bytes"):
        digest_value(Connection("x"))


def test_register_class_digester(clean_registry: None) -> None:
    versions = {"code": b"v1"}

    def class_digest(cls: type) -> Any:
        return versions["code"] if cls is Plain else None

    before_instance, before_class = digest_value(Plain(1, 2)), digest_value(Plain)
    other = digest_value(Slotted(1, 2))
    register_class_digester(class_digest)
    v1_instance, v1_class = digest_value(Plain(1, 2)), digest_value(Plain)
    assert v1_instance != before_instance and v1_class != before_class
    assert digest_value(Slotted(1, 2)) == other  # the digester answered None
    versions["code"] = b"v2"
    assert digest_value(Plain(1, 2)) != v1_instance
    assert digest_value(Plain) != v1_class
    assert digest_value(Plain(1, 2)) != digest_value(Plain(1, 3))  # state still counts


# -- numpy and pandas -------------------------------------------------------------------


def test_numpy_arrays() -> None:
    np = pytest.importorskip("numpy")
    a = np.arange(12, dtype=np.int32)
    same_bytes = [
        a,
        a.view(np.uint32),
        a.view(np.float32),
        a.reshape(3, 4),
        a.reshape(4, 3),
        a.view(np.int16),
    ]
    assert len({digest_value(x) for x in same_bytes}) == len(same_bytes)
    assert digest_value(a) == digest_value(a.copy())
    m = a.reshape(3, 4)
    assert digest_value(m.T) == digest_value(np.ascontiguousarray(m.T))
    assert digest_value(m[:, ::2]) == digest_value(m[:, ::2].copy())
    big = np.random.default_rng(0).random(100_000)
    assert digest_value(big) == digest_value(big.copy())
    changed = big.copy()
    changed[-1] += 1
    assert digest_value(big) != digest_value(changed)
    objects = np.array([1, "a", None, (1, 2)], dtype=object)
    assert digest_value(objects) == digest_value(objects.copy())
    assert digest_value(np.float64(1.0)) not in {digest_value(1.0), digest_value(np.float32(1.0))}
    assert digest_value(np.int64(1)) != digest_value(np.int32(1))
    with pytest.raises(UnhashableValue) as info:
        digest_value({"arr": np.array([[1, threading.Lock()]], dtype=object)})
    assert info.value.path == "['arr'][0, 1]"


def test_pandas_frames() -> None:
    pd = pytest.importorskip("pandas")

    def make() -> Any:
        return pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None], "c": [0.5, 1.5, 2.5]})

    assert digest_value(make()) == digest_value(make())
    assert digest_value(make()) != digest_value(make().rename(columns={"a": "z"}))
    assert digest_value(make()) != digest_value(make().astype({"a": "int32"}))
    assert digest_value(make()) != digest_value(make().set_axis([1, 2, 3]))
    assert digest_value(make()["a"]) != digest_value(make()["a"].rename("other"))
    changed = make()
    changed.loc[2, "b"] = "z"
    assert digest_value(changed) != digest_value(make())


def test_pandas_extension_types_do_not_crash() -> None:
    pd = pytest.importorskip("pandas")

    def make() -> Any:
        return pd.DataFrame(
            {
                "cat": pd.Categorical(["u", "v", "u"]),
                "tz": pd.date_range("2020-01-01", periods=3, tz="Europe/Paris"),
                "naive": pd.date_range("2020-01-01", periods=3),
                "nullable": pd.array([1, None, 3], dtype="Int64"),
                "string": pd.array(["a", None, "c"], dtype="string"),
                "ts": [pd.Timestamp("2020"), pd.NaT, pd.Timestamp("2021", tz="UTC")],
                "td": pd.to_timedelta([1, 2, 3], unit="s"),
                "period": pd.period_range("2020-01", periods=3, freq="M"),
            },
            index=pd.MultiIndex.from_tuples([(1, "a"), (1, "b"), (2, "a")]),
        )

    assert digest_value(make()) == digest_value(make())
    other = make()
    other["cat"] = pd.Categorical(["u", "v", "u"], categories=["v", "u"])
    assert digest_value(other) != digest_value(make())
    other = make()
    other["tz"] = pd.date_range("2020-01-01", periods=3, tz="UTC")
    assert digest_value(other) != digest_value(make())


def test_numpy_is_not_imported_to_hash() -> None:
    out = run_python("""
        import sys
        import checkpointing.hashing as hashing
        hashing.digest_value([1, 2.5, "a", {"b": (None, b"c")}, {1, 2}, range(3)])
        print(sorted(m for m in ("numpy", "pandas") if m in sys.modules))
    """)
    assert out.strip() == "[]"


# -- Stability --------------------------------------------------------------------------

PINNED_VALUES = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2**64,
    -(2**100),
    1.0,
    -0.0,
    float("nan"),
    1.5 - 2j,
    "",
    "1",
    "héllo \u2603",
    b"1",
    bytearray(b"1"),
    (),
    (1, 2),
    [1, "a"],
    {"a": 1, "b": [None]},
    {"x", "y", "z"},
    frozenset({1, 2}),
    range(1, 10, 2),
    slice(1, None),
    ...,
    int,
    http.HTTPStatus.OK,
    datetime.datetime(2020, 1, 2, 3, 4, 5, 6),
    datetime.date(2020, 1, 2),
    datetime.timedelta(days=1, seconds=2),
    decimal.Decimal("1.50"),
    fractions.Fraction(1, 3),
    uuid.UUID(int=42),
    pathlib.PurePosixPath("/a/b"),
]

# Digests pinned once. If this test fails, the encoding changed: keys written by earlier
# versions no longer match. Only if that is intended, bump hashing.FORMAT_VERSION and
# update this table deliberately (never just to make the test pass).
PINNED_DIGESTS = [
    "547f3f976246b94ca953e9b4afd2d6f5",  # None
    "8b78a8e09f7b77e3c7d5f0108845e14f",  # True
    "9bec2554f3006fbe580fbc5bba971470",  # False
    "c21e539bdad6bb2a06c12ccea93bbe9b",  # 0
    "a68f41b4eccb5b284aa5c018f68c40f6",  # 1
    "a6f227bdee655e63a6b4fc9c51d282cb",  # -1
    "825f0fdb12db330d96af323bcc6c094b",  # 18446744073709551616
    "8ee96499b47d6f9d79dd65c9ede19ebb",  # -1267650600228229401496703205376
    "ff2d4ad1e1bd920e9fd754ba0052e792",  # 1.0
    "db087337da332c9ca9f8f04b90adb185",  # -0.0
    "4c2269a3f38fa767060ccc68df22429b",  # nan
    "5398012fbfc23c9bba9040bab97fe820",  # (1.5-2j)
    "b588ba2cba984ff7c36abcf9d5f57f9c",  # ''
    "4fe4c8ab3f15d61bd7892a674d4f5fcb",  # '1'
    "b699395e9149ed0abf220151ae32f4d3",  # 'héllo ☃'
    "8df862e15847d78b4c4ef0f0af92935c",  # b'1'
    "b7699d5b1c5feed5170ebe391a77f37f",  # bytearray(b'1')
    "e0b3364d6d7fd6acab2844e9b753434c",  # ()
    "21974cc0865c267ae4a279809534e234",  # (1, 2)
    "81788eb9ea00d84e96ce1838f313c910",  # [1, 'a']
    "72811ff1a5b312e870ccbdff76e55567",  # {'a': 1, 'b': [None]}
    "94fd63c3bbe249a3fe357d616bf4a624",  # {'x', 'y', 'z'}
    "fcd20ccbba39f964be0a0afcff28b1a5",  # frozenset({1, 2})
    "111381d3fcf842fda5a789756227fa93",  # range(1, 10, 2)
    "4316747f18f88f44fb1edff720596cfa",  # slice(1, None, None)
    "835475d0aba9b36f3e60456eb0ef7b37",  # Ellipsis
    "0006bb0c4887892b5473a2129571812a",  # <class 'int'>
    "63819b944488d3c67e9ebec017750d6b",  # <HTTPStatus.OK: 200>
    "2b1a84a27bd5d0ea000dc957aefbe1b6",  # datetime.datetime(2020, 1, 2, 3, 4, 5, 6)
    "c506d318d11db5ef3fd202445aa13c95",  # datetime.date(2020, 1, 2)
    "c6ed9c9adbc0030fe3139d6160a9b9d1",  # datetime.timedelta(days=1, seconds=2)
    "4e69c543568dc9d5c1d5a8541b5ef08a",  # Decimal('1.50')
    "8ee15bdf296a4ebc9038c8a0c18be50a",  # Fraction(1, 3)
    "3fe6ec655a135c34012a3522567a0059",  # UUID('00000000-0000-0000-0000-00000000002a')
    "3dd325cd50494d00a554ee58de67f2be",  # PurePosixPath('/a/b')
]


def test_pinned_digests() -> None:
    assert hashing.FORMAT_VERSION == 1
    actual = [hexdigest_value(value) for value in PINNED_VALUES]
    for value, expected, got in zip(PINNED_VALUES, PINNED_DIGESTS, actual):
        assert got == expected, f"digest of {value!r} changed"
    assert len(actual) == len(PINNED_DIGESTS)


PINNED_PROBE = """
import sys
sys.path.insert(0, {tests!r})
from test_hashing import PINNED_VALUES
from checkpointing.hashing import hexdigest_value
print(" ".join(hexdigest_value(v) for v in PINNED_VALUES))
"""


def test_pinned_digests_in_another_process() -> None:
    code = PINNED_PROBE.format(tests=os.path.dirname(os.path.abspath(__file__)))
    assert run_python(code, PYTHONHASHSEED="99").split() == PINNED_DIGESTS


# -- Properties -------------------------------------------------------------------------

scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text() | st.binary()
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=5), children, max_size=4)
        | st.tuples(children, children)
        | st.frozensets(st.integers() | st.text(max_size=5), max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(values)
def test_equal_values_built_independently_have_equal_digests(value: Any) -> None:
    rebuilt = pickle.loads(pickle.dumps(value))
    assert digest_value(rebuilt) == digest_value(value)
    h = Hasher()
    h.feed(value)
    assert h.digest() == digest_value(value)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(max_size=3), min_size=2, max_size=2),
    st.lists(st.text(max_size=3), min_size=2, max_size=2),
)
def test_feeding_sequences_is_unambiguous(a: list, b: list) -> None:
    ha, hb = Hasher(), Hasher()
    for s in a:
        ha.feed(s)
    for s in b:
        hb.feed(s)
    assert (ha.digest() == hb.digest()) == (a == b)


@pytest.mark.parametrize(
    "prefix, value",
    [
        ([b"tag", 1], (1, 2)),
        ([b"tag", 1], ("a", [1.5, None], {"k": b"v"})),
        ([b"x" * (1 << 21)], (1, 2)),  # a prefix large enough to be flushed into the state
        ([b"tag"], (b"y" * (1 << 21), 3)),  # a value fed in place (large buffer)
    ],
)
def test_copy_and_hexdigest_with_equal_feeding_all_from_scratch(prefix, value) -> None:
    """A key's fixed part is encoded once and copied (the hit path): each digest must be
    the one a fresh hasher fed everything gives, and the shared hasher stays as it was."""
    shared = hashing.Hasher()
    for part in prefix:
        shared.feed(part)
    before = shared.copy().hexdigest()
    fresh = hashing.Hasher()
    for part in prefix + [value]:
        fresh.feed(part)
    expected = fresh.hexdigest()
    assert shared.hexdigest_with(value) == expected
    assert shared.copy().feed(value).hexdigest() == expected
    assert shared.hexdigest_with(value) == expected  # twice: the shared one is unchanged
    assert shared.hexdigest() == before


def test_hexdigest_with_names_a_value_that_cannot_be_hashed() -> None:
    shared = hashing.Hasher().feed(1)
    with pytest.raises(HashFailedError):
        shared.hexdigest_with((1, threading.Lock()))
    assert shared.hexdigest() == hashing.Hasher().feed(1).hexdigest()


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    st.lists(
        st.one_of(
            st.integers(),  # beyond 64 bits too: those go the general way
            st.text(),  # lone surrogates too: likewise
            st.booleans(),
            st.floats(allow_nan=False),
            st.none(),
            st.binary(max_size=4),
        ),
        max_size=5,
    ).map(tuple)
)
def test_hexdigest_plain_is_hexdigest_with_or_declines(values: tuple) -> None:
    """A hit's arguments that are ints and strs are encoded in one frame
    (``hexdigest_plain``): the digest must be the general one's, byte for byte, and
    any other tuple must be declined (None), never digested another way."""
    shared = hashing.Hasher().feed(b"key prefix").feed(3)
    plain = shared.hexdigest_plain(values)
    handled = all(
        (type(v) is int and -(1 << 63) <= v < (1 << 63))
        or (type(v) is str and not any(0xD800 <= ord(c) <= 0xDFFF for c in v))
        for v in values
    )
    if handled:
        assert plain == shared.hexdigest_with(values)
    else:
        assert plain is None


def test_hexdigest_plain_declines_a_flushed_prefix_and_your_tuple_digester(
    clean_registry: None,
) -> None:
    flushed = hashing.Hasher().feed_bytes(b"x" * (1 << 21)).feed(1)
    assert flushed.hexdigest_plain((1, "a")) is None
    assert flushed.hexdigest_with((1, "a"))  # the general way digests it
    register_digester(tuple, lambda t: b"mine")
    shared = hashing.Hasher().feed(1)
    assert shared.hexdigest_plain((1, 2)) is None
    assert shared.hexdigest_with((1, 2)) == shared.hexdigest_with((3, 4))  # yours
