"""Locks of the store: :class:`SynchronizedCache`, and compute-once locks of a key.

:class:`SynchronizedCache` makes every access of a cache under a lock (any context
manager: ``_thread.allocate_lock()``, a file lock).

Compute once: when several callers miss the same key, one computes, the others wait.

A caller that misses asks for the key's lock. The first to get it computes and saves;
the others poll, with a backoff, until the entry they missed changes (then they read
it: a hit) or the lock comes free (then they look again, and compute only if the entry
is still not there). A wait has a timeout, after which the waiter computes by itself
(the decorator warns): a lock is an optimisation, never a reason to block forever.

Threads of one process first queue on an in-process gate per key
(:func:`thread_gate`), blocked without polling; one of them at a time takes the lock
shared with other processes. Two kinds of shared lock, one interface (:class:`KeyLock`):

* :class:`RangeKeyLock`, for a store on a local file system where Linux has open file
  description locks (``F_OFD_SETLK``, 64-bit Linux): a lock on one byte of the
  shared file ``<root>/locks/keys``, at an offset drawn from the key (xxh3-64), so
  that a miss creates and removes no file. The kernel releases it when its holder
  dies (or closes the file), so a killed holder frees the key at once; the locks
  belong to an open file, so threads of one process exclude each other as processes
  do.
* :class:`FileKeyLock`, elsewhere (macOS, Windows, a file system that refuses range
  locks): an OS lock (``fcntl.flock``, ``msvcrt.locking`` on Windows) on
  ``<root>/locks/<name>.lock``, created for the miss and removed after it. Same
  guarantees, at the price of a file created and removed per miss.
* :class:`LeaseLock`, for an object store: a lease object written create-only (a
  conditional put, ``If-None-Match: *``) and renewed with ``If-Match: <etag>`` by a
  heartbeat thread while its holder computes. A waiter that sees the same lease (the
  same ETag) for a whole lease time, on its own clock, takes it over with a
  conditional put on that ETag (so of several waiters only one succeeds). Clocks of
  different machines are never compared.

What it costs: a miss of a local store locks a byte of the shared file and unlocks it,
two system calls (:class:`RangeKeyLock`: a process with one thread keeps the file
open; a thread besides the main one opens it for each lock and closes it after, its
own open file, so that it excludes the process's other threads; with
:class:`FileKeyLock` a miss also creates and removes a small file, which costs more
than the rest of the lock: ~20 µs on ext4);
a miss of an object store makes two requests more (create and delete the lease) and
one renewal per third of the lease time while it computes; a waiter makes one or two
requests per poll (at most every 0.5 s).
"""

from __future__ import annotations

import _thread  # threading's locks, without threading (issue 12, target 5)
import errno
import os
import struct
import sys
import time
from abc import ABC, abstractmethod

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

from .base import CacheBase

TYPE_CHECKING = False
if TYPE_CHECKING:
    import threading
    from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple, Union

    from .._typing import ContextId, ReturnValue
else:
    from .base import ContextId, ReturnValue  # stand-ins (see there)

__all__ = [
    "ACQUIRED",
    "READY",
    "TIMED_OUT",
    "FileKeyLock",
    "KeyLock",
    "LeaseBackend",
    "LeaseLock",
    "RANGE_LOCKS",
    "REFUSED",
    "RangeKeyLock",
    "SynchronizedCache",
    "thread_gate",
]


class SynchronizedCache(CacheBase[ContextId, ReturnValue]):
    """A cache whose every access happens inside ``with lock:``.

    Otherwise it is the cache it wraps: every method of :class:`CacheBase` and
    ``str_keys_only``/``stores_checks`` are the wrapped cache's.

    Args:
        cache: the cache to wrap.
        lock: a context manager, e.g. ``_thread.allocate_lock()`` or a file lock.
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

    @property  # type: ignore[override]
    def directory(self) -> Optional[str]:  # type: ignore[override]
        """That of the wrapped cache."""
        return getattr(self.cache, "directory", None)

    @property  # type: ignore[override]
    def stores_checks(self) -> bool:  # type: ignore[override]
        """That of the wrapped cache."""
        return getattr(self.cache, "stores_checks", False)

    def save(self, context_id: ContextId, result: ReturnValue) -> None:
        """Save under the lock."""
        with self.lock:
            self.cache.save(context_id, result)

    def retrieve(self, context_id: ContextId) -> ReturnValue:
        """Retrieve under the lock."""
        with self.lock:
            return self.cache.retrieve(context_id)

    def read_entry(self, key: ContextId) -> Tuple[ReturnValue, Any]:
        """Read the result and its checks under the lock."""
        with self.lock:
            return self.cache.read_entry(key)

    def exists(self, key: ContextId) -> bool:
        with self.lock:
            return self.cache.exists(key)

    def delete(self, key: ContextId) -> bool:
        with self.lock:
            return self.cache.delete(key)

    def entries(self) -> Iterator[ContextId]:
        """The keys, listed under the lock."""
        with self.lock:
            return iter(list(self.cache.entries()))

    def variants(self, key: ContextId) -> List[Tuple[Any, Any]]:
        with self.lock:
            return self.cache.variants(key)

    def promote_variant(self, key: ContextId, handle: Any) -> None:
        with self.lock:
            self.cache.promote_variant(key, handle)

    def save_entry(self, key: ContextId, result: ReturnValue, metadata: Dict[str, Any]) -> None:
        """Save with metadata under the lock."""
        with self.lock:
            self.cache.save_entry(key, result, metadata)

    def read_metadata(self, key: ContextId) -> Dict[str, Any]:
        """Read metadata under the lock."""
        with self.lock:
            return self.cache.read_metadata(key)

    def record_history(self, function: str, entry: Dict[str, Any]) -> None:
        with self.lock:
            self.cache.record_history(function, entry)

    def history(self, function: str) -> List[Dict[str, Any]]:
        with self.lock:
            return self.cache.history(function)


ACQUIRED = "acquired"
"""The caller holds the key: it computes, saves, then releases."""
READY = "ready"
"""The entry changed while waiting: read it (the lock is not held)."""
TIMED_OUT = "timed out"
"""The wait lasted the whole timeout: compute without the lock (the lock is not held)."""

_UNSET = object()
_FIRST_DELAY = 0.001
_LOCAL_MAX_DELAY = 0.05
_REMOTE_MAX_DELAY = 0.5
_LOCK_FLAGS = (
    os.O_RDWR
    | os.O_CREAT
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_BINARY", 0)
)


_GATES: Dict[str, List[Any]] = {}  # key -> [threading.Lock, number of users]
_GATES_LOCK = _thread.allocate_lock()


def thread_gate(name: str, timeout: float) -> "Union[_Gate, _OpenGate]":
    """Threads of this process that miss the same key queue here, blocked (no polling),
    before one of them takes the key's lock shared with other processes. A context
    manager whose ``with`` yields None if the gate was free, True if this thread waited
    for another (which may have saved the entry meanwhile: look again), False if the
    wait timed out. A process with no other thread has nobody to queue behind: its
    gate is open (a thread started later queues on the shared lock instead, which
    excludes threads as it does processes)."""
    if not _thread._count():  # threads started besides the main one
        return _OPEN_GATE
    return _Gate(name, timeout)


class _OpenGate:
    """The gate of a process with one thread: nothing to wait for."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        pass


_OPEN_GATE = _OpenGate()


class _Gate:
    """:func:`thread_gate` (a class: cheaper to enter than a generator's context)."""

    __slots__ = ("name", "timeout", "entry", "got")

    def __init__(self, name: str, timeout: float) -> None:
        self.name = name
        self.timeout = timeout

    def __enter__(self) -> Optional[bool]:
        with _GATES_LOCK:
            entry = _GATES.get(self.name)
            if entry is None:
                entry = _GATES[self.name] = [_thread.allocate_lock(), 0]
            entry[1] += 1
        self.entry = entry
        got: Optional[bool] = None
        if not entry[0].acquire(False):
            try:
                got = entry[0].acquire(timeout=self.timeout)
            except BaseException:
                self._leave()
                raise
        self.got = got
        return got

    def __exit__(self, *exc: Any) -> None:
        if self.got is not False:
            self.entry[0].release()
        self._leave()

    def _leave(self) -> None:
        with _GATES_LOCK:
            self.entry[1] -= 1
            if self.entry[1] == 0:
                del _GATES[self.name]


class KeyLock(ABC):
    """The compute-once lock of one key (see the module docstring)."""

    @abstractmethod
    def acquire(self, timeout: float) -> str:
        """Wait for the key: return :data:`ACQUIRED`, :data:`READY` or :data:`TIMED_OUT`."""

    @abstractmethod
    def release(self) -> None:
        """Give the key up (nothing if it is not held)."""


def _wait(
    try_lock: Callable[[], bool],
    token: Callable[[], Any],
    timeout: float,
    max_delay: float,
) -> str:
    """The polling loop shared by both locks."""
    if try_lock():  # an uncontended miss: no clock read, no token
        return ACQUIRED
    before: Any = _UNSET  # taken after the first failed try
    deadline = time.monotonic() + timeout
    delay = _FIRST_DELAY
    while True:
        if try_lock():
            return ACQUIRED
        now = token()
        if before is _UNSET:
            before = now
        elif now != before:
            return READY
        left = deadline - time.monotonic()
        if left <= 0:
            return TIMED_OUT
        time.sleep(min(delay, left))
        delay = min(delay * 2, max_delay)


def _open_lock_file(path: str, file_mode: int, folder_mode: int) -> int:
    """Open (create) a lock file, creating its folder if it is missing."""
    try:
        return os.open(path, _LOCK_FLAGS, file_mode)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), mode=folder_mode, exist_ok=True)
        return os.open(path, _LOCK_FLAGS, file_mode)


class _LocalKeyLock(KeyLock):
    """A lock held through a descriptor of a file in the cache's ``locks`` folder, for
    the entry at ``entry_path``, taken by polling :meth:`_try_lock` (see :func:`_wait`);
    an entry that appears or changes meanwhile ends the wait."""

    def __init__(
        self, lock_path: str, entry_path: str, file_mode: int = 0o600, folder_mode: int = 0o700
    ) -> None:
        self.lock_path = lock_path
        self.entry_path = entry_path
        self.file_mode = file_mode
        self.folder_mode = folder_mode
        self._fd: Optional[int] = None

    def _token(self) -> Any:
        try:
            status = os.stat(self.entry_path)
        except OSError:
            return None
        return (status.st_ino, status.st_mtime_ns, status.st_size)

    @abstractmethod
    def _try_lock(self) -> bool:
        """Take the lock without waiting; False if another holds it."""

    def acquire(self, timeout: float) -> str:
        return _wait(self._try_lock, self._token, timeout, _LOCAL_MAX_DELAY)


class FileKeyLock(_LocalKeyLock):
    """An OS file lock on ``lock_path`` for the entry at ``entry_path``.

    The holder removes the lock file before unlocking it, so the locks folder does not
    fill up; a waiter that locked a file which was removed meanwhile tries again.
    """

    def __repr__(self) -> str:
        return f"FileKeyLock({self.lock_path!r})"

    def _try_lock(self) -> bool:
        fd = _open_lock_file(self.lock_path, self.file_mode, self.folder_mode)
        if not _lock_fd(fd):
            os.close(fd)
            return False
        try:  # the previous holder may have removed the file after we opened it
            opened, named = os.fstat(fd), os.stat(self.lock_path)
            current = (opened.st_dev, opened.st_ino) == (named.st_dev, named.st_ino)
        except FileNotFoundError:
            current = False
        if not current:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if fcntl is not None:  # Windows cannot remove an open file
                os.unlink(self.lock_path)
        except OSError:
            pass
        finally:
            os.close(fd)  # unlocks


# ``struct flock`` of 64-bit Linux (x86-64, arm64, ...): l_type, l_whence, l_start,
# l_len, l_pid, with the padding the C compiler puts there (32 bytes).
_FLOCK = struct.Struct("hhxxxxqqixxxx")
_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", None) if fcntl is not None else None
RANGE_LOCKS = _OFD_SETLK is not None and sys.platform.startswith("linux") and sys.maxsize > 2**32
"""Whether :class:`RangeKeyLock` can be used here (64-bit Linux, Python 3.9+)."""
REFUSED: Set[str] = set()
"""Locks folders whose file system refused a range lock (they use :class:`FileKeyLock`)."""


class RangeKeyLock(_LocalKeyLock):
    """An open file description lock on byte ``offset`` of the shared file
    ``lock_path``, for the entry at ``entry_path`` (see the module docstring).

    The file is created once (empty: a lock past the end of a file is allowed) and
    never removed; each try opens it, asks for the byte without waiting and keeps the
    descriptor while it holds it; :meth:`release` closes it, which frees the byte.

    With ``keep_open`` (the decorator's locks), in a process with one thread (none
    started besides it) a try asks for the byte through a descriptor of the file that
    the process keeps open (one per lock file, see :func:`forget_lock_files`), and
    :meth:`release` unlocks the byte: two system calls a miss instead of four. Locks
    of one open file do not exclude each other, which is right for one thread (it
    never waits for itself: it holds a key only while it computes it) but not for
    two: a thread started later opens the file for each try, as without
    ``keep_open``, and so waits for the main thread's byte as another process would.
    A forked child opens its own (it shares its parent's open files).

    Raises OSError (``EINVAL``, ``ENOLCK``...) where the file system refuses range
    locks: the caller then uses :class:`FileKeyLock`.
    """

    def __init__(
        self,
        lock_path: str,
        offset: int,
        entry_path: str,
        file_mode: int = 0o600,
        folder_mode: int = 0o700,
        keep_open: bool = False,
    ) -> None:
        super().__init__(lock_path, entry_path, file_mode, folder_mode)
        self.offset = offset
        self.keep_open = keep_open

    def __repr__(self) -> str:
        return f"RangeKeyLock({self.lock_path!r}, {self.offset})"

    _kept = False  # the byte is held through the process's kept descriptor

    def _try_lock(self) -> bool:
        # No thread started besides this one: the kept descriptor. A thread started
        # later opens its own, whose lock conflicts with this one.
        kept = self.keep_open and not _thread._count()
        if kept:
            fd = _KEPT_LOCK_FILES.get(self.lock_path)
            if fd is None:
                fd = _open_lock_file(self.lock_path, self.file_mode, self.folder_mode)
                _KEPT_LOCK_FILES[self.lock_path] = fd
        else:
            fd = _open_lock_file(self.lock_path, self.file_mode, self.folder_mode)
        request = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, self.offset, 1, 0)
        try:
            fcntl.fcntl(fd, _OFD_SETLK, request)
        except OSError as exc:
            if not kept:
                os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                return False
            REFUSED.add(os.path.dirname(self.lock_path))  # FileKeyLock from now on
            raise
        self._fd = fd
        self._kept = kept
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if not self._kept:
            os.close(fd)  # the last descriptor of the open file: the byte is free
        elif _KEPT_LOCK_FILES.get(self.lock_path) == fd:  # (not in a forked child)
            request = _FLOCK.pack(fcntl.F_UNLCK, os.SEEK_SET, self.offset, 1, 0)
            fcntl.fcntl(fd, _OFD_SETLK, request)


# lock file -> a descriptor of it kept open for the main thread (see RangeKeyLock)
_KEPT_LOCK_FILES: Dict[str, int] = {}


def forget_lock_files() -> None:
    """Close the lock files kept open (the next lock opens them again): in a forked
    child, whose descriptors share its parent's open files, and when a store's
    folders were removed under it (a kept file would no longer be the one other
    processes lock)."""
    for fd in _KEPT_LOCK_FILES.values():
        try:
            os.close(fd)  # its parent's copy keeps what the parent holds
        except OSError:
            pass
    _KEPT_LOCK_FILES.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=forget_lock_files)


def _lock_fd(fd: int) -> bool:
    """Lock ``fd`` exclusively without blocking; False if another holds it."""
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise
        return True
    import msvcrt

    try:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
    except OSError:
        return False
    return True


class LeaseBackend(ABC):
    """The conditional writes a :class:`LeaseLock` needs from an object store."""

    @abstractmethod
    def create(self, path: str, data: bytes) -> Optional[str]:
        """Write ``path`` only if it does not exist: its ETag, or None if it exists."""

    @abstractmethod
    def replace(self, path: str, data: bytes, etag: str) -> Optional[str]:
        """Overwrite ``path`` only if its ETag is ``etag``: the new ETag, or None."""

    @abstractmethod
    def etag(self, path: str) -> Optional[str]:
        """The ETag of ``path`` now, or None if there is no such object."""

    @abstractmethod
    def remove(self, path: str) -> None:
        """Delete ``path`` (no error if it is gone)."""


class LeaseLock(KeyLock):
    """A lease object at ``lease_path`` (see the module docstring).

    Args:
        backend: the store's conditional writes.
        lease_path: where the lease object lives.
        token: returns something that changes when the key's entry is written (its
            ETag), checked between polls.
        lease_seconds: how long a lease lives without renewal; renewed every third.
    """

    def __init__(
        self,
        backend: LeaseBackend,
        lease_path: str,
        token: Callable[[], Any],
        lease_seconds: float,
    ) -> None:
        self.backend = backend
        self.lease_path = lease_path
        self.lease_seconds = lease_seconds
        self._token = token
        self._etag: Optional[str] = None
        import threading  # a lease is an object store's: not at import (issue 12)

        self._stop = threading.Event()
        self._heartbeat: Optional[threading.Thread] = None
        self._lock = _thread.allocate_lock()  # the etag, between the heartbeat and release
        self._seen: Optional[tuple] = None  # (etag, monotonic time first seen)
        self._renewals = 0
        self._tried = False
        self.lost = False
        """True if another caller took the lease over while this one held it."""

    def __repr__(self) -> str:
        return f"LeaseLock({self.lease_path!r}, lease_seconds={self.lease_seconds})"

    def _body(self) -> bytes:
        import json  # not at import (issue 12: a light import)
        import socket

        self._renewals += 1
        return json.dumps(
            {
                "holder": f"{socket.gethostname()}:{os.getpid()}:{_thread.get_ident()}",
                "renewed": time.time(),
                "renewals": self._renewals,
                "lease_seconds": self.lease_seconds,
            }
        ).encode()

    def _try_create(self) -> bool:
        etag = self.backend.create(self.lease_path, self._body())
        if etag is None:
            return False
        self._start(etag)
        return True

    def _try_take_over(self, current: str) -> bool:
        """Take the lease (now at ETag ``current``) over if that ETag has been seen for
        a whole lease."""
        now = time.monotonic()
        if self._seen is None or self._seen[0] != current:
            self._seen = (current, now)
            return False
        if now - self._seen[1] < self.lease_seconds:
            return False
        etag = self.backend.replace(self.lease_path, self._body(), current)
        self._seen = None
        if etag is None:
            return False  # another waiter took it over first
        self._start(etag)
        return True

    def _try(self) -> bool:
        """Create the lease at the first try; later, look first (one HEAD per poll while
        another holds it), create it when it is gone, take it over when it expired."""
        if self._tried:
            current = self.backend.etag(self.lease_path)
            if current is not None:
                return self._try_take_over(current)
        self._tried = True
        return self._try_create()

    def acquire(self, timeout: float) -> str:
        self._tried = False
        return _wait(self._try, self._token, timeout, _REMOTE_MAX_DELAY)

    def _start(self, etag: str) -> None:
        self._etag = etag
        self._stop.clear()
        self.lost = False
        import threading

        self._heartbeat = threading.Thread(
            target=self._renew, name="checkpointing-lease", daemon=True
        )
        self._heartbeat.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            with self._lock:
                if self._etag is None:
                    return
                try:
                    etag = self.backend.replace(self.lease_path, self._body(), self._etag)
                except Exception:  # a failed renewal is retried at the next beat
                    continue
                if etag is None:  # taken over: we were thought dead
                    self.lost = True
                    self._etag = None
                    return
                self._etag = etag

    def release(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
            self._heartbeat = None
        with self._lock:
            etag, self._etag = self._etag, None
        if etag is None:  # taken over: the lease is another's now
            return
        try:
            self.backend.remove(self.lease_path)
        except Exception:  # it expires by itself
            pass
