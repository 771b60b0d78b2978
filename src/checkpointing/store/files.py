"""The local store: :class:`PickleFileCache`, one checksummed pickle file per key.

The default backend, in ``<directory>/entries/``. The bytes of an entry are
:mod:`checkpointing.store.format`'s; the file operations (atomic writes, regular-file
opens, private folders) :mod:`checkpointing.store.fileio`'s; the variants of a key
:mod:`checkpointing.store.variants`' and the history of a function
:mod:`checkpointing.store.history`'s. This module puts them together and adds listing,
trust checks and maintenance.

A folder that checkpointing 1.0 used holds its results as ``<md5>.pickle`` files at the
root. They are never read as entries (1.0 keyed calls differently and its files carry
no checksum); :meth:`PickleFileCache.legacy_files` lists them for ``checkpointing ls``
and ``verify``, and :meth:`PickleFileCache.remove_legacy_files` removes them
(``checkpointing clear``).

Promises of :class:`PickleFileCache`:

* a write is atomic: the result is pickled in memory first (an unpicklable result
  raises before any file is touched), streamed to a temporary file in the same
  directory (its checksum computed in the same pass) and renamed over the entry, so a
  crash of the process, a full disk or a read-only directory leaves either the old
  entry or the new one, never a broken one and no temporary file; whether it is
  fsynced first (to survive a power cut too) is ``defaults["cache.durability"]``:
  by default, for calls that ran 1 s or more (``docs/reliability.md``);
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
  by ``checkpointing prune``/``verify --remove``; a small entry's temporary file,
  written in one ``write`` and renamed microseconds later, is not locked (should a
  cleaner remove it under a writer stopped for a minute, the save is made again);
* large buffers (numpy arrays) travel out of band with pickle protocol 5, each at a
  64-byte-aligned offset, written without a copy and read into fresh memory of their
  own (one writable buffer each, the checksum verified slice by slice as it arrives);
* a hit on a small result costs one ``open``, one ``fstat`` and one ``read``; a
  repeated hit, one ``lstat`` (the memory tier, :mod:`checkpointing.store.tier`,
  keeps the verified bytes of recently used entries and unpickles a fresh copy).

Directory layout::

    <directory>/CACHEDIR.TAG        marks a cache for backup tools (bford.info/cachedir)
    <directory>/.gitignore          "*": never committed
    <directory>/entries/<name>.ckpt one file per key
    <directory>/variants/<name>/<checks digest>.ckpt
                                    earlier entries of a key that differ from its entry
                                    only in their run-time checks (input files...), at
                                    most ``defaults["cache.variants"] - 1``; same format
    <directory>/functions/<h>.json  recent entries of each function (explanations), a log
                                    appended at each save (checkpointing.store.history)

Why one module of about 650 lines: the class is the local store's whole contract
(layout, atomic save, trusted read, listing, deletion) over one directory; the bytes
are in ``format``, the file operations in ``fileio``, history and variants apart.
"""

from __future__ import annotations

import os
import stat
import time

from ..config import (
    defaults,
    folder_mode,
    validate_directory,
    validate_permissions,
    validate_pickle_protocol,
    validate_secret,
)
from ..errors import CheckpointNotExist, CorruptEntryWarning, UntrustedEntryWarning
from ..report import warn
from .base import CacheBase
from .fileio import (
    _COALESCE,
    _OTHERS_WRITE,
    _POSIX_OWNERS,
    _READ_FLAGS,
    _TEMP_PREFIX,
    STALE_TEMP_SECONDS,
    _atomic_write,
    _folder_problem,
    _locked,
    _make_private_folder,
    _open_regular,
    _read_header,
    _remove_tree,
    _small_entry,
    _unlink_in,
    _write_entry,
    _write_small,
    fcntl,
    secret_in_effect,
)
from .format import (
    _FIRST_READ,
    _PREFIX,
    _SUFFIX,
    _check_signature,
    _Corrupt,
    _entry_parts,
    _file_stem,
    _hmac,
    _key_digest,
    _new_mac,
    _read_entry,
    _read_small,
    _Untrusted,
)
from .tier import MEMORY

try:  # pickle.py's dumps and loads, without pickle.py (which imports re): issue 12
    import _pickle as pickle
except ImportError:  # an interpreter without the C pickle
    import pickle  # type: ignore[no-redef]

_REMEMBERED = MEMORY.entries  # the memory tier's entries, read by every warm hit
_lstat = os.lstat

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

__all__ = ["CACHEDIR_TAG", "FSYNC_AFTER_SECONDS", "EntryInfo", "PickleFileCache"]

_LEGACY_PATTERN = r"[0-9a-f]{32}\.pickle"  # 1.0: <md5 hexdigest>.pickle at the root


def __getattr__(name: str) -> Any:
    if name == "_LEGACY_NAME":  # compiled at first use: re is not imported at import
        import re

        globals()[name] = re.compile(_LEGACY_PATTERN)
        return globals()[name]
    if name == "EntryInfo":  # its module loads collections: listing only (issue 12, target 5)
        from .entryinfo import EntryInfo

        return EntryInfo
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


FSYNC_AFTER_SECONDS = 1.0
"""Under ``cache.durability = "auto"``, entries of calls that ran this long are fsynced."""


def _durable(run_seconds: Any) -> bool:
    """Should a save of a call that ran ``run_seconds`` (None: unknown) be fsynced?"""
    policy = defaults["cache.durability"]
    if policy == "auto":
        return isinstance(run_seconds, (int, float)) and run_seconds >= FSYNC_AFTER_SECONDS
    return policy == "always"


CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by checkpointing.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)


if TYPE_CHECKING:
    from .entryinfo import EntryInfo

    _Store = CacheBase[str, Any]
else:
    _Store = CacheBase


class PickleFileCache(_Store):
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

    Keys made of lowercase letters, digits, ``.``, ``_`` and ``-``
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
        secret = secret_in_effect(secret)
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
        self._history_folder_ready = False  # functions/ made (see HistoryFiles)

    str_keys_only = True
    stores_checks = True

    def __repr__(self) -> str:
        return f"PickleFileCache({self.directory!r}, pickle_protocol={self.pickle_protocol})"

    @property
    def signed(self) -> bool:
        """True if a secret is set: every entry is signed, and only signed ones are read."""
        return self._secret is not None

    # -- paths ----------------------------------------------------------------------
    def path_of(self, key: str) -> str:
        """The file that holds (or would hold) the entry of ``key``.

        Raises:
            ValueError: ``key`` is not a non-empty str.
        """
        known = self._paths.get(key)  # (a key read already: its miss or hit)
        if known is not None:
            return known[0]
        return os.path.join(self.entries_directory, _file_stem(key) + _SUFFIX)

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

    # -- variants of a key, history of a function -------------------------------------
    # VariantFiles' and HistoryFiles' (store.variants, store.history), loaded at first
    # use: a hit needs neither (issue 12, target 5: a light import).

    def _variants_directory(self, key: str) -> str:
        from .variants import VariantFiles

        return VariantFiles._variants_directory(self, key)  # type: ignore[arg-type]

    def _set_aside(self, key: str, path: str, new_checks: Any, promoting: bool = False) -> None:
        from .variants import VariantFiles

        VariantFiles._set_aside(self, key, path, new_checks, promoting)  # type: ignore[arg-type]

    def variants(self, key: str) -> List[Tuple[str, Any]]:
        from .variants import VariantFiles

        return VariantFiles.variants(self, key)  # type: ignore[arg-type]

    def promote_variant(self, key: str, path: str) -> None:
        from .variants import VariantFiles

        VariantFiles.promote_variant(self, key, path)  # type: ignore[arg-type]

    def _history_path(self, function: str) -> str:
        from .history import HistoryFiles

        return HistoryFiles._history_path(self, function)  # type: ignore[arg-type]

    def record_history(self, function: str, entry: Dict[str, Any]) -> None:
        from .history import HistoryFiles

        HistoryFiles.record_history(self, function, entry)  # type: ignore[arg-type]

    def history(self, function: str) -> List[Dict[str, Any]]:
        from .history import HistoryFiles

        return HistoryFiles.history(self, function)  # type: ignore[arg-type]

    # -- writing ----------------------------------------------------------------------
    def save(self, context_id: str, result: Any) -> None:
        """Store ``result`` under ``context_id`` without metadata (see ``save_entry``)."""
        self.save_entry(context_id, result, {})

    def save_entry(self, key: str, result: Any, metadata: Dict[str, Any]) -> None:
        """Store ``result`` with ``metadata`` (JSON-able; other values become str).

        The keys ``context_id``, ``pickle_protocol``, ``size``, ``pickle_size`` and
        ``buffers`` are the store's own and override the caller's. The first save of a
        process (and one a minute after) also removes stale temporary files.

        Whether the save waits for the disk (fsync) follows ``defaults["cache.durability"]``:
        under ``"auto"``, only when ``metadata["run_seconds"]`` (the time the call took)
        is 1 s or more, since an entry lost to a power cut costs a re-run and a torn one
        is found by its checksum.

        Raises:
            Exception: whatever pickling raises (``TypeError``, ``PicklingError``,
                ...), before any file is touched.
            OSError: writing failed; the previous entry, if any, is intact.
        """
        path = self.path_of(key)
        secret = self._secret
        header_length, parts, data, raws = _entry_parts(
            key, result, metadata, self.pickle_protocol, secret is not None
        )
        durable = _durable(metadata.get("run_seconds"))
        small = (
            not durable
            and fcntl is not None
            and not raws
            and sum(map(len, parts)) < _COALESCE  # (bytes only, without buffers)
        )
        if small:  # one buffer, one write, the generic steps skipped (most misses)
            blob = _small_entry(header_length, parts, secret)

            def write(status: bool) -> Any:
                return _write_small(self.entries_directory, path, blob, self.file_mode, status)
        else:

            def writer(fd: int) -> None:
                _write_entry(fd, header_length, parts, secret)

            def write(status: bool) -> Any:
                return _atomic_write(
                    self.entries_directory,
                    path,
                    [],
                    self.file_mode,
                    writer=writer,
                    durable=durable,
                    status=status,
                )

        self._prepare()
        MEMORY.forget(path)
        checks = metadata.get("checks")
        if checks:
            self._set_aside(key, path, checks)
        # Remembered only as a read would accept it: signed, or trusted with the folders
        # already checked by a read of this cache (a save does not check them); the
        # file's fstat is wanted only then (a process that never read an entry of this
        # cache does not need it). Not with checks: they come back from JSON.
        remember = not checks and (secret is not None or self._trusted_folder)
        try:
            status = write(remember)
        except FileNotFoundError:
            self._prepared = False  # the directory was removed under us: once more
            from .locks import forget_lock_files  # (a miss's compute-once locks: not at import)

            forget_lock_files()  # (its lock file with it)
            self._prepare()
            status = write(remember)
        if status is not None and (secret is not None or self.trust_problem(status) is None):
            MEMORY.put(path, secret, status, data, raws, None)
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
        return self.read_entry(context_id)[0]

    def read_entry(self, key: str) -> Tuple[Any, Any]:
        """(result, checks): like :meth:`retrieve`, with the ``"checks"`` saved in the
        entry's metadata (None if none) that the caller verifies before using it."""
        known = self._paths.get(key)
        if known is None:
            known = (self.path_of(key), _key_digest(key))
            if len(self._paths) >= 4096:
                self._paths.clear()
            self._paths[key] = known
        path, key_digest = known
        # Remembered bytes passed every check when read (or were written by us, trusted);
        # the file is unchanged since (ctime: no chmod or chown either), so they still
        # would. A cache that has not checked its folders yet reads the file once.
        secret = self._secret
        if self._trusted_folder or secret is not None:
            # The memory tier's check (see MemoryTier), written out: every warm hit runs
            # it. Remembered: (identity, secret, data, buffers, checks, size).
            remembered = _REMEMBERED.get(path)
            if remembered is not None and remembered[1] == secret:
                try:
                    status = _lstat(path)
                except OSError:
                    status = None
                if (
                    status is not None
                    and (
                        status.st_mtime_ns,
                        status.st_ctime_ns,
                        status.st_ino,
                        status.st_size,
                        status.st_dev,
                    )
                    == remembered[0]
                ):  # file_identity(status), inlined
                    try:
                        _REMEMBERED.move_to_end(path)  # atomic (C OrderedDict): no lock
                    except KeyError:  # forgotten by another thread meanwhile: still verified
                        pass
                    try:
                        if remembered[3]:  # fresh writable copies: callers may mutate
                            buffers = [bytearray(b) for b in remembered[3]]
                            return pickle.loads(remembered[2], buffers=buffers), remembered[4]
                        return pickle.loads(remembered[2]), remembered[4]
                    except Exception:
                        pass
                MEMORY.forget(path)  # read the file, and warn from there
        try:
            # Opened here rather than by _load: a miss (no file) raises through one
            # frame less (issue 12, target 3).
            fd = os.open(path, _READ_FLAGS)
        except FileNotFoundError:
            raise CheckpointNotExist(key) from None
        except OSError:
            fd = None  # _load says what it is (a symbolic link, a FIFO...) or raises
        try:
            data, buffers, checks, status = self._load(path, key_digest, fd)
        except FileNotFoundError:
            raise CheckpointNotExist(key) from None
        except _Corrupt as exc:
            self._warn_corrupt(path, str(exc))
            raise CheckpointNotExist(key) from None
        except _Untrusted as exc:
            self._warn_untrusted(path, str(exc))
            raise CheckpointNotExist(key) from None
        try:
            value = pickle.loads(data, buffers=buffers)
        except Exception as exc:
            self._warn_corrupt(path, f"unpickling failed: {type(exc).__name__}: {exc}")
            raise CheckpointNotExist(key) from None
        MEMORY.put(path, secret, status, data, buffers, checks)
        return value, checks

    retrieve_entry = read_entry  # its name before CacheBase had read_entry

    def exists(self, key: str) -> bool:
        """Is there an entry under ``key``? Reads its header only (no checksum,
        no trust check: :meth:`retrieve` may still find it unreadable)."""
        try:
            self.read_metadata(key)
        except CheckpointNotExist:
            return False
        return True

    def _load(
        self, path: str, key_digest: Optional[bytes], fd: Optional[int] = None
    ) -> Tuple[Any, Any, Any, Any]:
        """(pickle, buffers, checks, fstat) of the entry at ``path`` once it passed every
        check (regular file, checksum, key, trust); raises _Corrupt, _Untrusted or
        OSError. ``key_digest`` None skips the key check (the caller checks the header).
        ``fd``: ``path`` opened already with ``_READ_FLAGS`` (closed here)."""
        if fd is None:
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
            # As many bytes as the file has (and one more, to see it grew), not
            # _FIRST_READ: a read allocates what it asks for, and 64 KiB for a small
            # entry can make the heap grow (a brk on a new process's first hit).
            first = os.read(fd, min(_FIRST_READ, status.st_size + 1))
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
                return data, buffers, checks, status
            mac = _new_mac(secret) if secret is not None else None
            with open(fd, "rb", buffering=0, closefd=False) as handle:
                header, data, buffers = _read_entry(
                    handle, payload=True, first=first, key_digest=key_digest, mac=mac
                )
            if mac is not None:
                _check_signature(header["flags"], header["signature"], mac.digest())
            return data, buffers, header.get("checks"), status
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

    def read_metadata(self, key: str) -> Dict[str, Any]:
        """The header of an entry: the caller's metadata and the store's keys.

        Cheap: reads the header only, so the checksum is not verified.

        Raises:
            CheckpointNotExist: no entry, or its header is unreadable.
        """
        path = self.path_of(key)
        try:
            header = _read_header(path)
        except (OSError, _Corrupt):
            raise CheckpointNotExist(key) from None
        return header

    def _warn_corrupt(self, path: str, reason: str) -> None:
        warn(
            f"checkpointing entry {path} is unreadable ({reason}); it is treated "
            f"as a miss: the result will be recomputed and the entry replaced",
            CorruptEntryWarning,
        )

    # -- maintenance ----------------------------------------------------------------------
    def _warn_untrusted(self, path: str, reason: str) -> None:
        fix = (
            "set the same secret where the entry was written"
            if self._secret
            else "keep the cache in a folder only you can write, or set a secret "
            "(CHECKPOINTING_SECRET) to share signed entries"
        )
        warn(
            f"checkpointing entry {path} is not trusted ({reason}); it was not "
            f"loaded (loading a pickle can run code) and is treated as a miss; "
            f"{fix}",
            UntrustedEntryWarning,
            once=("untrusted", path, reason),
        )

    # -- maintenance ----------------------------------------------------------------------
    def iter_entries(self) -> Iterator[EntryInfo]:
        """Every entry whose header is readable, in file-name order."""
        from .entryinfo import EntryInfo

        for path in self.entry_files():
            try:
                header = _read_header(path)
                size = os.lstat(path).st_size
            except (OSError, _Corrupt):
                continue
            key = header.get("context_id")
            if not isinstance(key, str):
                key = os.path.basename(path)[: -len(_SUFFIX)]
            yield EntryInfo(key, path, size, header)

    def entries(self) -> Iterator[str]:
        """The key of every entry whose header is readable, in file-name order."""
        return (info.key for info in self.iter_entries())

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
        key = header.get("context_id")
        if (
            not isinstance(key, str)
            or not key
            or self.path_of(key) != path
            or header.get("key_digest") != _key_digest(key).hex()
        ):
            return f"misplaced: it holds the entry of key {key!r}, which belongs in another file"
        return None

    def load_file(self, path: str) -> Any:
        """Unpickle the entry at ``path`` after the same checks as a read (for
        ``checkpointing verify --deep``); raises ValueError naming what is wrong."""
        problem = self.check_file(path)
        if problem is not None:
            raise ValueError(problem)
        data, buffers, _, _ = self._load(path, None)
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

    def delete(self, key: str) -> bool:
        """Remove the entry of ``key`` (and its variants); False if there was none.

        Raises:
            OSError: ``entries/`` is a symbolic link (it is not followed).
        """
        _remove_tree(self._variants_directory(key))
        MEMORY.forget(self.path_of(key))
        try:
            _unlink_in(self.entries_directory, os.path.basename(self.path_of(key)))
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
        import re

        legacy = re.compile(_LEGACY_PATTERN)
        for name in names:
            if legacy.fullmatch(name) is None:
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
