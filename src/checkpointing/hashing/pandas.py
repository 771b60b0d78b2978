"""pandas: frames, series, indexes, extension arrays and scalars, registered once pandas
is imported.

A frame is its index, its columns (an index) and each column's values; a series its
name, index and values; an index its names and values (a MultiIndex level by level).
Values of a numpy dtype are digested as arrays (zero copy where contiguous); extension
arrays by their dtype's name and their codes (categorical), ``i8`` values (datetimes
with a time zone) or objects. These encodings predate :func:`register_digester` and
stored keys depend on them: they never change.
"""

from __future__ import annotations

import sys

from .core import _TL, Hasher, UnhashableValue, _feed_at, _put_str, register_digester
from .numpy import _enc_ndarray, _enc_numpy_scalar, _feeds

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _pd_values(h: Hasher, values: Any) -> None:
    """Encode the values of a pandas column/index: a numpy or an extension array."""
    np = sys.modules["numpy"]
    pd = sys.modules["pandas"]
    if isinstance(values, np.ndarray):
        _enc_ndarray(h, values)
        return
    dtype = values.dtype
    if isinstance(dtype, np.dtype):
        _enc_ndarray(h, np.asarray(values))
        return
    _put_str(h._buf, b"E", str(dtype))
    if isinstance(dtype, pd.CategoricalDtype):
        _enc_index(h, values.categories)
        h._buf += b"T" if values.ordered else b"F"
        _enc_ndarray(h, np.asarray(values.codes))
    elif isinstance(dtype, pd.DatetimeTZDtype):
        _enc_ndarray(h, np.asarray(values.asi8))
    else:
        _enc_ndarray(h, values.to_numpy(dtype=object))


def _pd_container_values(h: Hasher, obj: Any) -> None:
    np = sys.modules["numpy"]
    if isinstance(obj.dtype, np.dtype):
        _enc_ndarray(h, obj.to_numpy(copy=False))
    else:
        _pd_values(h, obj.array)


def _enc_index(h: Hasher, idx: Any) -> None:
    pd = sys.modules["pandas"]
    buf = h._buf
    names = tuple(idx.names)
    if isinstance(idx, pd.MultiIndex):
        buf += _TL(b"<", idx.nlevels)
        _feed_at(h, names, ".names")
        for i in range(idx.nlevels):
            _pd_container_values(h, idx.get_level_values(i))
    else:
        buf += b">"
        _feed_at(h, names, ".names")
        _pd_container_values(h, idx)


def _enc_series(h: Hasher, s: Any) -> None:
    h._buf += b"^"
    _feed_at(h, s.name, ".name")
    _enc_index(h, s.index)
    try:
        _pd_container_values(h, s)
    except UnhashableValue as exc:
        exc._prepend(".values")
        raise


def _enc_dataframe(h: Hasher, df: Any) -> None:
    h._buf += b"&"
    _enc_index(h, df.index)
    _enc_index(h, df.columns)
    ncols = df.shape[1]
    h._buf += _TL(b"t", ncols)
    for i in range(ncols):
        try:
            _pd_container_values(h, df.iloc[:, i])
        except UnhashableValue as exc:
            exc._prepend(f"[{df.columns[i]!r}]")
            raise


def _enc_pd_array(h: Hasher, arr: Any) -> None:
    h._buf += b"_"
    _pd_values(h, arr)


def _enc_pd_timestamp(h: Hasher, ts: Any) -> None:
    h._buf += b"("
    _put_str(h._buf, b"s", ts.tz_localize(None).isoformat() if ts.tz else ts.isoformat())
    _feed_at(h, ts.tzinfo, ".tzinfo")


def _enc_pd_timedelta(h: Hasher, td: Any) -> None:
    h._buf += b")"
    _enc_numpy_scalar(h, td.asm8)


def _enc_pd_nat(h: Hasher, obj: Any) -> None:
    h._buf += b"*"


def register() -> None:
    """Register the encoders of pandas' containers and scalars (once pandas is imported)."""
    import pandas as pd

    def of_pandas(base: type) -> Any:
        # Only pandas' own classes: a subclass of yours is an object with its class
        # and attributes, as it was before register_digester existed.
        return lambda t: issubclass(t, base) and (t.__module__ or "").startswith("pandas")

    # Latest first: registered in the reverse of the order in which they are asked.
    for base, encoder in (
        (pd.Timedelta, _enc_pd_timedelta),
        (pd.Timestamp, _enc_pd_timestamp),
        (type(pd.NaT), _enc_pd_nat),
        (pd.api.extensions.ExtensionArray, _enc_pd_array),
        (pd.Index, _enc_index),
        (pd.Series, _enc_series),
        (pd.DataFrame, _enc_dataframe),
    ):
        register_digester(of_pandas(base), _feeds(encoder), feeds=True, name="", per_type=True)
