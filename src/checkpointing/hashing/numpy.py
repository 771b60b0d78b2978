"""numpy: arrays, scalars and dtypes, registered once numpy is imported.

An array is its dtype (``dtype.str``, or the field list of a structured dtype), its shape
and its bytes in C order: a C-contiguous array is hashed where it lies (zero copy), any
other layout is copied once into C order (a transposed or strided view). Object arrays
are encoded element by element. A subclass (masked array, matrix) adds its class and
its attributes. These encodings predate :func:`register_digester` (``name=""``: they
begin with tags of their own), and stored keys depend on them: they never change.
"""

from __future__ import annotations

import sys

from .core import (
    _TL,
    Hasher,
    UnhashableValue,
    _attr_state,
    _class_ident,
    _enter,
    _feed,
    _put_str,
    _q,
    register_digester,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .core import Encoder, Feeder


def _dtype_key(dt: Any) -> str:
    if dt.fields is None and dt.subdtype is None:
        return dt.str
    return repr(dt.descr)


def _enc_ndarray(h: Hasher, arr: Any) -> None:
    np = sys.modules["numpy"]
    if type(arr) is not np.ndarray:
        # subclasses (masked arrays, matrices): class + data + attributes
        if not _enter(h, arr):
            return
        try:
            h._buf += b"<"
            _class_ident(h, type(arr))
            _enc_ndarray(h, arr.view(np.ndarray))
            _attr_state(h, dict(getattr(arr, "__dict__", None) or ()))
        finally:
            del h._active[id(arr)]
        return
    buf = h._buf
    dt = arr.dtype
    _put_str(buf, b"A", _dtype_key(dt))
    buf += _TL(b"t", arr.ndim)
    for dim in arr.shape:
        buf += _q(dim)
    if dt.hasobject:
        flat = arr.ravel(order="C")
        if dt.fields is not None:
            flat = flat.tolist()
        buf += _TL(b"l", len(flat))
        for i, x in enumerate(flat):
            try:
                _feed(h, x)
            except UnhashableValue as exc:
                index = np.unravel_index(i, arr.shape) if arr.ndim else ()
                exc._prepend("[" + ", ".join(str(int(j)) for j in index) + "]")
                raise
        return
    n = arr.nbytes
    buf += _TL(b"b", n)
    if n == 0:
        return
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    data = arr.reshape(-1).view(np.uint8)
    if n <= 4096:
        buf += memoryview(data)
    else:
        h._write_large(data)


def _enc_numpy_scalar(h: Hasher, obj: Any) -> None:
    dt = obj.dtype
    if dt.hasobject:
        _feed(h, obj.item())
        return
    _put_str(h._buf, b"a", _dtype_key(dt))
    data = obj.tobytes()
    h._buf += _TL(b"b", len(data))
    h._buf += data


def _enc_numpy_dtype(h: Hasher, obj: Any) -> None:
    _put_str(h._buf, b"k", _dtype_key(obj))


def _feeds(encoder: Encoder) -> Feeder:
    def feed(value: Any, h: Hasher) -> None:
        encoder(h, value)

    feed.__qualname__ = feed.__name__ = encoder.__name__.replace("_enc_", "digest_")
    return feed


def register() -> None:
    """Register the encoders of arrays, scalars and dtypes (run once numpy is imported)."""
    import numpy as np

    # By type predicate: an ndarray subclass (a masked array) is encoded by
    # ``_enc_ndarray`` with its class, as before register_digester existed, and a type
    # you register for numpy (nearest in the MRO) still wins.
    register_digester(
        lambda t: issubclass(t, np.dtype),
        _feeds(_enc_numpy_dtype),
        feeds=True,
        name="",
        per_type=True,
    )
    register_digester(
        lambda t: issubclass(t, np.generic),
        _feeds(_enc_numpy_scalar),
        feeds=True,
        name="",
        per_type=True,
    )
    register_digester(
        lambda t: issubclass(t, np.ndarray),
        _feeds(_enc_ndarray),
        feeds=True,
        name="",
        per_type=True,
    )
