"""xarray: datasets, data arrays and variables, registered once xarray is imported.

A variable is its dimension names, its attributes (sorted by name) and its values as a
numpy array (digested by the numpy adapter: zero copy where contiguous); a data array
its name, variable and coordinates; a dataset its data variables, coordinates and
attributes. Variables and coordinates are taken sorted by name, so that two datasets
built in another order digest alike (as ``Dataset.identical`` compares them).

Not content, and left out: ``encoding`` (how a variable was or will be stored on disk)
and the in-memory indexes (rebuilt from the coordinates). A variable read lazily from a
file (not dask) is read to be digested. A variable backed by a dask array is a plan of
computation, not data: it raises :class:`UnhashableValue` (``.load()`` or ``.compute()``
it first, or pass what it is computed from).
"""

from __future__ import annotations

from typing import Any, Mapping

from .core import Hasher, UnhashableValue, _type_name, register_digester


def _sorted_items(mapping: Mapping[Any, Any]) -> list:
    return [(key, mapping[key]) for key in sorted(mapping, key=str)]


def digest_variable(var: Any, h: Hasher) -> None:
    if var.chunks is not None:
        raise UnhashableValue(
            _type_name(type(var)),
            "",
            "it is backed by a dask array (a plan of computation, not data): "
            "pass it .load()ed or .compute()d, or what it is computed from",
        )
    h.feed(tuple(var.dims))
    h.feed(_sorted_items(var.attrs))
    h.feed(var.values)


def _feed_coords(h: Hasher, coords: Mapping[Any, Any]) -> None:
    items = _sorted_items(coords)
    h.feed(len(items))
    for name, coord in items:
        h.feed(name)
        digest_variable(coord.variable, h)


def digest_data_array(array: Any, h: Hasher) -> None:
    h.feed(array.name)
    digest_variable(array.variable, h)
    _feed_coords(h, array.coords)


def digest_dataset(ds: Any, h: Hasher) -> None:
    items = _sorted_items(ds.data_vars)
    h.feed(len(items))
    for name, array in items:
        h.feed(name)
        digest_variable(array.variable, h)
    _feed_coords(h, ds.coords)
    h.feed(_sorted_items(ds.attrs))


def register() -> None:
    """Register the digesters of xarray's types (run once xarray is imported)."""
    import xarray as xr

    register_digester(xr.Variable, digest_variable, feeds=True, name="xarray.Variable")
    register_digester(xr.DataArray, digest_data_array, feeds=True, name="xarray.DataArray")
    register_digester(xr.Dataset, digest_dataset, feeds=True, name="xarray.Dataset")
