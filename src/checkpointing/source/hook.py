"""The import hook: records the source of project modules exactly as they are compiled.

:class:`RecordingFinder` sits first in :data:`sys.meta_path`, asks the finders after
it for a module's spec and, when the module is a ``.py`` file of the user's project
loaded by a plain :class:`~importlib.machinery.SourceFileLoader`, wraps the loader in
a :class:`RecordingLoader`. That loader reads the file's bytes once, decodes them,
records the text in :data:`~checkpointing.source.index.INDEX` and compiles *that*
text, so what is recorded is what runs even if the file changes in between. Other
modules (the standard library, installed packages, pytest's rewritten tests) pass
through untouched, at the cost of a memoised path check.
"""

from __future__ import annotations

import _thread  # threading's locks, without threading (issue 12, target 5)
import os
import sys
import types

try:  # the loaded importlib itself: the importlib package imports warnings (issue 12)
    from _frozen_importlib_external import SourceFileLoader as _SourceFileLoader
    from _frozen_importlib_external import decode_source
except ImportError:  # an interpreter without frozen importlib
    # importlib.util.decode_source itself: importlib.util imports typing on 3.9
    from importlib._bootstrap_external import decode_source  # type: ignore[no-redef]
    from importlib.machinery import SourceFileLoader as _SourceFileLoader

from .index import INDEX

TYPE_CHECKING = False
if TYPE_CHECKING:
    import importlib.machinery
    from typing import Any, Optional, Sequence

__all__ = [
    "ImportHookHandle",
    "RecordingFinder",
    "RecordingLoader",
    "install_import_hook",
    "should_record",
]


def should_record(filename: str) -> bool:
    """Is ``filename`` a module of the user's project, whose source is to be recorded?"""
    return INDEX.is_project_path(filename)


class RecordingLoader:
    """A proxy for a :class:`SourceFileLoader` that records the text it compiles.

    Everything but compiling is delegated to the wrapped loader.
    """

    def __init__(self, loader: importlib.machinery.SourceFileLoader) -> None:
        self._loader = loader

    def __getattr__(self, name: str) -> Any:
        if name == "_loader":  # a copy being unpickled (dill copies modules' __loader__)
            raise AttributeError(name)
        return getattr(self._loader, name)

    def __repr__(self) -> str:
        return f"<RecordingLoader of {self._loader!r}>"

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Optional[types.ModuleType]:
        return self._loader.create_module(spec)

    def get_code(self, fullname: str) -> types.CodeType:
        """Read, record and compile the module's source (never a stale ``.pyc``)."""
        path = self._loader.get_filename(fullname)
        source = decode_source(self._loader.get_data(path))
        INDEX.record(fullname, path, source, from_hook=True)
        return compile(source, path, "exec", dont_inherit=True)

    def exec_module(self, module: types.ModuleType) -> None:
        spec = getattr(module, "__spec__", None)
        name = spec.name if spec is not None else module.__name__
        exec(self.get_code(name), module.__dict__)

    def get_source(self, fullname: str) -> Optional[str]:
        return self._loader.get_source(fullname)

    def get_filename(self, fullname: Optional[str] = None) -> str:
        return self._loader.get_filename(fullname)

    def is_package(self, fullname: str) -> bool:
        return self._loader.is_package(fullname)

    def get_data(self, path: str) -> bytes:
        return self._loader.get_data(path)

    def get_resource_reader(self, fullname: str) -> Any:
        return self._loader.get_resource_reader(fullname)

    def path_stats(self, path: str) -> Any:
        return self._loader.path_stats(path)

    def source_to_code(self, data: Any, path: str = "<string>") -> types.CodeType:
        return self._loader.source_to_code(data, path)


_REGISTERED_WITH_ABCS = False


def _register_with_abcs() -> None:
    """Let ``isinstance(loader, importlib.abc.SourceLoader)`` (and FileLoader) hold.

    Done only once ``importlib.abc`` is imported by someone: importing it ourselves
    would add ~20 ms to ``import checkpointing`` (it pulls in importlib.resources).
    """
    global _REGISTERED_WITH_ABCS
    abc_module = sys.modules.get("importlib.abc")
    if _REGISTERED_WITH_ABCS or abc_module is None:
        return
    abc_module.SourceLoader.register(RecordingLoader)
    abc_module.FileLoader.register(RecordingLoader)
    _REGISTERED_WITH_ABCS = True


class RecordingFinder:
    """Finds nothing itself: asks the finders after it, then wraps project loaders."""

    def __init__(self) -> None:
        self._busy = _thread._local()

    def find_spec(
        self,
        fullname: str,
        path: Optional[Sequence[str]] = None,
        target: Optional[types.ModuleType] = None,
    ) -> Optional[importlib.machinery.ModuleSpec]:
        """The spec the other finders give, its loader wrapped for project modules."""
        busy = self._busy
        if getattr(busy, "active", False):
            return None  # an import made by a finder: let the others handle it
        busy.active = True
        try:
            spec = self._find_with_others(fullname, path, target)
        finally:
            busy.active = False
        if spec is None:
            return None
        loader = spec.loader
        if type(loader) is not _SourceFileLoader:
            return spec
        origin = spec.origin
        if not origin or not origin.endswith(".py") or not should_record(origin):
            return spec
        _register_with_abcs()
        spec.loader = RecordingLoader(loader)
        return spec

    def _find_with_others(
        self, fullname: str, path: Any, target: Any
    ) -> Optional[importlib.machinery.ModuleSpec]:
        meta_path = sys.meta_path
        try:
            start = meta_path.index(self) + 1
        except ValueError:
            return None
        for finder in meta_path[start:]:
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                return spec
        return None

    def invalidate_caches(self) -> None:
        """Nothing is cached here (the other finders are invalidated by importlib)."""


class ImportHookHandle:
    """The installed hook; ``uninstall()`` (or leaving a ``with`` block) removes it."""

    def __init__(self, finder: RecordingFinder) -> None:
        self.finder = finder

    @property
    def installed(self) -> bool:
        """Is the finder in :data:`sys.meta_path`?"""
        return any(f is self.finder for f in sys.meta_path)

    def uninstall(self) -> None:
        """Remove the hook (idempotent). Modules already recorded stay recorded."""
        global _HANDLE
        with _LOCK:
            sys.meta_path[:] = [f for f in sys.meta_path if f is not self.finder]
            if _HANDLE is self:
                _HANDLE = None

    def __enter__(self) -> "ImportHookHandle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.uninstall()


_HANDLE: Optional[ImportHookHandle] = None
_LOCK = _thread.RLock()
_WATCHING_CODE = False


def _watch_code(event: str, args: Any) -> None:
    """An audit hook: ``f.__code__ = ...`` (IPython's autoreload, patches) makes every
    key plan check, at its next use, whether a function it reaches now runs other code
    (free for the plans: they already compare :attr:`SourceIndex.generation`)."""
    if event == "object.__setattr__" and args[1] == "__code__":
        INDEX.code_swapped()


def install_import_hook() -> ImportHookHandle:
    """Record the source of project modules imported from now on (idempotent).

    A second call returns the same handle. The main script was compiled before any
    hook could run: it is read now, as early as possible (``from_hook=False``).
    """
    global _HANDLE, _WATCHING_CODE
    with _LOCK:
        if _HANDLE is None or not _HANDLE.installed:
            finder = RecordingFinder()
            sys.meta_path.insert(0, finder)
            _HANDLE = ImportHookHandle(finder)
        handle = _HANDLE
        if not _WATCHING_CODE:
            sys.addaudithook(_watch_code)  # cannot be removed; costs one test per event
            _WATCHING_CODE = True
    main = sys.modules.get("__main__")
    filename = getattr(main, "__file__", None)
    if isinstance(filename, str) and filename:
        INDEX.by_filename(filename, _name="__main__")
    record_loaded_modules()
    return handle


def record_loaded_modules() -> int:
    """Read, once, the source of project modules imported before the hook was installed.

    They were compiled before we could see them; reading them now is as close to the
    code running as we can get. Returns how many were read.
    """
    # Most loaded modules live under the interpreter's prefixes: skip them cheaply,
    # without resolving their paths.
    prefixes = tuple(
        {
            os.path.join(p, lib) + os.sep
            for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)
            if p
            for lib in ("lib", "lib64", "Lib")
        }
    )
    # ... and so do this package's own modules, never the project's (is_project_path
    # resolves each path to say so): about 25 realpath calls at import.
    prefixes += (os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,)
    count = 0
    for name, module in list(sys.modules.items()):
        filename = getattr(module, "__file__", None)
        if (
            not isinstance(filename, str)
            or not filename.endswith(".py")
            or filename.startswith(prefixes)
            or name == "__main__"
        ):
            continue
        if INDEX.is_project_path(filename) and INDEX.by_filename(filename, _name=name):
            count += 1
    return count
