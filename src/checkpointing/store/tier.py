"""The memory tier: recently read or written entries of this process, kept as their
verified bytes, served again after one ``lstat`` shows their file unchanged (see
:class:`MemoryTier`). It sits in front of the local store
(:class:`~checkpointing.store.files.PickleFileCache`), which decides what it may keep.
"""

from __future__ import annotations

import _functools  # functools' partial, without functools (issue 12, target 5)
import _thread  # threading's locks, without threading
import os
from _collections import OrderedDict  # what collections exports, without collections

from ..config import defaults

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Optional, Sequence, Tuple

try:
    from _collections import _tuplegetter  # a named tuple's field: what namedtuple uses
except ImportError:  # an interpreter without it
    from operator import itemgetter

    def _tuplegetter(index: int, doc: str) -> Any:
        return property(itemgetter(index), doc=doc)


__all__ = ["MEMORY", "MemoryTier", "Remembered", "file_identity"]

_lstat = os.lstat  # a global less to look up on every hit


def file_identity(status: "os.stat_result") -> Tuple[int, int, int, int, int]:
    """What must not change for remembered bytes to still be the file's."""
    return (status.st_mtime_ns, status.st_ctime_ns, status.st_ino, status.st_size, status.st_dev)


class Remembered(tuple):
    """The verified content of one entry file, as the hit path needs it. A named tuple,
    written out: :func:`collections.namedtuple` would load collections at import
    (issue 12, target 5)."""

    __slots__ = ()
    _fields = ("identity", "secret", "data", "buffers", "checks", "size")

    if TYPE_CHECKING:
        identity: Tuple[int, int, int, int, int]
        secret: Optional[bytes]
        data: bytes
        buffers: Tuple[bytes, ...]
        checks: Any
        size: int
    else:
        identity = _tuplegetter(0, "file_identity() of the file")
        secret = _tuplegetter(1, "the secret it was verified or signed with; None: trust")
        data = _tuplegetter(2, "the pickle stream")
        buffers = _tuplegetter(3, "out-of-band buffers, copied into bytearrays per hit")
        checks = _tuplegetter(4, "the run-time checks stored with the entry, None if none")
        size = _tuplegetter(5, "bytes held")

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in zip(self._fields, self))
        return f"Remembered({fields})"


# Remembered((fields...)) without a Python-level __new__.
_new_remembered = _functools.partial(tuple.__new__, Remembered)


class MemoryTier:
    """The memory tier: entries recently read or written by this process, kept as
    their verified bytes, so that a repeated hit costs one ``lstat`` instead of a file
    read.

    A hit is served from memory only while the entry file is the very file those bytes
    came from: the ``lstat`` of its path gives the same device, inode, size, mtime and
    ctime (nanoseconds) as when they were read or written. A replaced entry is a new
    inode (a save writes a temporary file, created while the old entry still exists,
    and renames it over the entry); a rewrite in place, a ``touch``, a ``chmod`` or a
    ``chown`` changes the mtime or the ctime, which no user can set back; a deleted
    entry fails the ``lstat``. Any of these sends the read to the file, with all its
    checks. Bytes verified under one secret are served only to a cache with the same
    secret (or none, for both).

    What is kept is the pickle stream and the out-of-band buffers, never the unpickled
    object: each hit unpickles a fresh copy (buffers copied too), so a caller that
    mutates its result does not change the next one's. Bounded by bytes
    (``defaults["cache.memory_bytes"]``), the least recently used dropped first; an
    entry larger than a quarter of the bound is not kept (it would evict the rest, and
    copying it costs about what reading it from the page cache does). Thread-safe.
    """

    def __init__(self, limit: Callable[[], int]) -> None:
        self._limit = limit  # the bound in bytes, read at each put (a setting may change)
        # path -> Remembered, least recently used first. The store's hit path
        # (PickleFileCache.read_entry) makes the checks above and moves an entry to the
        # end itself: a call less on every warm hit (issue 12, target 4).
        self.entries: "OrderedDict[str, Remembered]" = OrderedDict()
        self._bytes = 0
        self._lock = _thread.allocate_lock()

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def nbytes(self) -> int:
        """Bytes held now."""
        return self._bytes

    def put(
        self,
        path: str,
        secret: Optional[bytes],
        status: "os.stat_result",
        data: Any,
        buffers: Sequence[Any],
        checks: Any,
    ) -> None:
        """Remember the content of ``path``, verified (or written) under ``secret``,
        whose ``fstat`` (on the descriptor it was read from or written to, after the
        rename) is ``status``."""
        # Most entries have no out-of-band buffer: no generator made for them (a new
        # process's first hit runs each line here once; issue 12, target 5).
        size = memoryview(data).nbytes
        if buffers:
            size += sum(memoryview(b).nbytes for b in buffers)
        max_bytes = self._limit()
        if size * 4 > max_bytes:
            self.forget(path)
            return
        remembered = _new_remembered(
            (
                (
                    status.st_mtime_ns,
                    status.st_ctime_ns,
                    status.st_ino,
                    status.st_size,
                    status.st_dev,
                ),  # file_identity(status), inlined
                secret,
                bytes(data),
                tuple(bytes(b) for b in buffers) if buffers else (),
                checks,
                size,
            )
        )
        with self._lock:
            old = self.entries.pop(path, None)
            if old is not None:
                self._bytes -= old.size
            self.entries[path] = remembered
            self._bytes += size
            while self._bytes > max_bytes and self.entries:
                _, dropped = self.entries.popitem(last=False)
                self._bytes -= dropped.size

    def forget(self, path: str) -> None:
        """Drop what is remembered of ``path`` (written, deleted or found changed)."""
        if path not in self.entries:  # (every save asks: most paths are not there)
            return
        with self._lock:
            old = self.entries.pop(path, None)
            if old is not None:
                self._bytes -= old.size

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()
            self._bytes = 0


MEMORY = MemoryTier(lambda: defaults["cache.memory_bytes"])
"""The memory tier of this process, shared by every cache (see :class:`MemoryTier`)."""
