"""The file operations the local store is built of, each keeping one promise.

* :func:`_atomic_write`: a file is written to a locked temporary in the same folder and
  renamed over the target (fsynced first, with its folder after, when durable), so a
  crash, a full disk or a read-only folder leaves the old file or the new one, never a
  broken one and no temporary; :func:`_locked` tells a live writer's temporary from a
  killed writer's leftover. :func:`_write_entry` streams an entry into it, its
  checksum computed in the pass that writes; :func:`_write_small` writes a small
  entry the same way in one ``write``, without the lock (it lives microseconds).
* :func:`_open_regular`: only regular files are opened (``O_NOFOLLOW | O_NONBLOCK``,
  then ``fstat``), so a FIFO or a symlink is refused, never a hang.
* :func:`_make_private_folder` and :func:`_unlink_in`: folders are created with the
  cache's mode, and no write or deletion follows a symbolic link out of the root.
* :func:`_folder_problem`, :func:`read_trusted_file`: whether a file could have been
  written by another user (then it must not be unpickled).
"""

from __future__ import annotations

import errno
import os
import stat

import xxhash

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; stale temporaries are judged by age
    fcntl = None  # type: ignore[assignment]

from ..config import defaults, folder_mode, validate_permissions
from .format import (
    _HASH_BEHIND_AT,
    _NO_SIGNATURE,
    _PREFIX,
    _SLICE,
    _SUFFIX,
    FORMAT_VERSION,
    MAGIC,
    _Corrupt,
    _HashBehind,
    _hmac,
    _new_mac,
    _read_entry,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Tuple

__all__ = ["STALE_TEMP_SECONDS", "read_trusted_file", "write_private_file"]

_COALESCE = 1 << 16  # chunks smaller than this are joined into one write
_TEMP_PREFIX = ".tmp-"
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
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise _Corrupt("not a regular file")
        return _read_up_to(fd, status.st_size, limit)
    finally:
        os.close(fd)


def _read_up_to(fd: int, size: int, limit: int) -> bytes:
    """What ``os.read(fd, limit)`` gives, for a file whose ``fstat`` gave ``size``: read
    as the size it has, since a read of ``limit`` first allocates ``limit`` bytes (64 MiB
    for a plan: 16 µs a read, more in a new process, on the first hit; issue 12)."""
    data = os.read(fd, min(limit, size + 1))
    if size < len(data) < limit:  # it grew since the fstat: read on, up to limit
        data += os.read(fd, limit - len(data))
    return data


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
        return _read_up_to(fd, status.st_size, limit)
    finally:
        os.close(fd)


def write_private_file(path: str, chunks: List[Any]) -> None:
    """Write a file of the cache (an analysis plan) atomically, with the cache's
    permissions, creating its folder and the folder above if needed."""
    mode = validate_permissions(defaults["cache.permissions"])
    folder = os.path.dirname(path)
    _make_private_folder(os.path.dirname(folder), folder_mode(mode), root=True)
    _make_private_folder(folder, folder_mode(mode))
    _atomic_write(folder, path, chunks, mode, durable=False)  # a lost plan: re-analysed


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


_TEMP_FLAGS = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
)


def _temporary_name() -> str:
    """16 hex digits no other writer is likely to draw: 8 random bytes drawn once per
    process (again in a forked child), then counted up (no ``getrandom`` per save).
    A name taken anyway is skipped (``O_EXCL``)."""
    _TEMP_NAMES[1] += 1
    return f"{(_TEMP_NAMES[0] + _TEMP_NAMES[1]) & 0xFFFFFFFFFFFFFFFF:016x}"


def _new_temp_names() -> None:
    _TEMP_NAMES[:] = [int.from_bytes(os.urandom(8), "little"), 0]


_TEMP_NAMES: List[int] = []
_new_temp_names()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_temp_names)


def _create_temporary(directory: str, mode: int = 0o600, lock: bool = True) -> Tuple[int, str]:
    """A new file in ``directory`` under a random name, open for writing, with ``mode``
    (0600 unless the user opened the cache to a group), locked while it is written so
    that no cleaner takes a live writer's file for a leftover (not with ``lock``
    False: see :func:`_write_small`).

    Like ``tempfile.mkstemp`` without importing tempfile (slow to import).
    """
    for _ in range(100):
        path = os.path.join(directory, f"{_TEMP_PREFIX}{_temporary_name()}{_SUFFIX}")
        try:
            fd = os.open(path, _TEMP_FLAGS, mode)
        except FileExistsError:
            continue
        try:
            if mode != 0o600 and hasattr(os, "fchmod"):
                os.fchmod(fd, mode)  # the umask may have removed group bits asked for
            if lock and fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            os.remove(path)
            raise
        return fd, path
    raise FileExistsError(f"could not create a temporary file in {directory}")


def _atomic_write(
    directory: str,
    path: str,
    chunks: List[Any],
    mode: int = 0o600,
    *,
    writer: Optional[Callable[[int], None]] = None,
    durable: bool = True,
    status: bool = True,
) -> "Optional[os.stat_result]":
    """Write ``chunks`` (or let ``writer`` write the open descriptor) to ``path``
    through a temporary file and a rename; return the file's ``fstat`` once renamed
    (None without ``status``: a system call less, for a caller that has no use for it).

    ``durable``: fsync the file before the rename and its folder after it, so that the
    entry survives a power cut. Without it a crash of the machine may lose the entry
    or leave it torn, which a read sees (checksum) and treats as a miss; a crash of
    the process cannot (the rename is atomic either way).

    On any failure the temporary file is removed and the exception propagates.
    """
    fd, temporary = _create_temporary(directory, mode)
    closed = False
    renamed = None
    try:
        try:
            if writer is not None:
                writer(fd)
            else:
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
            if durable:
                os.fsync(fd)
            if fcntl is None:  # Windows cannot rename an open file
                os.close(fd)
                closed = True
            # Renamed while still locked: a cleaner never removes a finished file.
            os.replace(temporary, path)
            if status:  # after the rename: a rename is a change
                renamed = os.lstat(path) if closed else os.fstat(fd)
        finally:
            if not closed:
                os.close(fd)
    except BaseException:
        try:
            os.remove(temporary)
        except OSError:
            pass
        raise
    if durable:
        _fsync_folder(directory)
    return renamed


def secret_in_effect(secret: Optional[str]) -> Optional[str]:
    """The secret entries are signed with: the one given, else
    ``defaults["cache.secret"]``, else the environment variable ``CHECKPOINTING_SECRET``
    (read now), else None. One rule for every store, local or remote."""
    if secret is None:
        secret = defaults["cache.secret"]
    if secret is None:
        secret = os.environ.get("CHECKPOINTING_SECRET") or None
    return secret


def _fsync_folder(directory: str) -> None:
    """Make a rename in ``directory`` durable (POSIX; elsewhere a no-op)."""
    try:
        fd = os.open(directory, _DIR_FLAGS)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse to fsync a folder; the rename is done all the same
    finally:
        os.close(fd)


def _small_entry(header_length: int, parts: List[Any], secret: Optional[bytes]) -> bytes:
    """The bytes of a small entry (see :func:`_entry_parts`), prefix included."""
    body = b"".join(parts)
    signature = _hmac().digest(secret, body, "sha256") if secret is not None else _NO_SIGNATURE
    checksum = xxhash.xxh3_64(signature)
    checksum.update(body)
    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, header_length, checksum.intdigest(), signature)
    return prefix + body


def _write_small(
    directory: str, path: str, data: bytes, mode: int, status: bool
) -> "Optional[os.stat_result]":
    """:func:`_atomic_write` of ``data``, a small file written in one ``write``, not
    durable, on POSIX (``fcntl`` present): the same promises, two system calls and the
    generic steps fewer. The temporary file is not locked: it lives the few
    microseconds between its creation and the rename, and a cleaner takes a temporary
    file for a leftover only once it is a minute old (see :func:`_locked`); should one
    be removed under a writer stopped that long, the rename fails with
    FileNotFoundError and the caller writes again. Returns the ``fstat`` after the
    rename with ``status``, else None."""
    fd, temporary = _create_temporary(directory, mode, lock=False)
    renamed = None
    try:
        try:
            _write_all(fd, data)
            os.replace(temporary, path)
            if status:  # after the rename: a rename is a change
                renamed = os.fstat(fd)
        finally:
            os.close(fd)
    except BaseException:
        try:
            os.remove(temporary)
        except OSError:
            pass
        raise
    return renamed


def _write_entry(fd: int, header_length: int, parts: List[Any], secret: Optional[bytes]) -> None:
    """Write an entry (see :func:`_entry_parts`) to the new, empty file ``fd``.

    The checksum (and the signature) are computed in the pass that writes: large
    buffers go in slices of ``_SLICE`` bytes, each hashed while it is in the CPU
    cache (by a helper thread, alongside the write, for entries of 16 MiB and more)
    and written straight from where it lies; small parts are joined into one write.
    The prefix, which holds the checksum, is written last, at offset 0 (a
    file cut short before that has a zero magic number: a miss). A signed entry
    needs the signature before the checksum (the checksum covers it): its checksum
    is a second pass over the parts in memory, never a re-read.
    """
    sizes = [memoryview(part).nbytes for part in parts]
    if sum(sizes) < _COALESCE:  # a small entry: one buffer, one write
        _write_all(fd, _small_entry(header_length, parts, secret))
        return
    mac = _new_mac(secret) if secret is not None else None
    checksum = xxhash.xxh3_64(_NO_SIGNATURE)
    update = checksum.update if mac is None else mac.update
    behind = None
    if mac is None and sum(sizes) >= _HASH_BEHIND_AT:
        update = behind = _HashBehind(update)
    try:
        os.lseek(fd, _PREFIX.size, os.SEEK_SET)  # the prefix last, once the checksum is known
        _write_parts(fd, parts, sizes, update)
    finally:
        if behind is not None:
            behind.finish()
    signature = _NO_SIGNATURE
    if mac is not None:
        signature = mac.digest()
        checksum = xxhash.xxh3_64(signature)
        for part in parts:
            checksum.update(part)
    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, header_length, checksum.intdigest(), signature)
    _write_at(fd, prefix, 0)


def _write_parts(
    fd: int, parts: List[Any], sizes: List[int], update: Callable[[Any], None]
) -> None:
    """Write ``parts`` from the current offset, feeding each byte to ``update`` (in
    file order) just before it is written: small parts joined, large ones in slices."""
    pending = bytearray()
    for part, size in zip(parts, sizes):
        if size < _COALESCE:
            pending += part
            if len(pending) < _COALESCE:
                continue
            update(pending)
            _write_all(fd, pending)
            pending = bytearray()
            continue
        if pending:
            update(pending)
            _write_all(fd, pending)
            pending = bytearray()
        view = memoryview(part).cast("B")
        for start in range(0, size, _SLICE):
            piece = view[start : start + _SLICE]
            update(piece)
            _write_all(fd, piece)
    if pending:
        update(pending)
        _write_all(fd, pending)


def _read_at(fd: int, count: int, offset: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, count, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # Windows
    return os.read(fd, count)


def _write_at(fd: int, data: bytes, offset: int) -> None:
    if hasattr(os, "pwrite"):
        while data:
            written = os.pwrite(fd, data, offset)
            data, offset = data[written:], offset + written
        return
    os.lseek(fd, offset, os.SEEK_SET)  # Windows
    _write_all(fd, data)


def _write_all(fd: int, chunk: Any) -> None:
    view = memoryview(chunk)
    if view.nbytes:  # the common case, one write of it all, without slicing
        written = os.write(fd, view)
        if written == view.nbytes:
            return
        view = view[written:]
    while view.nbytes:
        written = os.write(fd, view)
        view = view[written:]
