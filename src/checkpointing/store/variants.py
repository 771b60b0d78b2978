"""Variants: earlier entries of a key that differ only in their run-time checks.

A key covers code and arguments; what a run read (files, folders, environment) is in
the entry's checks. When those change the entry is replaced, but the one it replaces
is kept aside (a rename, no copy) under ``<directory>/variants/<name>/<checks
digest>.ckpt``, at most ``defaults["cache.variants"] - 1`` of them, so that reverting
the inputs finds it again. The decorator serves a variant only after verifying its own
checks. :class:`VariantFiles` gives
:class:`~checkpointing.store.files.PickleFileCache` these methods.
"""

from __future__ import annotations

import os

import xxhash

from ..config import defaults
from ..errors import CheckpointFailedWarning
from ..report import warn
from .fileio import _make_private_folder, _read_header
from .format import _SUFFIX, _Corrupt, _file_stem

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, List, Tuple

__all__ = ["VariantFiles"]


class VariantFiles:
    """The variants of each key in a local store (a mixin: the class provides
    ``directory``, ``folder_mode`` and ``path_of``)."""

    directory: str
    folder_mode: int
    path_of: Callable[[str], str]

    def _variants_directory(self, key: str) -> str:
        return os.path.join(self.directory, "variants", _file_stem(key))

    def _set_aside(self, key: str, path: str, new_checks: Any, promoting: bool = False) -> None:
        """Before ``path`` is replaced by an entry with ``new_checks``, move the entry
        there now into the variants of the key if its checks differ (never failing the
        save: a variant lost is a re-run later, nothing worse). ``promoting``: the new
        entry is the variant with those checks, not a new one superseding it."""
        limit = defaults["cache.variants"]
        if limit <= 1:
            return
        folder = self._variants_directory(key)
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
            if not old_checks or header.get("context_id") != key or old_checks == new_checks:
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
            warn(
                f"could not keep the previous entry of {key} aside "
                f"({type(exc).__name__}: {exc}); it is replaced",
                CheckpointFailedWarning,
            )

    def variants(self, key: str) -> List[Tuple[str, Any]]:
        """(path, checks) of the earlier entries kept for ``key``, newest first.

        Only headers are read; an unreadable variant is skipped."""
        folder = self._variants_directory(key)
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
            if header.get("context_id") == key and header.get("checks"):
                found.append((mtime, path, header["checks"]))
        return [(path, checks) for _, path, checks in sorted(found, reverse=True)]

    def promote_variant(self, key: str, path: str) -> None:
        """Make the variant at ``path`` the entry of ``key`` again; the entry it
        replaces becomes a variant. The caller reads the entry afterwards and checks it
        is the one it verified (another process may have saved meanwhile)."""
        entry = self.path_of(key)
        try:
            header = _read_header(path)
            self._set_aside(key, entry, header.get("checks"), promoting=True)
            os.replace(path, entry)
        except (OSError, _Corrupt):
            pass  # another process moved it: the caller's read tells


def _checks_digest(checks: Any) -> str:
    """The name of a variant: a digest of its checks."""
    import json  # not at import: ~1 ms, for misses and checks only

    return xxhash.xxh3_64_hexdigest(json.dumps(checks, sort_keys=True, default=str).encode())
