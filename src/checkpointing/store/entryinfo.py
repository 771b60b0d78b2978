"""What a listing of the local store gives for each entry (:class:`EntryInfo`).

Its own module: a named tuple loads :mod:`collections`, which a hit or a miss never
needs, only a listing (``checkpointing ls``, ``func.entries()``, pruning) does
(issue 12, target 5).
"""

from __future__ import annotations

from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, NamedTuple

    _EntryFields = NamedTuple(
        "EntryInfo", [("key", str), ("path", str), ("size", int), ("metadata", Dict[str, Any])]
    )
else:
    # The same without importing typing at run time.
    _EntryFields = namedtuple("EntryInfo", "key path size metadata")

__all__ = ["EntryInfo"]


class EntryInfo(_EntryFields):
    """One stored entry, as listed by :meth:`PickleFileCache.iter_entries`.

    Attributes:
        key: the key it was saved under.
        path: the absolute path of its file.
        size: the file's size in bytes.
        metadata: its header (the caller's metadata and the store's own keys).
    """

    __slots__ = ()

    @property
    def context_id(self) -> str:
        """The key, by its name in the 1.0 signatures (``save(context_id, result)``)."""
        return self.key


EntryInfo.__module__ = "checkpointing.store.files"  # where it was defined, for pickles
