"""The history of each function in a local store, to say why a call re-ran.

``<directory>/functions/<xxh3-64 of the qualified name>.json`` holds the most recent
entries of a function (their keys and fingerprints): its first line is the xxh3-64 of
the JSON that follows, so a damaged file reads as no history, never a wrong one. It is
written atomically, as entries are. :class:`HistoryFiles` gives
:class:`~checkpointing.store.files.PickleFileCache` its ``record_history``/``history``.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, List

import xxhash

from .fileio import _atomic_write, _make_private_folder, _read_regular
from .format import _Corrupt

__all__ = ["HISTORY_LENGTH", "HistoryFiles", "read_history_file"]

# How many recent entries of each function are remembered to explain a miss.
HISTORY_LENGTH = 20


def read_history_file(path: str) -> Any:
    """The JSON of a history file (first line: its xxh3-64); raises OSError, _Corrupt
    (not a regular file) or ValueError (damaged)."""
    digest, _, body = _read_regular(path, 1 << 24).partition(b"\n")
    if xxhash.xxh3_64_hexdigest(body).encode() != digest:
        raise ValueError("checksum mismatch (corrupted or not a history file)")
    return json.loads(body)


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
