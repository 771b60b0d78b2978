"""Every example of docs/managing.md, run as the page says.

Each ``## `` section runs in a fresh folder: a ```` ```python ```` block is the file
its first line names (``# file: NAME``, the convention of tests/test_docs_examples.py,
which therefore writes these blocks and runs none of them); each ``$ command`` of a ```` ```console ```` block runs there
(``python`` is this interpreter, ``checkpointing`` is ``python -m checkpointing``,
``VAR=value`` prefixes set environment variables) and must print the lines shown under
it, in order, other lines allowed between; ``...`` stands for any text; ``[exit N]`` is
the exit code (0 if not shown). Lines ``RAN <name>`` are strict: a function body ran
exactly where the page shows it did.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "managing.md"
BLOCK = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.M | re.S)


def sections() -> List[Tuple[str, str]]:
    text = DOC.read_text(encoding="utf-8")
    out = []
    for part in re.split(r"^## ", text, flags=re.M)[1:]:
        title, _, body = part.partition("\n")
        if "```console" in body:
            out.append((title.strip(), body))
    return out


def _pattern(expected: str) -> "re.Pattern[str]":
    parts = [re.escape(p) for p in expected.strip().split("...")]
    return re.compile(".*".join(parts))


def _run(command: str, cwd: Path) -> subprocess.CompletedProcess:
    words = shlex.split(command)
    env = dict(os.environ)
    env.pop("PYTHONHASHSEED", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    if words[0] == "python":
        words[0:1] = [sys.executable]
    elif words[0] == "checkpointing":
        words[0:1] = [sys.executable, "-m", "checkpointing"]
    else:
        raise AssertionError(f"the page runs {words[0]!r}; only python and checkpointing")
    return subprocess.run(words, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def _check(command: str, expected: List[str], proc: subprocess.CompletedProcess) -> None:
    output = (proc.stdout + proc.stderr).splitlines()
    shown = f"$ {command}\n--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}"
    code = 0
    lines = []
    for line in expected:
        match = re.fullmatch(r"\[exit (\d+)\]", line.strip())
        if match:
            code = int(match.group(1))
        elif line.strip():
            lines.append(line)
    assert proc.returncode == code, f"exit code {proc.returncode}, not {code}\n{shown}"
    position = 0
    for line in lines:
        pattern = _pattern(line)
        while position < len(output) and not pattern.fullmatch(output[position].strip()):
            position += 1
        assert position < len(output), f"not printed (in this order): {line!r}\n{shown}"
        position += 1
    ran = [line.strip() for line in output if line.startswith("RAN ")]
    assert ran == [line.strip() for line in lines if line.startswith("RAN ")], shown


def test_the_page_has_examples() -> None:
    titles = [title for title, _ in sections()]
    assert len(titles) >= 8, titles


@pytest.mark.parametrize("title, body", [pytest.param(*s, id=s[0]) for s in sections()])
def test_example(project, title, body) -> None:
    for kind, _info, text in BLOCK.findall(body):
        if kind == "python":
            first, _, rest = text.partition("\n")
            match = re.fullmatch(r"# file: (\S+)\s*", first)
            assert match, f"a python block of {title!r} does not start with '# file: NAME'"
            project.write(match.group(1), rest)
        elif kind == "console":
            commands: List[Tuple[str, List[str]]] = []
            for line in text.splitlines():
                if line.startswith("$ "):
                    commands.append((line[2:], []))
                elif commands:
                    commands[-1][1].append(line)
            for command, expected in commands:
                _check(command, expected, _run(command, project.root))
