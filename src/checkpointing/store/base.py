"""The cache interface: what the decorator asks of any store.

:class:`CacheBase` is the small interface of checkpointing 1.0 (``save`` and
``retrieve``, raising :class:`CheckpointNotExist` on a miss), which any backend
implements; ``save_entry``/``read_metadata`` optionally keep metadata beside a result,
``record_history``/``history`` remember recent entries of a function to explain a miss.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Dict, Generic, List

from .._typing import ContextId, ReturnValue
from ..errors import CheckpointNotExist

if TYPE_CHECKING:
    from .locks import SynchronizedCache

__all__ = ["CacheBase"]


class CacheBase(ABC, Generic[ContextId, ReturnValue]):
    """Stores results by key. Implement ``save`` and ``retrieve`` (the 1.0 interface).

    A dict-backed cache needs nothing more::

        class MemoryCache(CacheBase):
            def __init__(self):
                self.results = {}
            def save(self, context_id, result):
                self.results[context_id] = result
            def retrieve(self, context_id):
                try:
                    return self.results[context_id]
                except KeyError:
                    raise CheckpointNotExist(context_id) from None

    ``save_entry`` and ``read_metadata`` let a backend keep metadata beside each
    result (function, creation time, run time); the defaults ignore it.

    Keys are whatever the identifier returns (a str from the default identifier; any
    value a custom identifier returns and the cache accepts, as in 1.0), unless
    ``str_keys_only`` is True, as for :class:`PickleFileCache`, which names files after
    them.

    As in 1.0 it is generic in the key and the result: ``CacheBase[str, float]``.
    """

    str_keys_only: bool = False
    """True if this cache accepts only non-empty str keys (it names files after them)."""

    @abstractmethod
    def save(self, context_id: ContextId, result: ReturnValue) -> None:
        """Store ``result`` under ``context_id``, replacing any previous entry."""

    @abstractmethod
    def retrieve(self, context_id: ContextId) -> ReturnValue:
        """Return the result stored under ``context_id``; raise CheckpointNotExist if none."""

    def save_entry(
        self, context_id: ContextId, result: ReturnValue, metadata: Dict[str, Any]
    ) -> None:
        """Store ``result`` with ``metadata``; by default the metadata is dropped."""
        self.save(context_id, result)

    def read_metadata(self, context_id: ContextId) -> Dict[str, Any]:
        """The metadata stored with an entry; by default none is: CheckpointNotExist."""
        raise CheckpointNotExist(context_id)

    def record_history(self, function: str, entry: Dict[str, Any]) -> None:
        """Remember a new entry of ``function`` (its key and fingerprint), so that a
        later miss can say what changed. Backends without history ignore it."""

    def history(self, function: str) -> List[Dict[str, Any]]:
        """The most recent entries recorded for ``function``, oldest first."""
        return []

    def synchronize_with(self, lock: Any) -> "SynchronizedCache[ContextId, ReturnValue]":
        """This cache with every access made under ``lock`` (any context manager)."""
        from .locks import SynchronizedCache

        return SynchronizedCache(self, lock)
