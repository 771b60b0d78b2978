"""Caches shared between threads: :class:`SynchronizedCache` makes every access of a
cache under a lock (any context manager: ``threading.Lock()``, a file lock)."""

from __future__ import annotations

from typing import Any, Dict, List

from .._typing import ContextId, ReturnValue
from .base import CacheBase

__all__ = ["SynchronizedCache"]


class SynchronizedCache(CacheBase[ContextId, ReturnValue]):
    """A cache whose every access happens inside ``with lock:``.

    Args:
        cache: the cache to wrap.
        lock: a context manager, e.g. ``threading.Lock()`` or a file lock.
    """

    def __init__(self, cache: CacheBase[ContextId, ReturnValue], lock: Any) -> None:
        self.cache = cache
        self.lock = lock

    def __repr__(self) -> str:
        return f"SynchronizedCache({self.cache!r}, {self.lock!r})"

    @property  # type: ignore[override]
    def str_keys_only(self) -> bool:  # type: ignore[override]
        """That of the wrapped cache."""
        return getattr(self.cache, "str_keys_only", False)

    def save(self, context_id: ContextId, result: ReturnValue) -> None:
        """Save under the lock."""
        with self.lock:
            self.cache.save(context_id, result)

    def retrieve(self, context_id: ContextId) -> ReturnValue:
        """Retrieve under the lock."""
        with self.lock:
            return self.cache.retrieve(context_id)

    def save_entry(
        self, context_id: ContextId, result: ReturnValue, metadata: Dict[str, Any]
    ) -> None:
        """Save with metadata under the lock."""
        with self.lock:
            self.cache.save_entry(context_id, result, metadata)

    def read_metadata(self, context_id: ContextId) -> Dict[str, Any]:
        """Read metadata under the lock."""
        with self.lock:
            return self.cache.read_metadata(context_id)

    def record_history(self, function: str, entry: Dict[str, Any]) -> None:
        with self.lock:
            self.cache.record_history(function, entry)

    def history(self, function: str) -> List[Dict[str, Any]]:
        with self.lock:
            return self.cache.history(function)
