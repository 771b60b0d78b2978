"""checkpointing 1.0's ``checkpointing.cache.base`` (re-exports; see :mod:`checkpointing.store`)."""

from typing import TypeVar

from .._typing import ContextId, ReturnValue
from ..errors import CheckpointNotExist
from ..store import CacheBase, SynchronizedCache

__all__ = [
    "CacheBase",
    "CacheSubclass",
    "CheckpointNotExist",
    "ContextId",
    "ReturnValue",
    "SynchronizedCache",
]

CacheSubclass = TypeVar("CacheSubclass", bound=CacheBase)
