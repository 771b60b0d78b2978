"""Where results live: the cache interface and the crash-safe local file store.

This module owns the stored format and nothing else: it does not know how keys are
computed (:mod:`checkpointing.identify`) nor what to do when caching fails
(:mod:`checkpointing.decorator`). It exists separately so the one place that touches
the disk can make, and be tested for, the promises a cache must keep:

* :class:`CacheBase` is the small interface of checkpointing 1.0 (``save`` and
  ``retrieve``, raising :class:`CheckpointNotExist` on a miss), which any backend
  implements; ``save_entry``/``read_metadata`` optionally keep metadata beside a result.
* :class:`PickleFileCache` is the default backend, one file per key under
  ``<directory>/entries/``.
* :class:`InMemoryLRUCache` keeps results in this process only (1.0's in-memory cache).

A folder that checkpointing 1.0 used holds its results as ``<md5>.pickle`` files at the
root. They are never read as entries (1.0 keyed calls differently and its files carry
no checksum); :meth:`PickleFileCache.legacy_files` lists them for ``checkpointing ls``
and ``verify``, and :meth:`PickleFileCache.remove_legacy_files` removes them
(``checkpointing clear``).

Promises of :class:`PickleFileCache`:

* a write is atomic: the result is pickled in memory first (an unpicklable result
  raises before any file is touched), written to a temporary file in the same
  directory, flushed, fsynced and renamed over the entry, so a crash, a full disk or a
  read-only directory leaves either the old entry or the new one, never a broken one
  and no temporary file;
* a read checks a magic number, the format version and an xxh3-64 checksum, so a
  truncated, corrupted, foreign or empty file (the failure mode of 1.0) is a miss with
  a :class:`CorruptEntryWarning` naming the file, never a wrong value or a crash; the
  next save replaces it;
* a read checks that the entry belongs to the key asked for (a digest of the key is in
  the checksummed header), so an entry copied or moved onto another key's path is a
  warned miss, never another call's result;
* nothing is unpickled from a file that another user could have written (see
  :func:`trust_problem`): the file must be owned by the current user and neither it nor
  its folder writable by others, unless the entry carries a valid HMAC-SHA256 made with
  the user's secret (``CHECKPOINTING_SECRET`` or ``defaults["cache.secret"]``); with a
  secret set, every entry must carry one. The signature and the checksum are checked
  before any byte is unpickled. ``docs/security.md`` has the threat model;
* folders are created 0700 and files 0600 (``defaults["cache.permissions"]`` opens
  them for a group); only regular files are opened (``O_NOFOLLOW | O_NONBLOCK``, then
  ``fstat``), so a FIFO or a symlink at an entry's path is a miss, never a hang; no
  write or deletion follows a symlinked ``entries/`` or ``functions/`` out of the root;
* temporary files left by a killed writer (``.tmp-*``, older than a minute and not
  locked by a live writer) are removed by the next save of a process, by ``clear`` and
  by ``checkpointing prune``/``verify --remove``;
* large buffers (numpy arrays) travel out of band with pickle protocol 5, each at a
  64-byte-aligned offset, written without a copy and read into one writable buffer
  each;
* a hit on a small result costs one ``open``, one ``fstat`` and one ``read``.

Directory layout::

    <directory>/CACHEDIR.TAG        marks a cache for backup tools (bford.info/cachedir)
    <directory>/.gitignore          "*": never committed
    <directory>/entries/<name>.ckpt one file per key
    <directory>/variants/<name>/<checks digest>.ckpt
                                    earlier entries of a key that differ from its entry
                                    only in their run-time checks (input files...), at
                                    most ``defaults["cache.variants"] - 1``; same format
    <directory>/functions/<h>.json  recent entries of each function (explanations)

Entry layout (all integers little-endian)::

    offset 0   b"CKPT"                     magic
    offset 4   u8   format version         FORMAT_VERSION
    offset 5   u32  header length H
    offset 9   u64  checksum               xxh3-64 of every byte from offset 17 to the end
    offset 17  32 bytes signature          HMAC-SHA256 of every byte from offset 49 to
                                           the end (zeros when unsigned)
    offset 49  H bytes of header:
               u64  pickle length P
               u32  number of out-of-band buffers N
               u32  flags                  1: the JSON holds "checks"; 2: signed
               16 bytes                    xxh3-128 of the key (UTF-8)
               N x u64  buffer lengths
               JSON (UTF-8): the caller's metadata plus "pickle_protocol", "size"
               (payload bytes), "pickle_size", "buffers" (lengths), "context_id"
    then, each starting at the next multiple of 64 (zero padding between):
               the pickle stream, then every out-of-band buffer in order.

The prefix comes first and has a fixed size so that one small read yields the header;
the offsets of the payload follow from its binary part alone, so a hit never parses
the JSON (which only ``read_metadata`` and the command line need).
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import re
import stat
import struct
import threading
import time
import warnings
from abc import ABC, abstractmethod
from collections import OrderedDict
from typing import (
    Any,
    Callable,
    Dict,
    Generic,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Tuple,
    TypeVar,
    Union,
)

import xxhash

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; stale temporaries are judged by age
    fcntl = None  # type: ignore[assignment]

from ._typing import ContextId, ReturnValue
from .config import (
    defaults,
    folder_mode,
    validate_directory,
    validate_permissions,
    validate_pickle_protocol,
    validate_secret,
)
from .errors import (
    CheckpointFailedWarning,
    CheckpointNotExist,
    ConfigurationError,
    CorruptEntryWarning,
    UntrustedEntryWarning,
)

__all__ = [
    "CACHEDIR_TAG",
    "CacheBase",
    "EntryInfo",
    "FORMAT_VERSION",
    "InMemoryLRUCache",
    "PickleFileCache",
    "SynchronizedCache",
]

T = TypeVar("T")

MAGIC = b"CKPT"
FORMAT_VERSION = 3
"""Version of the entry layout; a file of another version is a (warned) miss."""

_PREFIX = struct.Struct("<4sBIQ32s")  # magic, version, header length, checksum, signature
_LAYOUT = struct.Struct("<QII16s")  # pickle length, number of buffers, flags, key digest
_HAS_CHECKS = 1  # flag: the JSON holds "checks" to verify before serving a hit
_SIGNED = 2  # flag: the signature field holds an HMAC-SHA256
_NO_SIGNATURE = bytes(32)
_SIGNATURE_AT = 17  # the checksum covers every byte from here (signature included)
_LENGTH = struct.Struct("<Q")
_SMALL = struct.Struct("<4sBIQ32sQII16s")  # the prefix and the layout, read at once
_SMALL_MIN = _SMALL.size
_ALIGN = 64
_FIRST_READ = 1 << 16  # one read serves any entry up to this size
_MAX_HEADER = 1 << 26  # a longer header is garbage, not metadata
_COALESCE = 1 << 16  # chunks smaller than this are joined into one write
_SUFFIX = ".ckpt"
_TEMP_PREFIX = ".tmp-"
_LEGACY_NAME = re.compile(r"[0-9a-f]{32}\.pickle")  # 1.0: <md5 hexdigest>.pickle at the root
_SAFE_ID = re.compile(r"[a-z0-9_-][a-z0-9._-]{0,199}")
_WINDOWS_RESERVED = frozenset(
    ["con", "prn", "aux", "nul"] + [f"com{i}" for i in range(10)] + [f"lpt{i}" for i in range(10)]
)
STALE_TEMP_SECONDS = 60
"""A temporary file older than this, that no live writer holds locked, is a leftover."""
_READ_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
)
_DIR_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_DIRECTORY", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH
_POSIX_OWNERS = hasattr(os, "geteuid")
_INTERNAL_KEYS = ("context_id", "pickle_protocol", "size", "pickle_size", "buffers")

CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by checkpointing.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)


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
        return SynchronizedCache(self, lock)


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
        self._lock = threading.Lock()

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


class EntryInfo(NamedTuple):
    """One stored entry, as listed by :meth:`PickleFileCache.iter_entries`.

    Attributes:
        context_id: the key it was saved under.
        path: the absolute path of its file.
        size: the file's size in bytes.
        metadata: its header (the caller's metadata and the store's own keys).
    """

    context_id: str
    path: str
    size: int
    metadata: Dict[str, Any]


class _Corrupt(Exception):
    """An entry file is not a readable entry; the message says why."""


class PickleFileCache(CacheBase[str, Any]):
    """The default store: one checksummed pickle file per key under ``directory``.

    Args:
        directory: the cache root; ``None`` reads ``defaults["cache.filesystem.directory"]``
            now. Made absolute now, so a later ``os.chdir`` does not move the cache.
            Nothing is created until the first save.
        pickle_protocol: ``None`` reads ``defaults["cache.pickle_protocol"]`` now. With
            5 (the default) large buffers are stored out of band, without copies.
        secret: the key that signs every entry (HMAC-SHA256); ``None`` reads
            ``defaults["cache.secret"]``, then the environment variable
            ``CHECKPOINTING_SECRET``, now. With a secret, unsigned or tampered entries
            are misses; without one, entries another user could have written are.
        permissions: mode of the files created; ``None`` reads
            ``defaults["cache.permissions"]`` (0o600) now. Folders get the same bits
            plus search (x) where read is allowed: 0o700 by default.

    Raises:
        ConfigurationError: ``directory`` is not a path, the protocol is unsupported,
            the secret is not a non-empty str/bytes or the permissions are not allowed.

    Keys (``context_id``) made of lowercase letters, digits, ``.``, ``_`` and ``-``
    (no leading dot, at most 200 characters) are used as file names as they are. Any
    other non-empty str (a custom identifier may return ``"f(1, 2)"``) is mapped to a
    safe name: its characters outside that set replaced by ``_``, cut to 80, then
    ``-`` and the xxh3-64 hex digest of the original, so distinct keys stay distinct
    (uppercase letters are mapped too, so keys differing in case do not share a file on
    case-insensitive file systems).
    """

    def __init__(
        self,
        directory: Union[str, "os.PathLike[str]", None] = None,
        pickle_protocol: Optional[int] = None,
        *,
        secret: Union[str, bytes, None] = None,
        permissions: Optional[int] = None,
    ) -> None:
        if directory is None:
            directory = defaults["cache.filesystem.directory"]
        if pickle_protocol is None:
            pickle_protocol = defaults["cache.pickle_protocol"]
        if secret is None:
            secret = defaults["cache.secret"]
        if secret is None:
            secret = os.environ.get("CHECKPOINTING_SECRET") or None
        if permissions is None:
            permissions = defaults["cache.permissions"]
        self.directory: str = os.path.abspath(os.fspath(validate_directory(directory)))
        self.pickle_protocol: int = validate_pickle_protocol(pickle_protocol)
        self.entries_directory: str = os.path.join(self.directory, "entries")
        self.file_mode: int = validate_permissions(permissions)
        self.folder_mode: int = folder_mode(self.file_mode)
        self._secret: Optional[bytes] = validate_secret(secret)
        self._paths: Dict[str, Tuple[str, bytes]] = {}  # key -> (file, key digest)
        self._prepared = False
        self._trusted_folder = False  # memo: the folders passed the ownership check
        self._swept = 0.0  # when stale temporary files were last removed
        self._warned: set = set()

    str_keys_only = True

    def __repr__(self) -> str:
        return f"PickleFileCache({self.directory!r}, pickle_protocol={self.pickle_protocol})"

    @property
    def signed(self) -> bool:
        """True if a secret is set: every entry is signed, and only signed ones are read."""
        return self._secret is not None

    # -- paths ----------------------------------------------------------------------
    def path_of(self, context_id: str) -> str:
        """The file that holds (or would hold) the entry of ``context_id``.

        Raises:
            ValueError: ``context_id`` is not a non-empty str.
        """
        return os.path.join(self.entries_directory, _file_stem(context_id) + _SUFFIX)

    def _prepare(self) -> None:
        """Create the directories and marker files (once; at the first save)."""
        if self._prepared:
            return
        _make_private_folder(self.directory, self.folder_mode, root=True)
        _make_private_folder(self.entries_directory, self.folder_mode)
        for name, text in (("CACHEDIR.TAG", CACHEDIR_TAG), (".gitignore", "*\n")):
            path = os.path.join(self.directory, name)
            if not os.path.lexists(path):
                _atomic_write(self.directory, path, [text.encode()], self.file_mode)
        self._prepared = True

    # -- writing ----------------------------------------------------------------------
    def save(self, context_id: str, result: Any) -> None:
        """Store ``result`` under ``context_id`` without metadata (see ``save_entry``)."""
        self.save_entry(context_id, result, {})

    def save_entry(self, context_id: str, result: Any, metadata: Dict[str, Any]) -> None:
        """Store ``result`` with ``metadata`` (JSON-able; other values become str).

        The keys ``context_id``, ``pickle_protocol``, ``size``, ``pickle_size`` and
        ``buffers`` are the store's own and override the caller's. The first save of a
        process (and one a minute after) also removes stale temporary files.

        Raises:
            Exception: whatever pickling raises (``TypeError``, ``PicklingError``,
                ...), before any file is touched.
            OSError: writing failed; the previous entry, if any, is intact.
        """
        path = self.path_of(context_id)
        chunks = _serialize(context_id, result, metadata, self.pickle_protocol, self._secret)
        self._prepare()
        if metadata.get("checks"):
            self._set_aside(context_id, path, metadata["checks"])
        try:
            _atomic_write(self.entries_directory, path, chunks, self.file_mode)
        except FileNotFoundError:
            self._prepared = False  # the directory was removed under us: once more
            self._prepare()
            _atomic_write(self.entries_directory, path, chunks, self.file_mode)
        now = time.time()
        if now - self._swept > STALE_TEMP_SECONDS:
            self._swept = now
            self.remove_stale_temporaries()

    # -- reading ----------------------------------------------------------------------
    def retrieve(self, context_id: str) -> Any:
        """Return the result stored under ``context_id``.

        Raises:
            CheckpointNotExist: no entry, or an unreadable one (then with a
                :class:`CorruptEntryWarning` naming the file and the reason), or one
                that is not trusted (then with an :class:`UntrustedEntryWarning`).
        """
        return self.retrieve_entry(context_id)[0]

    def retrieve_entry(self, context_id: str) -> Tuple[Any, Any]:
        """(result, checks): like :meth:`retrieve`, with the ``"checks"`` saved in the
        entry's metadata (None if none) that the caller verifies before using it."""
        known = self._paths.get(context_id)
        if known is None:
            known = (self.path_of(context_id), _key_digest(context_id))
            if len(self._paths) >= 4096:
                self._paths.clear()
            self._paths[context_id] = known
        path, key_digest = known
        try:
            data, buffers, checks = self._load(path, key_digest)
        except FileNotFoundError:
            raise CheckpointNotExist(context_id) from None
        except _Corrupt as exc:
            self._warn_corrupt(path, str(exc))
            raise CheckpointNotExist(context_id) from None
        except _Untrusted as exc:
            self._warn_untrusted(path, str(exc))
            raise CheckpointNotExist(context_id) from None
        try:
            return pickle.loads(data, buffers=buffers), checks
        except Exception as exc:
            self._warn_corrupt(path, f"unpickling failed: {type(exc).__name__}: {exc}")
            raise CheckpointNotExist(context_id) from None

    def _load(self, path: str, key_digest: Optional[bytes]) -> Tuple[Any, Any, Any]:
        """(pickle, buffers, checks) of the entry at ``path`` once it passed every check
        (regular file, checksum, key, trust); raises _Corrupt, _Untrusted or OSError.
        ``key_digest`` None skips the key check (the caller checks the header)."""
        fd = _open_regular(path)
        try:
            status = os.fstat(fd)
            if not stat.S_ISREG(status.st_mode):
                raise _Corrupt("not a regular file")
            secret = self._secret
            if secret is None:
                problem = self.trust_problem(status)
                if problem is not None:
                    raise _Untrusted(problem)
            first = os.read(fd, _FIRST_READ)
            small = _read_small(first, key_digest)
            if small is not None:  # the common case: a small entry, read whole
                data, checks, flags, signature = small
                buffers: Any = ()
                if secret is not None:  # one-shot HMAC: the C fast path
                    _check_signature(
                        flags,
                        signature,
                        _hmac().digest(secret, memoryview(first)[_PREFIX.size :], "sha256"),
                    )
                return data, buffers, checks
            mac = _new_mac(secret) if secret is not None else None
            with open(fd, "rb", buffering=0, closefd=False) as handle:
                header, data, buffers = _read_entry(
                    handle, payload=True, first=first, key_digest=key_digest, mac=mac
                )
            if mac is not None:
                _check_signature(header["flags"], header["signature"], mac.digest())
            return data, buffers, header.get("checks")
        finally:
            os.close(fd)

    def trust_problem(self, status: "os.stat_result") -> Optional[str]:
        """Why an unsigned entry file with this ``fstat`` must not be unpickled, or None.

        Another user who can write the file or its folder could plant a pickle that
        runs code when loaded; only the current user's own files in folders nobody
        else can write are trusted. (Not checked on systems without POSIX owners.)
        """
        if not _POSIX_OWNERS:
            return None
        uid = os.geteuid()
        if status.st_uid != uid:
            return f"the file is owned by user {status.st_uid}, not by you ({uid})"
        if status.st_mode & _OTHERS_WRITE:
            return "the file is writable by other users"
        if not self._trusted_folder:
            # The root may be a link the user made (~/.cache -> /data); entries/ not.
            problem = _folder_problem(self.directory, uid, follow=True) or _folder_problem(
                self.entries_directory, uid
            )
            if problem is not None:
                return problem
            # Only the owner (us) can change a folder's mode or owner, so this holds.
            self._trusted_folder = True
        return None

    def read_metadata(self, context_id: str) -> Dict[str, Any]:
        """The header of an entry: the caller's metadata and the store's keys.

        Cheap: reads the header only, so the checksum is not verified.

        Raises:
            CheckpointNotExist: no entry, or its header is unreadable.
        """
        path = self.path_of(context_id)
        try:
            header = _read_header(path)
        except (OSError, _Corrupt):
            raise CheckpointNotExist(context_id) from None
        return header

    def _warn_corrupt(self, path: str, reason: str) -> None:
        warnings.warn(
            f"checkpointing entry {path} is unreadable ({reason}); it is treated "
            f"as a miss: the result will be recomputed and the entry replaced",
            CorruptEntryWarning,
            stacklevel=4,
        )

    # -- variants: earlier entries of a key whose run-time checks differ ------------------
    # A key covers code and arguments; what a run read (files, folders, environment) is
    # in the entry's checks. When those change the entry is replaced, but the one it
    # replaces is kept aside (a rename, no copy), so that reverting the inputs finds it
    # again. The decorator serves a variant only after verifying its own checks.
    def _variants_directory(self, context_id: str) -> str:
        return os.path.join(self.directory, "variants", _file_stem(context_id))

    def _set_aside(
        self, context_id: str, path: str, new_checks: Any, promoting: bool = False
    ) -> None:
        """Before ``path`` is replaced by an entry with ``new_checks``, move the entry
        there now into the variants of the key if its checks differ (never failing the
        save: a variant lost is a re-run later, nothing worse). ``promoting``: the new
        entry is the variant with those checks, not a new one superseding it."""
        limit = defaults["cache.variants"]
        if limit <= 1:
            return
        folder = self._variants_directory(context_id)
        try:
            try:
                header = _read_header(path)
            except (FileNotFoundError, _Corrupt):
                header = {}
            old_checks = header.get("checks")
            if not promoting:
                try:  # the new entry supersedes a variant with the same checks
                    os.remove(os.path.join(folder, _checks_digest(new_checks) + _SUFFIX))
                except FileNotFoundError:
                    pass
            if not old_checks or header.get("context_id") != context_id or old_checks == new_checks:
                return
            _make_private_folder(os.path.dirname(folder), self.folder_mode)
            _make_private_folder(folder, self.folder_mode)
            target = os.path.join(folder, _checks_digest(old_checks) + _SUFFIX)
            os.replace(path, target)
            os.utime(target)  # the newest variant: the last to be dropped
            names = [n for n in os.listdir(folder) if n.endswith(_SUFFIX)]
            if len(names) > limit - 1 and not promoting:  # a promotion swaps one for one
                aged = sorted(names, key=lambda n: os.path.getmtime(os.path.join(folder, n)))
                for name in aged[: len(names) - (limit - 1)]:
                    os.remove(os.path.join(folder, name))
        except OSError as exc:
            warnings.warn(
                f"could not keep the previous entry of {context_id} aside "
                f"({type(exc).__name__}: {exc}); it is replaced",
                CheckpointFailedWarning,
                stacklevel=4,
            )

    def variants(self, context_id: str) -> List[Tuple[str, Any]]:
        """(path, checks) of the earlier entries kept for ``context_id``, newest first.

        Only headers are read; an unreadable variant is skipped."""
        folder = self._variants_directory(context_id)
        try:
            names = os.listdir(folder)
        except OSError:
            return []
        found = []
        for name in names:
            if not name.endswith(_SUFFIX) or name.startswith("."):
                continue
            path = os.path.join(folder, name)
            try:
                mtime = os.lstat(path).st_mtime_ns
                header = _read_header(path)
            except (OSError, _Corrupt):
                continue
            if header.get("context_id") == context_id and header.get("checks"):
                found.append((mtime, path, header["checks"]))
        return [(path, checks) for _, path, checks in sorted(found, reverse=True)]

    def promote_variant(self, context_id: str, path: str) -> None:
        """Make the variant at ``path`` the entry of ``context_id`` again; the entry it
        replaces becomes a variant. The caller reads the entry afterwards and checks it
        is the one it verified (another process may have saved meanwhile)."""
        entry = self.path_of(context_id)
        try:
            header = _read_header(path)
            self._set_aside(context_id, entry, header.get("checks"), promoting=True)
            os.replace(path, entry)
        except (OSError, _Corrupt):
            pass  # another process moved it: the caller's read tells

    # -- maintenance ----------------------------------------------------------------------
    def _warn_untrusted(self, path: str, reason: str) -> None:
        if (path, reason) in self._warned:
            return
        self._warned.add((path, reason))
        fix = (
            "set the same secret where the entry was written"
            if self._secret
            else "keep the cache in a folder only you can write, or set a secret "
            "(CHECKPOINTING_SECRET) to share signed entries"
        )
        warnings.warn(
            f"checkpointing entry {path} is not trusted ({reason}); it was not "
            f"loaded (loading a pickle can run code) and is treated as a miss; "
            f"{fix}",
            UntrustedEntryWarning,
            stacklevel=4,
        )

    # -- history of each function (for "why did it re-run") ------------------------------
    def _history_path(self, function: str) -> str:
        name = xxhash.xxh3_64_hexdigest(function.encode("utf-8", "surrogatepass"))
        return os.path.join(self.directory, "functions", name + ".json")

    def record_history(self, function: str, entry: Dict[str, Any]) -> None:
        path = self._history_path(function)
        entries = [e for e in self.history(function) if e.get("key") != entry.get("key")]
        entries.append(entry)
        data = json.dumps(
            {"function": function, "entries": entries[-HISTORY_LENGTH:]},
            separators=(",", ":"),
            default=str,
        ).encode()
        self._prepare()
        _make_private_folder(os.path.dirname(path), self.folder_mode)
        _atomic_write(
            os.path.dirname(path),
            path,
            [xxhash.xxh3_64_hexdigest(data).encode(), b"\n", data],
            self.file_mode,
        )

    def history(self, function: str) -> List[Dict[str, Any]]:
        try:
            data = read_history_file(self._history_path(function))
        except (OSError, ValueError, _Corrupt):
            return []
        if not isinstance(data, dict) or data.get("function") != function:
            return []
        return [e for e in data.get("entries", []) if isinstance(e, dict)]

    # -- maintenance ----------------------------------------------------------------------
    def iter_entries(self) -> Iterator[EntryInfo]:
        """Every entry whose header is readable, in file-name order."""
        for path in self.entry_files():
            try:
                header = _read_header(path)
                size = os.lstat(path).st_size
            except (OSError, _Corrupt):
                continue
            context_id = header.get("context_id")
            if not isinstance(context_id, str):
                context_id = os.path.basename(path)[: -len(_SUFFIX)]
            yield EntryInfo(context_id, path, size, header)

    def entry_files(self) -> List[str]:
        """Paths of every entry file, readable or not (for ``checkpointing verify``)."""
        try:
            names = sorted(os.listdir(self.entries_directory))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [
            os.path.join(self.entries_directory, name)
            for name in names
            if name.endswith(_SUFFIX) and not name.startswith(".")
        ]

    def check_file(self, path: str) -> Optional[str]:
        """None if the entry file at ``path`` is intact (a regular file; magic, version,
        header, checksum; the key it holds is the one its name is made from; trusted or
        validly signed), else the reason it is not. The value is not unpickled."""
        try:
            self._load(path, None)
            header = _read_header(path)
        except (_Corrupt, _Untrusted) as exc:
            return str(exc)
        except OSError as exc:
            return f"{type(exc).__name__}: {exc}"
        context_id = header.get("context_id")
        if (
            not isinstance(context_id, str)
            or not context_id
            or self.path_of(context_id) != path
            or header.get("key_digest") != _key_digest(context_id).hex()
        ):
            return (
                f"misplaced: it holds the entry of key {context_id!r}, which belongs "
                f"in another file"
            )
        return None

    def load_file(self, path: str) -> Any:
        """Unpickle the entry at ``path`` after the same checks as a read (for
        ``checkpointing verify --deep``); raises ValueError naming what is wrong."""
        problem = self.check_file(path)
        if problem is not None:
            raise ValueError(problem)
        data, buffers, _ = self._load(path, None)
        return pickle.loads(data, buffers=buffers)

    def temporaries(self) -> List[str]:
        """Temporary files (``.tmp-*``) in the cache's folders: a writer's work in
        progress, or the leftover of one that was killed."""
        out = []
        for folder in (self.entries_directory, os.path.join(self.directory, "functions")):
            try:
                names = sorted(os.listdir(folder))
            except OSError:
                continue
            out.extend(os.path.join(folder, n) for n in names if n.startswith(_TEMP_PREFIX))
        return out

    def remove_stale_temporaries(self, max_age: float = STALE_TEMP_SECONDS) -> int:
        """Remove temporary files older than ``max_age`` seconds that no live writer
        holds locked; return how many. Folders and other odd files are left alone."""
        removed = 0
        now = time.time()
        for path in self.temporaries():
            folder, name = os.path.split(path)
            try:
                status = os.lstat(path)
                if (
                    not stat.S_ISREG(status.st_mode)
                    or now - status.st_mtime < max_age
                    or _locked(path)
                ):
                    continue
                _unlink_in(folder, name)
                removed += 1
            except OSError:
                continue
        return removed

    def delete(self, context_id: str) -> bool:
        """Remove the entry of ``context_id`` (and its variants); False if there was none.

        Raises:
            OSError: ``entries/`` is a symbolic link (it is not followed).
        """
        _remove_tree(self._variants_directory(context_id))
        try:
            _unlink_in(self.entries_directory, os.path.basename(self.path_of(context_id)))
        except FileNotFoundError:
            return False
        return True

    def legacy_files(self) -> List[str]:
        """Result files of checkpointing 1.0 at the cache root (``<md5>.pickle``).

        This version never reads them (1.0 keyed calls by other rules, and its files
        have no checksum): they only take space until :meth:`remove_legacy_files`.
        """
        try:
            names = sorted(os.listdir(self.directory))
        except (FileNotFoundError, NotADirectoryError):
            return []
        out = []
        for name in names:
            if _LEGACY_NAME.fullmatch(name) is None:
                continue
            path = os.path.join(self.directory, name)
            try:
                if stat.S_ISREG(os.lstat(path).st_mode):
                    out.append(path)
            except OSError:
                continue
        return out

    def remove_legacy_files(self) -> int:
        """Remove the result files of checkpointing 1.0 (see :meth:`legacy_files`) and
        return how many; a symbolic link at the root is not followed."""
        removed = 0
        for path in self.legacy_files():
            try:
                _unlink_in(self.directory, os.path.basename(path))
            except FileNotFoundError:
                continue
            removed += 1
        return removed

    def clear(self) -> int:
        """Remove every entry and return how many.

        Only ``*.ckpt`` files in ``entries/`` and ``variants/`` are removed (a FIFO or
        a symbolic link there is removed itself, never followed), and temporary files that crashed
        writers left (see :meth:`remove_stale_temporaries`); any other file is left
        alone.

        Raises:
            OSError: ``entries/`` is a symbolic link (it is not followed).
        """
        removed = 0
        _remove_tree(os.path.join(self.directory, "variants"))
        try:
            names = os.listdir(self.entries_directory)
        except FileNotFoundError:
            return 0
        for name in names:
            if not name.endswith(_SUFFIX) or name.startswith("."):
                continue
            try:
                if stat.S_ISDIR(os.lstat(os.path.join(self.entries_directory, name)).st_mode):
                    continue
                _unlink_in(self.entries_directory, name)
            except FileNotFoundError:
                continue
            removed += 1
        self.remove_stale_temporaries()
        return removed


def _checks_digest(checks: Any) -> str:
    """The name of a variant: a digest of its checks."""
    return xxhash.xxh3_64_hexdigest(json.dumps(checks, sort_keys=True, default=str).encode())


def _remove_tree(folder: str) -> None:
    """Remove the variants under ``folder`` (entry files and emptied folders only; a
    symbolic link is removed itself, never followed out of the cache)."""
    try:
        if stat.S_ISLNK(os.lstat(folder).st_mode):
            os.unlink(folder)
            return
    except OSError:
        return
    for root, _dirs, files in os.walk(folder, topdown=False):
        for name in files:
            if name.endswith(_SUFFIX):
                try:
                    os.remove(os.path.join(root, name))
                except OSError:
                    pass
        try:
            os.rmdir(root)
        except OSError:
            pass


class _Untrusted(Exception):
    """An entry file may have been written by someone else; the message says why."""


def _key_digest(context_id: str) -> bytes:
    return xxhash.xxh3_128_digest(context_id.encode("utf-8", "surrogatepass"))


_HMAC: Any = None  # the hmac module, imported at the first signed entry (import time)


def _hmac() -> Any:
    global _HMAC
    if _HMAC is None:
        import hashlib  # noqa: F401 (hmac's digestmod)
        import hmac

        _HMAC = hmac
    return _HMAC


def _new_mac(secret: bytes) -> Any:
    return _hmac().new(secret, None, "sha256")


def _check_signature(flags: int, signature: bytes, digest: bytes) -> None:
    if not flags & _SIGNED:
        raise _Untrusted("the entry is not signed, and a secret is set")
    if not _hmac().compare_digest(digest, signature):
        raise _Untrusted(
            "its signature does not match: tampered with, or signed with another secret"
        )


def _open_regular(path: str) -> int:
    """A descriptor open for reading on ``path``, never following a final symbolic link
    and never blocking (a FIFO); the caller ``fstat``s it. Raises OSError, or _Corrupt
    for a symbolic link."""
    try:
        return os.open(path, _READ_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP or (exc.errno == errno.ENXIO):
            raise _Corrupt("not a regular file (a symbolic link or a special file)") from None
        raise


def _read_regular(path: str, limit: int) -> bytes:
    """The bytes of the regular file at ``path`` (at most ``limit``); raises _Corrupt
    for anything else (FIFO, symlink, device) and OSError."""
    fd = _open_regular(path)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _Corrupt("not a regular file")
        with open(fd, "rb", buffering=0, closefd=False) as handle:
            return handle.read(limit)
    finally:
        os.close(fd)


def _read_header(path: str) -> Dict[str, Any]:
    fd = _open_regular(path)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _Corrupt("not a regular file")
        with open(fd, "rb", buffering=0, closefd=False) as handle:
            header, _, _ = _read_entry(handle, payload=False)
        return header
    finally:
        os.close(fd)


def read_history_file(path: str) -> Any:
    """The JSON of a history file (first line: its xxh3-64); raises OSError, _Corrupt
    (not a regular file) or ValueError (damaged)."""
    digest, _, body = _read_regular(path, 1 << 24).partition(b"\n")
    if xxhash.xxh3_64_hexdigest(body).encode() != digest:
        raise ValueError("checksum mismatch (corrupted or not a history file)")
    return json.loads(body)


def read_trusted_file(path: str, limit: int = 1 << 26) -> bytes:
    """The bytes of a small file of the cache (an analysis plan) that only the current
    user could have written: a regular file, owned by the user, in a folder others
    cannot write. Raises FileNotFoundError, or ValueError naming what is wrong."""
    try:
        fd = _open_regular(path)
    except _Corrupt as exc:
        raise ValueError(str(exc)) from None
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise ValueError("not a regular file")
        if _POSIX_OWNERS:
            uid = os.geteuid()
            problem = _folder_problem(os.path.dirname(path), uid)
            if status.st_uid != uid:
                problem = f"owned by user {status.st_uid}, not by you ({uid})"
            elif status.st_mode & _OTHERS_WRITE:
                problem = "writable by other users"
            if problem is not None:
                raise ValueError(f"not trusted: {problem}")
        with open(fd, "rb", buffering=0, closefd=False) as handle:
            return handle.read(limit)
    finally:
        os.close(fd)


def write_private_file(path: str, chunks: List[Any]) -> None:
    """Write a file of the cache (an analysis plan) atomically, with the cache's
    permissions, creating its folder and the folder above if needed."""
    mode = validate_permissions(defaults["cache.permissions"])
    folder = os.path.dirname(path)
    _make_private_folder(os.path.dirname(folder), folder_mode(mode), root=True)
    _make_private_folder(folder, folder_mode(mode))
    _atomic_write(folder, path, chunks, mode)


def _folder_problem(folder: str, uid: int, follow: bool = False) -> Optional[str]:
    try:
        status = os.stat(folder) if follow else os.lstat(folder)
    except OSError as exc:
        return f"its folder {folder} cannot be checked ({exc.strerror})"
    if stat.S_ISLNK(status.st_mode):
        return f"its folder {folder} is a symbolic link"
    if status.st_uid != uid:
        return f"its folder {folder} is owned by user {status.st_uid}, not by you ({uid})"
    if status.st_mode & _OTHERS_WRITE:
        return f"its folder {folder} is writable by other users"
    return None


def _make_private_folder(folder: str, mode: int, root: bool = False) -> None:
    """Create ``folder`` with ``mode`` if missing; refuse a symbolic link below the
    root (it could lead writes and deletions out of the cache); tighten a folder of
    ours whose mode lets others write it (a cache made by an older version under a
    permissive umask)."""
    try:
        os.mkdir(folder, mode)
        os.chmod(folder, mode)  # the umask may have removed bits the user asked for
        return
    except FileExistsError:
        pass
    except FileNotFoundError:
        if not root:
            raise
        os.makedirs(folder, exist_ok=True)
        os.chmod(folder, mode)
        return
    status = os.lstat(folder)
    if stat.S_ISLNK(status.st_mode) and not root:
        raise OSError(
            errno.ELOOP,
            f"{folder} is a symbolic link; checkpointing does not "
            f"follow links out of the cache root: remove it",
        )
    if (
        _POSIX_OWNERS
        and stat.S_ISDIR(status.st_mode)
        and status.st_uid == os.geteuid()
        and status.st_mode & _OTHERS_WRITE & ~mode
    ):
        os.chmod(folder, mode)


def _unlink_in(folder: str, name: str) -> None:
    """Remove ``name`` from ``folder`` without following a symbolic link at ``folder``."""
    if os.unlink in os.supports_dir_fd and _DIR_FLAGS & getattr(os, "O_NOFOLLOW", 0):
        try:
            fd = os.open(folder, _DIR_FLAGS)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise OSError(
                    errno.ELOOP,
                    f"{folder} is a symbolic link or not a folder; "
                    f"checkpointing does not follow it",
                ) from None
            raise
        try:
            os.unlink(name, dir_fd=fd)
        finally:
            os.close(fd)
        return
    if os.path.islink(folder):
        raise OSError(errno.ELOOP, f"{folder} is a symbolic link; checkpointing does not follow it")
    os.remove(os.path.join(folder, name))


def _locked(path: str) -> bool:
    """True if a live writer holds ``path`` locked (see :func:`_atomic_write`)."""
    if fcntl is None:
        return False
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


# -- file names ----------------------------------------------------------------------
def _file_stem(context_id: str) -> str:
    """The file name (without suffix) of a key; see :class:`PickleFileCache`."""
    if not isinstance(context_id, str) or not context_id:
        raise ValueError(
            f"context id {context_id!r} is not a non-empty str; an "
            f"identifier's identify() must return a non-empty str"
        )
    if (
        _SAFE_ID.fullmatch(context_id) is not None
        and context_id.split(".", 1)[0] not in _WINDOWS_RESERVED
    ):
        return context_id
    readable = re.sub(r"[^A-Za-z0-9._-]", "_", context_id)[:80].lstrip(".") or "id"
    digest = xxhash.xxh3_64_hexdigest(context_id.encode("utf-8", "surrogatepass"))
    return f"{readable}-{digest}"


# -- the entry format ----------------------------------------------------------------------
def _aligned(position: int) -> int:
    return position + (-position) % _ALIGN


def _serialize(
    context_id: str,
    result: Any,
    metadata: Dict[str, Any],
    protocol: int,
    secret: Optional[bytes] = None,
) -> List[Any]:
    """The chunks of an entry file, in order; pickling errors propagate as they are."""
    raws: List[memoryview] = []
    if protocol >= 5:
        buffers: List[pickle.PickleBuffer] = []
        data = pickle.dumps(result, protocol=protocol, buffer_callback=buffers.append)
        raws = [buffer.raw() for buffer in buffers]
    else:
        data = pickle.dumps(result, protocol=protocol)
    header = dict(metadata)
    header.update(
        {
            "context_id": context_id,
            "pickle_protocol": protocol,
            "size": len(data) + sum(raw.nbytes for raw in raws),
            "pickle_size": len(data),
            "buffers": [raw.nbytes for raw in raws],
        }
    )
    flags = (_HAS_CHECKS if metadata.get("checks") else 0) | (_SIGNED if secret else 0)
    header_bytes = (
        _LAYOUT.pack(len(data), len(raws), flags, _key_digest(context_id))
        + b"".join(_LENGTH.pack(raw.nbytes) for raw in raws)
        + json.dumps(header, default=str, separators=(",", ":")).encode()
    )
    chunks: List[Any] = [header_bytes]
    position = _PREFIX.size + len(header_bytes)
    for payload in [data, *raws]:
        padding = _aligned(position) - position
        if padding:
            chunks.append(bytes(padding))
        chunks.append(payload)
        position += padding + memoryview(payload).nbytes
    signature = _NO_SIGNATURE
    if secret:
        mac = _new_mac(secret)
        for chunk in chunks:
            mac.update(chunk)
        signature = mac.digest()
    checksum = xxhash.xxh3_64(signature)  # so that no byte after the checksum goes unchecked
    for chunk in chunks:
        checksum.update(chunk)
    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(header_bytes), checksum.intdigest(), signature)
    return [prefix, *chunks]


def _read_small(
    first: bytes, key_digest: Optional[bytes]
) -> Optional[Tuple[memoryview, Any, int, bytes]]:
    """(pickle, checks, flags, signature) of an intact entry of the key with
    ``key_digest``, without out-of-band buffers, that ``first`` (the first read of its
    file) holds whole; None to take the general path, which also reports what is wrong
    with a broken or misplaced file."""
    if len(first) >= _FIRST_READ or len(first) < _SMALL_MIN:
        return None
    magic, version, header_length, checksum, signature, pickle_size, count, flags, digest = (
        _SMALL.unpack_from(first)
    )
    if magic != MAGIC or version != FORMAT_VERSION or count or digest != key_digest:
        return None
    header_end = _PREFIX.size + header_length
    start = _aligned(header_end)
    if start + pickle_size != len(first):
        return None
    view = memoryview(first)
    if xxhash.xxh3_64_intdigest(view[_SIGNATURE_AT:]) != checksum:
        return None
    checks = None
    if flags & _HAS_CHECKS:
        try:
            checks = json.loads(bytes(view[_SMALL_MIN:header_end]))["checks"]
        except (ValueError, KeyError, TypeError):
            return None
    return view[start:], checks, flags, signature


def _read_entry(
    handle: Any,
    payload: bool,
    first: Optional[bytes] = None,
    key_digest: Optional[bytes] = None,
    mac: Any = None,
) -> Tuple[Dict[str, Any], Any, List[bytearray]]:
    """Read an entry from an unbuffered binary file: (header, pickle, buffers).

    With ``payload`` False only the header is read and checked. With ``key_digest``,
    an entry of another key is rejected; ``mac`` is fed the bytes the signature covers.
    Raises ``_Corrupt``.
    """
    if first is None:
        first = handle.read(_FIRST_READ)
    if not first:
        raise _Corrupt("the file is empty")
    if len(first) < _PREFIX.size:
        raise _Corrupt(f"truncated to {len(first)} bytes")
    magic, version, header_length, checksum, signature = _PREFIX.unpack_from(first)
    if magic != MAGIC:
        raise _Corrupt("not a checkpointing entry (wrong magic number)")
    if version != FORMAT_VERSION:
        raise _Corrupt(
            f"entry format {version}, this version of checkpointing reads format {FORMAT_VERSION}"
        )
    header_end = _PREFIX.size + header_length
    if header_end > len(first):
        if len(first) < _FIRST_READ or header_length > _MAX_HEADER:
            raise _Corrupt("truncated header")
        first += _read_exactly(handle, header_end - len(first))
    layout_end = _PREFIX.size + _LAYOUT.size
    if header_end < layout_end:
        raise _Corrupt("unreadable header: too short")
    pickle_size, count, flags, digest = _LAYOUT.unpack_from(first, _PREFIX.size)
    if key_digest is not None and digest != key_digest:
        raise _Corrupt(
            "misplaced: the file holds the entry of another key (copied or "
            "moved from another key's file)"
        )
    json_start = layout_end + count * _LENGTH.size
    if json_start > header_end:
        raise _Corrupt("unreadable header: sizes missing")
    buffers = [_LENGTH.unpack_from(first, layout_end + i * _LENGTH.size)[0] for i in range(count)]
    if payload:
        # The hit path: the JSON metadata is covered by the checksum, not parsed,
        # unless it holds checks to make before serving the entry.
        header: Dict[str, Any] = {
            "pickle_size": pickle_size,
            "buffers": buffers,
            "flags": flags,
            "signature": signature,
        }
        if flags & _HAS_CHECKS:
            try:
                header["checks"] = json.loads(first[json_start:header_end].decode())["checks"]
            except (ValueError, KeyError, TypeError) as exc:
                raise _Corrupt(f"unreadable checks in the header: {exc}") from None
    else:
        try:
            header = json.loads(first[json_start:header_end].decode("utf-8"))
        except ValueError as exc:  # includes UnicodeDecodeError
            raise _Corrupt(f"unreadable header: {exc}") from None
        if (
            not isinstance(header, dict)
            or header.get("pickle_size") != pickle_size
            or header.get("buffers") != buffers
        ):
            raise _Corrupt("unreadable header: its binary and JSON parts disagree")
        header["key_digest"] = digest.hex()
        header["signed"] = bool(flags & _SIGNED)
        return header, None, []

    segments = []  # (start, length) of the pickle and each buffer
    position = header_end
    for length in [header["pickle_size"], *header["buffers"]]:
        position = _aligned(position)
        segments.append((position, length))
        position += length
    end = position
    view = memoryview(first)
    digest_ = xxhash.xxh3_64(signature)
    update = digest_.update if mac is None else _both(digest_, mac)
    if end <= len(first):  # the common case: the first read got all of it
        if end < len(first) or (len(first) >= _FIRST_READ and handle.read(1)):
            raise _Corrupt("unexpected bytes after the end of the entry")
        update(view[_PREFIX.size : end])
        if digest_.intdigest() != checksum:
            raise _Corrupt("checksum mismatch (corrupted)")
        (start, length), *rest = segments
        return header, view[start : start + length], [bytearray(view[s : s + n]) for s, n in rest]

    size = os.fstat(handle.fileno()).st_size
    if size != end:
        raise _Corrupt(
            f"the file has {size} bytes, its header describes {end}"
            f"{' (truncated)' if size < end else ''}"
        )
    update(view[_PREFIX.size : header_end])
    position = header_end
    parts: List[bytearray] = []
    for start, length in segments:
        if start > position:  # the padding: checksummed like the rest
            padding = bytearray(start - position)
            _fill(handle, view, position, memoryview(padding))
            update(padding)
        target = bytearray(length)  # one writable buffer each, read in place
        _fill(handle, view, start, memoryview(target))
        update(target)
        parts.append(target)
        position = start + length
    if digest_.intdigest() != checksum:
        raise _Corrupt("checksum mismatch (corrupted)")
    return header, parts[0], parts[1:]


def _both(first: Any, second: Any) -> Callable[[Any], None]:
    def update(data: Any) -> None:
        first.update(data)
        second.update(data)

    return update


def _is_size(value: Any) -> bool:
    return type(value) is int and value >= 0


def _fill(handle: Any, first: memoryview, position: int, target: memoryview) -> None:
    """Fill ``target`` with the file's bytes from ``position`` (taking those already in
    ``first``, reading the rest; the file is positioned at ``len(first)``)."""
    done = 0
    if position < len(first):
        done = min(len(first) - position, len(target))
        target[:done] = first[position : position + done]
    while done < len(target):
        got = handle.readinto(target[done:])
        if not got:
            raise _Corrupt("truncated while reading")
        done += got


def _read_exactly(handle: Any, count: int) -> bytes:
    target = bytearray(count)
    _fill(handle, memoryview(b""), 0, memoryview(target))
    return bytes(target)


# How many recent entries of each function are remembered to explain a miss.
HISTORY_LENGTH = 20

_TEMP_FLAGS = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
)


def _create_temporary(directory: str, mode: int = 0o600) -> Tuple[int, str]:
    """A new file in ``directory`` under a random name, open for writing, with ``mode``
    (0600 unless the user opened the cache to a group), locked while it is written so
    that no cleaner takes a live writer's file for a leftover.

    Like ``tempfile.mkstemp`` without importing tempfile (slow to import).
    """
    for _ in range(100):
        path = os.path.join(directory, f"{_TEMP_PREFIX}{os.urandom(8).hex()}{_SUFFIX}")
        try:
            fd = os.open(path, _TEMP_FLAGS, mode)
        except FileExistsError:
            continue
        try:
            if mode != 0o600 and hasattr(os, "fchmod"):
                os.fchmod(fd, mode)  # the umask may have removed group bits asked for
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            os.remove(path)
            raise
        return fd, path
    raise FileExistsError(f"could not create a temporary file in {directory}")


def _atomic_write(directory: str, path: str, chunks: List[Any], mode: int = 0o600) -> None:
    """Write ``chunks`` to ``path`` through a fsynced temporary file and a rename.

    On any failure the temporary file is removed and the exception propagates.
    """
    fd, temporary = _create_temporary(directory, mode)
    closed = False
    try:
        try:
            pending = bytearray()
            for chunk in chunks:
                size = len(chunk) if isinstance(chunk, (bytes, bytearray)) else chunk.nbytes
                if size < _COALESCE:
                    pending += chunk
                    continue
                _write_all(fd, pending)
                pending = bytearray()
                _write_all(fd, chunk)  # a large buffer: written from where it lies
            _write_all(fd, pending)
            os.fsync(fd)
            if fcntl is None:  # Windows cannot rename an open file
                os.close(fd)
                closed = True
            # Renamed while still locked: a cleaner never removes a finished file.
            os.replace(temporary, path)
        finally:
            if not closed:
                os.close(fd)
    except BaseException:
        try:
            os.remove(temporary)
        except OSError:
            pass
        raise


def _write_all(fd: int, chunk: Any) -> None:
    view = memoryview(chunk)
    while view.nbytes:
        written = os.write(fd, view)
        view = view[written:]
