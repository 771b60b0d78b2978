"""The source index: the text of the user's modules exactly as they were loaded.

A key must describe the code that is running, not whatever is on disk now: a file
edited while a long program runs must not change the keys of that program. The
import hook (:mod:`checkpointing.source.hook`) records each project module's text
as it is compiled; modules loaded before the hook (the main script, say) are read
once, the first time they are asked for. This module also decides what counts as
"project code": files under the project roots that are not the standard library,
site-packages or a virtual environment.
"""

from __future__ import annotations

import ast
import linecache
import os
import sys
import sysconfig
import threading
import tokenize
from typing import Dict, Iterable, List, Optional

import xxhash

__all__ = ["INDEX", "ModuleRecord", "SourceIndex"]


class ModuleRecord:
    """The recorded source of one module (or notebook cell)."""

    __slots__ = ("name", "filename", "source", "digest", "from_hook", "_tree", "_lines")

    def __init__(self, name: str, filename: str, source: str, from_hook: bool = True) -> None:
        self.name = name
        self.filename = filename
        self.source = source
        self.digest = xxhash.xxh3_128_digest(source.encode("utf-8", "surrogatepass"))
        self.from_hook = from_hook
        self._tree: Optional[ast.Module] = None
        self._lines: Optional[List[str]] = None

    @property
    def tree(self) -> ast.Module:
        """The parsed module (parsed once, on first use)."""
        if self._tree is None:
            self._tree = ast.parse(self.source, self.filename)
        return self._tree

    @property
    def lines(self) -> List[str]:
        """The source split into lines, with their line ends."""
        if self._lines is None:
            self._lines = self.source.splitlines(keepends=True)
        return self._lines

    def __repr__(self) -> str:
        how = "hook" if self.from_hook else "late read"
        return f"<ModuleRecord {self.name} {self.filename} ({how})>"


def _norm(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


def _is_notebook_cell(filename: str) -> bool:
    return filename.startswith("<ipython-input-") or "ipykernel_" in filename \
        or (filename in linecache.cache and not os.path.exists(filename))


class SourceIndex:
    """Recorded module sources by module name and by file name.

    Mutations take a lock; lookups are plain dict reads. ``generation`` grows each
    time a file is recorded again (a reload), so caches built on the index can tell
    they went stale.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._by_filename: Dict[str, ModuleRecord] = {}
        self._by_module: Dict[str, ModuleRecord] = {}
        self._added_roots: List[str] = []
        self._roots: Optional[List[str]] = None
        self._project_memo: Dict[str, bool] = {}
        self._env_dirs: Optional[List[str]] = None
        self.generation = 0

    # -- recording ------------------------------------------------------------------
    def record(self, name: str, filename: str, source: str,
               from_hook: bool = True) -> ModuleRecord:
        """Remember ``source`` as the text of module ``name`` loaded from ``filename``."""
        key = filename if _is_notebook_cell(filename) else _norm(filename)
        record = ModuleRecord(name, key, source, from_hook)
        with self._lock:
            previous = self._by_filename.get(key)
            self._by_filename[key] = record
            if filename != key:
                self._by_filename[filename] = record
            self._by_module[name] = record
            if previous is not None and previous.digest != record.digest:
                self.generation += 1
        return record

    def by_module(self, name: str) -> Optional[ModuleRecord]:
        """The record of a module name (``"__main__"`` included), or None."""
        record = self._by_module.get(name)
        if record is not None:
            return record
        module = sys.modules.get(name)
        filename = getattr(module, "__file__", None)
        if filename and filename.endswith(".py"):
            return self.by_filename(filename)
        return None

    def by_filename(self, filename: str) -> Optional[ModuleRecord]:
        """The record of a file; recovered from linecache or the disk if not recorded."""
        record = self._by_filename.get(filename)
        if record is not None:
            return record
        if _is_notebook_cell(filename):
            lines = linecache.cache.get(filename)
            if not lines:
                return None
            return self.record("__main__", filename, "".join(lines[2]), from_hook=False)
        key = _norm(filename)
        record = self._by_filename.get(key)
        if record is not None:
            return record
        try:
            with tokenize.open(key) as handle:
                source = handle.read()
        except (OSError, SyntaxError, UnicodeDecodeError):
            return None
        return self.record(_module_name_of(key), key, source, from_hook=False)

    # -- what counts as the project -----------------------------------------------------
    def add_project_path(self, path: str) -> None:
        """Count the directory of ``path`` (a file) as part of the project."""
        directory = _norm(os.path.dirname(path) if os.path.splitext(path)[1] else path)
        with self._lock:
            if directory not in self._added_roots:
                self._added_roots.append(directory)
                self._roots = None
                self._project_memo.clear()

    def project_roots(self) -> List[str]:
        """The directories whose modules are the user's project."""
        from ..config import defaults

        configured = defaults["analysis.project_roots"]
        if configured is not None:
            return [_norm(os.fspath(p)) for p in configured]
        if self._roots is None:
            roots = list(self._added_roots)
            main = sys.argv[0] if sys.argv else ""
            if main and main not in ("-c", "-m") and os.path.exists(main):
                roots.append(_norm(os.path.dirname(os.path.abspath(main))))
            roots.append(_norm(os.getcwd()))
            self._roots = roots
        return self._roots

    def is_project_path(self, path: str) -> bool:
        """Is the file ``path`` part of the user's project (and so to be tracked)?"""
        memo = self._project_memo.get(path)
        if memo is not None:
            return memo
        if _is_notebook_cell(path):
            result = True
        else:
            real = _norm(path)
            result = any(_under(real, root) for root in self.project_roots()) \
                and not _under(real, _OWN_PACKAGE) \
                and not any(_under(real, env) for env in self._environment_dirs()) \
                and not _in_virtualenv(os.path.dirname(real))
        self._project_memo[path] = result
        return result

    def is_project_module(self, name: str) -> bool:
        """Is the module ``name`` (imported or recorded) part of the user's project?"""
        record = self._by_module.get(name)
        if record is not None:
            return self.is_project_path(record.filename)
        filename = getattr(sys.modules.get(name), "__file__", None)
        return bool(filename) and self.is_project_path(filename)

    def _environment_dirs(self) -> List[str]:
        if self._env_dirs is None:
            dirs = set()
            for scheme_key in ("stdlib", "platstdlib", "purelib", "platlib"):
                value = sysconfig.get_paths().get(scheme_key)
                if value:
                    dirs.add(_norm(value))
            for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix}:
                dirs.add(_norm(os.path.join(prefix, "lib")))
            for entry in sys.path:
                if entry and ("site-packages" in entry or "dist-packages" in entry):
                    dirs.add(_norm(entry))
            self._env_dirs = sorted(dirs)
        return self._env_dirs

    def forget_roots(self) -> None:
        """Recompute the project roots on next use (after ``chdir``, in tests)."""
        with self._lock:
            self._roots = None
            self._project_memo.clear()

    def records(self) -> Iterable[ModuleRecord]:
        """All records (a snapshot)."""
        return list(self._by_filename.values())


# checkpointing itself is never the user's project, even installed in editable mode.
_OWN_PACKAGE = _norm(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


_VENV_MEMO: Dict[str, bool] = {}


def _in_virtualenv(directory: str) -> bool:
    """Does ``directory`` sit inside a virtual environment (``pyvenv.cfg`` above it)?"""
    found = _VENV_MEMO.get(directory)
    if found is not None:
        return found
    parent = os.path.dirname(directory)
    if os.path.isfile(os.path.join(directory, "pyvenv.cfg")):
        found = True
    elif parent == directory:
        found = False
    else:
        found = _in_virtualenv(parent)
    _VENV_MEMO[directory] = found
    return found


def _module_name_of(filename: str) -> str:
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and _norm(file) == filename:
            return name
    return os.path.splitext(os.path.basename(filename))[0]


INDEX = SourceIndex()
"""The process-wide source index."""
