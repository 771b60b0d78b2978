"""The user's own packages installed in editable mode are project code.

A real ``pip install -e`` of a small src-layout package into a fresh virtual
environment; a program in another folder uses a helper of that package from a
checkpointed function; editing the helper in the package's source re-runs the
function (DESIGN.md: only the standard library and installed, non-editable
distributions are external).
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import List

import pytest
from conftest import Project, Run

PYPROJECT = """
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "mylib"
version = "0.1"

[tool.setuptools.packages.find]
where = ["src"]
"""

HELPER = """
def scale(x):
    return x * 2
"""

MAIN = """
from checkpointing import checkpoint
from mylib.helper import scale

@checkpoint
def f(x):
    print("RAN f")
    return scale(x) + 1

print("RESULT", f(3))
"""


def _venv(tmp_path: Path) -> Path:
    """A virtual environment without pip of its own, seeing the test environment's
    packages (checkpointing, pip, setuptools) through a .pth file: offline and fast."""
    env = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    python = env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # An ``import`` line: addsitedir also runs the .pth files there (checkpointing's own
    # editable install).
    Path(purelib, "outer.pth").write_text(
        "".join(f"import site; site.addsitedir({path!r})\n" for path in site.getsitepackages())
    )
    return python


def _install_editable(python: Path, source: Path, *extra: str) -> None:
    proc = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-build-isolation",
            "--no-deps",
            "--no-index",
            *extra,
            "-e",
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _run(python: Path, cwd: Path, *argv: str) -> Run:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [str(python), *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return Run(proc)


@pytest.mark.parametrize("mode", ["default", "strict"])
def test_editing_a_helper_of_an_editable_install_reruns(tmp_path: Path, mode: str) -> None:
    package = Project(tmp_path / "mylib-src")
    package.write("pyproject.toml", PYPROJECT)
    package.write("src/mylib/__init__.py", "")
    package.write("src/mylib/helper.py", HELPER)
    python = _venv(tmp_path)
    extra: List[str] = [] if mode == "default" else ["--config-settings", "editable_mode=strict"]
    _install_editable(python, package.root, *extra)
    app = Project(tmp_path / "app")
    app.write("main.py", MAIN)

    first = _run(python, app.root, "main.py")
    assert first.ran == ["f"] and first.results == ["7"], first
    assert _run(python, app.root, "main.py").ran == []
    package.write("src/mylib/helper.py", HELPER.replace("x * 2", "x * 10"))
    third = _run(python, app.root, "main.py")
    assert third.ran == ["f"] and third.results == ["31"], third
    assert _run(python, app.root, "main.py").ran == []


def test_a_folder_on_sys_path_is_project_and_installed_packages_are_not(tmp_path: Path) -> None:
    """PYTHONPATH / .pth folders count; a ``pip install --target`` folder (a
    ``*.dist-info`` beside the packages) does not."""
    app = Project(tmp_path / "app")
    lib = Project(tmp_path / "libs")
    lib.write("ownlib.py", HELPER)
    installed = Project(tmp_path / "target")
    installed.write("vendored.py", "def offset():\n    return 100\n")
    installed.write("vendored-1.0.dist-info/METADATA", "Name: vendored\nVersion: 1.0\n")
    app.write(
        "main.py",
        """
import sys
from checkpointing import checkpoint
from checkpointing.source import INDEX
import ownlib, vendored

@checkpoint
def f(x):
    print("RAN f")
    return ownlib.scale(x) + vendored.offset()

print("RESULT", f(3))
print("PROJECT", INDEX.is_project_path(ownlib.__file__),
      INDEX.is_project_path(vendored.__file__))
""",
    )
    env = {"PYTHONPATH": os.pathsep.join([str(lib.root), str(installed.root)])}
    first = app.run("main.py", env=env)
    assert first.ran == ["f"] and first.results == ["106"], first
    assert "PROJECT True False" in first.stdout, first.stdout
    lib.write("ownlib.py", HELPER.replace("x * 2", "x * 3"))
    second = app.run("main.py", env=env)
    assert second.ran == ["f"] and second.results == ["109"], second
    installed.write("vendored.py", "def offset():\n    return 200\n")
    # Installed code is identified by name, like any third-party package.
    assert app.run("main.py", env=env).ran == []


def test_project_roots_narrow_the_boundary(tmp_path: Path) -> None:
    app = Project(tmp_path / "app")
    lib = Project(tmp_path / "libs")
    lib.write("ownlib.py", HELPER)
    app.write(
        "main.py",
        textwrap.dedent("""
        from checkpointing import checkpoint, defaults
        defaults["analysis.project_roots"] = ["."]
        import ownlib

        @checkpoint
        def f(x):
            print("RAN f")
            return ownlib.scale(x)

        print("RESULT", f(3))
        """),
    )
    env = {"PYTHONPATH": str(lib.root)}
    assert app.run("main.py", env=env).ran == ["f"]
    lib.write("ownlib.py", HELPER.replace("x * 2", "x * 3"))
    # Outside the configured roots: external, as asked.
    assert app.run("main.py", env=env).ran == []
