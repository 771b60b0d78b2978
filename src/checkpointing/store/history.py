"""The history of each function in a local store, to say why a call re-ran.

``<directory>/functions/<xxh3-64 of the qualified name>.json`` is a log: one line per
entry saved (``<xxh3-64 of the JSON> <JSON>``, the JSON holding the function's name and
the entry's key and fingerprint), then an end line ``.``. A save appends its line over
the end line, under the file's lock, never rewriting the file: concurrent writers lose
none of each other's lines (:func:`append_history`). Past ``HISTORY_COMPACT_BYTES`` the
file is compacted (rewritten atomically with the latest line of each of its last
``HISTORY_LENGTH`` keys). A damaged line is skipped by readers and reported by
``checkpointing verify``; a file cut short, even between two lines, has lost its end
line. Histories are never fsynced: they only explain misses. A file written by an
earlier version (one checksummed JSON document) is read, and appended to.

A process writes the first line of each history at once and batches the next ones
(:func:`queue_history`): they wait in memory and go, all of them, in one locked append
per file, at its first save a second or more after the first of them waited, at the
1,000th, at exit, or when this process reads a history (:func:`read_history_file`,
which every reader goes through). A process killed meanwhile loses those lines, that
is ``why``'s record of those misses, never an entry. A forked child (a
``multiprocessing`` worker ends with ``os._exit``, which skips exit handlers) writes
each line at once.
:class:`HistoryFiles` gives :class:`~checkpointing.store.files.PickleFileCache` its
``record_history``/``history``.
"""

from __future__ import annotations

import _thread  # threading's locks, without threading (issue 12, target 5)
import atexit
import errno
import os
import stat
import time

import xxhash

try:
    import fcntl
except ImportError:  # Windows: no advisory locks
    fcntl = None  # type: ignore[assignment]

from .fileio import (
    _DIR_FLAGS,
    _READ_FLAGS,
    _atomic_write,
    _create_temporary,
    _make_private_folder,
    _read_at,
    _read_regular,
    _write_all,
    _write_at,
)
from .format import EncodedJSON, _compact_json, _Corrupt

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional

__all__ = [
    "HISTORY_COMPACT_BYTES",
    "HISTORY_LENGTH",
    "HistoryFiles",
    "append_history",
    "flush_histories",
    "queue_history",
    "read_history_file",
]

# How many recent entries of each function are remembered to explain a miss.
HISTORY_LENGTH = 20


def read_history_file(path: str, strict: bool = True) -> Any:
    """The history in a history file, as ``{"function": name, "entries": [...]}``
    (oldest first, one per key: its latest). Raises OSError, _Corrupt (not a regular
    file) or ValueError (damaged: with ``strict``, any damaged line; else only a file
    without one intact line). The lines this process's saves left waiting
    (:func:`queue_history`) are written first, so that it reads what it recorded.

    A history file is a log of lines ``<xxh3-64 hex of the JSON> <JSON>``, each
    ``{"function": ..., "entry": {...}}``, then the line ``.``, which each append
    moves to the end (see :func:`append_history`): a file cut short, even between two
    lines, has lost it. A file written by an earlier version (its first line the
    xxh3-64 of the second, a whole JSON document) is read too, with any lines
    appended to it since.
    """
    if _PENDING[0]:
        _flush_quietly()
    return _read_history(path, strict)


def _read_history(path: str, strict: bool) -> Any:
    """:func:`read_history_file` without writing the waiting lines first (a
    compaction, which holds the file's lock, reads through this)."""
    import json  # not at import: ~1 ms, for misses and checks only

    lines = _read_regular(path, 1 << 26).split(b"\n")
    if len(lines) == 2 and len(lines[0]) == 16:
        lines.append(b"")  # an earlier file, as it was written (no newline at its end)
    tail = lines.pop()  # after the last newline: empty, unless a line was cut short
    entries: Dict[Any, Dict[str, Any]] = {}
    function = None
    damaged = [tail] if tail else []
    if lines and lines[-1] == _HISTORY_END:
        lines.pop()
    elif not (len(lines) == 2 and len(lines[0]) == 16):  # (an earlier file has no end)
        damaged.append(b"(the end line)")
    start = 0
    if len(lines) >= 2 and len(lines[0]) == 16 and b" " not in lines[0]:  # earlier format
        if xxhash.xxh3_64_hexdigest(lines[1]).encode() == lines[0]:
            document = json.loads(lines[1])
            if isinstance(document, dict):
                function = document.get("function")
                for entry in document.get("entries", ()):
                    if isinstance(entry, dict):
                        entries[entry.get("key")] = entry
            start = 2
    for line in lines[start:]:
        record = _record(line, json)
        if record is None or (function is not None and record.get("function") != function):
            damaged.append(line)
            continue
        function = record.get("function")
        entry = record["entry"]
        entries.pop(entry.get("key"), None)  # its latest line counts: at the end
        entries[entry.get("key")] = entry
    if function is None or (strict and damaged):
        raise ValueError(
            f"{len(damaged)} damaged line(s): checksum mismatch, cut short or misplaced"
            if damaged
            else "empty: not a history file"
        )
    return {"function": function, "entries": list(entries.values())[-HISTORY_LENGTH:]}


_APPEND_FLAGS = (
    os.O_RDWR
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO planted there: an error, never a hang
)
_AT = os.open in os.supports_dir_fd and bool(getattr(os, "O_NOFOLLOW", 0))
_HISTORY_END = b"."
_END = _HISTORY_END + b"\n"
HISTORY_COMPACT_BYTES = 1 << 18
"""A history file that grows past this is rewritten with its latest entries only."""


def _history_line(record: bytes) -> bytes:
    return xxhash.xxh3_64_hexdigest(record).encode() + b" " + record + b"\n"


def append_history(
    folder: str, name: str, record: bytes, mode: int = 0o600, path: Optional[str] = None
) -> None:
    """Append one line, ``record`` (JSON) with its checksum, to the history file
    ``name`` in ``folder``, without rewriting the file; compact it once it grew past
    ``HISTORY_COMPACT_BYTES``.

    The line is written over the end line ``.``, followed by it, in one ``pwrite``,
    under the file's exclusive lock: concurrent writers take turns and lose none of
    each other's lines; a compaction holds the same lock while it rewrites the file
    (temporary file and rename), and a writer that waited for it appends to the new
    file. A missing file is created with its first line in it (a temporary file, then
    a hard link, which fails if another writer created it first). ``folder`` is never
    followed if it is a symbolic link. (Where locks are not to be had, Windows or a
    file system that refuses them, two writers at once may lose a line: a history only
    explains misses.)

    The file stays open for the next append of this process (at most ``_KEEP_OPEN``
    files, one thread at a time): that append locks it, checks that the path still
    names it (its ``fstat`` still counts a link: a compaction, a removal or a
    replacement leaves the old file with none) and writes, four system calls fewer
    than opening it again; the end line is not read back when the file has the size
    this process's last append left (no other writer appended since).
    """
    if path is None:
        path = os.path.join(folder, name)
    _append_lines(folder, name, path, _history_line(record), mode)


def _append_lines(folder: str, name: str, path: str, lines: bytes, mode: int) -> None:
    """:func:`append_history` of ``lines``, whole lines with their checksums."""
    with _KEPT_LOCK:
        size = _append_kept(path, lines)
        if size is None:
            size = _append_opening(folder, name, path, lines, mode)
    if size > HISTORY_COMPACT_BYTES:
        _compact_history(folder, path, mode)


HISTORY_BATCH_SECONDS = 1.0
"""The lines of a process's saves wait in memory at most this long before they are
written (checked at its next save; see :func:`queue_history`)."""
_HISTORY_BATCH = 1000  # ... and are written once this many wait
# path -> [folder, file name, mode, folder mode, lines waiting]: the histories this
# process wrote to (a path absent: its first line is written at once).
_HISTORIES: Dict[str, List[Any]] = {}
# [lines waiting in all histories, monotonic time the first of them began to wait]
_PENDING: List[Any] = [0, 0.0]
_PENDING_LOCK = _thread.allocate_lock()
_BATCHING = [True]  # False in a forked child: it may end with os._exit
_monotonic = time.monotonic


def queue_history(
    folder: str,
    name: str,
    record: bytes,
    mode: int,
    path: str,
    folder_mode: int = 0o700,
    key: Any = None,
) -> None:
    """:func:`append_history`, batched: the first line of a history in this process is
    appended at once (the file exists from then on, for listings); the next ones wait
    in memory and are appended together, one locked append per file, when a line is
    queued a second or more after the first of them waited, at the 1,000th, at exit
    or at the first read of any history by this process (:func:`read_history_file`).
    Most misses make no system call here. Lines of one process keep their order;
    concurrent writers lose none of each other's lines (each append takes the file's
    lock, see :func:`append_history`). Raises OSError when a line written at once
    (or a batch it completes) cannot be; the folder is created again if it was
    removed.

    ``key``: the key of the record's entry (a str; None: unknown). Of a batch, only
    the latest line of each of its last ``HISTORY_LENGTH`` keys is written: a read
    returns no more than those (the latest line of each of the file's last
    ``HISTORY_LENGTH`` keys), and a compaction keeps no more, so the lines left out
    would never be read (a batch of 1,000 misses writes 20 lines, not 1,000)."""
    with _PENDING_LOCK:
        known = _HISTORIES.get(path) if _BATCHING[0] else None
        if known is not None:
            known[4].append((key, record))
            now = _monotonic()
            waiting = _PENDING[0] = _PENDING[0] + 1
            if waiting == 1:
                _PENDING[1] = now
            if waiting < _HISTORY_BATCH and now - _PENDING[1] < HISTORY_BATCH_SECONDS:
                return
            _flush_locked()
            return
        if len(_HISTORIES) >= 1024 and not _PENDING[0]:
            _HISTORIES.clear()
        if _BATCHING[0]:
            if not _HISTORIES and not _REGISTERED:
                _REGISTERED.append(atexit.register(_flush_quietly))
            _HISTORIES[path] = [folder, name, mode, folder_mode, []]
        _append_or_recreate(folder, name, path, _history_line(record), mode, folder_mode)


_REGISTERED: List[Any] = []


def _append_or_recreate(
    folder: str, name: str, path: str, lines: bytes, mode: int, folder_mode: int
) -> None:
    try:
        _append_lines(folder, name, path, lines, mode)
    except FileNotFoundError:  # the folder was removed under us: once more
        _make_private_folder(folder, folder_mode)
        _append_lines(folder, name, path, lines, mode)


def flush_histories() -> None:
    """Append the lines waiting in memory (see :func:`queue_history`) to their files.
    Raises the first OSError met (after trying every file); those lines are lost."""
    with _PENDING_LOCK:
        _flush_locked()


def _flush_locked() -> None:
    # Under _PENDING_LOCK: the lines of one process reach each file in their order.
    _PENDING[0] = 0
    failed: Optional[BaseException] = None
    for path, (folder, name, mode, folder_mode, records) in _HISTORIES.items():
        if not records:
            continue
        data = b"".join(map(_history_line, _latest(records)))
        records.clear()
        try:
            _append_or_recreate(folder, name, path, data, mode, folder_mode)
        except OSError as exc:
            failed = failed or exc
    if failed is not None:
        raise failed


def _latest(records: List[Any]) -> List[bytes]:
    """Of ``(key, record)`` pairs in the order they were queued, the records a read of
    the history would see were they all appended: the latest of each of the last
    ``HISTORY_LENGTH`` keys, in their order (a record without a str key: kept)."""
    if len(records) <= HISTORY_LENGTH:
        return [record for _, record in records]
    seen: Dict[str, None] = {}
    kept = []
    for key, record in reversed(records):
        if key.__class__ is str:
            if key in seen:
                continue
            if len(seen) == HISTORY_LENGTH:
                break
            seen[key] = None
        kept.append(record)
    kept.reverse()
    return kept


def _flush_quietly() -> None:
    """:func:`flush_histories` before a read, or at exit: a line that cannot be written
    (its cache removed meanwhile...) is no reason to fail the read, or for a traceback."""
    try:
        flush_histories()
    except Exception:
        pass


_KEEP_OPEN = 16
_KEPT: Dict[str, List[int]] = {}  # path -> [descriptor (unlocked), size after our append]
_KEPT_LOCK = _thread.allocate_lock()


def _forget_kept() -> None:
    """In a forked child: its descriptors share the parent's open files (and their
    locks), so it opens its own; the lines waiting are the parent's to write, and the
    child writes its own at once (it may end with ``os._exit``, skipping exit
    handlers: ``multiprocessing`` workers do)."""
    global _KEPT_LOCK, _PENDING_LOCK
    _KEPT_LOCK = _thread.allocate_lock()
    _PENDING_LOCK = _thread.allocate_lock()
    _HISTORIES.clear()  # the parent's waiting lines are the parent's to write
    _PENDING[0] = 0
    _BATCHING[0] = False
    for fd, _ in _KEPT.values():
        try:
            os.close(fd)
        except OSError:
            pass
    _KEPT.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_kept)


def _drop_kept(path: str) -> None:
    kept = _KEPT.pop(path, None)
    if kept is not None:
        try:
            os.close(kept[0])
        except OSError:
            pass


def _append_kept(path: str, line: bytes) -> Optional[int]:
    """Append ``line`` through the descriptor kept open for ``path``: the file's new
    size, or None if there is none, or it no longer is the file at ``path``."""
    kept = _KEPT.get(path)
    if kept is None:
        return None
    fd = kept[0]
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:
        _drop_kept(path)
        return None
    try:
        status = os.fstat(fd)
        if not status.st_nlink:
            _drop_kept(path)  # compacted, removed or replaced: open what is there now
            return None
        size = kept[1] = _write_line(fd, status.st_size, line, status.st_size == kept[1])
    except BaseException:
        _drop_kept(path)
        raise
    fcntl.flock(fd, fcntl.LOCK_UN)
    return size


def _append_opening(folder: str, name: str, path: str, line: bytes, mode: int) -> int:
    """Append ``line`` opening the file (creating it if needed); its new size. Keeps
    the descriptor open for the next append when the file could be locked."""
    for _ in range(100):
        folder_fd = _open_folder(folder)
        try:
            if folder_fd is not None:
                fd = os.open(name, _APPEND_FLAGS, dir_fd=folder_fd)
            else:
                fd = os.open(path, _APPEND_FLAGS)
        except FileNotFoundError:
            if _create_with(folder, path, line + _END, mode):
                return 0
            continue  # another writer created it first: append to theirs
        finally:
            if folder_fd is not None:
                os.close(folder_fd)
        keep = False
        try:
            status = os.fstat(fd)
            if not stat.S_ISREG(status.st_mode):
                raise OSError(errno.EINVAL, f"{path} is not a regular file")
            if _lock(fd):
                current = os.lstat(path)
                if (current.st_dev, current.st_ino) != (status.st_dev, status.st_ino):
                    continue  # compacted while we waited: append to the new file
                status = os.fstat(fd)
                keep = True
            size = _write_line(fd, status.st_size, line)
            if keep:
                fcntl.flock(fd, fcntl.LOCK_UN)
                if len(_KEPT) >= _KEEP_OPEN:
                    _drop_kept(next(iter(_KEPT)))
                _KEPT[path] = [fd, size]
        except BaseException:
            keep = False
            raise
        finally:
            if not keep:
                os.close(fd)  # releases the lock
        return size
    raise OSError(errno.EAGAIN, f"could not append to {path}: it keeps being replaced")


def _write_line(fd: int, end: int, line: bytes, ours: bool = False) -> int:
    """Write ``line`` over the end line of the locked history file ``fd`` of size
    ``end``, followed by the end line; the file's new size. ``ours``: the file is as
    this process's last append left it, which ended with the end line."""
    if ours:
        last = _END
    else:
        last = _read_at(fd, len(_END), end - len(_END)) if end >= len(_END) else b""
    if last == _END:
        end -= len(_END)
        data = line + _END
    else:  # an earlier file, or a damaged one: after all of it, on a line of its own
        data = (b"\n" if last[-1:] not in (b"", b"\n") else b"") + line + _END
    _write_at(fd, data, end)
    return end + len(data)


def _lock(fd: int) -> bool:
    """Take the exclusive lock of the history file ``fd`` (waiting for it); False where
    locks are not to be had (no ``fcntl``; a file system that refuses them)."""
    if fcntl is None:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:
        return False
    return True


def _open_folder(folder: str) -> Optional[int]:
    """A descriptor of ``folder`` that refuses a symbolic link (None where the system
    cannot open files relative to a folder); raises OSError."""
    if not _AT:
        if os.path.islink(folder):
            raise OSError(
                errno.ELOOP, f"{folder} is a symbolic link; checkpointing does not follow it"
            )
        return None
    try:
        return os.open(folder, _DIR_FLAGS)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise OSError(
                errno.ELOOP,
                f"{folder} is a symbolic link or not a folder; checkpointing does not follow it",
            ) from None
        raise


def _create_with(folder: str, path: str, line: bytes, mode: int) -> bool:
    """Create ``path`` holding ``line`` unless it exists (then False)."""
    fd, temporary = _create_temporary(folder, mode)
    try:
        _write_all(fd, line)
    finally:
        os.close(fd)
    try:
        os.link(temporary, path)
        return True
    except FileExistsError:
        return False
    except OSError:  # no hard links here: a rename (two first writers may lose a line)
        os.replace(temporary, path)
        temporary = ""
        return True
    finally:
        if temporary:
            try:
                os.remove(temporary)
            except OSError:
                pass


def _compact_history(folder: str, path: str, mode: int) -> None:
    """Rewrite the history file at ``path`` with the latest entry of each of its last
    ``HISTORY_LENGTH`` keys, under its exclusive lock, if that at least halves it."""
    import json  # not at import: ~1 ms, for misses and checks only

    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError:
        return
    try:
        _lock(fd)  # without locks (Windows...) a line appended meanwhile may be lost
        status = os.fstat(fd)
        current = os.lstat(path)
        if (current.st_dev, current.st_ino) != (status.st_dev, status.st_ino):
            return  # another writer compacted it first
        try:
            data = _recent_history(path) or _read_history(path, strict=False)
        except (OSError, ValueError, _Corrupt):
            return  # nothing intact to keep: the next read says what is wrong
        lines = [
            _history_line(
                json.dumps(
                    {"function": data["function"], "entry": entry},
                    separators=(",", ":"),
                    default=str,
                ).encode()
            )
            for entry in data["entries"]
        ]
        if sum(map(len, lines)) * 2 > status.st_size:
            return  # big entries: rewriting would not pay (the next append tries again)
        _atomic_write(folder, path, [*lines, _END], mode, durable=False)
    finally:
        os.close(fd)


def _record(line: bytes, json: Any) -> Optional[Dict[str, Any]]:
    """The record of a history line ``<xxh3-64 hex of the JSON> <JSON>`` whose checksum
    holds and which has an ``entry``; None for any other line."""
    digest, _, body = line.partition(b" ")
    if not body or xxhash.xxh3_64_hexdigest(body).encode() != digest:
        return None
    record = json.loads(body)
    if not isinstance(record, dict) or not isinstance(record.get("entry"), dict):
        return None
    return record


def _recent_history(path: str) -> Optional[Dict[str, Any]]:
    """What :func:`read_history_file` (not strict) says of the history file at
    ``path`` when its lines name ``HISTORY_LENGTH`` keys or more: read from the end,
    until that many keys are found (a compaction then parses about ``HISTORY_LENGTH``
    lines, not the thousand it keeps); None if its start must be read too. Raises
    OSError or _Corrupt."""
    import json  # not at import: ~1 ms, for misses and checks only

    function = None
    latest: Dict[Any, Dict[str, Any]] = {}
    for line in reversed(_read_regular(path, 1 << 26).split(b"\n")):
        record = _record(line, json)
        if record is None:
            continue  # the end line, a damaged line, or the start of an earlier file
        if function is None:
            function = record.get("function")
        elif record.get("function") != function:
            continue
        entry = record["entry"]
        key = entry.get("key")
        if key.__class__ is str and key not in latest:
            latest[key] = entry
            if len(latest) == HISTORY_LENGTH:
                return {"function": function, "entries": list(reversed(latest.values()))}
    return None


# (store folder, function) -> (history folder, file name, start of its lines)
_WHERE: Dict[Any, Any] = {}


class HistoryFiles:
    """``record_history``/``history`` for a store in a local folder (a mixin: the
    class provides ``directory``, ``folder_mode``, ``file_mode`` and ``_prepare``)."""

    directory: str
    folder_mode: int
    file_mode: int

    _prepare: Callable[[], None]  # creates the store's folders

    def _history_path(self, function: str) -> str:
        name = xxhash.xxh3_64_hexdigest(function.encode("utf-8", "surrogatepass"))
        return os.path.join(self.directory, "functions", name + ".json")

    def record_history(self, function: str, entry: Dict[str, Any]) -> None:
        """Append ``entry`` to the history of ``function`` (one checksummed line, see
        :func:`append_history`); never fsynced: a history only explains misses. An
        :class:`~checkpointing.store.format.EncodedJSON` entry is written as its text."""
        where = _WHERE.get((self.directory, function))
        if where is None:
            path = self._history_path(function)
            # '{"function":<name>,"entry":', the start of each of its lines
            start = _compact_json({"function": function, "entry": 0})[:-2]
            where = (os.path.dirname(path), os.path.basename(path), start, path)
            if len(_WHERE) >= 1024:
                _WHERE.clear()
            _WHERE[(self.directory, function)] = where
        folder, name, start, path = where
        self._prepare()
        if not self._history_folder_ready:
            _make_private_folder(folder, self.folder_mode)
            self._history_folder_ready = True
        text = entry.json if entry.__class__ is EncodedJSON else _compact_json(entry)
        record = (start + text + "}").encode()
        queue_history(
            folder, name, record, self.file_mode, path, self.folder_mode, entry.get("key")
        )

    def history(self, function: str) -> List[Dict[str, Any]]:
        try:
            data = read_history_file(self._history_path(function), strict=False)
        except (OSError, ValueError, _Corrupt):
            return []
        if not isinstance(data, dict) or data.get("function") != function:
            return []
        return [e for e in data.get("entries", []) if isinstance(e, dict)]
