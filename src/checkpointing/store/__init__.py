"""Where results live: the cache interface and the crash-safe local file store.

The package owns the stored format and nothing else: it does not know how keys are
computed (:mod:`checkpointing.identify`) nor what to do when caching fails
(:mod:`checkpointing.decorator`). One module per responsibility:

* :mod:`.base`: :class:`CacheBase`, the interface any backend implements (1.0's
  ``save``/``retrieve``, and the optional metadata and history methods);
* :mod:`.format`: the bytes of an entry (header, checksum, signature, layout), with no
  disk: :func:`~.format.encode`/:func:`~.format.decode`;
* :mod:`.fileio`: atomic writes, regular-file opens, private folders, trust of files;
* :mod:`.files`: :class:`PickleFileCache`, the local directory (the default store);
  :mod:`.variants` and :mod:`.history` are its variants of a key and history of a
  function;
* :mod:`.memory`: :class:`InMemoryLRUCache`; :mod:`.locks`: :class:`SynchronizedCache`
  and the compute-once locks of a key (OS file locks, leases on object stores);
* :mod:`.tier`: the memory tier in front of the local store (recently used entries,
  served after one ``lstat``);
* :mod:`.remote`: :class:`~.remote.RemoteStore`, the cache on any fsspec file system
  (S3, GCS, Azure), served through a local tier; :func:`~.remote.open_store` picks the
  store of a directory or URL;
* :mod:`.evict`: the library's record of use (last used, hits, misses), the size limit
  and ``prune``; :mod:`.mapped`: hits memory-mapped from the entry (``mmap_mode=``);
  :mod:`.compress`: compressed results (``compress=``), outside the entry format.

Everything that was importable from the single ``checkpointing.store`` module is still
importable from here (the names below the public ones are for the command line and the
tests).
"""

from .base import CacheBase
from .fileio import (
    _COALESCE,
    _DIR_FLAGS,
    _OTHERS_WRITE,
    _POSIX_OWNERS,
    _READ_FLAGS,
    _TEMP_FLAGS,
    _TEMP_PREFIX,
    STALE_TEMP_SECONDS,
    _atomic_write,
    _create_temporary,
    _folder_problem,
    _fsync_folder,
    _locked,
    _make_private_folder,
    _open_regular,
    _read_header,
    _read_regular,
    _remove_tree,
    _unlink_in,
    _write_all,
    _write_entry,
    read_trusted_file,
    write_private_file,
)
from .files import CACHEDIR_TAG, FSYNC_AFTER_SECONDS, PickleFileCache
from .format import (
    _ALIGN,
    _FIRST_READ,
    _HAS_CHECKS,
    _LAYOUT,
    _LENGTH,
    _MAX_HEADER,
    _NO_SIGNATURE,
    _PREFIX,
    _SIGNATURE_AT,
    _SIGNED,
    _SMALL,
    _SMALL_MIN,
    _SUFFIX,
    _WINDOWS_RESERVED,
    FORMAT_VERSION,
    MAGIC,
    _aligned,
    _both,
    _check_signature,
    _Corrupt,
    _entry_parts,
    _file_stem,
    _fill,
    _hmac,
    _key_digest,
    _new_mac,
    _read_entry,
    _read_exactly,
    _read_small,
    _serialize,
    _Untrusted,
)
from .tier import MEMORY, MemoryTier

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .entryinfo import EntryInfo
    from .history import HISTORY_COMPACT_BYTES, HISTORY_LENGTH, append_history, read_history_file
    from .locks import SynchronizedCache
    from .memory import InMemoryLRUCache
    from .variants import _checks_digest

_HISTORY = ("HISTORY_COMPACT_BYTES", "HISTORY_LENGTH", "append_history", "read_history_file")


def __getattr__(name: str) -> object:
    # Loaded at first use (issue 12, target 5): the compute-once locks (a miss's, with
    # contextlib), the memory cache (chosen by few), a listing's entries (collections),
    # and the compiled patterns (re).
    if name == "SynchronizedCache":
        from .locks import SynchronizedCache

        return SynchronizedCache
    if name == "InMemoryLRUCache":
        from .memory import InMemoryLRUCache

        return InMemoryLRUCache
    if name == "EntryInfo":  # a listing's (collections, for its named tuple)
        from .entryinfo import EntryInfo

        return EntryInfo
    if name in _HISTORY:  # a miss's and the command line's (the history of a function)
        from . import history

        return getattr(history, name)
    if name == "_checks_digest":  # a save's with run-time checks (variants of a key)
        from .variants import _checks_digest

        return _checks_digest
    from . import files, format

    return getattr(files if name == "_LEGACY_NAME" else format, name)


__all__ = [
    "CACHEDIR_TAG",
    "CacheBase",
    "EntryInfo",
    "FORMAT_VERSION",
    "InMemoryLRUCache",
    "PickleFileCache",
    "SynchronizedCache",
]
