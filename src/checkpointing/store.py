"""Where results live: the cache interface and the crash-safe local file store.

This module owns the stored format. :class:`CacheBase` is the small interface of
checkpointing 1.0 (``save``/``retrieve``), which any backend implements;
:class:`PickleFileCache` is the default, one file per key under
``<directory>/entries/``. Its promises:

* a write is atomic: the result is pickled in memory first (an unpicklable result
  touches no file), written to a temporary file in the same directory, flushed,
  fsynced and renamed over the entry, so a crash or a full disk leaves either the old
  entry or the new one, never a broken one;
* a read checks a magic number, the format version and an xxh3-64 checksum, so a
  truncated, corrupted or foreign file is a miss with a :class:`CorruptEntryWarning`
  naming it, never a wrong value or a crash;
* large buffers (numpy arrays) travel out of band with pickle protocol 5, aligned to
  64 bytes, without an extra copy on write.

Entry layout: ``b"CKPT"``, format version (1 byte), header length (u32), checksum
(u64, xxh3-64 of everything after it), header (JSON: the caller's metadata, the
pickle length and the out-of-band buffer lengths), padding, the pickle, each
buffer at a 64-byte-aligned offset.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import struct
import tempfile
import time
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Dict, Generic, Iterator, List, Optional, TypeVar

import xxhash

from .config import defaults, validate_directory, validate_pickle_protocol
from .errors import CheckpointNotExist, CorruptEntryWarning

__all__ = ["CacheBase", "EntryInfo", "FORMAT_VERSION", "PickleFileCache", "SynchronizedCache"]

T = TypeVar("T")

MAGIC = b"CKPT"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<4sBIQ")  # magic, version, header length, checksum
_ALIGN = 64
_FIRST_READ = 1 << 16
_SUFFIX = ".ckpt"
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$")
_STALE_TEMP_SECONDS = 3600

CACHEDIR_TAG = ("Signature: 8a477f597d28d172789f06886806bc55\n"
                "# This file is a cache directory tag created by checkpointing.\n"
                "# For information about cache directory tags see https://bford.info/cachedir/\n")


class CacheBase(ABC, Generic[T]):
    """Stores results by key. Implement ``save`` and ``retrieve`` (the 1.0 interface).

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
        """Store ``result`` with ``metadata``; backends without metadata just save."""
        self.save(context_id, result)

    def read_metadata(self, context_id: str) -> Dict[str, Any]:
        """The metadata stored with an entry; raise CheckpointNotExist if none."""
        raise CheckpointNotExist(context_id)

    def synchronize_with(self, lock: Any) -> "SynchronizedCache[T]":
        """This cache with every access made under ``lock`` (threads, processes)."""
        return SynchronizedCache(self, lock)


class SynchronizedCache(CacheBase[T]):
    """A cache whose accesses all happen under a lock."""

    def __init__(self, cache: CacheBase[T], lock: Any) -> None:
        self.cache = cache
        self.lock = lock

    def save(self, context_id: str, result: T) -> None:
        with self.lock:
            self.cache.save(context_id, result)

    def retrieve(self, context_id: str) -> T:
        with self.lock:
            return self.cache.retrieve(context_id)

    def save_entry(self, context_id: str, result: T, metadata: Dict[str, Any]) -> None:
        with self.lock:
            self.cache.save_entry(context_id, result, metadata)

    def read_metadata(self, context_id: str) -> Dict[str, Any]:
        with self.lock:
            return self.cache.read_metadata(context_id)


@dataclass(frozen=True)
class EntryInfo:
    """One stored entry, as listed by :meth:`PickleFileCache.iter_entries`."""

    context_id: str
    path: str
    size: int
    metadata: Dict[str, Any]


class _Corrupt(Exception):
    pass


class PickleFileCache(CacheBase[Any]):
    """The default store: one checksummed pickle file per key under ``directory``.

    Args:
        directory: the cache root; ``None`` reads ``defaults["cache.filesystem.directory"]``.
            Made absolute now, so a later ``os.chdir`` does not move the cache.
            Nothing is created until the first save.
        pickle_protocol: ``None`` reads ``defaults["cache.pickle_protocol"]``.
    """

    def __init__(self, directory: Any = None, pickle_protocol: Optional[int] = None) -> None:
        if directory is None:
            directory = defaults["cache.filesystem.directory"]
        if pickle_protocol is None:
            pickle_protocol = defaults["cache.pickle_protocol"]
        self.directory = os.path.abspath(os.fspath(validate_directory(directory)))
        self.pickle_protocol = validate_pickle_protocol(pickle_protocol)
        self.entries_directory = os.path.join(self.directory, "entries")
        self._prepared = False

    def __repr__(self) -> str:
        return f"PickleFileCache({self.directory!r}, pickle_protocol={self.pickle_protocol})"

    # -- paths ----------------------------------------------------------------------
    def path_of(self, context_id: str) -> str:
        """The file that holds the entry of ``context_id``."""
        if not isinstance(context_id, str) or not context_id:
            raise ValueError(f"context id {context_id!r} is not a non-empty str; an "
                             f"identifier's identify() must return one")
        if _SAFE_ID.match(context_id) is None:
            # Ids from custom identifiers may hold any character: keep a readable part.
            readable = re.sub(r"[^A-Za-z0-9._-]", "_", context_id)[:80].lstrip(".")
            context_id = f"{readable}-{xxhash.xxh3_64_hexdigest(context_id.encode())}"
        return os.path.join(self.entries_directory, context_id + _SUFFIX)

    def _prepare(self) -> None:
        if self._prepared and os.path.isdir(self.entries_directory):
            return
        os.makedirs(self.entries_directory, exist_ok=True)
        for name, text in (("CACHEDIR.TAG", CACHEDIR_TAG), (".gitignore", "*\n")):
            path = os.path.join(self.directory, name)
            if not os.path.exists(path):
                _atomic_write(self.directory, path, [text.encode()])
        self._prepared = True

    # -- writing ----------------------------------------------------------------------
    def save(self, context_id: str, result: Any) -> None:
        self.save_entry(context_id, result, {})

    def save_entry(self, context_id: str, result: Any, metadata: Dict[str, Any]) -> None:
        path = self.path_of(context_id)
        buffers: List[pickle.PickleBuffer] = []
        if self.pickle_protocol >= 5:
            data = pickle.dumps(result, protocol=self.pickle_protocol,
                                buffer_callback=buffers.append)
        else:
            data = pickle.dumps(result, protocol=self.pickle_protocol)
        raws = [b.raw() for b in buffers]
        header = dict(metadata)
        header.update({"pickle_protocol": self.pickle_protocol, "pickle_size": len(data),
                       "buffers": [r.nbytes for r in raws]})
        header["size"] = len(data) + sum(r.nbytes for r in raws)
        header_bytes = json.dumps(header, default=str, separators=(",", ":")).encode()
        chunks: List[Any] = [header_bytes]
        offset = _PREFIX.size + len(header_bytes)
        pad = (-offset) % _ALIGN
        chunks.append(b"\0" * pad)
        offset += pad
        chunks.append(data)
        offset += len(data)
        for raw in raws:
            pad = (-offset) % _ALIGN
            chunks.append(b"\0" * pad)
            chunks.append(raw)
            offset += pad + raw.nbytes
        checksum = xxhash.xxh3_64()
        for chunk in chunks:
            checksum.update(chunk)
        prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(header_bytes), checksum.intdigest())
        self._prepare()
        try:
            _atomic_write(self.entries_directory, path, [prefix, *chunks])
        except FileNotFoundError:
            self._prepared = False  # the directory was removed under us: once more
            self._prepare()
            _atomic_write(self.entries_directory, path, [prefix, *chunks])

    # -- reading ----------------------------------------------------------------------
    def retrieve(self, context_id: str) -> Any:
        path = self.path_of(context_id)
        try:
            with open(path, "rb") as handle:
                header, body = self._read(handle, path, payload=True)
        except FileNotFoundError:
            raise CheckpointNotExist(context_id) from None
        except _Corrupt as exc:
            self._warn_corrupt(path, str(exc))
            raise CheckpointNotExist(context_id) from None
        try:
            return _load(header, body)
        except Exception as exc:
            self._warn_corrupt(path, f"unpickling failed: {type(exc).__name__}: {exc}")
            raise CheckpointNotExist(context_id) from None

    def read_metadata(self, context_id: str) -> Dict[str, Any]:
        path = self.path_of(context_id)
        try:
            with open(path, "rb") as handle:
                header, _ = self._read(handle, path, payload=False)
        except FileNotFoundError:
            raise CheckpointNotExist(context_id) from None
        except _Corrupt:
            raise CheckpointNotExist(context_id) from None
        return header

    def _read(self, handle: Any, path: str, payload: bool) -> Any:
        if payload:
            # One buffer for the whole file, writable, so that arrays loaded from it
            # out of band are writable without a copy.
            size = os.fstat(handle.fileno()).st_size
            buffer = bytearray(size)
            view = memoryview(buffer)
            got = handle.readinto(view)
            if got != size:
                raise _Corrupt(f"truncated while reading ({got} of {size} bytes)")
            first: Any = view
        else:
            first = handle.read(_FIRST_READ)
        if len(first) < _PREFIX.size:
            raise _Corrupt(f"truncated ({len(first)} bytes)")
        magic, version, header_len, checksum = _PREFIX.unpack_from(first)
        if magic != MAGIC:
            raise _Corrupt("not a checkpointing entry")
        if version != FORMAT_VERSION:
            raise _Corrupt(f"stored format {version}, this version reads {FORMAT_VERSION}")
        end = _PREFIX.size + header_len
        if len(first) < end and not payload:
            first += handle.read(end - len(first))
        if len(first) < end:
            raise _Corrupt("truncated header")
        try:
            header = json.loads(bytes(first[_PREFIX.size:end]))
        except ValueError as exc:
            raise _Corrupt(f"unreadable header: {exc}") from None
        if not isinstance(header, dict) or "pickle_size" not in header:
            raise _Corrupt("unreadable header")
        if not payload:
            return header, None
        digest = xxhash.xxh3_64()
        digest.update(first[_PREFIX.size:])
        if digest.intdigest() != checksum:
            raise _Corrupt("checksum mismatch (truncated or corrupted)")
        return header, (first, end)

    def _warn_corrupt(self, path: str, reason: str) -> None:
        warnings.warn(f"checkpointing entry {path} is unreadable ({reason}); it is treated "
                      f"as a miss, recomputed and replaced", CorruptEntryWarning, stacklevel=4)

    # -- maintenance ----------------------------------------------------------------------
    def iter_entries(self) -> Iterator[EntryInfo]:
        """Every readable entry, with its metadata."""
        try:
            names = sorted(os.listdir(self.entries_directory))
        except FileNotFoundError:
            return
        for name in names:
            if not name.endswith(_SUFFIX) or name.startswith("."):
                continue
            path = os.path.join(self.entries_directory, name)
            try:
                with open(path, "rb") as handle:
                    header, _ = self._read(handle, path, payload=False)
                size = os.path.getsize(path)
            except (OSError, _Corrupt):
                continue
            yield EntryInfo(name[:-len(_SUFFIX)], path, size, header)

    def delete(self, context_id: str) -> bool:
        """Remove one entry; False if there was none."""
        try:
            os.remove(self.path_of(context_id))
        except FileNotFoundError:
            return False
        return True

    def clear(self) -> int:
        """Remove all entries (and temporary files left by crashed writers)."""
        removed = 0
        try:
            names = os.listdir(self.entries_directory)
        except FileNotFoundError:
            return 0
        now = time.time()
        for name in names:
            path = os.path.join(self.entries_directory, name)
            if name.startswith(".tmp-"):
                try:
                    if now - os.path.getmtime(path) < _STALE_TEMP_SECONDS:
                        continue  # maybe another process writing right now
                except OSError:
                    continue
            elif not name.endswith(_SUFFIX):
                continue
            try:
                os.remove(path)
                removed += 0 if name.startswith(".tmp-") else 1
            except FileNotFoundError:
                pass
        return removed


def _load(header: Dict[str, Any], located: Any) -> Any:
    """Unpickle the payload of an entry: ``located`` is (whole file, header end)."""
    view, position = located
    position += (-position) % _ALIGN
    size = header["pickle_size"]
    data = view[position:position + size]
    position += size
    buffers = []
    for length in header.get("buffers", ()):
        position += (-position) % _ALIGN
        buffers.append(view[position:position + length])
        position += length
    if buffers:
        return pickle.loads(data, buffers=buffers)
    return pickle.loads(data)


def _atomic_write(directory: str, path: str, chunks: List[Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
