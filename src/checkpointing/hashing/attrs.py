"""attrs: instances of ``@attr.s`` / ``@attrs.define`` classes, registered once attrs is
imported.

attrs classes have no common base class, so the digester is registered for a predicate
of types (``attrs.has(cls)``, asked once per type). An instance is its class (by its
code when the class is the project's, else by name) and every attribute attrs declares,
in declaration order, including those left out of ``__eq__`` (a function may read them);
slotted and dict classes digest alike. Without the adapter, such instances were digested
by what pickling gives, which changed with attrs' versions.
"""

from __future__ import annotations

from typing import Any

from .core import Hasher, register_digester


def digest_attrs(obj: Any, h: Hasher) -> None:
    import attr

    cls = type(obj)
    h.feed(cls)
    h.feed([(a.name, getattr(obj, a.name)) for a in attr.fields(cls)])


def register() -> None:
    """Register the digester of attrs instances (run once attrs is imported)."""
    import attr

    register_digester(attr.has, digest_attrs, feeds=True, name="attrs", per_type=True)
