"""Every Python example of every page of docs/, executed.

Two kinds of example, both run in fresh directories by real interpreters:

* A section with a ``Re-run: **yes**`` (or ``**no**``) line and a *before* and an
  *after* block is a two-run example: run, edit, run again, and check whether ``f``
  re-ran and that its answer equals a fresh run's (tests/test_docs_behaviour.py does
  this for behaviour.md and the caveats of tracking.md; here, for every other page).
* Every other ```` ```python ```` block is part of the page's *session*: the blocks
  of a page run in order in one interpreter sharing one namespace, as a reader
  typing them in would, in a directory of their own. In a block, lines after
  ``# file: name`` are the file ``name`` (written, not run) until the next such line.

A page can prepare its session with an HTML comment, invisible on the site:
``<!-- docs-test: copy examples/demo_project -->`` copies a folder of the repository
into the session's directory, and ``<!-- docs-test: setup`` ... ``-->`` holds Python
run first (environment variables, files an example reads). Nothing is skipped: a
block that cannot run is a wrong example.
"""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)
VERDICT = re.compile(r"^Re-run: \*\*(yes|no)\*\*", re.M)
HEADING = re.compile(r"^#{2,4} ", re.M)
# Pages whose two-run examples tests/test_docs_behaviour.py already runs.
TWO_RUN_ELSEWHERE = {"behaviour.md", "tracking.md"}


def split_files(block: str) -> Tuple[str, Dict[str, str]]:
    """(code to run, files to write) of one block."""
    code: List[str] = []
    files: Dict[str, List[str]] = {}
    current = None
    for line in block.splitlines(keepends=True):
        match = re.match(r"# file: (\S+)\s*$", line)
        if match:
            current = match.group(1)
            files[current] = []
        elif current is None:
            code.append(line)
        else:
            files[current].append(line)
    return "".join(code), {name: "".join(body) for name, body in files.items()}


def two_run_examples(text: str) -> List[Tuple[str, Dict[str, str], Dict[str, str], bool]]:
    found = []
    starts = [m.start() for m in HEADING.finditer(text)] + [len(text)]
    for start, end in zip(starts, starts[1:]):
        section = text[start:end]
        verdict = VERDICT.search(section)
        if verdict is None:
            continue
        title = section.splitlines()[0].lstrip("#").strip()
        blocks = FENCE.findall(section)
        assert len(blocks) == 2 and blocks[0].startswith("# before"), title
        before = split_files(blocks[0].split("\n", 1)[1])
        after = split_files(blocks[1].split("\n", 1)[1])
        found.append(
            (
                title,
                {"main.py": before[0], **before[1]} if before[0].strip() else before[1],
                {"main.py": after[0], **after[1]} if after[0].strip() else after[1],
                verdict.group(1) == "yes",
            )
        )
    return found


def session_blocks(text: str) -> List[str]:
    """The blocks of a page that are not part of a two-run example."""
    two_run = set()
    starts = [m.start() for m in HEADING.finditer(text)] + [len(text)]
    for start, end in zip(starts, starts[1:]):
        if VERDICT.search(text[start:end]):
            two_run.update(FENCE.findall(text[start:end]))
    return [block for block in FENCE.findall(text) if block not in two_run]


PAGES = sorted(DOCS.glob("*.md"))
SESSIONS = [p for p in PAGES if session_blocks(p.read_text(encoding="utf-8"))]
TWO_RUN = [
    pytest.param(page.name, *example, id=f"{page.name}: {example[0]}")
    for page in PAGES
    if page.name not in TWO_RUN_ELSEWHERE
    for example in two_run_examples(page.read_text(encoding="utf-8"))
]

# Each block's text is kept in linecache under its pseudo-file name, as IPython keeps a
# cell's: the functions a block defines have their source, as in a notebook.
RUNNER = """
import json, linecache, os, sys
sys.path.insert(0, os.getcwd())
import __main__
blocks = json.load(open(sys.argv[1]))
for number, code in enumerate(blocks, 1):
    print(f"--- block {number}", flush=True)
    name = f"<block {number}>"
    linecache.cache[name] = (len(code), None, code.splitlines(keepends=True), name)
    exec(compile(code, name, "exec"), vars(__main__))
print("--- all blocks ran", flush=True)
"""


@pytest.mark.parametrize("page", [pytest.param(p, id=p.name) for p in SESSIONS])
def test_page_session(project, page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for folder in re.findall(r"<!-- docs-test: copy (\S+) -->", text):
        shutil.copytree(ROOT / folder, project.root, dirs_exist_ok=True)
    codes = [
        textwrap.dedent(setup)
        for setup in re.findall(r"<!-- docs-test: setup\n(.*?)-->", text, re.S)
    ]
    for block in session_blocks(text):
        code, files = split_files(block)
        for name, body in files.items():
            project.write(name, body)
        if code.strip():
            codes.append(code)
    (project.root / "blocks.json").write_text(json.dumps(codes))
    project.write("runner.py", RUNNER)
    run = project.run("runner.py", "blocks.json", expect_ok=False)
    assert run.stdout.rstrip().endswith("--- all blocks ran"), (
        f"{page.name}: {run.stdout[-1500:]}\n{run.stderr[-3000:]}"
    )


@pytest.mark.parametrize("page, title, before, after, rerun", TWO_RUN)
def test_two_run_example(project, page, title, before, after, rerun) -> None:
    for name, text in before.items():
        project.write(name, text)
    first = project.run()
    assert first.ran == ["f"], first
    for name, text in after.items():
        project.write(name, text)
    second = project.run()
    assert second.ran == (["f"] if rerun else []), second
    shutil.rmtree(project.root / ".checkpointing")
    fresh = project.run()
    assert fresh.ran == ["f"] and fresh.results == second.results, (second, fresh)


def test_the_pages_of_the_site_have_examples_run_here() -> None:
    """The pages that teach by example are all collected above (a renamed fence or
    heading would otherwise silently drop a page)."""
    sessions = {p.name for p in SESSIONS}
    two_run = {p.values[0] for p in TWO_RUN}
    for name in ("getting-started.md", "notebooks.md", "inspecting.md", "migrating.md"):
        assert name in sessions | two_run, name
