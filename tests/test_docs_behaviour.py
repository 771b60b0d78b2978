"""Every example of docs/behaviour.md, run twice with the edit in between.

The page is the specification users read; this test keeps it true.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "behaviour.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def parse_files(block: str) -> Dict[str, str]:
    """A block's files: ``# file: x.py`` lines start a file; else it is main.py."""
    lines = block.splitlines(keepends=True)
    assert lines[0].strip() in ("# before", "# after"), lines[0]
    files: Dict[str, List[str]] = {}
    current = "main.py"
    for line in lines[1:]:
        match = re.match(r"# file: (\S+)\s*$", line)
        if match:
            current = match.group(1)
            files[current] = []
            continue
        files.setdefault(current, []).append(line)
    return {name: "".join(body) for name, body in files.items()}


def examples() -> List[Tuple[str, Dict[str, str], Dict[str, str], bool]]:
    text = DOC.read_text(encoding="utf-8")
    found = []
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        title = section.splitlines()[0].strip()
        verdict = re.search(r"Re-run: \*\*(yes|no)\*\*", section)
        blocks = BLOCK.findall(section)
        assert verdict and len(blocks) == 2, f"section {title!r} needs a verdict and 2 blocks"
        found.append((title, parse_files(blocks[0]), parse_files(blocks[1]),
                      verdict.group(1) == "yes"))
    return found


EXAMPLES = examples()


def test_the_table_lists_every_section() -> None:
    text = DOC.read_text(encoding="utf-8")
    for title, _, _, rerun in EXAMPLES:
        row = f"| [{title[0].lower() + title[1:]}]"
        assert row in text, f"no table row for {title!r}"
        line = next(line for line in text.splitlines() if line.startswith(row))
        assert line.rstrip().endswith("| yes |" if rerun else "| no |"), line


@pytest.mark.parametrize("title, before, after, rerun",
                         [pytest.param(*e, id=e[0]) for e in EXAMPLES])
def test_example(project, title, before, after, rerun) -> None:
    for name, text in before.items():
        project.write(name, text)
    first = project.run()
    assert first.ran == ["f"], first
    for name, text in after.items():
        project.write(name, text)
    second = project.run()
    assert second.ran == (["f"] if rerun else []), second
    assert len(second.results) == 1
    # And the cached answer is the one a fresh run of the edited program gives.
    shutil.rmtree(project.root / ".checkpointing")
    fresh = project.run()
    assert fresh.ran == ["f"] and fresh.results == second.results, (second, fresh)
