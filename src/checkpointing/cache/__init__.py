"""checkpointing 1.0's ``checkpointing.cache``: the caches, re-exported from
:mod:`checkpointing.store`, which implements them.

Its submodules ``base``, ``pickle_file`` and ``in_mem_lru`` are the 1.0 import paths of
the same classes.
"""

from ..store import CacheBase, InMemoryLRUCache, PickleFileCache, SynchronizedCache

__all__ = ["CacheBase", "InMemoryLRUCache", "PickleFileCache", "SynchronizedCache"]
