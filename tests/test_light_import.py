"""``import checkpointing`` stays light (issue 12, target 5): what only decorating,
misses, analysis, drawing or the command line need is imported there, not at import.

The time itself is measured by ``benchmarks/suite.py`` (fresh-process table); these
tests pin down which modules a bare import loads, and that the deferred logger
behaves like a plain one once the application configures logging.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from checkpointing._lazylog import DEBUG, INFO, WARNING, LazyLogger

# Heavy modules (a few ms each) that only decorating, a miss, the analyzer, graph
# drawing or the command line need.
DEFERRED = [
    "logging",
    "inspect",
    "json",
    "datetime",
    "subprocess",
    "shutil",
    "ast",
    "networkx",
    "checkpointing.keyplan",
    "checkpointing.depgraph",
    "checkpointing.analysis.resolve",
    "checkpointing.analysis.canon",
    "checkpointing.cli",
    "glob",  # inputs= patterns, matched at a miss
    "checkpointing.render",  # checkpointing.graph and DependencyGraph load at first use
    "checkpointing.store.remote",  # checkpointing.RemoteStore, or a URL given as directory
]


def _python(code: str, cwd: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=cwd
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout + proc.stderr


def test_import_loads_none_of_the_deferred_modules(tmp_path) -> None:
    out = _python(
        f"import sys, checkpointing\nprint(sorted(m for m in {DEFERRED!r} if m in sys.modules))\n",
        str(tmp_path),
    )
    assert out.strip().splitlines()[-1] == "[]", out


def test_logging_configured_after_the_import_gets_the_records(tmp_path) -> None:
    code = (
        "import checkpointing, logging, sys\n"
        "logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format='%(name)s %(message)s')\n"
        "@checkpointing.checkpoint()\n"
        "def f(x):\n"
        "    return x + 1\n"
        "print('RESULT', f(1), f(1))\n"
    )
    out = _python(code, str(tmp_path))
    assert "RESULT 2 2" in out
    assert "checkpointing.decorator miss: __main__:f" in out, out
    assert "checkpointing.decorator hit: __main__:f" in out, out


def test_lazy_logger_without_logging_imported_drops_below_warning(monkeypatch) -> None:
    import logging

    logger = LazyLogger("checkpointing.test_lazy")
    # As if nothing had imported logging: nothing can have configured it.
    monkeypatch.delitem(sys.modules, "logging")
    assert not logger.isEnabledFor(DEBUG)
    assert not logger.isEnabledFor(INFO)
    assert logger.isEnabledFor(WARNING)
    logger.debug("dropped %s", 1)  # must not import logging back
    assert "logging" not in sys.modules
    monkeypatch.setitem(sys.modules, "logging", logging)
    real = logging.getLogger("checkpointing.test_lazy")
    monkeypatch.setattr(real, "level", logging.DEBUG)
    assert logger.isEnabledFor(DEBUG)


@pytest.mark.parametrize("level", [DEBUG, INFO, WARNING])
def test_lazy_logger_follows_the_configured_level(level, caplog) -> None:
    logger = LazyLogger("checkpointing.test_levels")
    with caplog.at_level(level, logger="checkpointing.test_levels"):
        logger.debug("d")
        logger.info("i")
        logger.warning("w")
    got = [r.getMessage() for r in caplog.records if r.name == "checkpointing.test_levels"]
    expected = [m for m, lv in (("d", DEBUG), ("i", INFO), ("w", WARNING)) if lv >= level]
    assert got == expected
    # The record names the caller's line, as a plain logger's would.
    assert all(r.filename == "test_light_import.py" for r in caplog.records)


def test_lazy_public_names_are_the_package_attributes(tmp_path) -> None:
    """``graph``, ``DependencyGraph`` and ``RemoteStore`` load at first use, under the
    package's name, and ``from checkpointing import *`` still gives them."""
    out = _python(
        "import checkpointing\n"
        "names = {}\n"
        "exec('from checkpointing import *', names)\n"
        "print(all(n in names for n in checkpointing.__all__))\n"
        "from checkpointing.render import graph\n"
        "from checkpointing.store.remote import RemoteStore\n"
        "print(checkpointing.graph is graph, checkpointing.RemoteStore is RemoteStore)\n"
        "print(RemoteStore.__module__, 'RemoteStore' in dir(checkpointing))\n",
        str(tmp_path),
    )
    assert out.split() == ["True", "True", "True", "checkpointing", "True"], out


def test_import_compiles_no_annotation(tmp_path) -> None:
    """No string annotation becomes a typing ForwardRef at import (one per field of a
    class-syntax NamedTuple under ``from __future__ import annotations``, or
    ``Callable[["Hasher"], ...]``): each is compiled, and the first ``compile()`` of a
    process builds the AST types, about 0.7 ms of the import budget."""
    out = _python(
        "import typing\n"
        "seen = []\n"
        "init = typing.ForwardRef.__init__\n"
        "def record(self, arg, *args, **kwargs):\n"
        "    seen.append(arg)\n"
        "    init(self, arg, *args, **kwargs)\n"
        "typing.ForwardRef.__init__ = record\n"
        "import checkpointing\n"
        "print(seen)\n",
        str(tmp_path),
    )
    assert out.strip().splitlines()[-1] == "[]", out
