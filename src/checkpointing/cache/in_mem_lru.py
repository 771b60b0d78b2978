"""checkpointing 1.0's ``checkpointing.cache.in_mem_lru`` (re-exports; see
:mod:`checkpointing.store`)."""

from .._typing import ContextId, ReturnValue
from ..errors import CheckpointNotExist
from ..store import CacheBase, InMemoryLRUCache

__all__ = ["CacheBase", "CheckpointNotExist", "ContextId", "InMemoryLRUCache", "ReturnValue"]
