"""What re-runs when, and how fast a hit is: checkpointing side by side with its peers.

Usage: python benchmarks/compare_peers.py [--runs 3]

Every case is a small program run twice with an edit in between, under each library,
with the library's own persistent cache decorator: joblib.Memory, cachier, diskcache
(``Cache.memoize``), marimo (``mo.persistent_cache``, in a marimo notebook file run as
a script, which is how marimo's cache runs outside its editor), checkpointing 1.0.1
and this version. A cell says whether the second run re-ran the function and, when it
did not, whether its answer was stale (differs from a fresh run of the edited
program). Then the speed of a warm hit (median of 2,000 calls in one process) and of
running the whole program again (a new process whose one call hits).

The peers are installed from PyPI on first use into virtual environments under
``benchmarks/.work/`` (checkpointing 1.0.1 in its own: same import name). Writes
``benchmarks/COMPARISON.md``, which docs/comparison.md includes.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import venv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work"
OUT = ROOT / "benchmarks" / "COMPARISON.md"

LIBRARIES = [
    "checkpointing",
    "checkpointing 1.0.1",
    "joblib",
    "cachier",
    "diskcache",
    "marimo",
]

# How each library is imported and how it decorates ``f`` (the line before ``def``).
HEADER = {
    "checkpointing": ("from checkpointing import checkpoint", "@checkpoint"),
    "checkpointing 1.0.1": ("from checkpointing import checkpoint", "@checkpoint"),
    "joblib": ("import joblib\nmemory = joblib.Memory('cache', verbose=0)", "@memory.cache"),
    "cachier": ("from cachier import cachier", "@cachier(cache_dir='cache')"),
    "diskcache": ("import diskcache\ndisk = diskcache.Cache('cache')", "@disk.memoize()"),
    "marimo": ("import marimo as mo", "@mo.persistent_cache(save_path='cache')"),
}


@dataclass
class Case:
    """A program: files beside it, top-level ``setup`` (imports, globals, helpers),
    the function ``func`` (``@CACHE`` marks the decorator) and the ``call``; ``after``
    replaces some of these for the second run."""

    title: str
    rerun: bool
    setup: str
    func: str
    call: str
    files: Dict[str, str] = field(default_factory=dict)
    after: Dict[str, str] = field(default_factory=dict)

    def parts(self, edited: bool) -> Tuple[Dict[str, str], str, str, str]:
        files = dict(self.files)
        setup, func, call = self.setup, self.func, self.call
        if edited:
            for name, text in self.after.items():
                if name == "setup":
                    setup = text
                elif name == "func":
                    func = text
                elif name == "call":
                    call = text
                else:
                    files[name] = text
        return files, textwrap.dedent(setup), textwrap.dedent(func), call


FUNC = """
@CACHE
def f(a, b):
    print("RAN f")
    return a + b
"""

CASES = [
    Case("an argument value", True, "", FUNC, "f(1, 2)", after={"call": "f(1, 3)"}),
    Case(
        "the function's logic",
        True,
        "",
        FUNC,
        "f(1, 2)",
        after={"func": FUNC.replace("a + b", "a - b")},
    ),
    Case(
        "a comment in the function",
        False,
        "",
        FUNC,
        "f(1, 2)",
        after={"func": FUNC.replace("return a + b", "# the sum\n    return a + b")},
    ),
    Case(
        "a helper in the same file",
        True,
        "def helper(x):\n    return x * 2\n",
        FUNC.replace("a + b", "helper(a) + b"),
        "f(1, 2)",
        after={"setup": "def helper(x):\n    return x * 3\n"},
    ),
    Case(
        "a helper in another module",
        True,
        "from helpers import helper\n",
        FUNC.replace("a + b", "helper(a) + b"),
        "f(1, 2)",
        files={"helpers.py": "def helper(x):\n    return x * 2\n"},
        after={"helpers.py": "def helper(x):\n    return x * 3\n"},
    ),
    Case(
        "a global the function reads",
        True,
        "RATE = 2\n",
        FUNC.replace("a + b", "a * RATE + b"),
        "f(1, 2)",
        after={"setup": "RATE = 3\n"},
    ),
    Case(
        "a global a helper in another module reads",
        True,
        "from helpers import helper\n",
        FUNC.replace("a + b", "helper(a) + b"),
        "f(1, 2)",
        files={
            "settings.py": "RATE = 2\n",
            "helpers.py": "from settings import RATE\n\ndef helper(x):\n    return x * RATE\n",
        },
        after={"settings.py": "RATE = 3\n"},
    ),
    Case(
        "a method of the argument's class",
        True,
        "from shapes import Square\n",
        '@CACHE\ndef f(shape, b):\n    print("RAN f")\n    return shape.area() + b\n',
        "f(Square(2), 1)",
        files={
            "shapes.py": "class Square:\n    def __init__(self, side):\n"
            "        self.side = side\n\n    def area(self):\n        return self.side ** 2\n"
        },
        after={
            "shapes.py": "class Square:\n    def __init__(self, side):\n"
            "        self.side = side\n\n    def area(self):\n        return self.side * 4\n"
        },
    ),
    Case(
        "a file it read",
        True,
        "",
        '@CACHE\ndef f(path, b):\n    print("RAN f")\n'
        "    with open(path) as handle:\n        return int(handle.read()) + b\n",
        "f('data.txt', 1)",
        files={"data.txt": "2\n"},
        after={"data.txt": "3\n"},
    ),
    Case(
        "a helper renamed, logic unchanged",
        False,
        "from helpers import helper\n",
        FUNC.replace("a + b", "helper(a) + b"),
        "f(1, 2)",
        files={"helpers.py": "def helper(x):\n    return x * 2\n"},
        after={
            "helpers.py": "def double(x):\n    return x * 2\n",
            "setup": "from helpers import double\n",
            "func": FUNC.replace("a + b", "double(a) + b"),
        },
    ),
]


def program(library: str, setup: str, func: str, call: str, extra: str = "") -> str:
    """The main program of a case under ``library``."""
    imports, decorator = HEADER[library]
    func = func.strip("\n").replace("@CACHE", decorator)
    if library != "marimo":
        body = f"{imports}\n{setup}\n{func}\n\nprint('RESULT', {call})\n{extra}"
        return body
    # A marimo notebook: names flow between cells by marimo's own analysis.
    cells = [f"{imports}\n{setup}", func, f"print('RESULT', {call})\n{extra}"]
    out = ["import marimo", "", "app = marimo.App()", ""]
    for cell in cells:
        out += ["", "@app.cell", "def _():", textwrap.indent(cell.strip("\n"), "    ")]
        out += ["    return", ""]
    out += ["", 'if __name__ == "__main__":', "    app.run()", ""]
    return "\n".join(out)


def python_of(library: str) -> str:
    """The interpreter of the virtual environment for ``library`` (made on first use)."""
    if library == "checkpointing 1.0.1":
        name, packages, probe = (
            "venv-checkpointing-1.0.1",
            ["checkpointing==1.0.1"],
            "checkpointing",
        )
    else:
        packages = ["-e", str(ROOT), "joblib", "cachier", "diskcache", "marimo"]
        name, probe = "venv-peers", "checkpointing, joblib, cachier, diskcache, marimo"
    env_dir = WORK / name
    python = env_dir / "bin" / "python"
    if not python.exists():
        venv.create(env_dir, with_pip=True)
    if subprocess.run([str(python), "-c", f"import {probe}"], capture_output=True).returncode:
        subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    return str(python)


def write(workdir: Path, files: Dict[str, str]) -> None:
    for name, text in files.items():
        path = workdir / name
        path.write_text(text)
        stamp = path.stat().st_mtime + 5  # newer than any .pyc of the previous text
        os.utime(path, (stamp, stamp))


def run(python: str, workdir: Path) -> Tuple[bool, str]:
    proc = subprocess.run(
        [python, "main.py"], cwd=workdir, capture_output=True, text=True, timeout=300
    )
    if proc.returncode != 0:
        raise RuntimeError((proc.stderr.strip().splitlines() or ["failed"])[-1])
    lines = proc.stdout.splitlines()
    return "RAN f" in lines, next(line for line in lines if line.startswith("RESULT"))


def outcome(library: str, python: str, case: Case) -> str:
    """One cell of the table."""
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as fresh_tmp:
        workdir, fresh_dir = Path(tmp), Path(fresh_tmp)
        try:
            for edited in (False, True):
                files, setup, func, call = case.parts(edited)
                write(workdir, {**files, "main.py": program(library, setup, func, call)})
                if not edited:
                    run(python, workdir)
            reran, value = run(python, workdir)
            write(fresh_dir, {**files, "main.py": program(library, setup, func, call)})
            _, fresh = run(python, fresh_dir)
        except RuntimeError as exc:
            return f"fails: {exc}"[:80]
    if reran:
        return "re-runs" if case.rerun else "re-runs (needless)"
    return "reuses" if value == fresh else "**stale**"


SPEED = """
import json, statistics, time
times = []
for _ in range(2000):
    start = time.perf_counter()
    f(1, 2)
    times.append(time.perf_counter() - start)
print("TIMES", json.dumps(statistics.median(times)))
"""


def speed_once(library: str, python: str) -> Tuple[float, float]:
    """(median warm hit in µs, wall time of a new process whose call hits, ms)."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        write(workdir, {"main.py": program(library, "", FUNC, "f(1, 2)")})
        run(python, workdir)
        start = time.perf_counter()
        reran, _ = run(python, workdir)
        again = (time.perf_counter() - start) * 1e3
        assert not reran, f"{library}: the second run did not hit"
        write(workdir, {"main.py": program(library, "", FUNC, "f(1, 2)", SPEED)})
        proc = subprocess.run(
            [python, "main.py"], cwd=workdir, capture_output=True, text=True, check=True
        )
        line = next(x for x in proc.stdout.splitlines() if x.startswith("TIMES"))
        return json.loads(line.split(" ", 1)[1]) * 1e6, again


def speed(pythons: Dict[str, str], runs: int) -> Dict[str, Tuple[List[float], List[float]]]:
    """Samples per library; the libraries take turns within each run, so that a change
    of the machine's load falls on all of them alike."""
    samples: Dict[str, Tuple[List[float], List[float]]] = {lib: ([], []) for lib in LIBRARIES}
    for _ in range(runs):
        for library in LIBRARIES:
            hit, again = speed_once(library, pythons[library])
            samples[library][0].append(hit)
            samples[library][1].append(again)
    return samples


def _cell(values: List[float]) -> str:
    return f"{statistics.median(values):.3g} ({min(values):.3g})"


def version(python: str, library: str) -> str:
    module = "checkpointing" if library.startswith("checkpointing") else library
    code = (
        "import importlib.metadata as m, sys\n"
        f"print(m.version({module!r}), '.'.join(map(str, sys.version_info[:3])))"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    started = time.time()
    load = os.getloadavg()
    pythons = {library: python_of(library) for library in LIBRARIES}
    versions = {library: version(pythons[library], library) for library in LIBRARIES}

    lines = [
        "<!-- Written by benchmarks/compare_peers.py; do not edit by hand. -->",
        "",
        "| you change | should re-run | " + " | ".join(LIBRARIES) + " |",
        "| --- | --- | " + " | ".join("---" for _ in LIBRARIES) + " |",
    ]
    for case in CASES:
        cells = [outcome(library, pythons[library], case) for library in LIBRARIES]
        lines.append(
            f"| {case.title} | {'yes' if case.rerun else 'no'} | " + " | ".join(cells) + " |"
        )
        print(lines[-1], flush=True)
    figures = speed(pythons, args.runs)
    lines.append("| **warm hit of f(1, 2), µs** | | ")
    lines[-1] += " | ".join(_cell(figures[lib][0]) for lib in LIBRARIES) + " |"
    lines.append("| **the program run again (a new process, one hit), ms** | | ")
    lines[-1] += " | ".join(_cell(figures[lib][1]) for lib in LIBRARIES) + " |"
    lines.append("")
    lines.append(
        f"Measured by `python benchmarks/compare_peers.py --runs {args.runs}` on "
        f"{datetime.date.today().isoformat()} in {(time.time() - started) / 60:.1f} min; "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores. Versions: "
        + ", ".join(
            f"{lib.split()[0]} {versions[lib].replace(' ', ' on Python ')}" for lib in LIBRARIES
        )
        + ". Speeds: median (minimum) over "
        f"{args.runs} fresh processes, each with its cache in a new temporary directory; "
        f"load average {load[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end (the "
        "new-process times grow with it; the libraries take turns, so each run sees the same load)."
    )
    text = "\n".join(lines) + "\n"
    OUT.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    sys.exit(main())
