"""The import hook: records the source of project modules exactly as they are compiled.

A meta-path finder that asks the other finders for a module's spec and, when the
module is a ``.py`` file of the user's project, wraps its loader so that the text it
compiles is the text recorded in :data:`INDEX` (read once: what is recorded is what
runs, even if the file changes in between). Other modules (the standard library,
installed packages) pass through untouched.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
from typing import Any, Optional, Sequence

from .index import INDEX

__all__ = ["ImportHookHandle", "RecordingFinder", "install_import_hook", "should_record"]


def should_record(filename: str) -> bool:
    """Is ``filename`` a module of the user's project, to be recorded?"""
    return INDEX.is_project_path(filename)


class RecordingLoader(importlib.abc.Loader):
    """Wraps a :class:`SourceFileLoader`; compiles the text it records."""

    def __init__(self, loader: importlib.machinery.SourceFileLoader) -> None:
        self._loader = loader

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def get_code(self, fullname: str) -> Any:
        path = self._loader.get_filename(fullname)
        source = importlib.util.decode_source(self._loader.get_data(path))
        INDEX.record(fullname, path, source)
        return compile(source, path, "exec", dont_inherit=True)

    def exec_module(self, module: Any) -> None:
        code = self.get_code(module.__spec__.name if module.__spec__ else module.__name__)
        exec(code, module.__dict__)

    def get_source(self, fullname: str) -> Any:
        return self._loader.get_source(fullname)

    def get_filename(self, fullname: str) -> str:
        return self._loader.get_filename(fullname)

    def is_package(self, fullname: str) -> bool:
        return self._loader.is_package(fullname)

    def get_data(self, path: str) -> bytes:
        return self._loader.get_data(path)

    def get_resource_reader(self, fullname: str) -> Any:
        return self._loader.get_resource_reader(fullname)


class RecordingFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: asks the finders after it, then wraps project loaders."""

    def __init__(self) -> None:
        self._busy = threading.local()

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Any = None) -> Any:
        if getattr(self._busy, "active", False):
            return None
        self._busy.active = True
        try:
            spec = self._find_with_others(fullname, path, target)
        finally:
            self._busy.active = False
        if spec is None:
            return None
        loader = spec.loader
        origin = spec.origin
        if type(loader) is not importlib.machinery.SourceFileLoader or not origin \
                or not origin.endswith(".py") or not should_record(origin):
            return spec
        spec.loader = RecordingLoader(loader)
        return spec

    def _find_with_others(self, fullname: str, path: Any, target: Any) -> Any:
        found_self = False
        for finder in list(sys.meta_path):
            if finder is self:
                found_self = True
                continue
            if not found_self:
                continue
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                return spec
        return None

    def invalidate_caches(self) -> None:
        pass


class ImportHookHandle:
    """The installed hook; ``uninstall()`` (or leaving a ``with`` block) removes it."""

    def __init__(self, finder: RecordingFinder) -> None:
        self.finder = finder

    @property
    def installed(self) -> bool:
        return self.finder in sys.meta_path

    def uninstall(self) -> None:
        """Remove the hook (idempotent)."""
        global _HANDLE
        while self.finder in sys.meta_path:
            sys.meta_path.remove(self.finder)
        if _HANDLE is self:
            _HANDLE = None

    def __enter__(self) -> "ImportHookHandle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.uninstall()


_HANDLE: Optional[ImportHookHandle] = None
_LOCK = threading.Lock()


def install_import_hook() -> ImportHookHandle:
    """Record the source of project modules imported from now on (idempotent).

    The main script was compiled before any hook could run: it is read now, as
    early as possible.
    """
    global _HANDLE
    with _LOCK:
        if _HANDLE is not None and _HANDLE.installed:
            return _HANDLE
        finder = RecordingFinder()
        sys.meta_path.insert(0, finder)
        _HANDLE = ImportHookHandle(finder)
    main = sys.modules.get("__main__")
    filename = getattr(main, "__file__", None)
    if filename and filename.endswith(".py"):
        INDEX.by_filename(filename)
    return _HANDLE
