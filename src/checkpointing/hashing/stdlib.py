"""Encoders of standard-library values: dates and times, decimals, fractions, UUIDs,
paths, ``functools.partial`` and ``collections.defaultdict``.

These types are matched along the MRO (a subclass is identified by its class first).
Their modules are never imported here: a value of one of these types means its module
is imported, so the table is filled from ``sys.modules`` when a type is resolved
(importing them all would slow down ``import checkpointing`` by tens of milliseconds).
"""

from __future__ import annotations

import _functools  # functools.partial is this class (issue 12, target 5)
import _struct as struct  # what struct.py re-exports, without loading it (issue 12)
import sys
from _collections import defaultdict  # what collections exports, without collections

from .builtins import _enc_builtin_subclass, _enc_dict, _enc_int
from .core import Hasher, _attr_state, _class_ident, _feed_at, _put_str

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: these modules load when a value of theirs is seen
    import datetime
    import decimal
    import fractions
    import pathlib
    import uuid
    from typing import Any, Dict, Optional, Tuple

    from .core import Encoder


def _enc_defaultdict(h: Hasher, obj: defaultdict) -> None:
    h._buf += b"/"
    _feed_at(h, obj.default_factory, ".default_factory")
    _enc_builtin_subclass(_enc_dict)(h, obj)


def _enc_partial(h: Hasher, obj: _functools.partial) -> None:
    h._buf += b"j"
    _class_ident(h, type(obj))
    _feed_at(h, obj.func, ".func")
    _feed_at(h, obj.args, ".args")
    _attr_state(h, obj.keywords)


# -- Standard library values --------------------------------------------------------------


def _enc_tzinfo(h: Hasher, tz: datetime.tzinfo) -> None:
    h._buf += b"z"
    _class_ident(h, type(tz))
    key = getattr(tz, "key", None) or getattr(tz, "zone", None)
    _put_str(h._buf, b"s", key if isinstance(key, str) else str(tz))


def _enc_datetime(h: Hasher, obj: Any) -> None:  # datetime and time
    buf = h._buf
    buf += b"D" if isinstance(obj, sys.modules["datetime"].datetime) else b"H"
    _put_str(buf, b"s", obj.replace(tzinfo=None).isoformat())
    buf += b"1" if obj.fold else b"0"
    if obj.tzinfo is None:
        buf += b"N"
    else:
        _feed_at(h, obj.tzinfo, ".tzinfo")


def _enc_date(h: Hasher, obj: datetime.date) -> None:
    _put_str(h._buf, b"J", obj.isoformat())


def _enc_timedelta(h: Hasher, obj: datetime.timedelta) -> None:
    h._buf += struct.pack("<cqqq", b"Q", obj.days, obj.seconds, obj.microseconds)


def _enc_decimal(h: Hasher, obj: decimal.Decimal) -> None:
    _put_str(h._buf, b"L", str(obj))


def _enc_fraction(h: Hasher, obj: fractions.Fraction) -> None:
    h._buf += b"q"
    _enc_int(h, obj.numerator)
    _enc_int(h, obj.denominator)


def _enc_uuid(h: Hasher, obj: uuid.UUID) -> None:
    h._buf += b"V" + obj.bytes


def _enc_purepath(h: Hasher, obj: pathlib.PurePath) -> None:
    # pathlib's classes moved to pathlib._local in 3.13: identify them by name only
    _put_str(h._buf, b"h", type(obj).__name__)
    _put_str(h._buf, b"s", str(obj))


# -- The table --------------------------------------------------------------------------

# Matched along the MRO (subclasses too, identified by their class first).
_KNOWN: Dict[type, Encoder] = {
    _functools.partial: _enc_partial,
    defaultdict: _enc_defaultdict,
}

# Standard-library types by module, looked up once the module is imported.
_KNOWN_BY_MODULE: Dict[str, Tuple[Tuple[str, Encoder], ...]] = {
    "datetime": (
        ("datetime", _enc_datetime),
        ("time", _enc_datetime),
        ("date", _enc_date),
        ("timedelta", _enc_timedelta),
        ("tzinfo", _enc_tzinfo),
    ),
    "decimal": (("Decimal", _enc_decimal),),
    "fractions": (("Fraction", _enc_fraction),),
    "uuid": (("UUID", _enc_uuid),),
    "pathlib": (
        ("PurePath", _enc_purepath),
        ("PurePosixPath", _enc_purepath),
        ("PureWindowsPath", _enc_purepath),
        ("Path", _enc_purepath),
        ("PosixPath", _enc_purepath),
        ("WindowsPath", _enc_purepath),
    ),
}


def _known_encoder(t: type) -> Optional[Encoder]:
    """The encoder of the nearest standard-library type in ``t``'s MRO, if any."""
    for module_name, entries in _KNOWN_BY_MODULE.items():
        module = sys.modules.get(module_name)
        if module is None:
            continue
        for name, enc in entries:
            _KNOWN.setdefault(getattr(module, name), enc)
    for c in t.__mro__:
        enc = _KNOWN.get(c)
        if enc is not None:
            return enc if c is t else _enc_builtin_subclass(enc)
    return None
