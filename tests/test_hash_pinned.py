"""Pinned digests of numpy and pandas values, taken before hashing became a package.

Keys stored by earlier releases hold these digests: if a test here fails, the encoding
of a library's values changed and every stored entry holding one stops matching. Only
if that is intended, bump ``hashing.FORMAT_VERSION`` and update the table deliberately.
The values are chosen so that their encoding does not depend on the library's version
(explicit datetime units: pandas 3 infers them); the same digests hold on Python 3.9 with
numpy 2.0 and pandas 2.3 as on 3.11 with numpy 2.4 and pandas 3.1.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import Any, Dict

import pytest

from checkpointing.hashing import hexdigest_value


def numpy_values() -> Dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    return {
        "int32 arange": np.arange(12, dtype=np.int32),
        "float64 2-d": np.linspace(0.0, 1.0, 35).reshape(5, 7),
        "fortran order": np.asfortranarray(np.arange(35, dtype=np.int64).reshape(5, 7)),
        "big float64": np.linspace(0.0, 1.0, 300_000),
        "bool": np.array([True, False, True]),
        "complex128": np.array([1 + 2j, -0.5j]),
        "datetime64": np.array(["2020-01-01", "2021-06-30"], dtype="datetime64[ns]"),
        "structured": np.array([(1, 2.0), (3, 4.5)], dtype=[("a", "<i4"), ("b", "<f8")]),
        "object": np.array([1, "a", None, (1, 2)], dtype=object),
        "0-d": np.array(5, dtype=np.int64),
        "empty": np.zeros((0, 3)),
        "masked": np.ma.masked_array([1, 2, 3], mask=[0, 1, 0]),
        "unicode": np.array(["ab", "c"]),
        "scalars": [np.float64(1.0), np.int8(3), np.bool_(True), np.datetime64("2020-01-01")],
        "dtypes": [np.dtype("<f8"), np.dtype([("a", "<i4")])],
        "random": rng.integers(0, 1000, size=1000, dtype=np.int64),
    }


def pandas_values() -> Dict[str, Any]:
    import pandas as pd

    return {
        "frame, int labels": pd.DataFrame({0: [1, 2, 3], 1: [0.5, 1.5, 2.5]}, index=[7, 8, 9]),
        "series": pd.Series([1.0, 2.0], index=[10, 20], name="s"),
        "multiindex": pd.Series(
            [1, 2, 3], index=pd.MultiIndex.from_tuples([(1, 10), (1, 20), (2, 10)])
        ),
        "categorical": pd.Series(pd.Categorical([3, 1, 3])),
        "tz datetimes": pd.Series(
            pd.date_range("2020-01-01", periods=3, tz="Europe/Paris", unit="ns")
        ),
        "naive datetimes": pd.DatetimeIndex(["2020-01-01", "2020-01-02"]).as_unit("ns"),
        "range index": pd.RangeIndex(5),
        "timestamp": pd.Timestamp("2020-01-02 03:04:05"),
        "timestamp utc": pd.Timestamp("2021-01-01", tz="UTC"),
        "timedelta": pd.Timedelta(5, "s").as_unit("ns"),
        "NaT": pd.NaT,
    }


NUMPY_DIGESTS = {
    "int32 arange": "c494ddc7a4b009e3246d361b04f20e7b",
    "float64 2-d": "627e05afd361f0098b2689514e0ebd65",
    "fortran order": "17ded9a660c447ebc5fca6e07ee34045",
    "big float64": "5493c1dca2c9683845b41392fe9a42e5",
    "bool": "356ec49ded29d390407cd1264fa77f16",
    "complex128": "c1d2ef2a8acc0b4813a736dc4ed6b195",
    "datetime64": "29889b40ba61b62ac611caf3fafa1e9b",
    "structured": "7f603ee54361e123c04be929e8359389",
    "object": "babc25fd42bb04c62bb03f76f1209998",
    "0-d": "dab2a93f0fce0473b28912dbdf935411",
    "empty": "fc57ff5dea45351c31dcd64b3c204de7",
    "masked": "9e307c03444bfd65f1ed5ca238dca284",
    "unicode": "5119ec810cbb63de38754742aafaf3e0",
    "scalars": "fd6b438245924cc878c58ecc1ee65083",
    "dtypes": "c8fdc37b3594f8a80bce1741f10f8c97",
    "random": "6a16b17ea4a68f6d75a3263e1b3c5f70",
}

PANDAS_DIGESTS = {
    "frame, int labels": "8f3a0a66111fa3f08f3452d349b19af5",
    "series": "f211858761ec5f497086841cf1d77aba",
    "multiindex": "242fbe5a0f2771498913efc153beab18",
    "categorical": "2d4338c3976bca041169b63c31abba6e",
    "tz datetimes": "589d7c4228f8ef0c33a9c761dc35ced9",
    "naive datetimes": "92f5ef6f3f4eb8c0eb0a5064415a3ff2",
    "range index": "af3609e18483e0405dc720ebe2e86d5f",
    "timestamp": "bc8977837c794b4cef4916e1d149ae89",
    "timestamp utc": "424b6a2cfecb2396ce6c1f68eec52432",
    "timedelta": "ad5ca0bc13b619dce1515e8fc2883e6c",
    "NaT": "3e7b8efbc4c78358a627930f29c67e70",
}


def test_numpy_digests_are_pinned() -> None:
    pytest.importorskip("numpy")
    got = {name: hexdigest_value(value) for name, value in numpy_values().items()}
    assert got == NUMPY_DIGESTS


def test_pandas_digests_are_pinned() -> None:
    pytest.importorskip("pandas")
    got = {name: hexdigest_value(value) for name, value in pandas_values().items()}
    assert got == PANDAS_DIGESTS


@pytest.mark.e2e
def test_pinned_digests_in_a_fresh_process() -> None:
    """Another process, another hash seed, the libraries imported after checkpointing."""
    pytest.importorskip("pandas")
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
        from checkpointing.hashing import hexdigest_value
        from test_hash_pinned import numpy_values, pandas_values
        for make in (numpy_values, pandas_values):
            for name, value in make().items():
                print(name, "=", hexdigest_value(value), sep="")
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "7"},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    got = dict(line.split("=") for line in proc.stdout.splitlines())
    assert got == {**NUMPY_DIGESTS, **PANDAS_DIGESTS}
