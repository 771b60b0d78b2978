"""The cache interface: what the decorator asks of any store.

:class:`CacheBase` is the small interface of checkpointing 1.0 (``save`` and
``retrieve``, raising :class:`CheckpointNotExist` on a miss), which any backend
implements; ``save_entry``/``read_metadata`` optionally keep metadata beside a result,
``record_history``/``history`` remember recent entries of a function to explain a miss.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import GenericAlias

from ..errors import CheckpointNotExist

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Generic, Iterator, List, Optional, Tuple

    from .._typing import ContextId, ReturnValue
    from .locks import SynchronizedCache
else:
    # What the type checkers see above, without importing typing at run time (issue
    # 12, target 5): ``CacheBase[str, float]`` and subclasses of it work as with
    # typing.Generic (the alias is a plain types.GenericAlias).
    ContextId = ReturnValue = None

    class Generic:
        __slots__ = ()
        __class_getitem__ = classmethod(GenericAlias)


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

    Every other method has a default that works with those two, so the decorator
    goes through the same methods for every cache; a backend overrides what it can do
    better:

    * ``read_entry`` (the hit path): the result and the run-time checks saved with it;
      by default ``retrieve`` and no checks (then set ``stores_checks`` False, the
      default, and the decorator neither records nor verifies checks);
    * ``exists``, ``save_entry``/``read_metadata`` (metadata beside each result:
      function, creation time, run time; the defaults ignore it),
      ``record_history``/``history`` (to explain a miss), ``variants``/
      ``promote_variant`` (earlier entries of a key, by their checks);
    * ``delete`` and ``entries`` (maintenance): no default can do these with ``save``
      and ``retrieve`` alone, so they raise NotImplementedError naming the fix.

    Keys are whatever the identifier returns (a str from the default identifier; any
    value a custom identifier returns and the cache accepts, as in 1.0), unless
    ``str_keys_only`` is True, as for :class:`PickleFileCache`, which names files after
    them.

    As in 1.0 it is generic in the key and the result: ``CacheBase[str, float]``.
    """

    str_keys_only: bool = False
    """True if this cache accepts only non-empty str keys (it names files after them)."""

    directory: Optional[str] = None
    """The local folder the store keeps its files in, if it has one: what a run reads
    there is the store's business, never an input of the function."""

    stores_checks: bool = False
    """True if ``save_entry`` keeps ``metadata["checks"]`` and ``read_entry`` returns them:
    then the decorator records what a run reads (files, environment) and serves a hit
    only while it is unchanged, and ``inputs=`` may be used."""

    @abstractmethod
    def save(self, context_id: ContextId, result: ReturnValue) -> None:
        """Store ``result`` under ``context_id``, replacing any previous entry."""

    @abstractmethod
    def retrieve(self, context_id: ContextId) -> ReturnValue:
        """Return the result stored under ``context_id``; raise CheckpointNotExist if none."""

    def read_entry(self, key: ContextId) -> Tuple[ReturnValue, Any]:
        """(result, checks) stored under ``key``: the result and the run-time
        checks saved in its metadata (None if none), which the caller verifies before
        using the result. By default ``retrieve`` and no checks.

        Raises:
            CheckpointNotExist: no entry (or one that cannot be read).
        """
        return self.retrieve(key), None

    def exists(self, key: ContextId) -> bool:
        """Is there an entry under ``key``? By default ``retrieve`` tells."""
        try:
            self.retrieve(key)
        except CheckpointNotExist:
            return False
        return True

    def delete(self, key: ContextId) -> bool:
        """Remove the entry of ``key``; False if there was none.

        Raises:
            NotImplementedError: this cache cannot delete (the 1.0 interface has no
                such method); implement ``delete``.
        """
        raise NotImplementedError(
            f"{type(self).__name__} cannot delete entries: implement delete(key) -> bool in it"
        )

    def entries(self) -> Iterator[ContextId]:
        """The keys of every entry stored.

        Raises:
            NotImplementedError: this cache cannot list its entries (the 1.0 interface
                has no such method); implement ``entries``.
        """
        raise NotImplementedError(
            f"{type(self).__name__} cannot list its entries: implement entries() "
            f"(an iterator of keys) in it"
        )

    def variants(self, key: ContextId) -> List[Tuple[Any, Any]]:
        """(handle, checks) of earlier entries kept for ``key`` that differ from
        its entry only in their run-time checks, newest first; by default none."""
        return []

    def promote_variant(self, key: ContextId, handle: Any) -> None:
        """Make the variant ``handle`` (from :meth:`variants`) the entry of
        ``key`` again. Never called by default (there are no variants)."""
        raise NotImplementedError(f"{type(self).__name__} keeps no variants")

    def save_entry(self, key: ContextId, result: ReturnValue, metadata: Dict[str, Any]) -> None:
        """Store ``result`` with ``metadata``; by default the metadata is dropped."""
        self.save(key, result)

    def read_metadata(self, key: ContextId) -> Dict[str, Any]:
        """The metadata stored with an entry; by default none is: CheckpointNotExist."""
        raise CheckpointNotExist(key)

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
