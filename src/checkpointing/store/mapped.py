"""Hits served memory-mapped (``checkpoint(mmap_mode="r"|"c")``), as joblib's
``mmap_mode``: the large buffers of a result (numpy arrays, stored out of band at
64-byte-aligned offsets, see :mod:`checkpointing.store.format`) are views of the entry's
file mapped into memory, not copies read into it.

Every promise of a read still holds: the file must be a regular file, trusted (or
validly signed), of the key asked for, and its checksum must match; so the checksum
reads the mapped pages once (from the page cache when the file is warm) but nothing
is copied. Mode ``"r"`` gives read-only arrays; ``"c"`` copy-on-write arrays, whose
changes stay in this process. The entry itself is never written through.
"""

from __future__ import annotations

import mmap
import os
import pickle
import stat

import xxhash

from ..errors import CheckpointNotExist
from .fileio import _open_regular
from .files import PickleFileCache
from .format import (
    _HAS_CHECKS,
    _LENGTH,
    _PREFIX,
    _SMALL,
    FORMAT_VERSION,
    MAGIC,
    _aligned,
    _check_signature,
    _Corrupt,
    _hmac,
    _key_digest,
    _Untrusted,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Tuple

__all__ = ["retrieve_mapped"]


def retrieve_mapped(cache: PickleFileCache, key: str, mode: str) -> Tuple[Any, Any]:
    """(result, checks) of ``key`` with its buffers mapped from the file.

    Raises:
        CheckpointNotExist: no entry, or an unreadable or untrusted one (with the
            same warning as :meth:`PickleFileCache.retrieve`).
    """
    path = cache.path_of(key)
    try:
        mapped = _map(cache, path, mode)
        data, buffers, checks = _parse(cache, mapped, _key_digest(key))
    except FileNotFoundError:
        raise CheckpointNotExist(key) from None
    except _Corrupt:
        # Not mappable as this reader knows the format: the regular reader decides
        # (and warns once about a damaged file), so a format it reads is never lost.
        return cache.retrieve_entry(key)
    except _Untrusted as exc:
        cache._warn_untrusted(path, str(exc))
        raise CheckpointNotExist(key) from None
    try:
        return pickle.loads(data, buffers=buffers), checks
    except Exception as exc:
        cache._warn_corrupt(path, f"unpickling failed: {type(exc).__name__}: {exc}")
        raise CheckpointNotExist(key) from None


def _map(cache: PickleFileCache, path: str, mode: str) -> mmap.mmap:
    fd = _open_regular(path)
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise _Corrupt("not a regular file")
        if cache._secret is None:
            problem = cache.trust_problem(status)
            if problem is not None:
                raise _Untrusted(problem)
        if status.st_size < _SMALL.size:
            raise _Corrupt(f"truncated to {status.st_size} bytes")
        access = mmap.ACCESS_READ if mode == "r" else mmap.ACCESS_COPY
        return mmap.mmap(fd, 0, access=access)
    finally:
        os.close(fd)  # the mapping keeps the file's pages


def _parse(cache: PickleFileCache, mapped: mmap.mmap, key_digest: bytes) -> Tuple[Any, Any, Any]:
    view = memoryview(mapped)
    magic, version, header_length, checksum, signature, pickle_size, count, flags, digest = (
        _SMALL.unpack_from(view)
    )
    if magic != MAGIC:
        raise _Corrupt("not a checkpointing entry (wrong magic number)")
    if version != FORMAT_VERSION:
        raise _Corrupt(
            f"entry format {version}, this version of checkpointing reads format {FORMAT_VERSION}"
        )
    if digest != key_digest:
        raise _Corrupt("misplaced: the file holds the entry of another key")
    header_end = _PREFIX.size + header_length
    json_start = _SMALL.size + count * _LENGTH.size
    if header_end > len(view) or json_start > header_end:
        raise _Corrupt("truncated header")
    lengths = [pickle_size] + [
        _LENGTH.unpack_from(view, _SMALL.size + i * _LENGTH.size)[0] for i in range(count)
    ]
    segments = []
    position = header_end
    for length in lengths:
        position = _aligned(position)
        segments.append((position, length))
        position += length
    if position != len(view):
        raise _Corrupt(f"the file has {len(view)} bytes, its header describes {position}")
    check = xxhash.xxh3_64(signature)
    check.update(view[_PREFIX.size :])
    if check.intdigest() != checksum:
        raise _Corrupt("checksum mismatch (corrupted)")
    secret = cache._secret
    if secret is not None:
        _check_signature(flags, signature, _hmac().digest(secret, view[_PREFIX.size :], "sha256"))
    checks = None
    if flags & _HAS_CHECKS:
        try:
            import json  # not at import (issue 12: a light import)

            checks = json.loads(bytes(view[json_start:header_end]))["checks"]
        except (ValueError, KeyError, TypeError) as exc:
            raise _Corrupt(f"unreadable checks in the header: {exc}") from None
    (start, length), *rest = segments
    return view[start : start + length], [view[s : s + n] for s, n in rest], checks
