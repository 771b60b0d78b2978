"""The type variables of checkpointing 1.0's API, kept at their 1.0 import path."""

from typing import TypeVar

__all__ = ["ContextId", "ReturnValue"]

ReturnValue = TypeVar("ReturnValue")
"""The return value of a checkpointed function."""

ContextId = TypeVar("ContextId")
"""The key of a call, as an identifier returns it and a cache takes it."""
