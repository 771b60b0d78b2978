"""Shared tools of the fault-injection suite (docs/reliability.md lists its figures).

Each test reports its figure with :func:`figure`; the figures are printed at the end
of the run (``pytest_terminal_summary``), so CI's log holds the table's numbers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

import pytest

FIGURES: List[str] = []
ROOT = Path(__file__).resolve().parents[2]


def figure(name: str, text: str) -> None:
    """Record (and print) the measured outcome of a fault-injection test."""
    line = f"{name}: {text}"
    FIGURES.append(line)
    print(f"FIGURE {line}")


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: D103
    if FIGURES:
        terminalreporter.section("fault-injection figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


def run_python(code: str, cwd: Path, env: Optional[Dict[str, str]] = None,
               timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    """Run ``code`` with the interpreter of the tests, in ``cwd``."""
    full_env = dict(os.environ)
    full_env["PYTHONDONTWRITEBYTECODE"] = "1"
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, **kwargs)


def cli(directory: Path, *argv: str, cwd: Optional[Path] = None) -> subprocess.CompletedProcess:
    """``checkpointing <argv> --dir <directory>`` in a subprocess."""
    return subprocess.run([sys.executable, "-m", "checkpointing", *argv, "--dir",
                           str(directory)], cwd=cwd or directory.parent,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
