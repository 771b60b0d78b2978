"""Shared fixtures: a throw-away project directory whose programs run in subprocesses.

The most important tests of checkpointing run a real program twice, edit its files in
between, and check what re-ran. ``Project.run`` returns the names of the function
bodies that executed (each test program prints ``RAN <name>``) and the other output.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, List, Optional

import pytest

import checkpointing


class Run:
    """The outcome of one program run."""

    def __init__(self, proc: subprocess.CompletedProcess) -> None:
        self.stdout: str = proc.stdout
        self.stderr: str = proc.stderr
        lines = self.stdout.splitlines()
        self.ran: List[str] = [line[4:] for line in lines if line.startswith("RAN ")]
        self.results: List[str] = [line[7:] for line in lines if line.startswith("RESULT ")]

    def __repr__(self) -> str:
        return f"Run(ran={self.ran}, results={self.results}, stderr={self.stderr[-2000:]!r})"


class Project:
    """A directory with a small program, run with the interpreter running the tests."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, relpath: str, text: str) -> Path:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        # The edit must be seen even when it lands within the file system's mtime
        # granularity of the previous write (stale .pyc files would hide it).
        stamp = path.stat().st_mtime + 2 + len(list(self.root.rglob("*.py")))
        os.utime(path, (stamp, stamp))
        return path

    def run(self, *argv: str, env: Optional[Dict[str, str]] = None,
            expect_ok: bool = True) -> Run:
        args = list(argv) or ["main.py"]
        full_env = dict(os.environ)
        full_env.pop("PYTHONHASHSEED", None)  # each run hashes strings differently
        full_env["PYTHONDONTWRITEBYTECODE"] = "1"
        full_env.update(env or {})
        proc = subprocess.run([sys.executable, *args], cwd=self.root, env=full_env,
                              capture_output=True, text=True, timeout=120)
        result = Run(proc)
        if expect_ok and proc.returncode != 0:
            raise AssertionError(f"program failed ({proc.returncode}):\n{proc.stderr}")
        result.returncode = proc.returncode  # type: ignore[attr-defined]
        return result


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test inside a fresh directory, so ./.checkpointing is private to it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(autouse=True)
def _restore_defaults() -> None:
    saved = dict(checkpointing.defaults)
    yield
    dict.clear(checkpointing.defaults)
    dict.update(checkpointing.defaults, saved)
