"""The value adapters of the PyData libraries: pyarrow, polars, xarray, scipy.sparse,
pydantic and attrs (numpy and pandas: tests/test_hashing.py and test_hash_pinned.py;
torch: tests/test_hash_torch.py, run by .ci/run with a CPU build of torch).

For each: digests pinned (checked in a fresh process, where no class digester of
keyplan is loaded), what is content changes the digest (values, dtype, shape, schema,
index, names), what is not content does not (chunking, layout, order of variables),
and what cannot be digested safely (lazy plans) is refused with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from typing import Any, Callable, Dict

import pytest

from checkpointing.hashing import UnhashableValue, digest_value

HERE = os.path.dirname(os.path.abspath(__file__))


def _pyarrow_values() -> Dict[str, Any]:
    import pyarrow as pa

    table = pa.table(
        {
            "i": pa.array([1, 2, None, 4], type=pa.int64()),
            "f": pa.array([0.5, 1.5, 2.5, 3.5]),
            "s": pa.array(["a", None, "ccc", ""]),
            "b": pa.array([True, False, None, True]),
        }
    )
    return {
        "table": table,
        "sliced array": pa.array(list(range(100)), type=pa.int32()).slice(10, 20),
        "schema": table.schema,
        "scalar": pa.scalar(3.25),
    }


def _polars_values() -> Dict[str, Any]:
    import polars as pl

    return {
        "frame": pl.DataFrame(
            {
                "i": [1, 2, None],
                "f": [0.5, 1.5, 2.5],
                "s": ["x", None, "zz"],
            }
        ),
        "series": pl.Series("n", [3, 1, 2], dtype=pl.Int32),
    }


def _xarray_values() -> Dict[str, Any]:
    import numpy as np
    import xarray as xr

    da = xr.DataArray(
        np.arange(6, dtype=np.int64).reshape(2, 3),
        dims=("x", "y"),
        coords={"x": np.array([10, 20], dtype=np.int64)},
        name="v",
        attrs={"units": "m"},
    )
    # (not ``da * 2``: whether arithmetic keeps attributes changed in xarray 2025)
    twice = da.copy(data=da.values * 2)
    return {"data array": da, "dataset": xr.Dataset({"v": da, "w": twice}, attrs={"t": 1})}


def _scipy_values() -> Dict[str, Any]:
    import numpy as np
    import scipy.sparse as sp

    dense = np.array([[0, 1.5, 0], [2.0, 0, 0], [0, 0, 3.0]])
    return {"csr matrix": sp.csr_matrix(dense), "coo": sp.coo_matrix(dense)}


def _pydantic_values() -> Dict[str, Any]:
    return {"model": Model(a=1, tags=["x"])}


def _attrs_values() -> Dict[str, Any]:
    return {"slotted": Point(1, [2.5]), "dict class": Plain(x="a")}


try:
    import pydantic

    class Model(pydantic.BaseModel):
        a: int
        tags: list = []

except ImportError:  # pragma: no cover - the test extra installs it
    pass

try:
    import attrs

    @attrs.define
    class Point:
        x: int
        y: list

    @attrs.define(slots=False)
    class Plain:
        x: str

except ImportError:  # pragma: no cover
    pass


MAKERS: Dict[str, Callable[[], Dict[str, Any]]] = {
    "pyarrow": _pyarrow_values,
    "polars": _polars_values,
    "xarray": _xarray_values,
    "scipy.sparse": _scipy_values,
    "pydantic": _pydantic_values,
    "attrs": _attrs_values,
}

# Pinned once, in a fresh process, with the test extra's versions on Python 3.11 (and
# checked to be the same on 3.9 with older releases of each library).
PINNED = {
    "pyarrow": {
        "table": "abe60bc65b183cdbbfb94dd9bcc9a149",
        "sliced array": "8931b6f502538724bc6fb1c877ada787",
        "schema": "e3abe4e19a28c0693ef6d89661723145",
        "scalar": "a146140636a850463a98c4807f1739f8",
    },
    "polars": {
        "frame": "2768755a691ca138650a1dedaa83c693",
        "series": "469b769ddb44b58fcbba1e9d0cb73826",
    },
    "xarray": {
        "data array": "859223bf8ca21b09315901f882b71292",
        "dataset": "bba6cc0b842403d3b8c634b99f81edbe",
    },
    "scipy.sparse": {
        "csr matrix": "86df0f3cecc7db667db5d4ed587d61e4",
        "coo": "068bd8e36eed42b08477417c3131517d",
    },
    "pydantic": {
        "model": "aabff58f188d8296ca7381f64bf2ef90",
    },
    "attrs": {
        "slotted": "0b8c81b308c34aa2a212a69023963282",
        "dict class": "6fde511c8fb1a7feb542ff0fe39b22c5",
    },
}

PROBE = """
import json, sys
sys.path.insert(0, {here!r})
import test_hash_adapters as t
from checkpointing.hashing import hexdigest_value
print(json.dumps({{lib: {{name: hexdigest_value(v) for name, v in make().items()}}
                  for lib, make in t.MAKERS.items()}}))
"""


@pytest.mark.e2e
def test_pinned_digests_in_a_fresh_process() -> None:
    import json

    for lib in MAKERS:
        pytest.importorskip(lib)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(here=HERE)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "3"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == PINNED


def test_adapters_are_registered_through_register_digester() -> None:
    """Each adapter is a registration like a user's: once its library's value is seen,
    the public registry holds the adapter module's digester."""
    from checkpointing import hashing

    cases = [
        ("pyarrow", "Table", "digest_table"),
        ("polars", "DataFrame", "digest_frame"),
        ("xarray", "Dataset", "digest_dataset"),
        ("pydantic", "BaseModel", "digest_model"),
    ]
    for lib, type_name, digester in cases:
        module = pytest.importorskip(lib)
        values = MAKERS[lib]()
        digest_value(next(iter(values.values())))
        adapter = sys.modules[f"checkpointing.hashing.{lib}"]
        assert hashing._USER_TYPES[getattr(module, type_name)] is getattr(adapter, digester)
    pytest.importorskip("attrs")
    digest_value(Point(1, [2]))
    from checkpointing.hashing import attrs as attrs_adapter

    assert any(fn is attrs_adapter.digest_attrs for _, fn, _ in hashing._PREDICATES)


# -- pyarrow ------------------------------------------------------------------------------


def test_pyarrow_content_schema_and_chunks() -> None:
    pa = pytest.importorskip("pyarrow")
    table = _pyarrow_values()["table"]
    d = digest_value(table)
    # the same values split in chunks, or rebuilt from Python values: the same digest
    chunked = pa.concat_tables([table.slice(0, 1), table.slice(1, 2), table.slice(3)])
    assert chunked.column("s").num_chunks == 3
    assert digest_value(chunked) == d
    assert digest_value(pa.table(table.to_pydict(), schema=table.schema)) == d
    assert digest_value(table.column("s")) == digest_value(table.column("s").combine_chunks())
    # a slice is its values, not the buffer it views
    sliced = pa.array(list(range(100)), type=pa.int32()).slice(10, 20)
    assert digest_value(sliced) == digest_value(pa.array(list(range(10, 30)), type=pa.int32()))
    # values, types, names, nulls and nullability are content
    others = [
        table.set_column(0, "i", pa.array([1, 2, None, 5], type=pa.int64())),
        table.set_column(0, "i", pa.array([1, 2, None, 4], type=pa.int32())),
        table.rename_columns(["j", "f", "s", "b"]),
        table.set_column(2, "s", pa.array(["a", "", "ccc", ""])),  # null != ""
        table.set_column(3, "b", pa.array([True, False, False, True])),  # null != False
        table.slice(0, 3),
    ]
    digests = [digest_value(o) for o in others]
    assert d not in digests and len(set(digests)) == len(digests)
    not_null = pa.schema([table.schema.field("f").with_nullable(False)])
    assert digest_value(not_null) != digest_value(pa.schema([table.schema.field("f")]))
    # strings: the boundaries between values are content
    assert digest_value(pa.array(["ab", "c"])) != digest_value(pa.array(["a", "bc"]))


def test_pyarrow_null_slots_do_not_leak() -> None:
    """What lies under a null slot is not a value: two arrays that differ only there
    digest alike."""
    pa = pytest.importorskip("pyarrow")
    np = pytest.importorskip("numpy")
    values = np.array([1, 2, 3, 4], dtype=np.int64)
    mask = np.array([False, True, False, False])
    a = pa.array(values, mask=mask)
    b = pa.array(np.array([1, 99, 3, 4], dtype=np.int64), mask=mask)
    assert a.to_pylist() == b.to_pylist()
    assert digest_value(a) == digest_value(b)
    assert digest_value(a) != digest_value(pa.array(values))


def test_pyarrow_nested_and_dictionary_types() -> None:
    pa = pytest.importorskip("pyarrow")
    lists = pa.array([[1, 2], [3], None])
    assert digest_value(lists) == digest_value(pa.array([[1, 2], [3], None]))
    assert digest_value(lists) != digest_value(pa.array([[1], [2, 3], None]))
    words = pa.array(["a", "b", "a"])
    encoded = words.dictionary_encode()
    assert digest_value(encoded) != digest_value(words)  # the type differs
    chunks = pa.chunked_array(
        [pa.array(["a", "b"]).dictionary_encode(), pa.array(["a"]).dictionary_encode()]
    )
    assert digest_value(chunks) == digest_value(encoded)  # same values, other dictionaries


# -- polars -------------------------------------------------------------------------------


def test_polars_frames_and_series() -> None:
    pl = pytest.importorskip("polars")
    df = _polars_values()["frame"]
    d = digest_value(df)
    chunked = pl.concat([df.head(1), df.tail(2)], rechunk=False)
    assert chunked.n_chunks() == 2
    assert digest_value(chunked) == d
    assert digest_value(pl.DataFrame(df.to_dict(as_series=False))) == d
    others = [
        df.with_columns(pl.col("i").cast(pl.Int32)),
        df.rename({"f": "g"}),
        df.with_columns(pl.col("f") * 2),
        df.with_columns(pl.col("s").fill_null("")),
        df.select(["f", "i", "s"]),
        df.head(2),
        df.with_columns(pl.col("s").cast(pl.Categorical)),
    ]
    digests = {digest_value(o) for o in others}
    assert d not in digests and len(digests) == len(others)
    assert digest_value(df["i"]) != digest_value(df["i"].rename("j"))


def test_polars_lazy_frames_are_refused() -> None:
    pl = pytest.importorskip("polars")
    with pytest.raises(UnhashableValue, match="query plan, not data.*collect"):
        digest_value(pl.DataFrame({"a": [1]}).lazy())
    with pytest.raises(UnhashableValue) as info:
        digest_value({"q": pl.DataFrame({"a": [1]}).lazy()})
    assert info.value.path == "['q']"


# -- xarray -------------------------------------------------------------------------------


def test_xarray_content_and_order() -> None:
    np = pytest.importorskip("numpy")
    xr = pytest.importorskip("xarray")
    values = _xarray_values()
    da, ds = values["data array"], values["dataset"]
    twice = ds["w"]
    assert digest_value(ds) == digest_value(xr.Dataset({"w": twice, "v": da}, attrs={"t": 1}))
    assert digest_value(da) == digest_value(da.copy(deep=True))
    others = [
        da.rename("u"),
        da.assign_coords(x=[10, 30]),
        da.rename({"y": "z"}),
        da.assign_attrs(units="km"),
        da + 1,
        da.astype(np.float64),
        da.transpose(),
    ]
    digests = {digest_value(o) for o in others}
    assert digest_value(da) not in digests and len(digests) == len(others)
    assert digest_value(ds) != digest_value(ds.assign_attrs(t=2))
    encoded = da.copy()
    encoded.encoding["dtype"] = "int16"  # how it would be stored: not content
    assert digest_value(encoded) == digest_value(da)


def test_xarray_dask_backed_values_are_refused() -> None:
    pytest.importorskip("dask.array")
    da = _xarray_values()["data array"].chunk({"x": 1})
    with pytest.raises(UnhashableValue, match="dask array.*load"):
        digest_value(da)
    assert digest_value(da.load()) == digest_value(_xarray_values()["data array"])


# -- scipy.sparse ---------------------------------------------------------------------------


def test_scipy_sparse_canonical_forms() -> None:
    np = pytest.importorskip("numpy")
    sp = pytest.importorskip("scipy.sparse")
    m = _scipy_values()["csr matrix"]
    d = digest_value(m)
    # duplicates summed and indices sorted: the same matrix
    messy = sp.csr_matrix(
        (np.array([1.0, 0.5, 2.0, 3.0]), np.array([1, 1, 0, 2]), np.array([0, 2, 3, 4])),
        shape=(3, 3),
    )
    assert not messy.has_canonical_format
    assert digest_value(messy) == d
    assert digest_value(sp.coo_matrix(m.toarray())) == digest_value(
        sp.coo_matrix(
            (m.tocoo().data[::-1], (m.tocoo().row[::-1], m.tocoo().col[::-1])), shape=(3, 3)
        )
    )
    others = [m.tocsc(), m.tocoo(), sp.csr_array(m), m * 2, m.astype(np.float32), m.tolil()]
    digests = {digest_value(o) for o in others}
    assert d not in digests and len(digests) == len(others)
    bigger = sp.csr_matrix((m.data, m.indices, m.indptr.tolist() + [3]), shape=(4, 3))
    assert digest_value(bigger) != d


# -- pydantic and attrs -----------------------------------------------------------------------


def test_pydantic_models() -> None:
    pytest.importorskip("pydantic")
    m = Model(a=1, tags=["x"])
    assert digest_value(m) == digest_value(Model(a=1, tags=["x"]))
    assert digest_value(m) != digest_value(Model(a=2, tags=["x"]))
    assert digest_value(m) != digest_value(Model(a=1, tags=["y"]))
    # which fields were given explicitly is not content
    assert digest_value(Model(a=1)) == digest_value(Model(a=1, tags=[]))

    class Other(pydantic.BaseModel):
        a: int
        tags: list = []

    assert digest_value(Other(a=1, tags=["x"])) != digest_value(m)


def test_attrs_instances() -> None:
    pytest.importorskip("attrs")
    p = Point(1, [2.5])
    assert digest_value(p) == digest_value(Point(1, [2.5]))
    assert digest_value(p) != digest_value(Point(1, [2.0]))
    assert digest_value(Plain(x="a")) != digest_value(Plain(x="b"))
    with pytest.raises(UnhashableValue) as info:
        import threading

        digest_value(Point(1, [threading.Lock()]))
    assert "lock" in str(info.value).lower()


# -- zero copy ------------------------------------------------------------------------------


@pytest.mark.parametrize("lib", ["numpy", "pyarrow", "xarray", "scipy.sparse"])
def test_large_buffers_are_not_copied(lib: str) -> None:
    """Digesting 40 MB allocates (through numpy, which tracemalloc sees) far less than
    the data: the buffers are hashed where they lie."""
    np = pytest.importorskip("numpy")
    pytest.importorskip(lib)
    data = np.arange(5_000_000, dtype=np.float64)
    if lib == "numpy":
        value = data
    elif lib == "pyarrow":
        import pyarrow as pa

        value = pa.table({"x": pa.array(data), "y": pa.array(data[::-1].copy())})
    elif lib == "xarray":
        import xarray as xr

        value = xr.DataArray(data, dims=("t",), name="x")
    else:
        import scipy.sparse as sp

        value = sp.csr_matrix(
            (data, np.arange(len(data), dtype=np.int64), np.arange(len(data) + 1, dtype=np.int64)),
            shape=(len(data), len(data)),
        )
    digest_value(value)  # registrations and first-use caches
    tracemalloc.start()
    try:
        digest_value(value)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < data.nbytes // 20, f"{peak} bytes allocated to digest {data.nbytes}"
