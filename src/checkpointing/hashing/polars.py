"""polars: data frames and series, registered once polars is imported; lazy frames are
refused.

A frame is its schema (column names and polars dtypes), its height and each column; a
series its name, dtype and values. Values go through arrow (``Series.to_arrow()``, which
polars hands over without copying numeric columns) and are digested as the pyarrow
adapter digests a column (:func:`.pyarrow.feed_column`): independently of chunks, with
null slots neutralised. A column of Python objects (dtype ``Object``) is digested by its
Python values.

A ``LazyFrame`` is a query plan, not data: what it yields depends on the files and
sources it reads when collected, so no digest of it can say when a result is stale. It
raises :class:`UnhashableValue` with that reason: collect it and pass the frame, or pass
what it reads.
"""

from __future__ import annotations

from typing import Any

from .core import Hasher, UnhashableValue, _type_name, register_digester
from .pyarrow import feed_column


def digest_series(series: Any, h: Hasher) -> None:
    h.feed_str(series.name)
    dtype = str(series.dtype)
    if dtype.startswith("Object"):
        h.feed_str(dtype)
        h.feed(series.to_list())
        return
    feed_column(h, series.to_arrow(), type_name=dtype)


def digest_frame(frame: Any, h: Hasher) -> None:
    h.feed([(name, str(dtype)) for name, dtype in frame.schema.items()])
    h.feed(frame.height)
    for series in frame.get_columns():
        digest_series(series, h)


def refuse_lazy(frame: Any, h: Hasher) -> None:
    raise UnhashableValue(
        _type_name(type(frame)),
        "",
        "a LazyFrame is a query plan, not data (what it yields depends on what it reads "
        "when collected); pass frame.collect(), or the paths and values it reads",
    )


def register() -> None:
    """Register the digesters of polars' types (run once polars is imported)."""
    import polars as pl

    register_digester(pl.DataFrame, digest_frame, feeds=True, name="polars.DataFrame")
    register_digester(pl.Series, digest_series, feeds=True, name="polars.Series")
    register_digester(pl.LazyFrame, refuse_lazy, feeds=True, name="polars.LazyFrame")
