"""Stable digests of Python values (xxh3-128), the same in every process.

This package owns the encoding of values into bytes for cache keys: every value gets a
type tag (:data:`TAGS`) and length-framed contents, so that digests are unambiguous and
never depend on ``hash()`` (randomised per process for strings) or on the order of set
iteration.

- :mod:`.core`: the framing, the :class:`Hasher`, the registries and the dispatch.
- :mod:`.builtins` and :mod:`.stdlib`: Python's own types.
- one adapter module per library (:mod:`.numpy`, :mod:`.pandas`, :mod:`.polars`,
  :mod:`.pyarrow`, :mod:`.torch`, :mod:`.xarray`, :mod:`.scipy_sparse`,
  :mod:`.pydantic`, :mod:`.attrs`), each registered through the public
  :func:`register_digester` by a :func:`register_lazy` registration that runs only once
  its library is imported: this package never imports a library itself.

Other code plugs in the same way (see ``docs/extending.md``). :mod:`checkpointing.keyplan`
registers the digesters that identify the project's functions, classes and modules by
their code; for everything else they give the bytes the defaults here give.
"""

from __future__ import annotations

from . import core
from .builtins import (  # noqa: F401  (the names of the single module this package was)
    _BUILTIN_BASES,
    _NEVER_REASON,
    _REPR_OK,
    _callable_name,
    _derived_cache,
    _derived_names,
    _enc_bigint,
    _enc_bool,
    _enc_builtin_function,
    _enc_builtin_subclass,
    _enc_bytearray,
    _enc_bytes,
    _enc_cell,
    _enc_code,
    _enc_complex,
    _enc_descriptor,
    _enc_dict,
    _enc_ellipsis,
    _enc_enum,
    _enc_float,
    _enc_frozenset,
    _enc_function,
    _enc_int,
    _enc_list,
    _enc_mappingproxy,
    _enc_memoryview,
    _enc_method,
    _enc_method_wrapper,
    _enc_module,
    _enc_never,
    _enc_none,
    _enc_notimplemented,
    _enc_plain_object,
    _enc_property,
    _enc_range,
    _enc_reduce,
    _enc_set,
    _enc_slice,
    _enc_str,
    _enc_tuple,
    _enc_type,
    _enc_wrapped_callable,
    _has_default_reduce,
    _index_of,
    _is_global_generator,
    _items,
    _never_types,
    _resolve_generic,
    _resolve_special,
    _slot_cache,
    _slot_names,
    _unordered,
    _without_derived,
)
from .core import (  # noqa: F401
    _BIG,
    _BUILTINS,
    _CLASS_DIGESTERS,
    _DISPATCH,
    _FLUSH_AT,
    _LOCK,
    _NAN,
    _PREDICATES,
    _PREFIX,
    _TD,
    _TDD,
    _TL,
    _TQ,
    _USER_TYPES,
    DIGEST_SIZE,
    FORMAT_VERSION,
    TAGS,
    Hasher,
    UnhashableValue,
    _attr_state,
    _class_ident,
    _enter,
    _feed,
    _feed_at,
    _put_str,
    _q,
    _reset_dispatch,
    _resolve,
    _resolve_fallback,
    _resolve_uncached,
    _type_name,
    _unhashable,
    _user_encoder,
    _with_predicates,
    _xxh3_128_digest,
    digest_value,
    hexdigest_value,
    register_class_digester,
    register_digester,
    register_lazy,
)
from .stdlib import (  # noqa: F401
    _KNOWN,
    _KNOWN_BY_MODULE,
    _enc_date,
    _enc_datetime,
    _enc_decimal,
    _enc_defaultdict,
    _enc_fraction,
    _enc_partial,
    _enc_purepath,
    _enc_timedelta,
    _enc_tzinfo,
    _enc_uuid,
    _known_encoder,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable


# The names of the numpy and pandas encoders, from the adapter modules, which load
# when the library is first seen (register_lazy below) or when asked for a name.
_ADAPTER_NAMES = dict.fromkeys(
    ["_dtype_key", "_enc_ndarray", "_enc_numpy_dtype", "_enc_numpy_scalar"], "numpy"
)
_ADAPTER_NAMES.update(
    dict.fromkeys(
        [
            "_enc_dataframe",
            "_enc_index",
            "_enc_pd_array",
            "_enc_pd_nat",
            "_enc_pd_timedelta",
            "_enc_pd_timestamp",
            "_enc_series",
            "_pd_container_values",
            "_pd_values",
        ],
        "pandas",
    )
)


def __getattr__(name: str) -> object:
    # Not at import (issue 12, target 5): the adapters' names, and the type aliases of
    # hashing.core (Digester, Encoder...), made at first use there.
    module = _ADAPTER_NAMES.get(name)
    if module is not None:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{module}"), name)
    return getattr(core, name)


__all__ = [
    "DIGEST_SIZE",
    "FORMAT_VERSION",
    "TAGS",
    "Hasher",
    "UnhashableValue",
    "digest_value",
    "hexdigest_value",
    "register_class_digester",
    "register_digester",
    "register_lazy",
]

core._FALLBACKS[:] = [_resolve_special, _known_encoder, _resolve_generic]


def _adapter(module: str) -> Callable[[], None]:
    """The registration of an adapter module of this package, imported when it runs."""

    def register() -> None:
        import importlib

        importlib.import_module(f"{__name__}.{module}").register()

    register.__qualname__ = register.__name__ = f"register_{module}"
    return register


# library (as in sys.modules) -> the adapter module that registers its digesters
for _library, _module in (
    ("numpy", "numpy"),
    ("pandas", "pandas"),
    ("pyarrow", "pyarrow"),
    ("polars", "polars"),
    ("torch", "torch"),
    ("xarray", "xarray"),
    ("scipy.sparse", "scipy_sparse"),
    ("pydantic", "pydantic"),
    ("attr", "attrs"),
):
    register_lazy(_library, _adapter(_module))
del _library, _module

_reset_dispatch()
