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
* large buffers (numpy arrays) travel out of band with pickle protocol 5, each at a
  64-byte-aligned offset, written without a copy and read into one writable buffer
  each;
* a hit on a small result costs one ``open`` and one ``read``.

Directory layout::

    <directory>/CACHEDIR.TAG        marks a cache for backup tools (bford.info/cachedir)
    <directory>/.gitignore          "*": never committed
    <directory>/entries/<name>.ckpt one file per key
    <directory>/variants/<name>/<checks digest>.ckpt
                                    earlier entries of a key that differ from its entry
                                    only in their run-time checks (input files...), at
                                    most ``defaults["cache.variants"] - 1``; same format

Entry layout (all integers little-endian)::

    offset 0   b"CKPT"                     magic
    offset 4   u8   format version         FORMAT_VERSION
    offset 5   u32  header length H
    offset 9   u64  checksum               xxh3-64 of every byte from offset 17 to the end
    offset 17  H bytes of header:
               u64  pickle length P
               u32  number of out-of-band buffers N
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

import json
import os
import pickle
import re
import struct
import time
import warnings
from abc import ABC, abstractmethod
from typing import NamedTuple, Any, Dict, Generic, Iterator, List, Optional, Tuple, TypeVar, Union

import xxhash

from .config import defaults, validate_directory, validate_pickle_protocol
from .errors import CheckpointFailedWarning, CheckpointNotExist, CorruptEntryWarning

__all__ = ["CACHEDIR_TAG", "CacheBase", "EntryInfo", "FORMAT_VERSION", "PickleFileCache",
           "SynchronizedCache"]

T = TypeVar("T")

MAGIC = b"CKPT"
FORMAT_VERSION = 2
"""Version of the entry layout; a file of another version is a (warned) miss."""

_PREFIX = struct.Struct("<4sBIQ")  # magic, version, header length, checksum: 17 bytes
_LAYOUT = struct.Struct("<QII")  # pickle length, number of buffers, flags
_HAS_CHECKS = 1  # flag: the JSON holds "checks" to verify before serving a hit
_LENGTH = struct.Struct("<Q")
_SMALL = struct.Struct("<4sBIQQII")  # the prefix and the layout, read at once
_SMALL_MIN = _SMALL.size
_ALIGN = 64
_FIRST_READ = 1 << 16  # one read serves any entry up to this size
_MAX_HEADER = 1 << 26  # a longer header is garbage, not metadata
_COALESCE = 1 << 16  # chunks smaller than this are joined into one write
_SUFFIX = ".ckpt"
_TEMP_PREFIX = ".tmp-"
_SAFE_ID = re.compile(r"[a-z0-9_-][a-z0-9._-]{0,199}")
_WINDOWS_RESERVED = frozenset(
    ["con", "prn", "aux", "nul"] + [f"com{i}" for i in range(10)]
    + [f"lpt{i}" for i in range(10)])
_STALE_TEMP_SECONDS = 3600
_INTERNAL_KEYS = ("context_id", "pickle_protocol", "size", "pickle_size", "buffers")

CACHEDIR_TAG = ("Signature: 8a477f597d28d172789f06886806bc55\n"
                "# This file is a cache directory tag created by checkpointing.\n"
                "# For information about cache directory tags see https://bford.info/cachedir/\n")


class CacheBase(ABC, Generic[T]):
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
    """

    @abstractmethod
    def save(self, context_id: str, result: T) -> None:
        """Store ``result`` under ``context_id``, replacing any previous entry."""

    @abstractmethod
    def retrieve(self, context_id: str) -> T:
        """Return the result stored under ``context_id``; raise CheckpointNotExist if none."""

    def save_entry(self, context_id: str, result: T, metadata: Dict[str, Any]) -> None:
        """Store ``result`` with ``metadata``; by default the metadata is dropped."""
        self.save(context_id, result)

    def read_metadata(self, context_id: str) -> Dict[str, Any]:
        """The metadata stored with an entry; by default none is: CheckpointNotExist."""
        raise CheckpointNotExist(context_id)

    def record_history(self, function: str, entry: Dict[str, Any]) -> None:
        """Remember a new entry of ``function`` (its key and fingerprint), so that a
        later miss can say what changed. Backends without history ignore it."""

    def history(self, function: str) -> List[Dict[str, Any]]:
        """The most recent entries recorded for ``function``, oldest first."""
        return []

    def synchronize_with(self, lock: Any) -> "SynchronizedCache[T]":
        """This cache with every access made under ``lock`` (any context manager)."""
        return SynchronizedCache(self, lock)


class SynchronizedCache(CacheBase[T]):
    """A cache whose every access happens inside ``with lock:``.

    Args:
        cache: the cache to wrap.
        lock: a context manager, e.g. ``threading.Lock()`` or a file lock.
    """

    def __init__(self, cache: CacheBase[T], lock: Any) -> None:
        self.cache = cache
        self.lock = lock

    def __repr__(self) -> str:
        return f"SynchronizedCache({self.cache!r}, {self.lock!r})"

    def save(self, context_id: str, result: T) -> None:
        """Save under the lock."""
        with self.lock:
            self.cache.save(context_id, result)

    def retrieve(self, context_id: str) -> T:
        """Retrieve under the lock."""
        with self.lock:
            return self.cache.retrieve(context_id)

    def save_entry(self, context_id: str, result: T, metadata: Dict[str, Any]) -> None:
        """Save with metadata under the lock."""
        with self.lock:
            self.cache.save_entry(context_id, result, metadata)

    def read_metadata(self, context_id: str) -> Dict[str, Any]:
        """Read metadata under the lock."""
        with self.lock:
            return self.cache.read_metadata(context_id)

    def record_history(self, function: str, entry: Dict[str, Any]) -> None:
        with self.lock:
            self.cache.record_history(function, entry)

    def history(self, function: str) -> List[Dict[str, Any]]:
        with self.lock:
            return self.cache.history(function)


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


class PickleFileCache(CacheBase[Any]):
    """The default store: one checksummed pickle file per key under ``directory``.

    Args:
        directory: the cache root; ``None`` reads ``defaults["cache.filesystem.directory"]``
            now. Made absolute now, so a later ``os.chdir`` does not move the cache.
            Nothing is created until the first save.
        pickle_protocol: ``None`` reads ``defaults["cache.pickle_protocol"]`` now. With
            5 (the default) large buffers are stored out of band, without copies.

    Raises:
        ConfigurationError: ``directory`` is not a path or the protocol is unsupported.

    Keys (``context_id``) made of lowercase letters, digits, ``.``, ``_`` and ``-``
    (no leading dot, at most 200 characters) are used as file names as they are. Any
    other non-empty str (a custom identifier may return ``"f(1, 2)"``) is mapped to a
    safe name: its characters outside that set replaced by ``_``, cut to 80, then
    ``-`` and the xxh3-64 hex digest of the original, so distinct keys stay distinct
    (uppercase letters are mapped too, so keys differing in case do not share a file on
    case-insensitive file systems). Entry files are created with mode 0600.
    """

    def __init__(self, directory: Union[str, "os.PathLike[str]", None] = None,
                 pickle_protocol: Optional[int] = None) -> None:
        if directory is None:
            directory = defaults["cache.filesystem.directory"]
        if pickle_protocol is None:
            pickle_protocol = defaults["cache.pickle_protocol"]
        self.directory: str = os.path.abspath(os.fspath(validate_directory(directory)))
        self.pickle_protocol: int = validate_pickle_protocol(pickle_protocol)
        self.entries_directory: str = os.path.join(self.directory, "entries")
        self._paths: Dict[str, str] = {}  # key -> file, memoised for the hit path
        self._prepared = False

    def __repr__(self) -> str:
        return f"PickleFileCache({self.directory!r}, pickle_protocol={self.pickle_protocol})"

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
        os.makedirs(self.entries_directory, exist_ok=True)
        for name, text in (("CACHEDIR.TAG", CACHEDIR_TAG), (".gitignore", "*\n")):
            path = os.path.join(self.directory, name)
            if not os.path.exists(path):
                _atomic_write(self.directory, path, [text.encode()])
        self._prepared = True

    # -- writing ----------------------------------------------------------------------
    def save(self, context_id: str, result: Any) -> None:
        """Store ``result`` under ``context_id`` without metadata (see ``save_entry``)."""
        self.save_entry(context_id, result, {})

    def save_entry(self, context_id: str, result: Any, metadata: Dict[str, Any]) -> None:
        """Store ``result`` with ``metadata`` (JSON-able; other values become str).

        The keys ``context_id``, ``pickle_protocol``, ``size``, ``pickle_size`` and
        ``buffers`` are the store's own and override the caller's.

        Raises:
            Exception: whatever pickling raises (``TypeError``, ``PicklingError``,
                ...), before any file is touched.
            OSError: writing failed; the previous entry, if any, is intact.
        """
        path = self.path_of(context_id)
        chunks = _serialize(context_id, result, metadata, self.pickle_protocol)
        self._prepare()
        if metadata.get("checks"):
            self._set_aside(context_id, path, metadata["checks"])
        try:
            _atomic_write(self.entries_directory, path, chunks)
        except FileNotFoundError:
            self._prepared = False  # the directory was removed under us: once more
            self._prepare()
            _atomic_write(self.entries_directory, path, chunks)

    # -- reading ----------------------------------------------------------------------
    def retrieve(self, context_id: str) -> Any:
        """Return the result stored under ``context_id``.

        Raises:
            CheckpointNotExist: no entry, or an unreadable one (then with a
                :class:`CorruptEntryWarning` naming the file and the reason).
        """
        return self.retrieve_entry(context_id)[0]

    def retrieve_entry(self, context_id: str) -> Tuple[Any, Any]:
        """(result, checks): like :meth:`retrieve`, with the ``"checks"`` saved in the
        entry's metadata (None if none) that the caller verifies before using it."""
        path = self._paths.get(context_id)
        if path is None:
            path = self.path_of(context_id)
            if len(self._paths) >= 4096:
                self._paths.clear()
            self._paths[context_id] = path
        try:
            with open(path, "rb", buffering=0) as handle:
                first = handle.read(_FIRST_READ)
                small = _read_small(first)
                if small is not None:  # the common case: a small entry, read whole
                    (data, checks), buffers = small, ()
                else:
                    header, data, buffers = _read_entry(handle, payload=True, first=first)
                    checks = header.get("checks")
        except FileNotFoundError:
            raise CheckpointNotExist(context_id) from None
        except _Corrupt as exc:
            self._warn_corrupt(path, str(exc))
            raise CheckpointNotExist(context_id) from None
        try:
            return pickle.loads(data, buffers=buffers), checks
        except Exception as exc:
            self._warn_corrupt(path, f"unpickling failed: {type(exc).__name__}: {exc}")
            raise CheckpointNotExist(context_id) from None

    def read_metadata(self, context_id: str) -> Dict[str, Any]:
        """The header of an entry: the caller's metadata and the store's keys.

        Cheap: reads the header only, so the checksum is not verified.

        Raises:
            CheckpointNotExist: no entry, or its header is unreadable.
        """
        path = self.path_of(context_id)
        try:
            with open(path, "rb", buffering=0) as handle:
                header, _, _ = _read_entry(handle, payload=False)
        except (FileNotFoundError, _Corrupt):
            raise CheckpointNotExist(context_id) from None
        return header

    def _warn_corrupt(self, path: str, reason: str) -> None:
        warnings.warn(f"checkpointing entry {path} is unreadable ({reason}); it is treated "
                      f"as a miss: the result will be recomputed and the entry replaced",
                      CorruptEntryWarning, stacklevel=4)

    # -- variants: earlier entries of a key whose run-time checks differ ------------------
    # A key covers code and arguments; what a run read (files, folders, environment) is
    # in the entry's checks. When those change the entry is replaced, but the one it
    # replaces is kept aside (a rename, no copy), so that reverting the inputs finds it
    # again. The decorator serves a variant only after verifying its own checks.
    def _variants_directory(self, context_id: str) -> str:
        return os.path.join(self.directory, "variants", _file_stem(context_id))

    def _set_aside(self, context_id: str, path: str, new_checks: Any,
                   promoting: bool = False) -> None:
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
                with open(path, "rb", buffering=0) as handle:
                    header, _, _ = _read_entry(handle, payload=False)
            except (FileNotFoundError, _Corrupt):
                header = {}
            old_checks = header.get("checks")
            if not promoting:
                try:  # the new entry supersedes a variant with the same checks
                    os.remove(os.path.join(folder, _checks_digest(new_checks) + _SUFFIX))
                except FileNotFoundError:
                    pass
            if not old_checks or header.get("context_id") != context_id \
                    or old_checks == new_checks:
                return
            os.makedirs(folder, exist_ok=True)
            target = os.path.join(folder, _checks_digest(old_checks) + _SUFFIX)
            os.replace(path, target)
            os.utime(target)  # the newest variant: the last to be dropped
            names = [n for n in os.listdir(folder) if n.endswith(_SUFFIX)]
            if len(names) > limit - 1 and not promoting:  # a promotion swaps one for one
                aged = sorted(names, key=lambda n: os.path.getmtime(os.path.join(folder, n)))
                for name in aged[:len(names) - (limit - 1)]:
                    os.remove(os.path.join(folder, name))
        except OSError as exc:
            warnings.warn(f"could not keep the previous entry of {context_id} aside "
                          f"({type(exc).__name__}: {exc}); it is replaced",
                          CheckpointFailedWarning, stacklevel=4)

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
                with open(path, "rb", buffering=0) as handle:
                    header, _, _ = _read_entry(handle, payload=False)
                    mtime = os.fstat(handle.fileno()).st_mtime_ns
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
            with open(path, "rb", buffering=0) as handle:
                header, _, _ = _read_entry(handle, payload=False)
            self._set_aside(context_id, entry, header.get("checks"), promoting=True)
            os.replace(path, entry)
        except (OSError, _Corrupt):
            pass  # another process moved it: the caller's read tells

    # -- maintenance ----------------------------------------------------------------------
    # -- history of each function (for "why did it re-run") ------------------------------
    def _history_path(self, function: str) -> str:
        name = xxhash.xxh3_64_hexdigest(function.encode("utf-8", "surrogatepass"))
        return os.path.join(self.directory, "functions", name + ".json")

    def record_history(self, function: str, entry: Dict[str, Any]) -> None:
        path = self._history_path(function)
        entries = [e for e in self.history(function) if e.get("key") != entry.get("key")]
        entries.append(entry)
        data = json.dumps({"function": function, "entries": entries[-HISTORY_LENGTH:]},
                          separators=(",", ":"), default=str).encode()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _atomic_write(os.path.dirname(path), path, [data])

    def history(self, function: str) -> List[Dict[str, Any]]:
        try:
            with open(self._history_path(function), "rb") as handle:
                data = json.loads(handle.read())
        except (OSError, ValueError):
            return []
        if not isinstance(data, dict) or data.get("function") != function:
            return []
        return [e for e in data.get("entries", []) if isinstance(e, dict)]

    def iter_entries(self) -> Iterator[EntryInfo]:
        """Every entry whose header is readable, in file-name order."""
        try:
            names = sorted(os.listdir(self.entries_directory))
        except FileNotFoundError:
            return
        for name in names:
            if not name.endswith(_SUFFIX) or name.startswith("."):
                continue
            path = os.path.join(self.entries_directory, name)
            try:
                with open(path, "rb", buffering=0) as handle:
                    header, _, _ = _read_entry(handle, payload=False)
                    size = os.fstat(handle.fileno()).st_size
            except (OSError, _Corrupt):
                continue
            context_id = header.get("context_id")
            if not isinstance(context_id, str):
                context_id = name[:-len(_SUFFIX)]
            yield EntryInfo(context_id, path, size, header)

    def entry_files(self) -> List[str]:
        """Paths of every entry file, readable or not (for ``checkpointing verify``)."""
        try:
            names = sorted(os.listdir(self.entries_directory))
        except FileNotFoundError:
            return []
        return [os.path.join(self.entries_directory, name) for name in names
                if name.endswith(_SUFFIX) and not name.startswith(".")]

    def check_file(self, path: str) -> Optional[str]:
        """None if the entry file at ``path`` is intact (magic, version, header,
        checksum), else the reason it is not. The value is not unpickled."""
        try:
            with open(path, "rb", buffering=0) as handle:
                _read_entry(handle, payload=True)
        except _Corrupt as exc:
            return str(exc)
        except OSError as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    def delete(self, context_id: str) -> bool:
        """Remove the entry of ``context_id`` (and its variants); False if there was none."""
        _remove_tree(self._variants_directory(context_id))
        try:
            os.remove(self.path_of(context_id))
        except FileNotFoundError:
            return False
        return True

    def clear(self) -> int:
        """Remove every entry and return how many.

        Only ``*.ckpt`` files in ``entries/`` and ``variants/`` are removed, and
        temporary files that crashed writers left more than an hour ago (younger ones
        may be in use); any other file is left alone.
        """
        removed = 0
        _remove_tree(os.path.join(self.directory, "variants"))
        try:
            names = os.listdir(self.entries_directory)
        except FileNotFoundError:
            return 0
        now = time.time()
        for name in names:
            path = os.path.join(self.entries_directory, name)
            is_temp = name.startswith(_TEMP_PREFIX)
            if is_temp:
                try:
                    if now - os.path.getmtime(path) < _STALE_TEMP_SECONDS:
                        continue  # maybe another process is writing it right now
                except OSError:
                    continue
            elif not name.endswith(_SUFFIX) or not os.path.isfile(path):
                continue
            try:
                os.remove(path)
            except FileNotFoundError:
                continue
            removed += 0 if is_temp else 1
        return removed


def _checks_digest(checks: Any) -> str:
    """The name of a variant: a digest of its checks."""
    return xxhash.xxh3_64_hexdigest(json.dumps(checks, sort_keys=True, default=str).encode())


def _remove_tree(folder: str) -> None:
    """Remove the variants under ``folder`` (entry files and emptied folders only)."""
    for root, dirs, files in os.walk(folder, topdown=False):
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


# -- file names ----------------------------------------------------------------------
def _file_stem(context_id: str) -> str:
    """The file name (without suffix) of a key; see :class:`PickleFileCache`."""
    if not isinstance(context_id, str) or not context_id:
        raise ValueError(f"context id {context_id!r} is not a non-empty str; an "
                         f"identifier's identify() must return a non-empty str")
    if _SAFE_ID.fullmatch(context_id) is not None \
            and context_id.split(".", 1)[0] not in _WINDOWS_RESERVED:
        return context_id
    readable = re.sub(r"[^A-Za-z0-9._-]", "_", context_id)[:80].lstrip(".") or "id"
    digest = xxhash.xxh3_64_hexdigest(context_id.encode("utf-8", "surrogatepass"))
    return f"{readable}-{digest}"


# -- the entry format ----------------------------------------------------------------------
def _aligned(position: int) -> int:
    return position + (-position) % _ALIGN


def _serialize(context_id: str, result: Any, metadata: Dict[str, Any],
               protocol: int) -> List[Any]:
    """The chunks of an entry file, in order; pickling errors propagate as they are."""
    raws: List[memoryview] = []
    if protocol >= 5:
        buffers: List[pickle.PickleBuffer] = []
        data = pickle.dumps(result, protocol=protocol, buffer_callback=buffers.append)
        raws = [buffer.raw() for buffer in buffers]
    else:
        data = pickle.dumps(result, protocol=protocol)
    header = dict(metadata)
    header.update({"context_id": context_id, "pickle_protocol": protocol,
                   "size": len(data) + sum(raw.nbytes for raw in raws),
                   "pickle_size": len(data), "buffers": [raw.nbytes for raw in raws]})
    flags = _HAS_CHECKS if metadata.get("checks") else 0
    header_bytes = _LAYOUT.pack(len(data), len(raws), flags) \
        + b"".join(_LENGTH.pack(raw.nbytes) for raw in raws) \
        + json.dumps(header, default=str, separators=(",", ":")).encode()
    chunks: List[Any] = [header_bytes]
    position = _PREFIX.size + len(header_bytes)
    for payload in [data, *raws]:
        padding = _aligned(position) - position
        if padding:
            chunks.append(bytes(padding))
        chunks.append(payload)
        position += padding + memoryview(payload).nbytes
    checksum = xxhash.xxh3_64()
    for chunk in chunks:
        checksum.update(chunk)
    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(header_bytes), checksum.intdigest())
    return [prefix, *chunks]


def _read_small(first: bytes) -> Optional[Tuple[memoryview, Any]]:
    """(pickle, checks) of an intact entry without out-of-band buffers that ``first``
    (the first read of its file) holds whole; None to take the general path, which
    also reports what is wrong with a broken file."""
    if len(first) >= _FIRST_READ or len(first) < _SMALL_MIN:
        return None
    magic, version, header_length, checksum, pickle_size, count, flags = \
        _SMALL.unpack_from(first)
    if magic != MAGIC or version != FORMAT_VERSION or count:
        return None
    header_end = _PREFIX.size + header_length
    start = _aligned(header_end)
    if start + pickle_size != len(first):
        return None
    view = memoryview(first)
    if xxhash.xxh3_64_intdigest(view[_PREFIX.size:]) != checksum:
        return None
    checks = None
    if flags & _HAS_CHECKS:
        try:
            checks = json.loads(bytes(view[_SMALL_MIN:header_end]))["checks"]
        except (ValueError, KeyError, TypeError):
            return None
    return view[start:], checks


def _read_entry(handle: Any, payload: bool, first: Optional[bytes] = None
                ) -> Tuple[Dict[str, Any], Any, List[bytearray]]:
    """Read an entry from an unbuffered binary file: (header, pickle, buffers).

    With ``payload`` False only the header is read and checked. Raises ``_Corrupt``.
    """
    if first is None:
        first = handle.read(_FIRST_READ)
    if not first:
        raise _Corrupt("the file is empty")
    if len(first) < _PREFIX.size:
        raise _Corrupt(f"truncated to {len(first)} bytes")
    magic, version, header_length, checksum = _PREFIX.unpack_from(first)
    if magic != MAGIC:
        raise _Corrupt("not a checkpointing entry (wrong magic number)")
    if version != FORMAT_VERSION:
        raise _Corrupt(f"entry format {version}, this version of checkpointing reads "
                       f"format {FORMAT_VERSION}")
    header_end = _PREFIX.size + header_length
    if header_end > len(first):
        if len(first) < _FIRST_READ or header_length > _MAX_HEADER:
            raise _Corrupt("truncated header")
        first += _read_exactly(handle, header_end - len(first))
    layout_end = _PREFIX.size + _LAYOUT.size
    if header_end < layout_end:
        raise _Corrupt("unreadable header: too short")
    pickle_size, count, flags = _LAYOUT.unpack_from(first, _PREFIX.size)
    json_start = layout_end + count * _LENGTH.size
    if json_start > header_end:
        raise _Corrupt("unreadable header: sizes missing")
    buffers = [_LENGTH.unpack_from(first, layout_end + i * _LENGTH.size)[0]
               for i in range(count)]
    if payload:
        # The hit path: the JSON metadata is covered by the checksum, not parsed,
        # unless it holds checks to make before serving the entry.
        header: Dict[str, Any] = {"pickle_size": pickle_size, "buffers": buffers}
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
        if not isinstance(header, dict) or header.get("pickle_size") != pickle_size \
                or header.get("buffers") != buffers:
            raise _Corrupt("unreadable header: its binary and JSON parts disagree")
        return header, None, []

    segments = []  # (start, length) of the pickle and each buffer
    position = header_end
    for length in [header["pickle_size"], *header["buffers"]]:
        position = _aligned(position)
        segments.append((position, length))
        position += length
    end = position
    view = memoryview(first)
    digest = xxhash.xxh3_64()
    if end <= len(first):  # the common case: the first read got all of it
        if end < len(first) or (len(first) >= _FIRST_READ and handle.read(1)):
            raise _Corrupt("unexpected bytes after the end of the entry")
        digest.update(view[_PREFIX.size:end])
        if digest.intdigest() != checksum:
            raise _Corrupt("checksum mismatch (corrupted)")
        (start, length), *rest = segments
        return header, view[start:start + length], \
            [bytearray(view[s:s + n]) for s, n in rest]

    size = os.fstat(handle.fileno()).st_size
    if size != end:
        raise _Corrupt(f"the file has {size} bytes, its header describes {end}"
                       f"{' (truncated)' if size < end else ''}")
    digest.update(view[_PREFIX.size:header_end])
    position = header_end
    parts: List[bytearray] = []
    for start, length in segments:
        if start > position:  # the padding: checksummed like the rest
            padding = bytearray(start - position)
            _fill(handle, view, position, memoryview(padding))
            digest.update(padding)
        target = bytearray(length)  # one writable buffer each, read in place
        _fill(handle, view, start, memoryview(target))
        digest.update(target)
        parts.append(target)
        position = start + length
    if digest.intdigest() != checksum:
        raise _Corrupt("checksum mismatch (corrupted)")
    return header, parts[0], parts[1:]


def _is_size(value: Any) -> bool:
    return type(value) is int and value >= 0


def _fill(handle: Any, first: memoryview, position: int, target: memoryview) -> None:
    """Fill ``target`` with the file's bytes from ``position`` (taking those already in
    ``first``, reading the rest; the file is positioned at ``len(first)``)."""
    done = 0
    if position < len(first):
        done = min(len(first) - position, len(target))
        target[:done] = first[position:position + done]
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

_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) \
    | getattr(os, "O_CLOEXEC", 0)


def _create_temporary(directory: str) -> Tuple[int, str]:
    """A new file in ``directory`` under a random name, open for writing.

    Like ``tempfile.mkstemp`` without importing tempfile (slow to import), and with
    the umask's permissions rather than 0600, so a cache directory shared by a team
    stays readable by it.
    """
    for _ in range(100):
        path = os.path.join(directory, f"{_TEMP_PREFIX}{os.urandom(8).hex()}{_SUFFIX}")
        try:
            return os.open(path, _TEMP_FLAGS, 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file in {directory}")


def _atomic_write(directory: str, path: str, chunks: List[Any]) -> None:
    """Write ``chunks`` to ``path`` through a fsynced temporary file and a rename.

    On any failure the temporary file is removed and the exception propagates.
    """
    fd, temporary = _create_temporary(directory)
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
        finally:
            os.close(fd)
        os.replace(temporary, path)
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
