"""Run the caveats of checkpointing 1.0 (docs/tracking.md) under 1.0.1 and this version.

Usage: python examples/compare_with_1_0.py

checkpointing 1.0.1 is installed from PyPI into its own virtual environment under
``benchmarks/.work/`` (made on first use). Each example runs twice, with the
documented edit in between, under each version; the table says whether the second
run re-ran the function and whether its answer was stale (different from a fresh
run of the edited program).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path
from typing import Dict, List, Tuple

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)

Example = Tuple[str, Dict[str, str], Dict[str, str], bool]


def parse_files(block: str) -> Dict[str, str]:
    """A block's files: ``# file: x.py`` lines start a file; else it is main.py."""
    files: Dict[str, List[str]] = {}
    current = "main.py"
    for line in block.splitlines(keepends=True)[1:]:  # the first is "# before"/"# after"
        match = re.match(r"# file: (\S+)\s*$", line)
        if match:
            current = match.group(1)
            files[current] = []
            continue
        files.setdefault(current, []).append(line)
    return {name: "".join(body) for name, body in files.items()}


def parse_examples(path: Path, level: str = "## ") -> List[Example]:
    """(title, files before, files after, re-run?) of each example section of a page."""
    found = []
    for section in re.split(rf"^{level}", path.read_text(encoding="utf-8"), flags=re.M)[1:]:
        title = section.splitlines()[0].strip()
        verdict = re.search(r"^Re-run: \*\*(yes|no)\*\*", section, flags=re.M)
        if verdict is None:
            continue
        before, after = BLOCK.findall(section)
        found.append((title, parse_files(before), parse_files(after), verdict.group(1) == "yes"))
    return found


def legacy_python() -> str:
    """The interpreter of a virtual environment with checkpointing 1.0.1."""
    env_dir = WORK / "venv-checkpointing-1.0.1"
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if not python.exists():
        venv.create(env_dir, with_pip=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "checkpointing==1.0.1"], check=True
        )
    return str(python)


def run(python: str, workdir: Path) -> Tuple[bool, str]:
    proc = subprocess.run(
        [python, "main.py"], cwd=workdir, capture_output=True, text=True, check=True
    )
    lines = proc.stdout.splitlines()
    return "RAN f" in lines, next(line for line in lines if line.startswith("RESULT"))


def write(workdir: Path, files: Dict[str, str]) -> None:
    for name, text in files.items():
        path = workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        os.utime(path, (path.stat().st_mtime + 5,) * 2)  # no stale .pyc


def outcome(python: str, before: Dict[str, str], after: Dict[str, str]) -> str:
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as fresh_tmp:
        workdir, fresh_dir = Path(tmp), Path(fresh_tmp)
        write(workdir, before)
        run(python, workdir)
        write(workdir, after)
        reran, value = run(python, workdir)
        write(fresh_dir, {**before, **after})
        _, fresh = run(python, fresh_dir)
    if reran:
        return "re-ran"
    return "reused the result" if value == fresh else f"no re-run: STALE ({value} != {fresh})"


def main() -> None:
    examples = parse_examples(ROOT / "docs" / "tracking.md", level="### ")
    interpreters = [("checkpointing 1.0.1", legacy_python()), ("this version", sys.executable)]
    width = max(len(title) for title, *_ in examples)
    print(f"{'case':<{width}} | " + " | ".join(name for name, _ in interpreters))
    for title, before, after, _ in examples:
        cells = [outcome(python, before, after) for _, python in interpreters]
        print(f"{title:<{width}} | " + " | ".join(cells))


if __name__ == "__main__":
    if "--clean" in sys.argv:
        shutil.rmtree(WORK, ignore_errors=True)
    main()
