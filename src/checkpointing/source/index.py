"""The source index: the text of the user's modules exactly as they were loaded.

A cache key must describe the code that is *running*, not whatever is on disk now: a
file edited while a long program runs must not change the keys of that program. The
import hook (:mod:`checkpointing.source.hook`) records each project module's text at
the moment it is compiled; modules loaded before the hook existed (the main script,
say) are read once, the first time they are asked for, and marked
``from_hook=False`` so that callers know the text is a late read.

This module also decides what counts as "project code". By default: every real file
that is not in the standard library, site-packages / dist-packages, a virtual
environment or a ``sys.path`` folder holding installed distributions (``*.dist-info``),
so the user's own packages installed in editable mode (``pip install -e``, src layouts,
folders added by ``.pth`` files or ``PYTHONPATH``) count; plus IPython / Jupyter cells
and the files of decorated functions. With ``defaults["analysis.project_roots"]`` set,
only files under those roots (minus the same exclusions) count.
"""

from __future__ import annotations

import _thread  # threading's locks, without threading (issue 12, target 5)
import os
import sys
import sysconfig  # here, not in a method the import hook calls (it would recurse)

import xxhash

from ..config import defaults

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ast
    from typing import Any, Dict, List, Optional, Set, Tuple


__all__ = ["INDEX", "ModuleRecord", "SourceIndex"]

_PARSE_LOCK = _thread.allocate_lock()


class ModuleRecord:
    """The recorded source of one module (or notebook cell).

    ``source`` is the text as it was compiled; ``digest`` is the 16-byte xxh3-128 of
    its UTF-8 encoding. ``tree`` and ``lines`` are computed on first use and kept.
    ``from_hook`` is False when the text was recovered after the fact (from the disk
    or from :mod:`linecache`) rather than recorded by the import hook.
    """

    __slots__ = ("name", "filename", "source", "from_hook", "digest", "_tree", "_lines")

    def __init__(self, name: str, filename: str, source: str, from_hook: bool = True) -> None:
        self.name = name
        self.filename = filename
        self.source = source
        self.from_hook = from_hook
        self.digest = xxhash.xxh3_128_digest(source.encode("utf-8", "surrogatepass"))
        self._tree: Optional[ast.Module] = None
        self._lines: Optional[List[str]] = None

    def __repr__(self) -> str:
        return (
            f"ModuleRecord(name={self.name!r}, filename={self.filename!r}, "
            f"from_hook={self.from_hook!r})"
        )

    @property
    def tree(self) -> ast.Module:
        """The parsed module (parsed once, on first use)."""
        tree = self._tree
        if tree is None:
            with _PARSE_LOCK:
                tree = self._tree
                if tree is None:
                    import ast

                    tree = self._tree = ast.parse(self.source, self.filename)
        return tree

    @property
    def lines(self) -> List[str]:
        """The source split into lines, line ends kept (``lines[0]`` is line 1)."""
        lines = self._lines
        if lines is None:
            lines = self._lines = self.source.splitlines(keepends=True)
        return lines


def _norm(path: str) -> str:
    """The real path of ``path`` (symbolic links resolved), normalised for its case.

    The real path of a file's folder is kept: ``os.path.realpath`` checks each part of
    a path with a system call of its own, and a new process's first hit met each of
    Markdown's 21 files once (0.2 ms). A folder made a link while the process runs is
    not seen, as other answers about paths are kept (``is_project_path``)."""
    head, tail = os.path.split(path)
    if head and tail not in ("", ".", "..") and os.path.isabs(head):
        real_head = _REAL_FOLDERS.get(head)
        if real_head is None:
            if len(_REAL_FOLDERS) > 10_000:
                _REAL_FOLDERS.clear()
            real_head = _REAL_FOLDERS[head] = os.path.realpath(head)
        candidate = os.path.join(real_head, tail)
        if not os.path.islink(candidate):
            return os.path.normcase(candidate)
    return os.path.normcase(os.path.realpath(path))


_REAL_FOLDERS: Dict[str, str] = {}


def _is_notebook_cell(filename: str) -> bool:
    """Is ``filename`` the pseudo-file of an IPython / Jupyter cell (or similar)?"""
    if filename.startswith("<ipython-input-") or "ipykernel_" in filename:
        return True
    # getattr: linecache may be half-imported (the hook sees the modules it imports).
    cache = getattr(sys.modules.get("linecache"), "cache", None)
    entry = cache.get(filename) if cache is not None else None
    if entry is None or len(entry) < 3:  # absent, or a lazy entry of a real module
        return False
    return entry[1] is None or not os.path.isfile(filename)


# checkpointing itself is never the user's project, even installed in editable mode
# inside a project directory.
_OWN_PACKAGE = os.path.normcase(
    os.path.realpath(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


_PACKAGE_DIR_MARKERS = tuple(os.sep + name + os.sep for name in ("site-packages", "dist-packages"))


def display_path(path: str) -> str:
    """``path`` relative to the current directory when it lies below it (messages)."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive
        return path
    return path if relative.startswith(os.pardir) else relative


class SourceIndex:
    """Recorded module sources, by module name and by (real) file name.

    Mutations take a lock; lookups are plain dict reads. ``generation`` grows each
    time a file already recorded is recorded again (a reload), so that caches built
    on records can tell they went stale.
    """

    def __init__(self) -> None:
        self._lock = _thread.RLock()
        self._by_filename: Dict[str, ModuleRecord] = {}
        self._by_module: Dict[str, ModuleRecord] = {}
        self._added_roots: List[str] = []
        self._added_files: Set[str] = set()
        self._added_seen: Set[str] = set()
        self._roots: Optional[Tuple[str, ...]] = None
        self._configured: Any = None
        self._project_memo: Dict[str, bool] = {}
        self._env_dirs: Optional[Tuple[str, ...]] = None
        self._env_busy = False
        self._venv_memo: Dict[str, bool] = {}
        self._install_memo: Optional[Tuple[Tuple[str, ...], Tuple[str, ...]]] = None
        self.generation = 0
        # Grows only when a file is recorded again: a plan whose code guards hold is
        # still valid after a bump of ``generation`` alone.
        self.records_generation = 0

    # -- recording ---------------------------------------------------------------------
    def record(self, name: str, filename: str, source: str, from_hook: bool = True) -> ModuleRecord:
        """Remember ``source`` as the text of module ``name`` loaded from ``filename``.

        A file recorded again (``importlib.reload``) replaces its record and bumps
        :attr:`generation`, unless the first record was read from the disk before the
        module's import and the import brings the same text. Notebook cells are kept
        under their pseudo-file name and do not claim the module name (all cells share
        ``__main__``).
        """
        cell = _is_notebook_cell(filename)
        key = filename if cell else _norm(filename)
        record = ModuleRecord(name, key, source, from_hook)
        with self._lock:
            previous = self._by_filename.get(key)
            self._by_filename[key] = record
            if filename != key:
                self._by_filename[filename] = record
            if not cell:
                self._by_module[name] = record
                if (
                    previous is not None
                    and previous.name != name
                    and self._by_module.get(previous.name) is previous
                ):
                    self._by_module[previous.name] = record
            if previous is not None and (previous.from_hook or previous.source != source):
                # Not a file read from the disk before its import and now imported with
                # that very text: nothing built on the first record went stale (a hit
                # checking a plugin before the program imports it made every plan be
                # built again at that import, 180 ms for Markdown).
                self.generation += 1
                self.records_generation += 1
        return record

    def code_swapped(self) -> None:
        """A function's ``__code__`` was assigned (see :mod:`checkpointing.source.hook`):
        bump :attr:`generation` (not :attr:`records_generation`), so that plans check
        the code objects they guard."""
        with self._lock:
            self.generation += 1

    def _record_late(self, name: str, filename: str, source: str) -> ModuleRecord:
        """Record a late read unless another thread recorded the file meanwhile."""
        with self._lock:
            key = filename if _is_notebook_cell(filename) else _norm(filename)
            existing = self._by_filename.get(key)
            if existing is not None:
                return existing
            return self.record(name, filename, source, from_hook=False)

    def by_module(self, name: str) -> Optional[ModuleRecord]:
        """The record of module ``name`` (``"__main__"`` included), or None.

        A module imported before the hook is recovered from its file (see
        :meth:`by_filename`).
        """
        record = self._by_module.get(name)
        if record is not None:
            return record
        filename = getattr(sys.modules.get(name), "__file__", None)
        if isinstance(filename, str) and filename:
            return self.by_filename(filename, _name=name)
        return None

    def by_filename(self, filename: str, _name: Optional[str] = None) -> Optional[ModuleRecord]:
        """The record of a file; recovered from linecache or the disk if not recorded.

        IPython / Jupyter cells are read from :data:`linecache.cache`; a real Python
        file is read from the disk (honouring its encoding) and recorded with
        ``from_hook=False``. Returns None when there is no text to be had.
        """
        record = self._by_filename.get(filename)
        if record is not None:
            return record
        if not filename:
            return None
        if _is_notebook_cell(filename):
            import linecache

            entry = linecache.cache.get(filename)
            if entry is None or len(entry) < 3:
                return None
            return self._record_late("__main__", filename, "".join(entry[2]))
        key = _norm(filename)
        record = self._by_filename.get(key)
        if record is not None:
            return record
        if not _looks_like_python(key):
            return None
        try:
            import tokenize

            with tokenize.open(key) as handle:
                source = handle.read()
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            return None
        return self._record_late(_name or _module_name_of(filename, key), key, source)

    def refresh(self, filename: str) -> bool:
        """Record the file's text again if it differs on disk from the record.

        For code swapped in place without a reload (IPython's autoreload patches the
        ``__code__`` of live functions from the edited file): the code running is then
        the file's current text, not the text recorded at import. True if re-recorded.
        """
        record = self.by_filename(filename)
        if record is None or _is_notebook_cell(filename):
            return False
        try:
            import tokenize

            with tokenize.open(record.filename) as handle:
                source = handle.read()
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            return False
        if source == record.source:
            return False
        self.record(record.name, record.filename, source, from_hook=False)
        return True

    # -- what counts as the project ------------------------------------------------------
    def add_project_path(self, path: str) -> None:
        """Count the directory of the file ``path`` (or the directory ``path``) as project.

        The file itself always counts as project code, even where it would otherwise
        be excluded (an installed package).
        """
        if path in self._added_seen:
            return
        real = _norm(path)
        directory = real if os.path.isdir(real) else os.path.dirname(real)
        with self._lock:
            self._added_seen.add(path)
            changed = False
            if directory != real and real not in self._added_files:
                self._added_files.add(real)
                changed = True
            if directory not in self._added_roots:
                self._added_roots.append(directory)
                changed = True
            if changed:
                self._roots = None
                self._project_memo.clear()

    def project_roots(self) -> Tuple[str, ...]:
        """The directories whose modules are the user's project (real paths)."""
        configured = defaults["analysis.project_roots"]
        roots = self._roots
        if roots is not None and configured is self._configured:
            return roots
        with self._lock:
            if configured is not None:
                roots = tuple(_norm(os.fspath(p)) for p in configured)
            else:
                found = list(self._added_roots)
                main = sys.argv[0] if sys.argv else ""
                if main in ("", "-c", "-m") or not os.path.exists(main):
                    found.append(_norm(os.getcwd()))
                else:
                    found.append(os.path.dirname(_norm(main)))
                cwd = _norm(os.getcwd())
                if cwd not in found:
                    found.append(cwd)
                roots = tuple(found)
            if roots != self._roots:
                self._project_memo.clear()
            self._roots = roots
            self._configured = configured
        return roots

    def is_project_path(self, path: str) -> bool:
        """Is the file ``path`` part of the user's project (and so to be tracked)?

        True for files under a project root that are not in site-packages,
        dist-packages, the standard library or a virtual environment; for notebook
        cells; and for files of decorated functions.
        """
        roots = self.project_roots()  # first: a change of roots clears the memo
        memo = self._project_memo.get(path)
        if memo is not None:
            return memo
        if not path:
            result = False
        elif _is_notebook_cell(path):
            result = True
        else:
            real = _norm(path)
            if real in self._added_files:
                result = True
            else:
                # With the default roots, a real file anywhere else is the user's too (an
                # editable install, a src layout, a folder on sys.path or in a .pth file):
                # only what is installed is external.
                anywhere = self._configured is None and os.path.isabs(path)
                result = (
                    (anywhere or any(_under(real, root) for root in roots))
                    and not _under(real, _OWN_PACKAGE)
                    and not any(marker in real for marker in _PACKAGE_DIR_MARKERS)
                    and not any(_under(real, env) for env in self._environment_dirs())
                    and not any(_under(real, env) for env in self._install_dirs())
                    and not self._in_virtualenv(os.path.dirname(real))
                )
        self._project_memo[path] = result
        return result

    def is_project_module(self, name: str) -> bool:
        """Is the module ``name`` (imported or recorded) part of the user's project?"""
        filename = getattr(sys.modules.get(name), "__file__", None)
        if not isinstance(filename, str) or not filename:
            record = self._by_module.get(name)
            filename = record.filename if record is not None else None
        return bool(filename) and self.is_project_path(filename)

    def records(self) -> List[ModuleRecord]:
        """All records (a snapshot, without duplicates)."""
        seen: Dict[int, ModuleRecord] = {}
        for record in list(self._by_filename.values()):
            seen.setdefault(id(record), record)
        return list(seen.values())

    def forget_roots(self) -> None:
        """Recompute the default project roots on next use (after ``os.chdir``)."""
        with self._lock:
            self._roots = None
            self._project_memo.clear()

    # -- helpers -------------------------------------------------------------------------
    def _environment_dirs(self) -> Tuple[str, ...]:
        dirs = self._env_dirs
        if dirs is None:
            found = set()
            version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
            for prefix in {
                sys.prefix,
                sys.base_prefix,
                sys.exec_prefix,
                getattr(sys, "base_exec_prefix", sys.exec_prefix),
            }:
                for lib in ("lib", "lib64"):
                    found.add(_norm(os.path.join(prefix, lib, version)))
                if os.name == "nt":
                    found.add(_norm(os.path.join(prefix, "Lib")))
            if self._env_busy:
                # sysconfig imports its data module through the import hook, which asks
                # here again: answer with the prefixes (they hold that module).
                return tuple(sorted(found))
            self._env_busy = True
            try:
                paths = sysconfig.get_paths()
            finally:
                self._env_busy = False
            for key in ("stdlib", "platstdlib", "purelib", "platlib"):
                if paths.get(key):
                    found.add(_norm(paths[key]))
            dirs = self._env_dirs = tuple(sorted(found))
        return dirs

    def _install_dirs(self) -> Tuple[str, ...]:
        """Folders on ``sys.path`` that hold installed distributions although they are
        not called site-packages (``pip install --target``): a ``*.dist-info`` beside
        the packages. Recomputed when ``sys.path`` changes."""
        key = tuple(sys.path)
        cached = self._install_memo
        if cached is not None and cached[0] == key:
            return cached[1]
        found = []
        for entry in key:
            if not entry or not os.path.isdir(entry):
                continue
            try:
                names = os.listdir(entry)
            except OSError:
                continue
            if any(name.endswith(".dist-info") for name in names):
                found.append(_norm(entry))
        dirs = tuple(found)
        if cached is not None and cached[1] != dirs:
            self._project_memo.clear()
        self._install_memo = (key, dirs)
        return dirs

    def _in_virtualenv(self, directory: str) -> bool:
        """Is ``directory`` inside a virtual environment (``pyvenv.cfg`` above it)?"""
        chain: List[str] = []
        found = False
        while True:
            memo = self._venv_memo.get(directory)
            if memo is not None:
                found = memo
                break
            chain.append(directory)
            if os.path.isfile(os.path.join(directory, "pyvenv.cfg")):
                found = True
                break
            parent = os.path.dirname(directory)
            if parent == directory:
                break
            directory = parent
        for visited in chain:  # all below the answer's directory: same answer
            self._venv_memo[visited] = found
        return found


def _looks_like_python(path: str) -> bool:
    if path.endswith((".py", ".pyw")):
        return True
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    return bool(main) and _norm(main) == path


def _module_name_of(filename: str, key: str) -> str:
    """The name under which the module of ``filename`` was imported, if any."""
    candidates = []
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if not isinstance(file, str):
            continue
        if file == filename:
            return name
        if os.path.basename(file) == os.path.basename(key):
            candidates.append((name, file))
    for name, file in candidates:
        if _norm(file) == key:
            return name
    return os.path.splitext(os.path.basename(key))[0]


INDEX = SourceIndex()
"""The process-wide source index."""
