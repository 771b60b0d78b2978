"""Eviction: the library's own record of use, the size limit, and pruning.

This module owns three things that decide which entries go:

* **Last use and hits**, recorded by the library (never the file's atime, which a
  ``relatime`` mount barely updates and which any diagnostic read would bump). A hit
  costs a dict lookup and a clock read; the first hit of an entry in a process, and
  then at most one an hour, adds one line to ``<directory>/usage.log`` (``O_APPEND``:
  writers of several processes never interleave a line), dated by the hit. Hits
  between two lines are counted in memory and written at exit. Saves add a line too
  (a miss). ``prune`` and the size limit compact the log under the eviction lock.
  Reading and listing entries (``ls``, ``show``, ``verify``, ``read_metadata``) never
  count as use.
* **The lines wait in memory** and go in batches, one ``write`` each: a process's
  lines of hits and saves are written at its first hit or save a second or more after
  the first of them waited (a hit of a key whose line waits comes back here after a
  second for that), at the 1,000th, at exit, and before this process reads the log
  (``ls``, ``show``, ``stats``, ``prune``, the size limit: every reader sees its process's
  lines). A forked child (it may end with ``os._exit``, skipping exit handlers)
  writes each line at once. So the first hit of a process makes no system call here.
  Other processes see the lines once written: while a process that hit an entry makes
  no further call of the cache, or if it is killed, that use is not (or never) in the
  log, and eviction elsewhere dates the entry by its earlier lines or its writing (a
  re-run later, never a wrong value; the hourly line already leaves a long-running
  process's last use up to an hour behind). Eviction and ``prune`` see a new entry by
  its file and date it by its header's ``created``, never by this log: a killed
  process's lost save lines are only missing miss counts in ``checkpointing stats``.
* **The size limit** (``defaults["cache.max_size"]``, ``checkpoint(max_size=...)``):
  after each save, under an exclusive lock on ``<directory>/.evict.lock`` (so that
  concurrent writers evict one at a time and see each other's files), the entries and
  variants are listed with one ``stat`` each and, while the total is over the limit,
  the least recently used are deleted, never the entry just saved; each eviction is
  logged at INFO. The cost is paid on misses only: about a microsecond per entry.
* **prune** (``checkpointing.prune`` and ``checkpointing prune``): the same rules from
  Python and the command line.

Last use of an entry = the latest of its file's modification time (when it was
written) and its latest line in the log.
"""

from __future__ import annotations

import _thread
import atexit
import os
import stat
import threading
import time
from collections import namedtuple
from contextlib import contextmanager

from .._lazylog import LazyLogger
from ..config import parse_age, parse_size
from ..errors import ConfigurationError
from .entryinfo import EntryInfo
from .fileio import _atomic_write, _read_header, _read_regular, _unlink_in, fcntl
from .files import PickleFileCache
from .format import _SUFFIX, _compact_json, _Corrupt, _file_stem, _json_str

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

__all__ = [
    "TOUCH_INTERVAL",
    "prune_cache",
    "remove_entries",
    "select",
    "Usage",
    "UsageLog",
    "enforce_size_limit",
    "prune",
    "usage_log_for",
]

logger = LazyLogger("checkpointing.store")  # logging: imported when it could emit

USAGE_LOG = "usage.log"
LOCK_FILE = ".evict.lock"
TOUCH_INTERVAL = 3600.0
"""A hit records the last use of an entry at most once in this many seconds."""
SAVE_BATCH_SECONDS = 1.0
"""The lines of hits and saves wait in memory this long before they are written (at
the process's next line; see :class:`UsageLog`)."""
_SAVE_BATCH = 1000  # ... and are written once this many wait
_BATCHING = [True]  # False in a forked child: it may end with os._exit
_COMPACT_BYTES = 1 << 20  # a log larger than this is compacted at the next eviction
_APPEND_FLAGS = (
    os.O_WRONLY
    | os.O_APPEND
    | os.O_CREAT
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_BINARY", 0)
)


if TYPE_CHECKING:
    Usage = NamedTuple(
        "Usage",
        [("last_used", float), ("hits", int), ("misses", int), ("function", Optional[str])],
    )
else:  # the same without importing typing at run time (issue 12, target 5)
    Usage = namedtuple("Usage", "last_used hits misses function")
Usage.__doc__ = """What the log says of one key: ``last_used`` (Unix time, 0 if never
recorded), ``hits``, ``misses`` (saves), ``function`` (qualified name)."""


class UsageLog:
    """The use records of one cache directory (one instance per directory and process:
    :func:`usage_log_for`)."""

    def __init__(self, cache: PickleFileCache) -> None:
        self.cache = cache
        self.path = os.path.join(cache.directory, USAGE_LOG)
        # key -> [monotonic time of its last line, hits since, the function (or its
        # name)]; the decorator reads it directly on a hit (see :meth:`hit`).
        self.state: Dict[str, List[Any]] = {}
        self._monotonic = time.monotonic
        # How a function is named in the log; the decorator sets the library's one
        # spelling (``pkg.mod:Class.method``), which this layer cannot import.
        self.namer: Any = _qualified_name
        self._compact_soon = False
        # The log is compacted once it outgrows this: twice what the last compaction
        # left (at least _COMPACT_BYTES). A log of many live entries stays large after
        # compaction; a fixed bound would compact it again at every line written.
        self._compact_at = _COMPACT_BYTES
        self._fd: Optional[int] = None  # the log, kept open (see _write)
        # Lines of hits and saves not written yet, as (key, function or its name, time,
        # hits, misses): made into text when written (see _queue); when the first was
        # added; the keys whose hit line waits -> the monotonic time of that hit.
        self._pending: List[Tuple[str, Any, Optional[float], int, int]] = []
        self._pending_since = 0.0
        self._pending_lock = _thread.allocate_lock()
        self._waiting: Dict[str, float] = {}

    def __reduce__(self) -> Any:
        # A worker process that receives a decorator records into its own log.
        return (usage_log_for, (self.cache,))

    def hit(self, key: str, func: Any) -> None:
        """Count a hit of ``key`` (the hot path: one line at most per hour). The
        decorator inlines the common case (a line less than an hour ago:
        ``state[key][1] += 1``) and calls this for the others. The line waits in
        memory (see :meth:`_queue`); while it does, the key's state says its line is
        an hour less a second old, so that its next hit a second or more later comes
        back here and writes it."""
        now = self._monotonic()
        state = self.state.get(key)
        if state is not None:
            if now - state[0] < TOUCH_INTERVAL:
                state[1] += 1
                return
            with self._pending_lock:
                waited = self._waiting.pop(key, None)
                if waited is not None:  # its line waits still: written now
                    state[0] = waited
                    state[1] += 1
            if waited is not None:
                self._write_pending()
                return
        record = (key, func, time.time(), 1 + (state[1] if state is not None else 0), 0)
        if not _BATCHING[0]:
            self.state[key] = [now, 0, func]
            self._write_data(self._text([record]))
            return
        self.state[key] = [now - TOUCH_INTERVAL + SAVE_BATCH_SECONDS, 0, func]
        self._queue(record, now, True)

    def saved(self, key: str, func: Any) -> None:
        """Record a save (a miss) of ``key``: also its last use. The line waits in
        memory (see :meth:`_queue`): most misses make no system call here. A log grown
        past 1 MB, and past twice what its last compaction left, is compacted when
        lines are written at a save (a miss already pays for one write)."""
        now = self._monotonic()
        state = self.state.get(key)
        self.state[key] = [now, 0, func]
        record = (key, func, time.time(), state[1] if state is not None else 0, 1)
        if not _BATCHING[0]:
            self._write_data(self._text([record]))
        elif not self._queue(record, now, False):
            return
        if self._compact_soon:
            self._compact_soon = False
            try:
                if self._worth_compacting():
                    with evict_lock(self.cache):
                        self.compact()
            except (OSError, _Corrupt) as exc:
                logger.debug("could not compact %s: %s", self.path, exc)

    def _worth_compacting(self) -> bool:
        """Would a compaction drop a quarter of the log's lines or more (lines of a key
        named before, keys whose entry is gone)? Estimated from the keys at the start
        of its lines, with no JSON parsed, and one listing of the entries' folder: a
        log of 20,000 entries saved once each is not rewritten for nothing. If not,
        the next compaction waits until the log doubles."""
        data = _read_regular(self.path, 1 << 28)
        lines = data.splitlines()
        keys = set()
        for line in lines:
            if line.startswith(b'{"k":"'):
                keys.add(line[6 : line.find(b'"', 6)])
        try:
            files = len(os.listdir(self.cache.entries_directory))
        except OSError:
            files = 0
        dropped = len(lines) - len(keys) + max(0, len(keys) - files)
        if dropped * 4 >= len(lines):
            return True
        self._compact_at = max(_COMPACT_BYTES, 2 * len(data))
        return False

    def _queue(
        self, record: Tuple[str, Any, Optional[float], int, int], now: float, hit: bool
    ) -> bool:
        """Add the line of ``record`` (a ``hit``'s, else a save's) to those waiting;
        write them all, in one ``write``, if the first of them waited a second or more,
        or 1,000 wait (True: written)."""
        with self._pending_lock:
            pending = self._pending
            pending.append(record)
            if hit:
                self._waiting[record[0]] = now  # see hit()
            else:  # the key's state dates this save's line
                self._waiting.pop(record[0], None)
            if len(pending) == 1:
                self._pending_since = now
            if len(pending) < _SAVE_BATCH and now - self._pending_since < SAVE_BATCH_SECONDS:
                return False
        self._write_pending()
        return True

    def _write_pending(self) -> None:
        with self._pending_lock:
            lines, self._pending = self._pending, []
            # The hits whose lines go now: their keys' state dates their line again.
            for key, when in self._waiting.items():
                state = self.state.get(key)
                if state is not None:
                    state[0] = when
            self._waiting.clear()
        if lines:
            self._write_data(self._text(lines))

    def _text(self, records: List[Tuple[str, Any, Optional[float], int, int]]) -> bytes:
        """The lines of ``records`` (see ``_pending``; a time None: no ``"t"``)."""
        namer, names = self.namer, {}
        out = []
        for key, func, when, hits, misses in records:
            name = func if isinstance(func, str) else names.get(id(func))
            if name is None:
                name = names[id(func)] = namer(func)
            out.append(_usage_line(key, name, when, hits, misses))
        return "".join(out).encode()

    def flush(self) -> None:
        """Write the lines of hits and saves waiting in memory, and the hits counted
        since each key's last line (at exit, and before the log is read)."""
        self._write_pending()
        records = []
        for key, state in list(self.state.items()):
            if state[1]:
                records.append((key, state[2], None, state[1], 0))
                state[1] = 0
        if records:
            self._write_data(self._text(records))

    def _write_data(self, data: bytes) -> None:
        """Append ``data`` (whole lines) in one ``write`` (``O_APPEND`` keeps it whole
        among writers). The log stays open for the next lines of this process (at most
        ``_KEEP_OPEN`` logs): a log replaced (compacted) or removed since it was opened
        has no link left, and the lines are written again to the one there now."""
        with _KEPT_LOCK:  # no thread closes a descriptor another is writing to
            for _ in range(2):
                fd = self._fd
                if fd is None:
                    try:
                        fd = os.open(self.path, _APPEND_FLAGS, self.cache.file_mode)
                    except OSError as exc:  # no cache folder (yet), read-only: not recorded
                        logger.debug("usage not recorded in %s: %s", self.path, exc)
                        return
                    self._fd = fd
                    _KEPT[self] = None
                    if len(_KEPT) > _KEEP_OPEN:
                        next(iter(_KEPT))._close()
                try:
                    os.write(fd, data)
                    status = os.fstat(fd)
                except OSError as exc:
                    self._close()
                    logger.debug("usage not recorded in %s: %s", self.path, exc)
                    return
                if status.st_nlink:
                    if status.st_size > self._compact_at:
                        self._compact_soon = True
                    return
                self._close()  # what was written went to a file no longer there

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        _KEPT.pop(self, None)
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def read(self) -> Dict[str, Usage]:
        """What the log says of each key it names."""
        return _aggregate(self._lines())[0]

    def functions(self) -> Dict[str, Tuple[int, int]]:
        """(hits, misses) of each function, deleted entries included."""
        per_key, per_function = _aggregate(self._lines())
        totals = {name: list(counts) for name, counts in per_function.items()}
        for usage in per_key.values():
            if usage.function is None:
                continue
            counts = totals.setdefault(usage.function, [0, 0])
            counts[0] += usage.hits
            counts[1] += usage.misses
        return {name: (h, m) for name, (h, m) in totals.items()}

    def _lines(self) -> List[Dict[str, Any]]:
        import json  # not at import (issue 12: a light import)

        self.flush()
        _flush_all()  # ... and this directory's log under another spelling (a symlink)
        try:
            data = _read_regular(self.path, 1 << 28)
        except (OSError, _Corrupt):
            return []
        lines = data.splitlines()
        try:  # all lines at once (a log of 20,000 lines: 3x faster than line by line)
            records = json.loads(b"[" + b",".join(lines) + b"]") if lines else []
        except ValueError:  # a torn line (a writer killed mid-write): skipped
            records = []
            for line in lines:
                try:
                    records.append(json.loads(line))
                except ValueError:
                    continue
        return [record for record in records if isinstance(record, dict)]

    def compact(self, existing: Optional[Sequence[str]] = None) -> None:
        """Rewrite the log with one line per key of ``existing`` (default: the keys
        whose entry file exists) and one per function for the counts of deleted
        entries. Call under :func:`evict_lock`."""
        per_key, per_function = _aggregate(self._lines())
        if existing is None:
            existing = _existing(self.cache, per_key)
        keep = set(existing)
        lines: List[str] = []
        names: Dict[Optional[str], str] = {None: "null"}  # function -> its JSON string
        totals = {name: list(counts) for name, counts in per_function.items()}
        for key, usage in per_key.items():
            if key in keep:
                name = names.get(usage.function)
                if name is None:
                    name = names[usage.function] = _json_str(usage.function)
                lines.append(
                    f'{{"k":{_json_str(key)},"f":{name},"t":{usage.last_used!r},'
                    f'"h":{usage.hits},"m":{usage.misses}}}\n'
                )
            elif usage.function is not None:
                counts = totals.setdefault(usage.function, [0, 0])
                counts[0] += usage.hits
                counts[1] += usage.misses
        lines += [
            _compact_json({"f": name, "h": h, "m": m}) + "\n"
            for name, (h, m) in sorted(totals.items())
        ]
        data = "".join(lines).encode()
        _atomic_write(self.cache.directory, self.path, [data], self.cache.file_mode)
        self._compact_at = max(_COMPACT_BYTES, 2 * len(data))


def _usage_line(key: str, name: str, when: Optional[float], hits: int, misses: int) -> str:
    """A line of the log: ``{"k":key,"f":name,"t":when,"m":misses,"h":hits}``, without
    ``"t"`` when None and the counts that are 0 (what ``json.dumps`` of the record
    would write, without building an encoder: a first hit does not need one)."""
    line = f'{{"k":{_json_str(key)},"f":{_json_str(name)}'
    if when is not None:
        line += f',"t":{when!r}'
    if misses:
        line += f',"m":{misses}'
    return line + (f',"h":{hits}}}\n' if hits else "}\n")


def _aggregate(
    lines: List[Dict[str, Any]],
) -> Tuple[Dict[str, Usage], Dict[str, Tuple[int, int]]]:
    per_key: Dict[str, List[Any]] = {}
    per_function: Dict[str, List[int]] = {}
    for record in lines:
        hits, misses = _count(record.get("h")), _count(record.get("m"))
        function = record.get("f") if isinstance(record.get("f"), str) else None
        key = record.get("k")
        if not isinstance(key, str):
            if function is not None:  # the counts of deleted entries, compacted
                counts = per_function.setdefault(function, [0, 0])
                counts[0] += hits
                counts[1] += misses
            continue
        state = per_key.setdefault(key, [0.0, 0, 0, None])
        used = record.get("t")
        if isinstance(used, (int, float)) and used > state[0]:
            state[0] = float(used)
        state[1] += hits
        state[2] += misses
        if function is not None:
            state[3] = function
    return (
        {key: Usage(*state) for key, state in per_key.items()},
        {name: (h, m) for name, (h, m) in per_function.items()},
    )


def _count(value: Any) -> int:
    return value if type(value) is int and value > 0 else 0


_LOGS: Dict[str, UsageLog] = {}
_LOGS_LOCK = threading.Lock()


_KEEP_OPEN = 16
_KEPT: Dict[UsageLog, None] = {}  # the logs with a descriptor open, oldest first
_KEPT_LOCK = threading.Lock()


def _forget_kept() -> None:
    """In a forked child: the inherited descriptors are closed (a lock held by a
    thread of the parent would never be released here); the parent's lines not
    written yet, and its hits counted since, are the parent's to write; the child
    records its own first hit of each key, and writes its lines at once (it may end
    with ``os._exit``, skipping exit handlers: ``multiprocessing`` workers do)."""
    global _KEPT_LOCK
    _KEPT_LOCK = threading.Lock()
    _BATCHING[0] = False
    for log in _LOGS.values():
        log._pending_lock = _thread.allocate_lock()
        log._pending = []
        log._waiting.clear()
        log.state.clear()  # the parent's counts are the parent's to write
    for log in list(_KEPT):
        log._close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_kept)


def usage_log_for(cache: PickleFileCache) -> UsageLog:
    """The :class:`UsageLog` of ``cache``'s directory in this process."""
    log = _LOGS.get(cache.directory)
    if log is None:
        with _LOGS_LOCK:
            log = _LOGS.get(cache.directory)
            if log is None:
                if not _LOGS:
                    atexit.register(_flush_all)
                log = _LOGS[cache.directory] = UsageLog(cache)
    return log


def _flush_all() -> None:
    for log in list(_LOGS.values()):
        try:
            log.flush()
        except Exception:  # at exit: a count lost is no reason for a traceback
            pass


def _qualified_name(func: Any) -> str:
    module = getattr(func, "__module__", None) or "?"
    return f"{module}:{getattr(func, '__qualname__', getattr(func, '__name__', '?'))}"


# -- the size limit -------------------------------------------------------------------


@contextmanager
def evict_lock(cache: PickleFileCache) -> Iterator[None]:
    """Hold the cache's eviction lock (one evicting process at a time)."""
    if fcntl is None:  # Windows: evictions may overlap; deleting twice is harmless
        yield
        return
    path = os.path.join(cache.directory, LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), cache.file_mode)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


if TYPE_CHECKING:
    _File = NamedTuple("_File", [("path", str), ("size", int), ("mtime", float), ("variant", bool)])
else:
    _File = namedtuple("_File", "path size mtime variant")


def _files(cache: PickleFileCache) -> List[_File]:
    """Every entry and variant file, with its size and modification time."""
    out = []
    folders = [(cache.entries_directory, False)]
    variants = os.path.join(cache.directory, "variants")
    try:
        folders += [(e.path, True) for e in os.scandir(variants) if e.is_dir(follow_symlinks=False)]
    except OSError:
        pass
    for folder, variant in folders:
        try:
            listing = list(os.scandir(folder))
        except OSError:
            continue
        for item in listing:
            if not item.name.endswith(_SUFFIX) or item.name.startswith("."):
                continue
            try:
                status = item.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISREG(status.st_mode):
                out.append(_File(item.path, status.st_size, status.st_mtime, variant))
    return out


def enforce_size_limit(cache: PickleFileCache, limit: int, keep: Optional[str] = None) -> List[str]:
    """Delete the least recently used entries (and variants) of ``cache`` until their
    total size is at most ``limit`` bytes, never the entry of ``keep``; return the
    paths deleted. Safe to call from concurrent processes."""
    if not os.path.isdir(cache.entries_directory):
        return []
    with evict_lock(cache):
        files = _files(cache)
        total = sum(f.size for f in files)
        if total <= limit:
            return []
        log = usage_log_for(cache)
        usage = log.read()
        used_at = {cache.path_of(k): u.last_used for k, u in usage.items() if _valid_key(k)}
        kept = cache.path_of(keep) if keep is not None else None
        order = sorted(
            (f for f in files if f.path != kept),
            key=lambda f: max(f.mtime, used_at.get(f.path, 0.0)),
        )
        removed = []
        for victim in order:
            if total <= limit:
                break
            if _remove(cache, victim, max(victim.mtime, used_at.get(victim.path, 0.0)), limit):
                total -= victim.size
                removed.append(victim.path)
        if total > limit:
            logger.info(
                "%s holds %d bytes, over its limit of %d: the entry just saved alone is "
                "larger; it is kept",
                cache.directory,
                total,
                limit,
            )
        try:
            if os.path.getsize(log.path) > log._compact_at:
                log.compact()
        except OSError:
            pass
        return removed


def _existing(cache: PickleFileCache, keys: Any) -> List[str]:
    """The ``keys`` that have an entry file: one listing of the entries' folder, not
    a ``stat`` per key (a compaction of the log of 20,000 entries: 10x faster)."""
    if type(cache).path_of is not PickleFileCache.path_of:  # another layout: ask it
        return [k for k in keys if _valid_key(k) and _exists(cache, k)]
    try:
        names = set(os.listdir(cache.entries_directory))
    except OSError:
        names = set()
    out = []
    for key in keys:
        if _valid_key(key):
            try:
                if _file_stem(key) + _SUFFIX in names:
                    out.append(key)
            except ValueError:
                continue
    return out


def _exists(cache: PickleFileCache, key: str) -> bool:
    try:
        return os.path.lexists(cache.path_of(key))
    except ValueError:
        return False


def _valid_key(key: str) -> bool:
    return isinstance(key, str) and bool(key)


def _remove(cache: PickleFileCache, victim: _File, last_used: float, limit: int) -> bool:
    folder, name = os.path.split(victim.path)
    what = "variant" if victim.variant else "entry"
    function = "?"
    try:
        function = str(_read_header(victim.path).get("function") or "?")
    except (OSError, _Corrupt):
        pass
    try:
        _unlink_in(folder, name)
    except FileNotFoundError:
        return True  # another process removed it: the space is free all the same
    except OSError as exc:
        logger.debug("could not evict %s: %s", victim.path, exc)
        return False
    if victim.variant:
        try:
            os.rmdir(folder)  # the last variant of its key: its folder goes too
        except OSError:
            pass
    logger.info(
        "evicted %s %s of %s (%d bytes, last used %s) to keep %s within %d bytes",
        what,
        name,
        function,
        victim.size,
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last_used)),
        cache.directory,
        limit,
    )
    return True


# -- prune ----------------------------------------------------------------------------


def last_used(entry: EntryInfo, usage: Dict[str, Usage]) -> float:
    """When ``entry`` was last used: its latest record, else when it was written."""
    record = usage.get(entry.key)
    written = entry.metadata.get("created")
    if not isinstance(written, (int, float)):
        try:
            written = os.lstat(entry.path).st_mtime
        except OSError:
            written = 0.0
    return max(float(written), record.last_used if record else 0.0)


def select(
    entries: Sequence[EntryInfo],
    usage: Dict[str, Usage],
    max_size: Optional[int] = None,
    older_than: Optional[float] = None,
    keep_latest: Optional[int] = None,
    now: Optional[float] = None,
) -> List[EntryInfo]:
    """The entries the prune rules delete: unused for more than ``older_than``
    seconds; beyond the ``keep_latest`` most recently used of each function; the
    least recently used beyond a total of ``max_size`` bytes."""
    ordered = sorted(entries, key=lambda e: last_used(e, usage), reverse=True)
    doomed: Dict[str, EntryInfo] = {}
    if older_than is not None:
        cutoff = (time.time() if now is None else now) - older_than
        doomed.update((e.path, e) for e in ordered if last_used(e, usage) < cutoff)
    if keep_latest is not None:
        seen: Dict[str, int] = {}
        for e in ordered:
            function = str(e.metadata.get("function") or "?")
            seen[function] = seen.get(function, 0) + 1
            if seen[function] > keep_latest:
                doomed[e.path] = e
    if max_size is not None:
        total = 0
        for e in ordered:
            if e.path in doomed:
                continue
            total += e.size
            if total > max_size:
                doomed[e.path] = e
    return [e for e in ordered if e.path in doomed]


def prune(
    max_size: Any = None,
    older_than: Any = None,
    keep_latest: Optional[int] = None,
    directory: Any = None,
    *,
    dry_run: bool = False,
) -> List[Dict[str, Any]]:
    """Delete cache entries by the rules of ``checkpointing prune``; return what was
    deleted (with ``dry_run``, what would be), one dict per entry: ``key``,
    ``function``, ``size``, ``last_used``, ``path``.

    Args:
        max_size: keep the most recently used entries within this total (``"10GB"``,
            or bytes).
        older_than: delete entries not used for this long (``"30d"``, seconds, or a
            ``timedelta``).
        keep_latest: keep this many most recently used entries of each function.
        directory: the cache folder; default ``defaults["cache.filesystem.directory"]``.
        dry_run: list, delete nothing.

    "Used" is the library's own record of hits and saves (see :class:`UsageLog`), not
    the files' access time.

    Raises:
        ConfigurationError: no rule given, or a rule's value is not accepted.
    """
    if max_size is None and older_than is None and keep_latest is None:
        raise ConfigurationError(
            "prune() needs max_size=, older_than= or keep_latest=; e.g. "
            "prune(max_size='10GB', older_than='30d')"
        )
    if keep_latest is not None and (
        isinstance(keep_latest, bool) or not isinstance(keep_latest, int) or keep_latest < 0
    ):
        raise ConfigurationError(f"keep_latest={keep_latest!r} is not accepted; give an int >= 0")
    return prune_cache(
        PickleFileCache(directory),
        None if max_size is None else parse_size(max_size, "max_size"),
        None if older_than is None else parse_age(older_than, "older_than"),
        keep_latest,
        dry_run,
    )


def prune_cache(
    cache: PickleFileCache,
    max_size: Optional[int] = None,
    older_than: Optional[float] = None,
    keep_latest: Optional[int] = None,
    dry_run: bool = False,
) -> List[Dict[str, Any]]:
    """:func:`prune` on ``cache`` with parsed values: delete what :func:`select`
    chooses (nothing with ``dry_run``) and compact the usage log."""
    entries = list(cache.iter_entries())
    usage = usage_log_for(cache).read()
    victims = select(entries, usage, max_size, older_than, keep_latest)
    if dry_run:
        return [_described(e, usage) for e in victims]
    return remove_entries(cache, victims, entries, usage)


def _described(entry: EntryInfo, usage: Dict[str, Usage]) -> Dict[str, Any]:
    return {
        "key": entry.key,
        "function": entry.metadata.get("function"),
        "size": entry.size,
        "last_used": last_used(entry, usage),
        "path": entry.path,
    }


def remove_entries(
    cache: PickleFileCache,
    victims: Sequence[EntryInfo],
    entries: Sequence[EntryInfo],
    usage: Dict[str, Usage],
) -> List[Dict[str, Any]]:
    """Delete ``victims`` (of the listing ``entries``), compact the usage log, remove
    stale temporary files; what was deleted (one dict each, as :func:`prune`)."""
    if not victims or not os.path.isdir(cache.entries_directory):
        return []
    with evict_lock(cache):
        gone = set()
        for e in victims:
            if cache.delete(e.key):
                gone.add(e.key)
        usage_log_for(cache).compact([e.key for e in entries if e.key not in gone])
    cache.remove_stale_temporaries()
    return [_described(e, usage) for e in victims if e.key in gone]
