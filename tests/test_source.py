"""The source index and the import hook: what is recorded is the code that runs."""

from __future__ import annotations

import importlib
import importlib.resources
import inspect
import linecache
import os
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path
from typing import Iterator, List

import pytest

from checkpointing.source import (
    INDEX,
    ImportHookHandle,
    ModuleRecord,
    SourceIndex,
    install_import_hook,
    should_record,
)
from checkpointing.source.hook import RecordingFinder, RecordingLoader


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(textwrap.dedent(text).lstrip("\n").encode(encoding))
    importlib.invalidate_caches()
    return path


class Tree:
    """A directory on sys.path; modules imported from it are removed afterwards."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.prefix = "m" + uuid.uuid4().hex[:10]

    def name(self, suffix: str) -> str:
        return f"{self.prefix}_{suffix}"

    def write(self, relpath: str, text: str, encoding: str = "utf-8") -> Path:
        return _write(self.root / relpath, text, encoding)


def _cleanup(tree: Tree) -> None:
    for name in [n for n in sys.modules if n.startswith(tree.prefix)]:
        del sys.modules[name]
    while str(tree.root) in sys.path:
        sys.path.remove(str(tree.root))


@pytest.fixture
def hook() -> Iterator[ImportHookHandle]:
    handle = install_import_hook()
    yield handle
    install_import_hook()  # tests that uninstall leave it as they found it


@pytest.fixture
def proj(tmp_path: Path, hook: ImportHookHandle) -> Iterator[Tree]:
    root = tmp_path / "proj"
    root.mkdir()
    tree = Tree(root)
    sys.path.insert(0, str(root))
    INDEX.add_project_path(str(root))
    yield tree
    _cleanup(tree)


@pytest.fixture
def outside(tmp_path: Path, hook: ImportHookHandle) -> Iterator[Tree]:
    # Installed code: a sys.path folder with distributions in it (``pip install
    # --target``). A plain folder on sys.path would be the user's own code.
    root = tmp_path / "outside"
    (root / "thirdparty-1.0.dist-info").mkdir(parents=True)
    tree = Tree(root)
    sys.path.insert(0, str(root))
    yield tree
    _cleanup(tree)


# -- recording through the hook ------------------------------------------------------


def test_import_records_exact_source(proj: Tree) -> None:
    name = proj.name("mod")
    text = "# a comment\nX = 1\n\ndef f(a):\n    return a + X\n"
    path = proj.write(f"{name}.py", text)
    module = importlib.import_module(name)
    assert module.f(1) == 2
    record = INDEX.by_module(name)
    assert isinstance(record, ModuleRecord)
    assert record.source == text and record.from_hook
    assert record.filename == os.path.realpath(path)
    assert INDEX.by_filename(str(path)) is record
    assert len(record.digest) == 16
    assert record.lines[3] == "def f(a):\n"
    assert record.tree is record.tree and record.tree.body[1].name == "f"
    assert isinstance(module.__spec__.loader, RecordingLoader)
    assert INDEX.is_project_module(name)
    # the usual tools still find the source
    assert inspect.getsource(module.f).startswith("def f(a):")


def test_edit_after_import_does_not_change_record(proj: Tree) -> None:
    name = proj.name("mod")
    path = proj.write(f"{name}.py", "VALUE = 'old'\n")
    importlib.import_module(name)
    _write(path, "VALUE = 'new'\n")
    record = INDEX.by_module(name)
    assert record.source == "VALUE = 'old'\n"
    assert INDEX.by_filename(str(path)).source == "VALUE = 'old'\n"


def test_reload_rerecords_and_bumps_generation(proj: Tree) -> None:
    name = proj.name("mod")
    path = proj.write(f"{name}.py", "VALUE = 'old'\n")
    module = importlib.import_module(name)
    before = INDEX.generation
    old = INDEX.by_module(name)
    _write(path, "VALUE = 'new'  # edited\n")
    os.utime(path, (path.stat().st_mtime + 5,) * 2)
    module = importlib.reload(module)
    assert module.VALUE == "new"
    record = INDEX.by_module(name)
    assert record is not old and record.from_hook
    assert record.source == "VALUE = 'new'  # edited\n"
    assert INDEX.by_filename(str(path)) is record
    assert INDEX.generation > before


def test_recorded_text_is_the_compiled_text(proj: Tree) -> None:
    name = proj.name("enc")
    text = "# -*- coding: latin-1 -*-\nWORD = 'caf\xe9'\r\nOTHER = 2\r\n"
    proj.write(f"{name}.py", text, encoding="latin-1")
    module = importlib.import_module(name)
    assert module.WORD == "caf\xe9"
    record = INDEX.by_module(name)
    assert record.source == text.replace("\r\n", "\n")  # universal newlines, as compiled
    assert "caf\xe9" in record.source


def test_module_outside_project_is_not_recorded(outside: Tree) -> None:
    name = outside.name("third")
    path = outside.write(f"{name}.py", "Y = 3\n")
    module = importlib.import_module(name)
    assert module.Y == 3
    assert not should_record(str(path))
    assert not isinstance(module.__spec__.loader, RecordingLoader)
    assert INDEX._by_module.get(name) is None
    assert not INDEX.is_project_module(name)


def test_package_with_submodules_and_relative_imports(proj: Tree) -> None:
    pkg = proj.name("pkg")
    proj.write(f"{pkg}/__init__.py", "from .a import A\nfrom . import sub\n")
    proj.write(f"{pkg}/a.py", "from .sub.b import B\nA = B + 1\n")
    proj.write(f"{pkg}/sub/__init__.py", "")
    proj.write(f"{pkg}/sub/b.py", "from .. import sub as _s\nB = 41\n")
    proj.write(f"{pkg}/data.txt", "payload")
    module = importlib.import_module(pkg)
    assert module.A == 42
    for name in (pkg, f"{pkg}.a", f"{pkg}.sub", f"{pkg}.sub.b"):
        record = INDEX.by_module(name)
        assert record is not None and record.from_hook, name
        assert record.source == Path(sys.modules[name].__file__).read_text()
    assert module.__path__ == [str(proj.root / pkg)]
    assert module.__spec__.submodule_search_locations == [str(proj.root / pkg)]
    assert module.__file__ == str(proj.root / pkg / "__init__.py")
    # resources of a wrapped package still work
    assert importlib.resources.files(module).joinpath("data.txt").read_text() == "payload"


def test_install_is_idempotent_and_uninstall_removes_finder(hook: ImportHookHandle) -> None:
    assert install_import_hook() is hook
    finders = [f for f in sys.meta_path if isinstance(f, RecordingFinder)]
    assert finders == [hook.finder] and sys.meta_path[0] is hook.finder
    hook.uninstall()
    hook.uninstall()
    assert not any(isinstance(f, RecordingFinder) for f in sys.meta_path)
    with install_import_hook() as again:
        assert again is not hook and again.installed
        assert install_import_hook() is again
    assert not any(isinstance(f, RecordingFinder) for f in sys.meta_path)


def test_uninstalled_hook_does_not_record(proj: Tree, hook: ImportHookHandle) -> None:
    hook.uninstall()
    name = proj.name("late")
    path = proj.write(f"{name}.py", "Z = 1\n")
    importlib.import_module(name)
    assert INDEX._by_module.get(name) is None
    record = INDEX.by_module(name)  # recovered from the disk
    assert record is not None and not record.from_hook and record.source == "Z = 1\n"
    assert record.filename == os.path.realpath(path)


def test_imports_from_threads(proj: Tree) -> None:
    names = [proj.name(f"t{i}") for i in range(24)]
    for i, name in enumerate(names):
        proj.write(f"{name}.py", f"import time\ntime.sleep(0.001)\nN = {i}\n")
    errors: List[BaseException] = []

    def work(offset: int) -> None:
        try:
            for j in range(len(names)):
                name = names[(j + offset) % len(names)]
                assert importlib.import_module(name).N == names.index(name)
                INDEX.by_module(name)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k * 3,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for i, name in enumerate(names):
        record = INDEX.by_module(name)
        assert record.from_hook and record.source.endswith(f"N = {i}\n")


# -- late reads ----------------------------------------------------------------------


def test_by_filename_disk_fallback(tmp_path: Path) -> None:
    path = _write(tmp_path / "late_read.py", "def g():\n    return 5\n")
    index = SourceIndex()
    record = index.by_filename(str(path))
    assert record is not None and not record.from_hook
    assert record.source == "def g():\n    return 5\n"
    assert record.name == "late_read"
    assert index.by_filename(str(path)) is record
    assert index.by_filename(os.path.realpath(path)) is record
    assert index.by_filename(str(tmp_path / "missing.py")) is None
    assert index.by_filename(str(tmp_path)) is None


def test_ipython_cell_from_linecache() -> None:
    name = "<ipython-input-1-abc>"
    text = "def cell_func(x):\n    return x * 2\n"
    linecache.cache[name] = (len(text), None, text.splitlines(keepends=True), name)
    try:
        index = SourceIndex()
        record = index.by_filename(name)
        assert record is not None and record.source == text and not record.from_hook
        assert record.tree.body[0].name == "cell_func"
        assert index.is_project_path(name)
        assert index.by_filename("<ipython-input-2-def>") is None
    finally:
        del linecache.cache[name]


def test_jupyter_kernel_pseudo_file() -> None:
    name = "/tmp/ipykernel_12345/2345678.py"
    text = "Y = 1\n"
    linecache.cache[name] = (len(text), None, [text], name)
    try:
        index = SourceIndex()
        assert index.by_filename(name).source == text
        assert index.is_project_path(name)
    finally:
        del linecache.cache[name]


def test_record_replaces_and_counts_generations(tmp_path: Path) -> None:
    index = SourceIndex()
    path = str(tmp_path / "x.py")
    first = index.record("x", path, "A = 1\n")
    assert index.generation == 0
    second = index.record("x", path, "A = 2\n")
    assert index.generation == 1
    assert index.by_module("x") is second and index.by_filename(path) is second
    assert first.digest != second.digest


# -- what is project -------------------------------------------------------------------


def test_is_project_path(tmp_path: Path) -> None:
    import xxhash

    index = SourceIndex()
    project_file = _write(tmp_path / "myproj" / "code.py", "A = 1\n")
    assert not index.is_project_path(xxhash.__file__)
    assert not index.is_project_path(os.__file__)
    assert not index.is_project_path(inspect.__file__)
    index.add_project_path(str(project_file))
    assert index.is_project_path(str(project_file))
    assert index.is_project_path(str(tmp_path / "myproj" / "other.py"))
    assert not index.is_project_path(xxhash.__file__)


def test_virtualenv_and_site_packages_are_never_project(tmp_path: Path) -> None:
    index = SourceIndex()
    venv = tmp_path / "proj" / ".venv"
    _write(venv / "pyvenv.cfg", "home = /usr\n")
    inside = _write(venv / "lib" / "thing.py", "")
    site = _write(tmp_path / "proj" / "vendored" / "site-packages" / "dep.py", "")
    mine = _write(tmp_path / "proj" / "main.py", "")
    index.add_project_path(str(tmp_path / "proj"))
    assert index.is_project_path(str(mine))
    assert not index.is_project_path(str(inside))
    assert not index.is_project_path(str(site))


def test_configured_roots_take_over(tmp_path: Path) -> None:
    import checkpointing

    index = SourceIndex()
    a = _write(tmp_path / "a" / "m.py", "")
    b = _write(tmp_path / "b" / "m.py", "")
    index.add_project_path(str(a))
    # By default a real file not installed anywhere is the user's (editable installs).
    assert index.is_project_path(str(a)) and index.is_project_path(str(b))
    checkpointing.defaults["analysis.project_roots"] = (str(tmp_path / "b"),)
    assert index.is_project_path(str(b))
    assert index.is_project_path(str(a))  # decorated files always count
    assert not index.is_project_path(str(_write(tmp_path / "a" / "n.py", "")))


# -- whole programs --------------------------------------------------------------------


def _run(cwd: Path, *args: str) -> str:
    env = dict(os.environ)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    proc = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


_MAIN = """
from checkpointing.source import INDEX, install_import_hook
install_import_hook()
from pkg import other
r = INDEX.by_module("pkg.other")
print("OTHER", r is not None and r.from_hook and r.source == open(other.__file__).read())
m = INDEX.by_module("__main__")
print("MAIN", m is not None and m.source == open(__file__).read(), m and m.from_hook)
"""


def test_python_dash_m_in_subprocess(tmp_path: Path) -> None:
    _write(tmp_path / "pkg" / "__init__.py", "")
    _write(tmp_path / "pkg" / "other.py", "def helper():\n    return 1\n")
    _write(tmp_path / "pkg" / "main.py", _MAIN)
    out = _run(tmp_path, "-m", "pkg.main")
    assert "OTHER True" in out, out
    assert "MAIN True False" in out, out  # compiled before the hook: a late read


def test_main_script_recorded_at_install(tmp_path: Path) -> None:
    _write(tmp_path / "pkg" / "__init__.py", "")
    _write(tmp_path / "pkg" / "other.py", "def helper():\n    return 1\n")
    _write(
        tmp_path / "main.py",
        _MAIN
        + textwrap.dedent("""
        import checkpointing.source.index as ix
        print("EARLY", ix.INDEX._by_module["__main__"] is m)
    """),
    )
    out = _run(tmp_path, "main.py")
    assert "OTHER True" in out and "MAIN True False" in out and "EARLY True" in out, out


def test_runpy_with_hook_installed_first(tmp_path: Path) -> None:
    _write(tmp_path / "pkg" / "__init__.py", "")
    _write(tmp_path / "pkg" / "other.py", "")
    _write(tmp_path / "pkg" / "main.py", _MAIN)
    code = (
        "import runpy, checkpointing.source as s; s.install_import_hook(); "
        "runpy.run_module('pkg.main', run_name='__main__', alter_sys=True)"
    )
    out = _run(tmp_path, "-c", code)
    assert "OTHER True" in out and "MAIN True True" in out, out


def test_real_paths_kept_by_folder_resolve_links_as_realpath_does(tmp_path) -> None:
    """The real path of a file is its folder's (kept) joined with its name, unless the
    file itself is a link: the same answer as ``os.path.realpath`` for links to folders
    and files, ``..``, missing files and relative paths."""
    from checkpointing.source.index import _norm

    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "real" / "sub" / "f.py").write_text("x = 1\n")
    (tmp_path / "real" / "sub" / "g.py").symlink_to(tmp_path / "real" / "sub" / "f.py")
    base = str(tmp_path / "link" / "sub")
    for path in [
        base + "/f.py",
        base + "/g.py",  # a link to a file
        base + "/../sub/f.py",
        base + "/missing.py",
        base + "/..",
        base + "/",
        "relative/f.py",
    ]:
        assert _norm(path) == os.path.normcase(os.path.realpath(path)), path
    assert _norm(base + "/f.py") == str(tmp_path.resolve() / "real" / "sub" / "f.py")
