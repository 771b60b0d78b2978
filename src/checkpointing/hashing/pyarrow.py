"""pyarrow: tables, record batches, arrays (chunked or not), schemas and scalars,
registered once pyarrow is imported.

A table (or record batch) is its schema (field names, types, nullability; not the
schema's metadata, which pyarrow and pandas fill with their versions) and its columns.
A column is its type, length and null count, then its values as streams that do not
depend on how the column is split into chunks (a table read in row groups digests as
the same table in one chunk; a sliced array as the slice):

- fixed-width values (integers, floats, dates and times, decimals, fixed-size binary):
  the bytes of the values, hashed where they lie (zero copy); with nulls, a copy in
  which null slots are zeroed, and the validity as one byte per value;
- strings and binaries: the length of each value, then the bytes of all values (hashed
  where they lie); with nulls, a copy in which null slots are empty;
- booleans: one byte per value (a copy: arrow packs them in bits);
- dictionaries: decoded (a copy); string and binary views: cast to large strings;
- anything else (lists, structs, maps, unions, extension types): the Python values of
  ``to_pylist()``, slow but exact.

The polars adapter digests its columns with :func:`feed_column`.
"""

from __future__ import annotations

from typing import Any, List, Optional

from .core import Hasher, register_digester


def feed_column(h: Hasher, column: Any, type_name: Optional[str] = None) -> None:
    """Feed an arrow ``Array`` or ``ChunkedArray`` into ``h``, independently of its chunks.

    ``type_name`` replaces the arrow type's name in the digest (polars gives its own).
    """
    import pyarrow as pa

    chunks: List[Any] = list(column.chunks) if isinstance(column, pa.ChunkedArray) else [column]
    typ = column.type
    h.feed_str(str(typ) if type_name is None else type_name)
    h.feed(len(column))
    nulls = column.null_count
    h.feed(nulls)
    if pa.types.is_dictionary(typ):
        chunks = [c.dictionary_decode() for c in chunks]
        typ = typ.value_type
    if _is_view(pa, typ):
        large = pa.large_binary() if pa.types.is_binary_view(typ) else pa.large_string()
        chunks = [c.cast(large) for c in chunks]
        typ = large
    if len(column) == 0:
        return
    if nulls:
        h.feed_buffers(_validity(c) for c in chunks)
    if pa.types.is_boolean(typ):
        h.feed_buffers(_booleans(pa, c) for c in chunks)
    elif _fixed_width(pa, typ):
        h.feed_buffers(_fixed_values(c, typ.byte_width) for c in chunks)
    elif _variable_width(pa, typ):
        parts = [_variable_values(pa, c, typ) for c in chunks]
        h.feed_buffers(lengths for lengths, _ in parts)
        h.feed_buffers(data for _, data in parts)
    else:
        values: List[Any] = []
        for c in chunks:
            values.extend(c.to_pylist())
        h.feed(values)


def _is_view(pa: Any, typ: Any) -> bool:
    is_string_view = getattr(pa.types, "is_string_view", None)
    is_binary_view = getattr(pa.types, "is_binary_view", None)
    return bool(
        is_string_view is not None
        and (is_string_view(typ) or (is_binary_view is not None and is_binary_view(typ)))
    )


def _fixed_width(pa: Any, typ: Any) -> bool:
    t = pa.types
    return (
        t.is_integer(typ)
        or t.is_floating(typ)
        or t.is_temporal(typ)
        or t.is_decimal(typ)
        or t.is_fixed_size_binary(typ)
    ) and typ.bit_width % 8 == 0


def _variable_width(pa: Any, typ: Any) -> bool:
    t = pa.types
    return t.is_string(typ) or t.is_binary(typ) or t.is_large_string(typ) or t.is_large_binary(typ)


def _validity(chunk: Any) -> Any:
    import numpy as np

    return np.ascontiguousarray(chunk.is_valid().to_numpy(zero_copy_only=False), dtype=np.uint8)


def _booleans(pa: Any, chunk: Any) -> Any:
    import numpy as np

    if chunk.null_count:
        chunk = chunk.fill_null(False)
    return np.ascontiguousarray(chunk.to_numpy(zero_copy_only=False), dtype=np.uint8)


def _fixed_values(chunk: Any, width: int) -> Any:
    """The bytes of a fixed-width chunk's values (its slice), null slots zeroed."""
    buffer = chunk.buffers()[1]
    if buffer is None:  # no values at all (every slot null)
        return bytes(len(chunk) * width)
    start = chunk.offset * width
    view = memoryview(buffer)[start : start + len(chunk) * width]
    if not chunk.null_count:
        return view
    import numpy as np

    values = np.frombuffer(view, dtype=np.uint8).reshape(len(chunk), width).copy()
    values[~chunk.is_valid().to_numpy(zero_copy_only=False)] = 0
    return values


def _variable_values(pa: Any, chunk: Any, typ: Any) -> Any:
    """(lengths as int64, the bytes of the values) of a string or binary chunk."""
    import numpy as np

    if chunk.null_count:
        empty = "" if pa.types.is_string(typ) or pa.types.is_large_string(typ) else b""
        chunk = chunk.fill_null(pa.scalar(empty, type=typ))
    offset_type = (
        np.int64 if pa.types.is_large_string(typ) or pa.types.is_large_binary(typ) else np.int32
    )
    buffers = chunk.buffers()
    offsets = np.frombuffer(buffers[1], dtype=offset_type)[
        chunk.offset : chunk.offset + len(chunk) + 1
    ]
    lengths = np.diff(offsets).astype(np.int64)
    data = memoryview(buffers[2]) if buffers[2] is not None else memoryview(b"")
    return lengths, data[int(offsets[0]) : int(offsets[-1])]


def _feed_schema(h: Hasher, schema: Any) -> None:
    h.feed([(f.name, str(f.type), f.nullable) for f in schema])


def digest_table(table: Any, h: Hasher) -> None:
    """A table or record batch: schema, row count, then each column."""
    _feed_schema(h, table.schema)
    h.feed(table.num_rows)
    for column in table.columns:
        feed_column(h, column)


def digest_array(array: Any, h: Hasher) -> None:
    """An array or chunked array: the same digest for the same values, however chunked."""
    feed_column(h, array)


def digest_schema(schema: Any, h: Hasher) -> None:
    _feed_schema(h, schema)


def digest_scalar(scalar: Any, h: Hasher) -> None:
    h.feed_str(str(scalar.type))
    h.feed(scalar.as_py())


def register() -> None:
    """Register the digesters of pyarrow's types (run once pyarrow is imported)."""
    import pyarrow as pa

    register_digester(pa.Table, digest_table, feeds=True, name="pyarrow.Table")
    register_digester(pa.RecordBatch, digest_table, feeds=True, name="pyarrow.RecordBatch")
    register_digester(pa.Array, digest_array, feeds=True, name="pyarrow.Array")
    register_digester(pa.ChunkedArray, digest_array, feeds=True, name="pyarrow.Array")
    register_digester(pa.Schema, digest_schema, feeds=True, name="pyarrow.Schema")
    register_digester(pa.Scalar, digest_scalar, feeds=True, name="pyarrow.Scalar")
