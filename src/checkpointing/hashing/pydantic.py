"""pydantic: models (version 2's ``BaseModel``), registered once pydantic is imported.

A model is its class (by its code when the class is the project's, else by name, as any
object's class) and its fields in declaration order, then its extra fields (models that
allow them) sorted by name. Not content, and left out: which fields were set explicitly
(``model_fields_set``), private attributes, and computed fields (derived from the
fields). Field values are digested as any value.
"""

from __future__ import annotations

from typing import Any

from .core import Hasher, register_digester


def digest_model(model: Any, h: Hasher) -> None:
    cls = type(model)
    h.feed(cls)
    fields = getattr(cls, "__pydantic_fields__", None) or cls.model_fields
    h.feed([(name, getattr(model, name)) for name in fields])
    extra = getattr(model, "__pydantic_extra__", None) or {}
    h.feed(sorted(extra.items()))


def register() -> None:
    """Register the digester of models (run once pydantic is imported)."""
    import pydantic

    if not pydantic.VERSION.startswith("1."):
        register_digester(pydantic.BaseModel, digest_model, feeds=True, name="pydantic.BaseModel")
