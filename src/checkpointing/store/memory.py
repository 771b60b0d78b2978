"""Results kept in this process's memory: checkpointing 1.0's in-memory LRU cache."""

from __future__ import annotations

import _thread  # threading's locks, without threading (issue 12, target 5)
from collections import OrderedDict

from ..errors import CheckpointNotExist, ConfigurationError
from .base import CacheBase

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterator, Optional

    from .._typing import ContextId, ReturnValue
else:
    from .base import ContextId, ReturnValue  # stand-ins (see there)

__all__ = ["InMemoryLRUCache"]


class InMemoryLRUCache(CacheBase[ContextId, ReturnValue]):
    """Results kept in this process's memory, the least recently used dropped first.

    The in-memory cache of checkpointing 1.0, with its semantics: a hit returns the
    very object that was saved (no copy: mutating it changes later hits), nothing is
    shared between processes or kept after exit, and any hashable key is accepted (a
    custom identifier may return a tuple). Safe to use from several threads.

    Args:
        maxsize: the most entries kept; when a save goes over it, the entry used least
            recently is dropped. ``None``: no limit.

    Raises:
        ConfigurationError: ``maxsize`` is not None or an int >= 0 (0 keeps nothing,
            as in 1.0).
    """

    def __init__(self, maxsize: Optional[int] = None) -> None:
        if maxsize is not None and (
            isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 0
        ):
            raise ConfigurationError(
                f"InMemoryLRUCache(maxsize={maxsize!r}): maxsize must "
                f"be an int >= 0, or None for no limit"
            )
        self.maxsize = maxsize
        self._entries: "OrderedDict[ContextId, ReturnValue]" = OrderedDict()
        self._lock = _thread.allocate_lock()

    def __repr__(self) -> str:
        return f"InMemoryLRUCache(maxsize={self.maxsize!r})"

    def __len__(self) -> int:
        return len(self._entries)

    def save(self, context_id: ContextId, result: ReturnValue) -> None:
        """Keep ``result`` under ``context_id``, as the most recently used entry."""
        with self._lock:
            self._entries[context_id] = result
            self._entries.move_to_end(context_id)
            if self.maxsize is not None and len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def retrieve(self, context_id: ContextId) -> ReturnValue:
        """The result kept under ``context_id`` (now the most recently used); raise
        CheckpointNotExist if there is none."""
        with self._lock:
            try:
                self._entries.move_to_end(context_id)
            except KeyError:
                raise CheckpointNotExist(context_id) from None
            return self._entries[context_id]

    def exists(self, key: ContextId) -> bool:
        """Is a result kept under ``key``? (Not counted as a use.)"""
        with self._lock:
            return key in self._entries

    def delete(self, key: ContextId) -> bool:
        """Drop the result kept under ``key``; False if there was none."""
        with self._lock:
            return self._entries.pop(key, _NONE) is not _NONE

    def entries(self) -> Iterator[ContextId]:
        """The keys kept, least recently used first."""
        with self._lock:
            return iter(list(self._entries))


_NONE = object()


# Documented and pickled under its public name however it is first reached (the
# package loads this module at first use: checkpointing.__getattr__).
InMemoryLRUCache.__module__ = "checkpointing"
